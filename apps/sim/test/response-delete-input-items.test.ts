import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { specSchemaErrors, startSim, type TestSim } from './helpers.ts';

let sim: TestSim;

beforeEach(async () => {
  sim = await startSim({ time_scale: 0.01, default_duration_ms: 200 });
});
afterEach(async () => {
  await sim.close();
});

/** Expects OpenAI's 404 for an unknown response, in the spec's Error shape. */
function expectResponseNotFound(res: { status: number; json: any }, id: string): void {
  expect(res.status).toBe(404);
  expect(specSchemaErrors('Error', res.json.error)).toBeNull();
  expect(res.json.error).toEqual({ type: 'invalid_request_error', message: `Response with id '${id}' not found.`, param: null, code: null });
}

/** A listed page must be a ResponseItemList whose every item is exactly one ItemResource variant. */
function expectItemList(json: unknown): void {
  expect(specSchemaErrors('ResponseItemList', json)).toBeNull();
}

describe('DELETE /v1/responses/{id}', () => {
  test('answers { id, object: response.deleted, deleted: true }, through the SDK too (typed void there)', async () => {
    const a = await sim.client.responses.create({ model: 'gpt-5', input: 'one' });
    const b = await sim.client.responses.create({ model: 'gpt-5', input: 'two' });
    const raw = await sim.api(`/responses/${a.id}`, { method: 'DELETE' });
    expect(raw.status).toBe(200);
    expect(raw.json).toEqual({ id: a.id, object: 'response.deleted', deleted: true });
    await expect(sim.client.responses.delete(b.id)).resolves.toEqual({ id: b.id, object: 'response.deleted', deleted: true });
  });

  test('a deleted response is 404 on retrieve, cancel, stream, input_items, delete and as previous_response_id', async () => {
    const streamed = await sim.api('/responses', { body: { model: 'gpt-5', input: 'x', background: true, metadata: { sim_duration_ms: '100000' } } });
    const id = streamed.json.id as string;
    expect((await sim.api(`/responses/${id}`)).status).toBe(200);
    await sim.client.responses.delete(id);

    expectResponseNotFound(await sim.api(`/responses/${id}`), id);
    expectResponseNotFound(await sim.api(`/responses/${id}/cancel`, { method: 'POST', body: {} }), id);
    expectResponseNotFound(await sim.api(`/responses/${id}?stream=true`), id);
    expectResponseNotFound(await sim.api(`/responses/${id}/input_items`), id);
    expectResponseNotFound(await sim.api(`/responses/${id}`, { method: 'DELETE' }), id);
    await expect(sim.client.responses.retrieve(id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(sim.client.responses.delete(id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);

    const follow = await sim.client.responses.create({ model: 'gpt-5', input: 'y', previous_response_id: id }).catch((e: unknown) => e);
    expect(follow).toBeInstanceOf(OpenAI.NotFoundError);
    expect((follow as InstanceType<typeof OpenAI.NotFoundError>).error).toMatchObject({ code: 'previous_response_not_found' });
  });

  test('a streamable background response can no longer be streamed once deleted', async () => {
    const stream = await sim.client.responses.create({ model: 'gpt-5', input: 'x', background: true, stream: true, metadata: { sim_duration_ms: '100000' } });
    let id = '';
    for await (const event of stream) {
      if (event.type === 'response.created') {
        id = event.response.id;
        break;
      }
    }
    stream.controller.abort();
    const resumed = await sim.client.responses.retrieve(id, { stream: true }).catch((e: unknown) => e);
    expect(resumed).not.toBeInstanceOf(Error);
    (resumed as { controller: AbortController }).controller.abort();

    await sim.client.responses.delete(id);
    expect(await sim.client.responses.retrieve(id, { stream: true }).catch((e: unknown) => e)).toBeInstanceOf(OpenAI.NotFoundError);
  });

  test('an unknown or unstored id is a 404 in OpenAI error shape', async () => {
    expectResponseNotFound(await sim.api('/responses/resp_nope', { method: 'DELETE' }), 'resp_nope');
    const unstored = await sim.client.responses.create({ model: 'gpt-5', input: 'x', store: false });
    expectResponseNotFound(await sim.api(`/responses/${unstored.id}`, { method: 'DELETE' }), unstored.id);
    expectResponseNotFound(await sim.api(`/responses/${unstored.id}/input_items`), unstored.id);
  });
});

describe('GET /v1/responses/{id}/input_items', () => {
  test('a string input is one completed user message with an input_text part', async () => {
    const created = await sim.client.responses.create({ model: 'gpt-5', input: 'Tell me about otters.' });
    const raw = await sim.api(`/responses/${created.id}/input_items`);
    expect(raw.status).toBe(200);
    expectItemList(raw.json);
    const [item] = raw.json.data;
    expect(item.id).toMatch(/^msg_[0-9a-f]{48}$/);
    expect(raw.json).toEqual({
      object: 'list',
      data: [{ type: 'message', id: item.id, status: 'completed', role: 'user', content: [{ type: 'input_text', text: 'Tell me about otters.' }] }],
      first_id: item.id,
      last_id: item.id,
      has_more: false,
    });

    const page = await sim.client.responses.inputItems.list(created.id, { order: 'asc' });
    expect(page.data).toEqual(raw.json.data);
    expect(page.has_more).toBe(false);
  });

  test('item lists: easy messages become message items, other items keep their type; ids are stable', async () => {
    const input: OpenAI.Responses.ResponseInputItem[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'developer', content: [{ type: 'input_text', text: 'Answer in French.' }] },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Weather?' }] },
      { role: 'assistant', content: 'Let me check.' },
      { type: 'function_call', call_id: 'call_1', name: 'weather', arguments: '{"city":"Oslo"}' },
      { type: 'function_call_output', call_id: 'call_1', output: '{"c":3}' },
    ];
    const created = await sim.client.responses.create({ model: 'gpt-5', input });
    const raw = await sim.api(`/responses/${created.id}/input_items?order=asc`);
    expectItemList(raw.json);
    const data = raw.json.data as any[];
    expect(data.map((item) => [item.type, item.role ?? null])).toEqual([
      ['message', 'system'],
      ['message', 'developer'],
      ['message', 'user'],
      ['message', 'assistant'],
      ['function_call', null],
      ['function_call_output', null],
    ]);
    for (const item of data.slice(0, 4)) expect(item).toMatchObject({ id: expect.stringMatching(/^msg_/), status: 'completed' });
    expect(data[0].content).toEqual([{ type: 'input_text', text: 'Be brief.' }]);
    expect(data[3].content).toEqual([{ type: 'output_text', text: 'Let me check.', annotations: [], logprobs: [] }]);
    expect(data[4]).toMatchObject({ call_id: 'call_1', name: 'weather', arguments: '{"city":"Oslo"}', status: 'completed', id: expect.any(String) });
    expect(data[5]).toMatchObject({ call_id: 'call_1', output: '{"c":3}', status: 'completed', id: expect.any(String) });

    // Newest first by default, with the same ids.
    const desc = await sim.api(`/responses/${created.id}/input_items`);
    expect(desc.json.data).toEqual([...data].reverse());
    expect(desc.json).toMatchObject({ first_id: data[5].id, last_id: data[0].id, has_more: false });
  });

  test('limit and after page through the items; the SDK follows the pages', async () => {
    const input = Array.from({ length: 5 }, (_, i) => ({ role: 'user' as const, content: `m${i}` }));
    const created = await sim.client.responses.create({ model: 'gpt-5', input });
    const first = await sim.api(`/responses/${created.id}/input_items?order=asc&limit=2`);
    expectItemList(first.json);
    expect(first.json.data.map((item: any) => item.content[0].text)).toEqual(['m0', 'm1']);
    expect(first.json).toMatchObject({ first_id: first.json.data[0].id, last_id: first.json.data[1].id, has_more: true });
    const second = await sim.api(`/responses/${created.id}/input_items?order=asc&limit=2&after=${first.json.last_id}`);
    expect(second.json.data.map((item: any) => item.content[0].text)).toEqual(['m2', 'm3']);
    expect(second.json.has_more).toBe(true);
    const last = await sim.api(`/responses/${created.id}/input_items?order=asc&limit=2&after=${second.json.last_id}`);
    expect(last.json.data.map((item: any) => item.content[0].text)).toEqual(['m4']);
    expect(last.json.has_more).toBe(false);

    const texts: string[] = [];
    for await (const item of sim.client.responses.inputItems.list(created.id, { limit: 2 })) {
      texts.push(((item as OpenAI.Responses.ResponseInputMessageItem).content[0] as OpenAI.Responses.ResponseInputText).text);
    }
    expect(texts).toEqual(['m4', 'm3', 'm2', 'm1', 'm0']);
  });

  test('only the response’s own input is listed, not the previous response’s', async () => {
    const first = await sim.client.responses.create({ model: 'gpt-5', input: 'first turn' });
    const second = await sim.client.responses.create({ model: 'gpt-5', input: 'second turn', previous_response_id: first.id });
    const page = await sim.client.responses.inputItems.list(second.id, { order: 'asc' });
    expect(page.data.map((item) => (item as OpenAI.Responses.ResponseInputMessageItem).content)).toEqual([[{ type: 'input_text', text: 'second turn' }]]);
  });

  test('input images are listed without their URL unless include=message.input_image.image_url', async () => {
    const url = 'https://example.com/otter.png';
    const created = await sim.client.responses.create({
      model: 'gpt-5',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'What is this?' },
            { type: 'input_image', image_url: url, detail: 'low' },
          ],
        },
      ],
    });
    const plain = await sim.api(`/responses/${created.id}/input_items`);
    expectItemList(plain.json);
    expect(plain.json.data[0].content[1]).toEqual({ type: 'input_image', detail: 'low', file_id: null, image_url: null });

    const withUrls = await sim.client.responses.inputItems.list(created.id, { include: ['message.input_image.image_url'] });
    expect((withUrls.data[0] as OpenAI.Responses.ResponseInputMessageItem).content[1]).toEqual({ type: 'input_image', detail: 'low', file_id: null, image_url: url });
    const repeated = await sim.api(`/responses/${created.id}/input_items?include=message.input_image.image_url`);
    expect(repeated.json.data).toEqual(withUrls.data);
    expectItemList(repeated.json);
  });

  test('invalid limit, order, after or include is a 400 naming the parameter', async () => {
    const created = await sim.client.responses.create({ model: 'gpt-5', input: 'x' });
    const cases: [string, string][] = [
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=ten', 'limit'],
      ['order=newest', 'order'],
      ['after=msg_unknown', 'after'],
      ['include=message.nope', 'include'],
    ];
    for (const [query, param] of cases) {
      const res = await sim.api(`/responses/${created.id}/input_items?${query}`);
      expect(res.status, query).toBe(400);
      expect(specSchemaErrors('Error', res.json.error)).toBeNull();
      expect(res.json.error, query).toMatchObject({ type: 'invalid_request_error', param, code: 'invalid_value' });
    }
    expect((await sim.api(`/responses/${created.id}/input_items?limit=100`)).status).toBe(200);
    const error = await sim.client.responses.inputItems.list(created.id, { limit: 101 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
  });

  test('POST /sim/reset forgets the input items with the responses', async () => {
    const created = await sim.client.responses.create({ model: 'gpt-5', input: 'x' });
    await sim.sim('/reset', {});
    expectResponseNotFound(await sim.api(`/responses/${created.id}/input_items`), created.id);
  });
});
