import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { pollUntilTerminal, specSchemaErrors, startSim, type TestSim } from './helpers.ts';

let sim: TestSim;

beforeEach(async () => {
  sim = await startSim({ time_scale: 0.01 });
});
afterEach(async () => {
  await sim.close();
});

const tokens = (text: string): number => Math.ceil(text.length / 4);
const visibleOutput = (usage: OpenAI.Responses.ResponseUsage): number => usage.output_tokens - usage.output_tokens_details.reasoning_tokens;
const cacheablePrefix = (n: number): number => (n < 1024 ? 0 : Math.floor(n / 128) * 128);

describe('previous_response_id', () => {
  test('each turn sees the whole chain before it: input tokens grow and the chain is the cached prefix', async () => {
    const long = 'Background material. '.repeat(300);
    const first = await sim.client.responses.create({ model: 'gpt-5', input: long });
    const second = await sim.client.responses.create({ model: 'gpt-5', input: 'and then?', previous_response_id: first.id });
    const third = await sim.client.responses.create({ model: 'gpt-5', input: 'and finally?', previous_response_id: second.id });

    expect(first.usage!.input_tokens).toBe(tokens(long));
    const afterFirst = first.usage!.input_tokens + visibleOutput(first.usage!);
    expect(second.usage!.input_tokens).toBe(afterFirst + tokens('and then?'));
    const afterSecond = second.usage!.input_tokens + visibleOutput(second.usage!);
    expect(third.usage!.input_tokens).toBe(afterSecond + tokens('and finally?'));
    expect(second.usage!.input_tokens_details.cached_tokens).toBe(cacheablePrefix(afterFirst));
    expect(third.usage!.input_tokens_details.cached_tokens).toBe(cacheablePrefix(afterSecond));
    expect(third.previous_response_id).toBe(second.id);
  });

  test('an unknown previous response is a 404 previous_response_not_found (SDK: NotFoundError)', async () => {
    const error = await sim.client.responses.create({ model: 'gpt-5', input: 'x', previous_response_id: 'resp_x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    const apiError = error as InstanceType<typeof OpenAI.NotFoundError>;
    expect(apiError.error).toEqual({
      type: 'invalid_request_error',
      code: 'previous_response_not_found',
      param: 'previous_response_id',
      message: "Previous response with id 'resp_x' not found.",
    });
  });

  test('previous_response_id together with conversation is a 400', async () => {
    const first = await sim.client.responses.create({ model: 'gpt-5', input: 'x' });
    const conversation = await sim.client.conversations.create({});
    const res = await sim.api('/responses', { body: { model: 'gpt-5', input: 'y', previous_response_id: first.id, conversation: conversation.id } });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ type: 'invalid_request_error', param: 'conversation', code: 'mutually_exclusive_parameters' });
  });
});

describe('conversations', () => {
  test('create, retrieve, update metadata and delete, in the spec shapes', async () => {
    const created = await sim.client.conversations.create({ metadata: { topic: 'otters' } });
    expect(created.id).toMatch(/^conv_[0-9a-f]{48}$/);
    expect(created).toMatchObject({ object: 'conversation', metadata: { topic: 'otters' } });
    expect(specSchemaErrors('ConversationResource', created)).toBeNull();

    expect(await sim.client.conversations.retrieve(created.id)).toEqual(created);
    const updated = await sim.client.conversations.update(created.id, { metadata: { topic: 'beavers' } });
    expect(updated.metadata).toEqual({ topic: 'beavers' });
    expect((await sim.client.conversations.retrieve(created.id)).metadata).toEqual({ topic: 'beavers' });

    const deleted = await sim.client.conversations.delete(created.id);
    expect(deleted).toEqual({ id: created.id, object: 'conversation.deleted', deleted: true });
    expect(specSchemaErrors('DeletedConversationResource', deleted)).toBeNull();
    const gone = await sim.api(`/conversations/${created.id}`);
    expect(gone.status).toBe(404);
    expect(gone.json.error).toMatchObject({ type: 'invalid_request_error', code: 'conversation_not_found' });
  });

  test('responses in a conversation see its items first and append their turn when they complete', async () => {
    const seed = [{ role: 'user' as const, content: 'Remember: the otter is called Ada.' }];
    const conversation = await sim.client.conversations.create({ items: seed });
    const seedTokens = tokens(JSON.stringify(seed));

    const first = await sim.client.responses.create({ model: 'gpt-5', input: 'What is her name?', conversation: conversation.id });
    expect(first.usage!.input_tokens).toBe(seedTokens + tokens('What is her name?'));
    expect(first.conversation).toEqual({ id: conversation.id });

    const items = await sim.api(`/conversations/${conversation.id}/items?order=asc`);
    expect(items.status).toBe(200);
    expect(specSchemaErrors('ConversationItemList', items.json)).toBeNull();
    expect(items.json.data.map((item: any) => [item.type, item.role ?? null])).toEqual([
      ['message', 'user'],
      ['message', 'user'],
      ['reasoning', null],
      ['message', 'assistant'],
    ]);
    expect(items.json.data[1].content).toEqual([{ type: 'input_text', text: 'What is her name?' }]);
    expect(items.json.data[3].content[0].text).toBe(first.output_text);

    const second = await sim.client.responses.create({ model: 'gpt-5', input: 'And her age?', conversation: { id: conversation.id } });
    const afterFirst = first.usage!.input_tokens + visibleOutput(first.usage!);
    expect(second.usage!.input_tokens).toBe(afterFirst + tokens('And her age?'));

    // Newest first by default, paginated with limit/after.
    const page = await sim.client.conversations.items.list(conversation.id, { limit: 2 });
    expect(page.data.map((item) => item.id)).toEqual([second.output[1]!.id, second.output[0]!.id]);
    expect(page.has_more).toBe(true);
  });

  test('a background response joins its conversation only once it has completed', async () => {
    const conversation = await sim.client.conversations.create({});
    const created = await sim.client.responses.create({
      model: 'o3',
      input: 'Think long.',
      conversation: conversation.id,
      background: true,
      metadata: { sim_duration_ms: '3000' },
    });
    expect(created.status).toBe('queued');
    expect((await sim.client.conversations.items.list(conversation.id)).data).toEqual([]);
    const done = (await pollUntilTerminal(sim, created.id)).at(-1);
    expect(done.status).toBe('completed');
    const items = (await sim.client.conversations.items.list(conversation.id, { order: 'asc' })).data;
    expect(items.map((item) => item.type)).toEqual(['message', 'reasoning', 'message']);
  });

  test('an unknown conversation on a create is a 404 naming conversation', async () => {
    const res = await sim.api('/responses', { body: { model: 'gpt-5', input: 'x', conversation: 'conv_missing' } });
    expect(res.status).toBe(404);
    expect(res.json.error).toEqual({
      type: 'invalid_request_error',
      code: 'conversation_not_found',
      param: 'conversation',
      message: "Conversation with id 'conv_missing' not found.",
    });
  });
});
