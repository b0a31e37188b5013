import OpenAI from 'openai';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { pollUntilTerminal, responseSchemaErrors, sleep, startSim, type TestSim } from './helpers.ts';
import { refedTimeouts } from './timers.ts';

let sim: TestSim;
let baselineTimers: number;

beforeAll(() => {
  baselineTimers = refedTimeouts();
  // Compile the (large) spec validator up front so polling loops see every state.
  responseSchemaErrors({});
});
beforeEach(async () => {
  sim = await startSim({ time_scale: 1, default_duration_ms: 200 });
});
afterEach(async () => {
  await sim.close();
  expect(refedTimeouts()).toBeLessThanOrEqual(baselineTimers);
});

function expectValid(body: unknown): void {
  expect(responseSchemaErrors(body)).toBeNull();
}

describe('background lifecycle', () => {
  test('create answers queued, then in_progress, then completed; every state validates', async () => {
    const created = await sim.api('/responses', {
      body: {
        model: 'gpt-5',
        input: [{ role: 'user', content: 'Plan a long migration.' }],
        instructions: 'Be thorough.',
        background: true,
        reasoning: { effort: 'medium', summary: 'auto' },
        metadata: { sim_duration_ms: '1000', longhaul_job_id: 'job-1' },
      },
    });
    expect(created.status).toBe(200);
    expectValid(created.json);
    expect(created.json).toMatchObject({ object: 'response', status: 'queued', background: true, output: [] });
    expect(created.json.id).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(created.headers.get('x-request-id')).toMatch(/^req_/);

    const seen = await pollUntilTerminal(sim, created.json.id, 15);
    const statuses = [...new Set(seen.map((r) => r.status))];
    expect(statuses).toEqual(expect.arrayContaining(['in_progress', 'completed']));
    expect(statuses.at(-1)).toBe('completed');

    const done = seen.at(-1);
    expect(done.completed_at).toBeGreaterThanOrEqual(done.created_at);
    expect(done.error).toBeNull();
    const [reasoning, message] = done.output;
    expect(reasoning).toMatchObject({ type: 'reasoning', id: expect.stringMatching(/^rs_/) });
    expect(reasoning.summary.length).toBeGreaterThan(0);
    expect(message).toMatchObject({ type: 'message', id: expect.stringMatching(/^msg_/), status: 'completed', role: 'assistant' });
    expect(message.content[0]).toMatchObject({ type: 'output_text', annotations: [], logprobs: [] });
    expect(done.output_text).toBe(message.content[0].text);
    expect(done.usage.output_tokens).toBe(done.usage.output_tokens_details.reasoning_tokens + Math.ceil(done.output_text.length / 4));
    expect(done.usage.total_tokens).toBe(done.usage.input_tokens + done.usage.output_tokens);
  });

  test('the official SDK creates, retrieves and sees output_text', async () => {
    const created = await sim.client.responses.create({
      model: 'o4-mini',
      input: 'Summarise the plan.',
      background: true,
      metadata: { sim_duration_ms: '50' },
    });
    expect(created.status).toBe('queued');
    let current = created;
    while (current.status === 'queued' || current.status === 'in_progress') {
      await sleep(10);
      current = await sim.client.responses.retrieve(created.id);
    }
    expect(current.status).toBe('completed');
    expect(current.output_text.length).toBeGreaterThan(0);
    expect(current.output.find((item) => item.type === 'reasoning')?.summary).toEqual([]);
  });

  test('output is deterministic for the same input', async () => {
    const body = { model: 'gpt-5', input: 'same question', metadata: { sim_duration_ms: '0' } };
    const a = await sim.client.responses.create(body);
    const b = await sim.client.responses.create(body);
    expect(a.output_text).toBe(b.output_text);
    const c = await sim.client.responses.create({ ...body, input: 'other question' });
    expect(c.output_text).not.toBe(a.output_text);
  });

  test('sim_outcome failed ends failed with a server_error and no output', async () => {
    const created = await sim.client.responses.create({
      model: 'gpt-5',
      input: 'x',
      background: true,
      metadata: { sim_duration_ms: '30', sim_outcome: 'failed' },
    });
    const done = (await pollUntilTerminal(sim, created.id)).at(-1);
    expect(done).toMatchObject({ status: 'failed', output: [], completed_at: null, incomplete_details: null });
    expect(done.error).toMatchObject({ code: 'server_error', message: expect.any(String) });
  });

  test('max_output_tokens below what the answer needs ends incomplete and truncated', async () => {
    const created = await sim.client.responses.create({
      model: 'gpt-5',
      input: 'x',
      background: true,
      reasoning: { effort: 'low' },
      max_output_tokens: 16,
      metadata: { sim_duration_ms: '30' },
    });
    const done = (await pollUntilTerminal(sim, created.id)).at(-1);
    expect(done.status).toBe('incomplete');
    expect(done.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(done.output.map((item: { type: string }) => item.type)).toEqual(['reasoning']);
    expect(done.usage.output_tokens).toBe(16);

    const roomy = await sim.client.responses.create({
      model: 'gpt-5',
      input: 'x',
      background: true,
      reasoning: { effort: 'minimal' },
      max_output_tokens: 60,
      metadata: { sim_duration_ms: '30' },
    });
    const cut = (await pollUntilTerminal(sim, roomy.id)).at(-1);
    expect(cut.status).toBe('incomplete');
    expect(cut.output[1]).toMatchObject({ type: 'message', status: 'incomplete' });
    expect(cut.usage.output_tokens).toBeLessThanOrEqual(60);

    const forced = await sim.client.responses.create({
      model: 'gpt-5',
      input: 'x',
      background: true,
      metadata: { sim_duration_ms: '30', sim_outcome: 'incomplete' },
    });
    expect((await pollUntilTerminal(sim, forced.id)).at(-1).status).toBe('incomplete');
  });

  test('time scale shrinks simulated durations (5 simulated minutes take 300 ms of the clock)', async () => {
    await sim.sim('/config', { time_scale: 0.001 });
    const started = Date.now();
    const created = await sim.client.responses.create({
      model: 'gpt-5',
      input: 'long job',
      background: true,
      metadata: { sim_duration_ms: String(5 * 60_000) },
    });
    const seen = await pollUntilTerminal(sim, created.id, 20);
    const final = seen.at(-1);
    expect(final.status).toBe('completed');
    expect(seen[0].status).not.toBe('completed');
    // Not instantaneous: the scaled run still takes its 300 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    // Scaled: the response's own timeline (whole seconds of the simulator's clock, however slowly
    // this test polled) spans at most a second, not the 300 s of an unscaled run.
    expect(final.completed_at - final.created_at).toBeLessThanOrEqual(1);
  });

  test('non-background requests complete synchronously', async () => {
    const response = await sim.api('/responses', { body: { model: 'gpt-5', input: 'quick' } });
    expect(response.status).toBe(200);
    expectValid(response.json);
    expect(response.json).toMatchObject({ status: 'completed', background: false });
  });
});

describe('cancel', () => {
  test('cancels a queued response, idempotently, and the state is sticky', async () => {
    const created = await sim.client.responses.create({
      model: 'gpt-5',
      input: 'x',
      background: true,
      metadata: { sim_duration_ms: '300' },
    });
    const cancelled = await sim.api(`/responses/${created.id}/cancel`, { method: 'POST' });
    expect(cancelled.status).toBe(200);
    expectValid(cancelled.json);
    expect(cancelled.json).toMatchObject({ id: created.id, status: 'cancelled', output: [] });

    const again = await sim.client.responses.cancel(created.id);
    expect(again.status).toBe('cancelled');
    await sleep(350);
    const later = await sim.api(`/responses/${created.id}`);
    expectValid(later.json);
    expect(later.json.status).toBe('cancelled');
  });

  test('cancels an in-progress response', async () => {
    const created = await sim.client.responses.create({
      model: 'gpt-5',
      input: 'x',
      background: true,
      metadata: { sim_duration_ms: '5000' },
    });
    let current = await sim.client.responses.retrieve(created.id);
    while (current.status === 'queued') {
      await sleep(10);
      current = await sim.client.responses.retrieve(created.id);
    }
    expect(current.status).toBe('in_progress');
    expect((await sim.client.responses.cancel(created.id)).status).toBe('cancelled');
  });

  test('cancelling a finished response is a 400; unknown is a 404; non-background is a 400', async () => {
    const created = await sim.client.responses.create({
      model: 'gpt-5',
      input: 'x',
      background: true,
      metadata: { sim_duration_ms: '10' },
    });
    await pollUntilTerminal(sim, created.id);
    const error = await sim.client.responses.cancel(created.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.APIError>).message).toContain('Cannot cancel a completed response');

    const missing = await sim.api('/responses/resp_missing/cancel', { method: 'POST' });
    expect(missing.status).toBe(404);

    const sync = await sim.client.responses.create({ model: 'gpt-5', input: 'x' });
    await expect(sim.client.responses.cancel(sync.id)).rejects.toBeInstanceOf(OpenAI.BadRequestError);

    const stats = await sim.sim('/stats');
    expect(stats.by_response[created.id]).toEqual({ retrieves: expect.any(Number), cancels: 0 });
  });
});

