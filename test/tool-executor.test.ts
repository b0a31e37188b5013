/**
 * Tool executors (issue 15), through plain HTTP against the simulator's deterministic tool
 * calling and an executor on loopback: each turn's calls are POSTed together, signed as a Standard
 * Webhook with the tenant's callback secret and a webhook-id stable per job and turn; its outputs
 * make the next turn; a failing executor is retried with backoff, then the job fails with
 * tool_executor_failed (the message naming the problem, never the body); a cancel while the call
 * is in flight wins (the late answer is dropped, no next turn is created); an executor URL outside
 * the allowed addresses is refused at submission.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, isTerminalJob, startStack } from './harness.ts';

interface Call {
  headers: http.IncomingHttpHeaders;
  body: any;
  raw: string;
  /** The signature checked with the tenant's callback secret. */
  verified: boolean;
}

type Reply = { status: number; body: string; delayMs?: number };

interface Executor {
  url: string;
  calls: Call[];
  /** The answer to a call; default: each call's output is `out-<call_id>`. */
  reply: (call: Call, calls: Call[]) => Reply;
  close(): Promise<void>;
}

const outputsFor = (call: Call): Reply => ({
  status: 200,
  body: JSON.stringify({ tool_outputs: call.body.tool_calls.map((c: any) => ({ call_id: c.call_id, output: `out-${c.call_id}` })) }),
});

