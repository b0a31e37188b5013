import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { pollUntilTerminal, promptOfTokens, startReceiver, startSim, streamEventErrors, type TestSim, type WebhookReceiver } from './helpers.ts';

let sim: TestSim;
let receiver: WebhookReceiver;

beforeEach(async () => {
  receiver = await startReceiver();
  sim = await startSim({ time_scale: 0.001, webhook_urls: [receiver.url] });
});
afterEach(async () => {
  await sim.close();
  await receiver.close();
});

async function background(model: string, metadata: Record<string, string>, input = 'Plan a trip to Lisbon.'): Promise<any> {
  const created = await sim.client.responses.create({ model, input, background: true, metadata: { sim_duration_ms: '10000', ...metadata } });
  const seen = await pollUntilTerminal(sim, created.id);
  return seen.at(-1);
}

describe('metadata.sim_outcomes', () => {
  test('rules apply per model, * is the default, sim_outcomes beats sim_outcome for the model it names', async () => {
    const metadata = { sim_outcomes: 'o3=failed, gpt-4.1=completed,*=refusal' };
    expect((await background('o3', metadata)).status).toBe('failed');
    expect((await background('gpt-4.1', metadata)).status).toBe('completed');
    const other = await background('gpt-5', metadata);
    expect(other.status).toBe('completed');
    expect(other.output.at(-1).content[0].type).toBe('refusal');

    const both = { sim_outcome: 'failed', sim_outcomes: 'o3=completed' };
    expect((await background('o3', both)).status).toBe('completed');
    expect((await background('gpt-5', both)).status).toBe('failed');
    // sim_outcome (every model) comes before the * rule.
    expect((await background('gpt-5', { sim_outcome: 'incomplete', sim_outcomes: '*=failed' })).status).toBe('incomplete');
  });

  test.each(['o3', 'o3=', 'o3=exploded', '=failed', 'o3=failed,o3=completed', 'o3=failed=completed'])('rejects %j with a 400 naming metadata.sim_outcomes', async (rules) => {
    const { status, json } = await sim.api('/responses', { body: { model: 'o3', input: 'x', metadata: { sim_outcomes: rules } } });
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ type: 'invalid_request_error', param: 'metadata.sim_outcomes', code: 'invalid_value' });
    await expect(sim.client.responses.create({ model: 'o3', input: 'x', metadata: { sim_outcomes: rules } })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });

  test.each(['sim_context_tokens', 'sim_array_items'])('rejects a bad %s', async (key) => {
    for (const value of ['0', '-1', 'ten', '1.5', '51000000000000000000']) {
      const { status, json } = await sim.api('/responses', { body: { model: 'o3', input: 'x', metadata: { [key]: value } } });
      expect(status).toBe(400);
      expect(json.error.param).toBe(`metadata.${key}`);
    }
  });
});