describe('errors', () => {
  test('background with store=false is a 400 on param store', async () => {
    const error = await sim.client.responses.create({ model: 'gpt-5', input: 'x', background: true, store: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((error as InstanceType<typeof OpenAI.APIError>).param).toBe('store');
  });

  test('unknown response is a 404 in OpenAI shape', async () => {
    const res = await sim.api('/responses/resp_nope');
    expect(res.status).toBe(404);
    expect(res.json).toEqual({
      error: { message: "Response with id 'resp_nope' not found.", type: 'invalid_request_error', param: null, code: null },
    });
    await expect(sim.client.responses.retrieve('resp_nope')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  test('missing or empty bearer token is a 401 invalid_api_key', async () => {
    for (const auth of [null, 'Bearer ', 'Basic abc']) {
      const res = await sim.api('/responses/resp_x', { auth });
      expect(res.status).toBe(401);
      expect(res.json.error.code).toBe('invalid_api_key');
    }
    const bad = new OpenAI({
      apiKey: 'sk-test',
      baseURL: `${sim.url}/v1`,
      maxRetries: 0,
      defaultHeaders: { authorization: 'Basic abc' },
    });
    await expect(bad.responses.retrieve('resp_x')).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  test('metadata limits: 16 keys, 64-char keys, 512-char values', async () => {
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']));
    const cases: [Record<string, string>, string][] = [
      [many, 'metadata'],
      [{ ['k'.repeat(65)]: 'v' }, 'metadata'],
      [{ note: 'v'.repeat(513) }, 'metadata.note'],
    ];
    for (const [metadata, param] of cases) {
      const res = await sim.api('/responses', { body: { model: 'gpt-5', input: 'x', background: true, metadata } });
      expect(res.status).toBe(400);
      expect(res.json.error).toMatchObject({ type: 'invalid_request_error', param });
    }
    const ok = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`.padEnd(64, 'k'), 'v'.repeat(512)]));
    const res = await sim.api('/responses', { body: { model: 'gpt-5', input: 'x', background: true, metadata: ok } });
    expect(res.status).toBe(200);
  });

  test('request validation: missing model, bad effort, bad directive, bad JSON', async () => {
    const missing = await sim.api('/responses', { body: { input: 'x' } });
    expect(missing.status).toBe(400);
    expect(missing.json.error).toMatchObject({ param: 'model', code: 'missing_required_parameter' });

    const effort = await sim.api('/responses', { body: { model: 'gpt-5', reasoning: { effort: 'extreme' } } });
    expect(effort.json.error.param).toBe('reasoning.effort');

    const directive = await sim.api('/responses', { body: { model: 'gpt-5', metadata: { sim_outcome: 'exploded' } } });
    expect(directive.json.error.param).toBe('metadata.sim_outcome');

    const raw = await fetch(`${sim.url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: '{"model":',
    });
    expect(raw.status).toBe(400);
    expect((await raw.json()).error.type).toBe('invalid_request_error');
  });

  test('unknown previous_response_id is a 404 previous_response_not_found', async () => {
    const res = await sim.api('/responses', { body: { model: 'gpt-5', input: 'x', previous_response_id: 'resp_gone' } });
    expect(res.status).toBe(404);
    expect(res.json.error).toEqual({
      message: "Previous response with id 'resp_gone' not found.",
      type: 'invalid_request_error',
      param: 'previous_response_id',
      code: 'previous_response_not_found',
    });
  });
});