async function startExecutor(secret: () => string): Promise<Executor> {
  const executor: Executor = { url: '', calls: [], reply: outputsFor, close: async () => {} };
  const open = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let verified = false;
      try {
        new Webhook(secret()).verify(raw, req.headers as Record<string, string>);
        verified = true;
      } catch {}
      const call: Call = { headers: req.headers, body: JSON.parse(raw), raw, verified };
      executor.calls.push(call);
      const reply = executor.reply(
        call,
        executor.calls.filter((c) => c.body.job_id === call.body.job_id),
      );
      open.add(res);
      setTimeout(() => {
        open.delete(res);
        if (!res.destroyed) res.writeHead(reply.status, { 'content-type': 'application/json' }).end(reply.body);
      }, reply.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  executor.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tools`;
  executor.close = () =>
    new Promise<void>((resolve) => {
      for (const res of open) res.destroy();
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return executor;
}

let stack: Stack;
let executor: Executor;
let secret = '';

beforeAll(async () => {
  // Few, quick retries: the harness's retry schedule is 50 ms growing to 500 ms.
  stack = await startStack({ worker: { toolExecutor: { attempts: 3, timeoutMs: 5_000 } } });
  secret = (await stack.api('GET', '/v1/callback-secret')).body.secret;
  executor = await startExecutor(() => secret);
});
afterAll(async () => {
  await stack?.stop();
  await executor?.close();
});

const weather = { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: false };
const stock = { type: 'function', name: 'get_stock', parameters: { type: 'object', properties: { ticker: { type: 'string' } }, required: ['ticker'] }, strict: false };

const executorJob = (metadata: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  model: 'o3',
  input: 'Plan my trip to Oslo.',
  tools: [weather],
  tool_executor: { url: executor.url },
  metadata: { sim_duration_ms: '30', ...metadata },
  ...extra,
});

async function submit(body: Record<string, unknown>): Promise<string> {
  const res = await stack.api('POST', '/v1/jobs', body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id;
}

const callsOf = (id: string) => executor.calls.filter((c) => c.body.job_id === id);
const createsOf = async (id: string): Promise<number> => ((await stack.simApi('GET', '/sim/stats')).creates_by_job[id] ?? 0) as number;

describe('tool executor', () => {
  it('runs a 3-turn loop at the executor: signed calls, a webhook-id per turn, the outputs in the answer', async () => {
    const id = await submit(executorJob({ sim_tool_turns: '3' }));
    const done = await stack.waitForJob(id, isTerminalJob);
    expect(done).toMatchObject({ status: 'completed', turn: 4, required_action: null, tool_executor: { url: executor.url } });

    const calls = callsOf(id);
    expect(calls.map((c) => c.body.turn)).toEqual([1, 2, 3]);
    for (const [i, call] of calls.entries()) {
      expect(call.verified).toBe(true);
      expect(call.headers['webhook-id']).toBe(`${id}_turn_${i + 1}`);
      expect(call.headers['content-type']).toBe('application/json');
      expect(call.body).toEqual({
        type: 'tool_calls',
        job_id: id,
        turn: i + 1,
        tool_calls: [{ call_id: expect.stringMatching(/^call_/), name: 'get_weather', arguments: expect.any(String), type: 'function' }],
      });
    }
    // The last turn's answer quotes the outputs it received.
    const last = calls[2]!.body.tool_calls[0].call_id;
    expect(done.output_text).toContain(`${last}=out-${last}`);
    expect(await createsOf(id)).toBe(4);
    // Each answer is recorded as the executor's.
    const events = (await stack.api('GET', `/v1/jobs/${id}/events`)).body.data;
    const answered = events.filter((e: any) => e.from === 'requires_action' && e.to === 'pending');
    expect(answered.map((e: any) => e.source)).toEqual(['tool_executor', 'tool_executor', 'tool_executor']);
  });

  it('sends parallel calls of a turn together, in one POST', async () => {
    const id = await submit(executorJob({ sim_tool_turns: '1', sim_parallel_calls: '2' }, { tools: [weather, stock] }));
    const done = await stack.waitForJob(id, isTerminalJob);
    expect(done.status).toBe('completed');
    const calls = callsOf(id);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.body.tool_calls.map((c: any) => c.name)).toEqual(['get_weather', 'get_stock']);
    for (const c of calls[0]!.body.tool_calls) expect(done.output_text).toContain(`out-${c.call_id}`);
  });

  it('retries an executor that answers 500 twice, with the same webhook-id, then goes on', async () => {
    const id = await submit(executorJob({ sim_tool_turns: '1' }, { metadata: { sim_duration_ms: '30', flaky: 'yes' } }));
    executor.reply = (call, mine) => (call.body.job_id === id && mine.length <= 2 ? { status: 500, body: '{"error":"busy"}' } : outputsFor(call));
    try {
      const done = await stack.waitForJob(id, isTerminalJob);
      expect(done.status).toBe('completed');
      const calls = callsOf(id);
      expect(calls).toHaveLength(3);
      expect(new Set(calls.map((c) => c.headers['webhook-id']))).toEqual(new Set([`${id}_turn_1`]));
      expect(new Set(calls.map((c) => c.body.tool_calls[0].call_id)).size).toBe(1);
      // Each attempt is signed afresh (its own timestamp), always verifiable.
      expect(calls.every((c) => c.verified)).toBe(true);
    } finally {
      executor.reply = outputsFor;
    }
  });

  it('fails the job with tool_executor_failed after the last attempt at an executor that answers malformed JSON', async () => {
    const id = await submit(executorJob({ sim_tool_turns: '1' }, { metadata: { sim_duration_ms: '30', broken: 'yes' } }));
    executor.reply = (call) => (call.body.job_id === id ? { status: 200, body: '{"tool_outputs": SECRET-BODY' } : outputsFor(call));
    try {
      const failed = await stack.waitForJob(id, isTerminalJob);
      expect(failed.status).toBe('failed');
      expect(failed.error.code).toBe('tool_executor_failed');
      expect(failed.error.message).toContain('not JSON');
      expect(failed.error.message).toContain('3 attempts');
      expect(failed.error.message).not.toContain('SECRET-BODY');
      expect(callsOf(id)).toHaveLength(3);
      expect(await createsOf(id)).toBe(1);
    } finally {
      executor.reply = outputsFor;
    }
    // Outputs that do not answer the calls are named by call id.
    const wrong = await submit(executorJob({ sim_tool_turns: '1' }, { metadata: { sim_duration_ms: '30', wrong: 'yes' } }));
    executor.reply = (call) => (call.body.job_id === wrong ? { status: 200, body: JSON.stringify({ tool_outputs: [{ call_id: 'call_nope', output: 'x' }] }) } : outputsFor(call));
    try {
      const failed = await stack.waitForJob(wrong, isTerminalJob);
      expect(failed).toMatchObject({ status: 'failed', error: { code: 'tool_executor_failed' } });
      expect(failed.error.message).toContain('call_nope');
    } finally {
      executor.reply = outputsFor;
    }
  });

  it('cancels a job while its executor call is in flight: the late answer is dropped, no next turn is created', async () => {
    const id = await submit(executorJob({ sim_tool_turns: '1' }, { metadata: { sim_duration_ms: '30', slow: 'yes' } }));
    executor.reply = (call) => (call.body.job_id === id ? { ...outputsFor(call), delayMs: 1_500 } : outputsFor(call));
    try {
      await expect.poll(() => callsOf(id).length, { timeout: 10_000 }).toBe(1);
      const cancelled = await stack.api('POST', `/v1/jobs/${id}/cancel`);
      expect(cancelled.body.status).toBe('cancelled');
      // The executor answers 1.5 s after the call; wait past it.
      await new Promise((r) => setTimeout(r, 2_500));
      const job = (await stack.api('GET', `/v1/jobs/${id}`)).body;
      expect(job).toMatchObject({ status: 'cancelled', turn: 1 });
      expect(await createsOf(id)).toBe(1);
      expect(callsOf(id)).toHaveLength(1);
    } finally {
      executor.reply = outputsFor;
    }
  });

  it("takes the tenant's own answer to a turn its executor is working on: the first answer wins", async () => {
    const id = await submit(executorJob({ sim_tool_turns: '1' }, { metadata: { sim_duration_ms: '30', race: 'yes' } }));
    executor.reply = (call) => (call.body.job_id === id ? { ...outputsFor(call), delayMs: 1_500 } : outputsFor(call));
    try {
      await expect.poll(() => callsOf(id).length, { timeout: 10_000 }).toBe(1);
      const [call] = callsOf(id)[0]!.body.tool_calls;
      const answered = await stack.api('POST', `/v1/jobs/${id}/tool_outputs`, { tool_outputs: [{ call_id: call.call_id, output: 'from the tenant' }] });
      expect(answered.status, JSON.stringify(answered.body)).toBe(200);
      const done = await stack.waitForJob(id, isTerminalJob);
      expect(done.status).toBe('completed');
      expect(done.output_text).toContain('from the tenant');
      await new Promise((r) => setTimeout(r, 1_500));
      expect(await createsOf(id)).toBe(2);
    } finally {
      executor.reply = outputsFor;
    }
  });

  it("resumes the loop when the executor work item was lost (a crash between the turn's end and its dispatch): the sweeper sends it", async () => {
    // A turn that ended with nobody dispatching its executor work: the job waits with its calls unanswered.
    const { tool_executor: _none, ...withoutExecutor } = executorJob({ sim_tool_turns: '1' }, { metadata: { sim_duration_ms: '30', lost: 'yes' } });
    const id = await submit(withoutExecutor);
    await stack.waitForJob(id, (j) => j.status === 'requires_action');
    await stack.db.pool.query("update jobs set tool_executor_url = $2, next_check_at = now() - interval '1 minute' where id = $1", [id, executor.url]);
    const done = await stack.waitForJob(id, isTerminalJob, 15_000);
    expect(done.status).toBe('completed');
    expect(callsOf(id).map((c) => c.headers['webhook-id'])).toEqual([`${id}_turn_1`]);
  });

  it('refuses an executor URL outside the allowed addresses, a malformed one, and one without tools the client runs', async () => {
    const blocked = await stack.api('POST', '/v1/jobs', executorJob({}, { tool_executor: { url: 'http://10.1.2.3/tools' } }));
    expect(blocked.status).toBe(400);
    expect(blocked.body.error).toMatchObject({ code: 'url_not_allowed', param: 'tool_executor.url' });
    const malformed = await stack.api('POST', '/v1/jobs', executorJob({}, { tool_executor: { url: 'ftp://127.0.0.1/tools' } }));
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.param).toBe('tool_executor.url');
    const extra = await stack.api('POST', '/v1/jobs', executorJob({}, { tool_executor: { url: executor.url, secret: 'x' } }));
    expect(extra.status).toBe(400);
    const noTools = await stack.api('POST', '/v1/jobs', executorJob({}, { tools: undefined }));
    expect(noTools.status).toBe(400);
    expect(noTools.body.error).toMatchObject({ param: 'tool_executor' });
    // A job without an executor shows none.
    const plain = await submit({ model: 'o3', input: 'No tools.', metadata: { sim_duration_ms: '20' } });
    expect((await stack.api('GET', `/v1/jobs/${plain}`)).body.tool_executor).toBeNull();
  });
});

describe('tool executor through the OpenAI-compatible /v1/responses (opt-in)', () => {
  it('runs the loop for an SDK client that gives a tool_executor (body field or header); without one, the calls are the output', async () => {
    const client = new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.apiUrl}/v1`, maxRetries: 0 });
    const params = { model: 'o3', input: 'Plan my trip to Oslo.', tools: [weather] as OpenAI.Responses.Tool[], metadata: { sim_duration_ms: '30', sim_tool_turns: '2' } };
    // The SDK passes unknown params through as body fields; it waits for the whole loop.
    const looped = await client.responses.create({ ...params, tool_executor: { url: executor.url }, max_turns: 5 } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    expect(looped.status).toBe('completed');
    expect(looped.output.some((item) => item.type === 'function_call')).toBe(false);
    const jobId = looped.metadata?.longhaul_job_id as string;
    expect(callsOf(jobId).map((c) => c.body.turn)).toEqual([1, 2]);
    expect(looped.output_text).toContain(`out-${callsOf(jobId)[1]!.body.tool_calls[0].call_id}`);
    const job = (await stack.api('GET', `/v1/jobs/${jobId}`)).body;
    expect(job).toMatchObject({ status: 'completed', turn: 3, max_turns: 5, tool_executor: { url: executor.url } });
    expect(job.turns.map((t: any) => t.answered_by)).toEqual(['tool_executor', 'tool_executor', null]);

    // As a header, in background mode: retrieved until done.
    const started = await client.responses.create({ ...params, background: true }, { headers: { 'Longhaul-Tool-Executor': executor.url } });
    let current = started;
    for (let i = 0; i < 100 && (current.status === 'queued' || current.status === 'in_progress'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      current = await client.responses.retrieve(started.id);
    }
    expect(current.status).toBe('completed');
    expect(callsOf(current.metadata?.longhaul_job_id as string)).toHaveLength(2);

    // A plain SDK client runs its own loop: the first turn's call is the response's output.
    const plain = await client.responses.create(params);
    expect(plain.status).toBe('completed');
    expect(plain.output.find((item) => item.type === 'function_call')).toMatchObject({ name: 'get_weather' });

    // max_turns alone, a stream, or a blocked URL: named 400s.
    await expect(client.responses.create({ ...params, max_turns: 3 } as OpenAI.Responses.ResponseCreateParamsNonStreaming)).rejects.toMatchObject({
      status: 400,
      code: 'tool_executor_required',
    });
    await expect(
      client.responses.create({ ...params, stream: true, tool_executor: { url: executor.url } } as OpenAI.Responses.ResponseCreateParamsStreaming),
    ).rejects.toMatchObject({
      status: 400,
      param: 'stream',
    });
    await expect(client.responses.create(params, { headers: { 'Longhaul-Tool-Executor': 'http://10.1.2.3/tools' } })).rejects.toMatchObject({
      status: 400,
      param: 'tool_executor.url',
    });
  });
});