describe('new outcomes', () => {
  test('refusal: a completed response with a refusal part and no output_text', async () => {
    const done = await background('gpt-5', { sim_outcome: 'refusal' });
    expect(done.status).toBe('completed');
    const message = done.output.find((item: any) => item.type === 'message');
    expect(message.content).toEqual([{ type: 'refusal', refusal: "I'm sorry, I can't help with that." }]);
    expect(done.output_text).toBe('');
    const sdk = await sim.client.responses.retrieve(done.id);
    expect(sdk.output_text).toBe('');
  });

  test('refusal streamed: refusal.delta events concatenate to refusal.done', async () => {
    const stream = await sim.client.responses.create({ model: 'gpt-4.1', input: 'Do the bad thing.', stream: true, metadata: { sim_outcome: 'refusal' } });
    const events: any[] = [];
    for await (const event of stream) events.push(event);
    for (const event of events) expect(streamEventErrors(event)).toBeNull();
    const types = events.map((event) => event.type);
    expect(types).not.toContain('response.output_text.delta');
    const deltas = events.filter((event) => event.type === 'response.refusal.delta').map((event) => event.delta);
    const done = events.find((event) => event.type === 'response.refusal.done');
    expect(deltas.join('')).toBe(done.refusal);
    expect(done.refusal).toBe("I'm sorry, I can't help with that.");
    expect(types.at(-1)).toBe('response.completed');
    expect(events.at(-1).response.output.at(-1).content[0].type).toBe('refusal');
  });

  test('short: a completed answer of a few characters', async () => {
    const done = await background('gpt-5', { sim_outcome: 'short' });
    expect(done.status).toBe('completed');
    expect(done.output_text.length).toBeGreaterThan(0);
    expect(done.output_text.length).toBeLessThan(10);
    expect(done.usage.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
  });

  // OpenAI refuses a too-long input at create (ResponseErrorCode has no context_length_exceeded).
  const TOO_LONG = { type: 'invalid_request_error', code: 'context_length_exceeded', param: 'input' };

  test('context_length_exceeded: a 400 at create for the model it names, nothing stored, no webhook; stats and request log agree', async () => {
    const before = await sim.sim('/stats');
    const body = { model: 'o3', input: 'Plan it.', background: true, metadata: { sim_outcomes: 'o3=context_length_exceeded,*=completed' } };
    const { status, json } = await sim.api('/responses', { body });
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ ...TOO_LONG, message: expect.stringContaining('context window') });
    const error = await sim.client.responses.create(body as any).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('context_length_exceeded');
    // Another model under the same rules is created and completes; only it is counted and sends a webhook.
    const other = await background('gpt-4.1', body.metadata);
    expect(other.status).toBe('completed');
    const after = await sim.sim('/stats');
    expect(after.creates - before.creates).toBe(1);
    await receiver.waitFor((received) => received.length >= 1);
    expect(receiver.received.map((r) => JSON.parse(r.body).data.id)).toEqual([other.id]);
  });

  test('a failed outcome sends response.failed', async () => {
    const failed = await background('o3', { sim_outcomes: 'o3=failed' });
    expect(failed.status).toBe('failed');
    await receiver.waitFor((received) => received.length >= 1);
    expect(JSON.parse(receiver.received[0]?.body ?? '{}')).toMatchObject({ type: 'response.failed', data: { id: failed.id } });
  });

  test('sim_context_tokens: a long input is refused, its first half passes (truncate_half)', async () => {
    const long = promptOfTokens(1000, 'long');
    const metadata = { sim_context_tokens: '600' };
    const { status, json } = await sim.api('/responses', { body: { model: 'gpt-5', input: long, background: true, metadata } });
    expect(status).toBe(400);
    expect(json.error).toMatchObject(TOO_LONG);
    const half = await background('gpt-5', metadata, long.slice(0, long.length / 2));
    expect(half.status).toBe('completed');
    expect(half.usage.input_tokens).toBeLessThanOrEqual(600);
  });

  test('sim_context_tokens counts the previous turn too', async () => {
    const first = await background('gpt-5', {}, promptOfTokens(400, 'a'));
    const { status } = await sim.api('/responses', {
      body: { model: 'gpt-5', input: promptOfTokens(300, 'b'), previous_response_id: first.id, metadata: { sim_context_tokens: '600' } },
    });
    expect(status).toBe(400);
  });

  test('the request log shows a refused create as a 400 with its job; a refusal counts as a create', async () => {
    const metadata = { sim_context_tokens: '5', longhaul_job_id: 'job_toolong00001' };
    await sim.api('/responses', { body: { model: 'gpt-5', input: promptOfTokens(20, 'x'), background: true, metadata } });
    await sim.api('/responses', { body: { model: 'gpt-5', input: 'x', background: true, metadata: { sim_outcome: 'refusal', longhaul_job_id: 'job_refused00001' } } });
    const log = await sim.sim('/request-log');
    expect(log.data.map((e: any) => [e.status, e.job_id])).toEqual([
      [400, 'job_toolong00001'],
      [200, 'job_refused00001'],
    ]);
    const stats = await sim.sim('/stats');
    expect(stats.creates).toBe(1);
  });

  test('a streamed create that is too long gets the 400 before any event', async () => {
    const error = await sim.client.responses
      .create({ model: 'gpt-5', input: promptOfTokens(50, 's'), stream: true, metadata: { sim_context_tokens: '10' } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
  });
});
