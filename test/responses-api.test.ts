/**
 * The OpenAI-compatible Responses API, driven only by the official `openai` SDK pointed at
 * Longhaul (`baseURL: <api>/v1`, a tenant key): the guide's patterns run unchanged, every object
 * returned validates against OpenAI's OpenAPI document, and each response is a Longhaul job.
 */
import OpenAI from 'openai';
import { specSchemaErrors, streamEventErrors } from '@longhaul/specs/validation';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from './harness.ts';

let stack: Stack;
let client: OpenAI;
beforeAll(async () => {
  stack = await startStack();
  client = new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.apiUrl}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await stack?.stop();
});

/** Simulator directives ride in metadata: how long the response takes, how it ends. */
const sim = (durationMs: number, outcome?: string) => ({ sim_duration_ms: String(durationMs), ...(outcome ? { sim_outcome: outcome } : {}) });

function expectValidResponse(response: unknown) {
  const { output_text: _sdkOnly, ...wire } = response as Record<string, unknown>;
  expect(specSchemaErrors('Response', wire)).toBeNull();
}

describe('POST /v1/responses', () => {
  it('answers a synchronous create with the finished response, a Longhaul job', async () => {
    const response = await client.responses.create({
      model: 'gpt-4o-mini',
      input: [
        { role: 'user', content: 'knock knock.' },
        { role: 'assistant', content: "Who's there?" },
        { role: 'user', content: 'Orange.' },
      ],
      metadata: sim(50),
    });
    expect(response.status).toBe('completed');
    expect(response.id).toMatch(/^resp_lh_/);
    expect(response.output_text.length).toBeGreaterThan(0);
    expect(response.background).toBe(false);
    expectValidResponse(response);
    const jobId = response.metadata?.longhaul_job_id;
    const job = await stack.api('GET', `/v1/jobs/${jobId}`);
    expect(job.body.status).toBe('completed');
    expect(job.body.output_text).toBe(response.output_text);
  });

  it('creates a background response at once, queued, and polling it finds it finished', async () => {
    let resp = await client.responses.create({ model: 'o3', input: 'Write a very long novel about otters in space.', background: true, metadata: sim(300) });
    expect(resp.status).toBe('queued');
    expect(resp.background).toBe(true);
    expectValidResponse(resp);
    while (resp.status === 'queued' || resp.status === 'in_progress') {
      await new Promise((resolve) => setTimeout(resolve, 50));
      resp = await client.responses.retrieve(resp.id);
      expectValidResponse(resp);
    }
    expect(resp.status).toBe('completed');
    expect(resp.output_text.length).toBeGreaterThan(0);
    expect(resp.usage?.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
  });

  it('chains responses with previous_response_id', async () => {
    const first = await client.responses.create({ model: 'gpt-4o-mini', input: 'tell me a joke', store: true, metadata: sim(20) });
    const second = await client.responses.create({
      model: 'gpt-4o-mini',
      previous_response_id: first.id,
      input: [{ role: 'user', content: 'explain why this is funny.' }],
      store: true,
      metadata: sim(20),
    });
    expect(second.status).toBe('completed');
    expect(second.previous_response_id).toBe(first.id);
    expectValidResponse(second);
    const job = await stack.api('GET', `/v1/jobs/${second.metadata?.longhaul_job_id}`);
    expect(job.body.previous_job_id).toBe(first.metadata?.longhaul_job_id);
  });

  it('streams a background response with sequence numbers, and a resumed stream continues after the cursor', async () => {
    const stream = await client.responses.create({ model: 'o3', input: 'Write a very long novel about otters in space.', background: true, stream: true, metadata: sim(200) });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events[0]?.type).toBe('response.created');
    expect(events.at(-1)?.type).toBe('response.completed');
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    for (const event of events) expect(streamEventErrors(event as unknown as Record<string, unknown>)).toBeNull();
    const id = (events[0] as OpenAI.Responses.ResponseCreatedEvent).response.id;
    expect(id).toMatch(/^resp_lh_/);

    const cursor = events[2]!.sequence_number;
    const resumed = client.responses.stream({ response_id: id, starting_after: cursor });
    const after: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of resumed) after.push(event);
    expect(after.map((e) => e.sequence_number)).toEqual(events.slice(cursor + 1).map((e) => e.sequence_number));
    const final = await resumed.finalResponse();
    expect(final.id).toBe(id);
  });

  it('cancels a background response, and cancelling again answers the same', async () => {
    const resp = await client.responses.create({ model: 'o3', input: 'Think for a long time.', background: true, metadata: sim(600_000) });
    const cancelled = await client.responses.cancel(resp.id);
    expect(cancelled.status).toBe('cancelled');
    expectValidResponse(cancelled);
    const again = await client.responses.cancel(resp.id);
    expect(again.status).toBe('cancelled');
  });

  it("lists a response's input items, before and after the provider has it", async () => {
    const done = await client.responses.create({
      model: 'o3',
      input: [
        { role: 'developer', content: 'Be brief.' },
        { role: 'user', content: 'Plan a bridge.' },
      ],
      metadata: sim(20),
    });
    const items = await client.responses.inputItems.list(done.id, { order: 'asc' });
    const raw = await stack.api('GET', `/v1/responses/${done.id}/input_items?order=asc`);
    expect(specSchemaErrors('ResponseItemList', raw.body)).toBeNull();
    expect(items.data.map((item) => (item as { role?: string }).role)).toEqual(['developer', 'user']);
    // A job still waiting for admission has no provider response yet: its stored request answers.
    const stack2 = await startStack({ startWorker: false });
    try {
      const waiting = new OpenAI({ apiKey: stack2.apiKey, baseURL: `${stack2.apiUrl}/v1`, maxRetries: 0 });
      const queued = await waiting.responses.create({ model: 'o3', input: 'Plan a bridge.', background: true, metadata: sim(20) });
      const page = await waiting.responses.inputItems.list(queued.id);
      expect(page.data).toHaveLength(1);
      expect(page.data[0]).toMatchObject({ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Plan a bridge.' }] });
      const rawQueued = await stack2.api('GET', `/v1/responses/${queued.id}/input_items`);
      expect(specSchemaErrors('ResponseItemList', rawQueued.body)).toBeNull();
    } finally {
      await stack2.stop();
    }
  });

  it('deletes a finished response: gone here and at the provider, its job kept without its content', async () => {
    const done = await client.responses.create({ model: 'o3', input: 'A secret plan.', metadata: sim(20) });
    const jobId = done.metadata?.longhaul_job_id;
    const before = await stack.api('GET', `/v1/jobs/${jobId}`);
    const deleted = await stack.api('DELETE', `/v1/responses/${done.id}`);
    expect(deleted.body).toEqual({ id: done.id, object: 'response.deleted', deleted: true });
    await expect(client.responses.retrieve(done.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.responses.delete(done.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const atProvider = await fetch(`${stack.simUrl}/v1/responses/${before.body.response_id}`, { headers: { authorization: 'Bearer sk-test' } });
    expect(atProvider.status).toBe(404);
    const job = await stack.api('GET', `/v1/jobs/${jobId}`);
    expect(job.body).toMatchObject({ status: 'completed', output_text: null, output: null, metadata: {}, usage: before.body.usage });
    expect(job.body.erased_at).toEqual(expect.any(Number));
    expect(JSON.stringify(job.body)).not.toContain('A secret plan');
    // A running response must be cancelled (or finish) first.
    const running = await client.responses.create({ model: 'o3', input: 'x', background: true, metadata: sim(600_000) });
    await expect(client.responses.delete(running.id)).rejects.toBeInstanceOf(OpenAI.ConflictError);
  });

  it('reports errors as the SDK expects them', async () => {
    await expect(client.responses.retrieve('resp_lh_doesnotexist00000000')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const bad = await client.responses.create({ model: 'o3', input: 'x', temperature: 'hot' as never }).catch((err: unknown) => err);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('temperature');
    const wrongKey = new OpenAI({ apiKey: 'lh_sk_wrong', baseURL: `${stack.apiUrl}/v1`, maxRetries: 0 });
    await expect(wrongKey.responses.retrieve('resp_lh_doesnotexist00000000')).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });
});
