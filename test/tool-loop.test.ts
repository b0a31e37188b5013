/**
 * Tool-call loops without an executor (issue 15), through plain HTTP against the simulator's
 * deterministic tool calling: a job with function tools stops in `requires_action` with the
 * turn's calls; the tenant's outputs make the next turn (a new response after the previous one);
 * the loop ends at a turn without calls (the answer quotes the outputs), or at `max_turns`
 * (`incomplete`, reason `max_turns`); a waiting job is cancelled at once; wrong answers are 400s,
 * 409s and 404s naming the problem. Usage and cost are summed over the turns.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '@longhaul/db';
import { type Stack, isTerminalJob, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';

let stack: Stack;
let receiver: Receiver;
const ADMIN_TOKEN = 'admin_token_for_tool_loop_tests_0123456789';

beforeAll(async () => {
  receiver = await startReceiver();
  stack = await startStack({ api: { admin: { token: ADMIN_TOKEN } } });
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
});

const weather = {
  type: 'function',
  name: 'get_weather',
  description: 'The weather in a city.',
  parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city', 'unit'] },
  strict: false,
};
const stock = { type: 'function', name: 'get_stock', parameters: { type: 'object', properties: { ticker: { type: 'string' } }, required: ['ticker'] }, strict: false };

const loopJob = (metadata: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  model: 'o3',
  input: 'Plan my trip to Oslo.',
  instructions: 'Use the tools.',
  tools: [weather],
  metadata: { sim_duration_ms: '30', ...metadata },
  ...extra,
});

const waiting = (job: any) => job.status === 'requires_action' || isTerminalJob(job);

async function submit(body: Record<string, unknown>): Promise<string> {
  const res = await stack.api('POST', '/v1/jobs', body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id;
}

describe('tool-call loop without an executor', () => {
  it('stops in requires_action each turn, takes the outputs, and ends with the answer; usage summed over turns', async () => {
    const id = await submit(loopJob({ sim_tool_turns: '2' }, { callback_url: receiver.url }));
    const first = await stack.waitForJob(id, waiting);
    // Announced to the job's callback URL, with what to answer.
    await expect
      .poll(() => receiver.received.map((r) => JSON.parse(r.body)).find((e) => e.type === 'job.requires_action'), { timeout: 10_000 })
      .toMatchObject({ data: { id, status: 'requires_action', required_action: { type: 'submit_tool_outputs' } } });
    expect(first).toMatchObject({ status: 'requires_action', turn: 1, max_turns: 10, required_action: { type: 'submit_tool_outputs', approval_requests: [] } });
    const [call] = first.required_action.tool_calls;
    expect(call).toMatchObject({ name: 'get_weather', type: 'function', call_id: expect.stringMatching(/^call_/) });
    expect(JSON.parse(call.arguments)).toEqual({ city: expect.any(String), unit: 'celsius' });
    const turn1Usage = first.usage.total_tokens;

    // Wrong answers are named; nothing moves.
    const unknown = await stack.api('POST', `/v1/jobs/${id}/tool_outputs`, { tool_outputs: [{ call_id: 'call_nope', output: 'x' }] });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: 'unknown_call_id', param: 'tool_outputs[0].call_id' });
    expect((await stack.api('POST', `/v1/jobs/${id}/tool_outputs`, { tool_outputs: [] })).status).toBe(400);
    expect((await stack.api('POST', `/v1/jobs/${id}/tool_outputs`, { outputs: [] })).body.error).toMatchObject({ type: 'invalid_request_error' });
    const approvals = await stack.api('POST', `/v1/jobs/${id}/approvals`, { approvals: [{ approval_request_id: 'mcpr_1', approve: true }] });
    expect(approvals.status).toBe(409);
    expect(approvals.body.error.code).toBe('no_approvals_pending');

    const answered = await stack.api('POST', `/v1/jobs/${id}/tool_outputs`, { tool_outputs: [{ call_id: call.call_id, output: '12 degrees, light rain' }] });
    expect(answered.status, JSON.stringify(answered.body)).toBe(200);
    expect(answered.body).toMatchObject({ status: 'pending', turn: 2, required_action: null });
    // Answered already: the job is no longer waiting.
    expect((await stack.api('POST', `/v1/jobs/${id}/tool_outputs`, { tool_outputs: [{ call_id: call.call_id, output: 'again' }] })).body.error).toMatchObject({
      code: 'job_not_requires_action',
    });

    const second = await stack.waitForJob(id, (j) => j.turn === 2 && waiting(j));
    expect(second).toMatchObject({ status: 'requires_action', turn: 2 });
    expect(second.response_id).not.toBe(first.response_id);
    const call2 = second.required_action.tool_calls[0];
    await stack.api('POST', `/v1/jobs/${id}/tool_outputs`, { tool_outputs: [{ call_id: call2.call_id, output: 'sunny tomorrow' }] });

    const done = await stack.waitForJob(id, (j) => j.turn === 3 && isTerminalJob(j));
    expect(done).toMatchObject({ status: 'completed', turn: 3, required_action: null });
    // The answer quotes the outputs the provider received, in the last turn's input.
    expect(done.output_text).toContain(`${call2.call_id}=`);
    expect(done.output_text).toContain('sunny tomorrow');
    expect(done.usage.total_tokens).toBeGreaterThan(turn1Usage * 2);
    expect(done.cost_usd).toBeGreaterThan(first.cost_usd);
    // Three responses at the provider, each after the previous one.
    const log = (await stack.simApi('GET', '/sim/request-log')).data as Array<{ method: string; path: string; body?: any }>;
    const creates = log.filter((r) => r.method === 'POST' && r.path === '/v1/responses' && r.body?.metadata?.longhaul_job_id === id);
    if (creates.length > 0 && creates[0]!.body) {
      expect(creates).toHaveLength(3);
      expect(creates[1]!.body).toMatchObject({ previous_response_id: first.response_id, input: [{ type: 'function_call_output', call_id: call.call_id }], tools: [weather] });
    }
    // Each turn on record: its response, calls, answers (by whom), and its own usage, which add up to the job's.
    const shown = (await stack.api('GET', `/v1/jobs/${id}`)).body;
    expect(shown.turns).toHaveLength(3);
    expect(shown.turns[0]).toMatchObject({
      turn: 1,
      response_id: first.response_id,
      status: 'requires_action',
      tool_calls: [{ call_id: call.call_id, name: 'get_weather', type: 'function' }],
      tool_outputs: [{ call_id: call.call_id, output: '12 degrees, light rain' }],
      answered_by: 'api',
      usage: { total_tokens: turn1Usage },
    });
    expect(shown.turns[1]).toMatchObject({ turn: 2, response_id: second.response_id, status: 'requires_action', answered_by: 'api' });
    expect(shown.turns[2]).toMatchObject({ turn: 3, response_id: done.response_id, status: 'completed', tool_calls: [], tool_outputs: null, answered_at: null });
    expect(shown.turns.reduce((n: number, t: any) => n + t.usage.total_tokens, 0)).toBe(done.usage.total_tokens);
    expect(shown.turns.reduce((n: number, t: any) => n + t.cost_usd, 0)).toBeCloseTo(done.cost_usd, 6);
    // Lists carry the current turn, not the record.
    expect((await stack.api('GET', '/v1/jobs?limit=1')).body.data[0]).toMatchObject({ id, turns: null });
    // The admin timeline shows every turn, what it asked and cost, and who answered it.
    const page = await (await fetch(`${stack.apiUrl}/admin/jobs/${id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    expect(page).toContain('<table id="turns">');
    for (const t of shown.turns) expect(page).toContain(t.response_id);
    expect(page.match(/turn \d+ answered/g)).toHaveLength(2);

    await expect.poll(() => receiver.received.map((r) => JSON.parse(r.body).type), { timeout: 10_000 }).toEqual(['job.requires_action', 'job.requires_action', 'job.completed']);
    const events = (await stack.api('GET', `/v1/jobs/${id}/events`)).body.data.map((e: any) => e.to);
    expect(events.filter((s: string) => s === 'requires_action')).toHaveLength(2);
  });

  it('sends parallel calls together and wants an output for each', async () => {
    const id = await submit(loopJob({ sim_tool_turns: '1', sim_parallel_calls: '2' }, { tools: [weather, stock] }));
    const job = await stack.waitForJob(id, waiting);
    expect(job.required_action.tool_calls.map((c: any) => c.name)).toEqual(['get_weather', 'get_stock']);
    const [w, s] = job.required_action.tool_calls;
    const partial = await stack.api('POST', `/v1/jobs/${id}/tool_outputs`, { tool_outputs: [{ call_id: w.call_id, output: 'rain' }] });
    expect(partial.status).toBe(400);
    expect(partial.body.error).toMatchObject({ code: 'missing_tool_output', param: 'tool_outputs' });
    expect(partial.body.error.message).toContain(s.call_id);
    const both = await stack.api('POST', `/v1/jobs/${id}/tool_outputs`, {
      tool_outputs: [
        { call_id: s.call_id, output: '41.20' },
        { call_id: w.call_id, output: 'rain' },
      ],
    });
    expect(both.status).toBe(200);
    const done = await stack.waitForJob(id, isTerminalJob);
    expect(done.status).toBe('completed');
    expect(done.output_text).toContain('41.20');
  });

  it('waits for a human to approve a remote MCP call, then goes on', async () => {
    // The simulator never contacts an MCP server; the URL is loopback all the same.
    const mcp = { type: 'mcp', server_label: 'wiki', server_url: 'http://127.0.0.1:9/mcp', require_approval: 'always' };
    const id = await submit(loopJob({}, { tools: [mcp] }));
    const job = await stack.waitForJob(id, waiting);
    expect(job).toMatchObject({ status: 'requires_action', required_action: { type: 'mcp_approval', tool_calls: [] } });
    const [request] = job.required_action.approval_requests;
    expect(request).toMatchObject({ id: expect.stringMatching(/^mcpr_/), server_label: 'wiki' });
    const outputs = await stack.api('POST', `/v1/jobs/${id}/tool_outputs`, { tool_outputs: [{ call_id: 'call_x', output: 'x' }] });
    expect(outputs.body.error.code).toBe('no_tool_calls_pending');
    const approved = await stack.api('POST', `/v1/jobs/${id}/approvals`, { approvals: [{ approval_request_id: request.id, approve: true, reason: 'fine' }] });
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    const done = await stack.waitForJob(id, isTerminalJob);
    expect(done.status).toBe('completed');
    expect(done.output.map((i: any) => i.type)).toContain('mcp_call');
  });

  it('ends at max_turns as incomplete, and cancels a waiting job at once', async () => {
    const capped = await submit(loopJob({ sim_tool_turns: '3' }, { max_turns: 1 }));
    const ended = await stack.waitForJob(capped, isTerminalJob);
    expect(ended).toMatchObject({ status: 'incomplete', incomplete_details: { reason: 'max_turns' }, turn: 1, max_turns: 1 });

    const id = await submit(loopJob({ sim_tool_turns: '1' }));
    await stack.waitForJob(id, waiting);
    const cancelled = await stack.api('POST', `/v1/jobs/${id}/cancel`);
    expect(cancelled.body.status).toBe('cancelled');
    expect((await stack.api('POST', `/v1/jobs/${id}/tool_outputs`, { tool_outputs: [{ call_id: 'call_x', output: 'x' }] })).status).toBe(409);
  });

  it('refuses answers for another tenant’s job (404), a job without a loop (409), and bad bodies (400)', async () => {
    const id = await submit(loopJob({ sim_tool_turns: '1' }));
    await stack.waitForJob(id, waiting);
    const other = await createTenant(stack.db.db, 'other');
    const theirs = await stack.api('POST', `/v1/jobs/${id}/tool_outputs`, { tool_outputs: [{ call_id: 'c', output: 'x' }] }, { authorization: `Bearer ${other.apiKey}` });
    expect(theirs.status).toBe(404);
    const plain = await submit({ model: 'o3', input: 'No tools.', metadata: { sim_duration_ms: '20' } });
    const finished = await stack.waitForJob(plain, isTerminalJob);
    expect(finished).toMatchObject({ status: 'completed', max_turns: null, turn: 1 });
    expect((await stack.api('POST', `/v1/jobs/${plain}/tool_outputs`, { tool_outputs: [{ call_id: 'c', output: 'x' }] })).body.error.code).toBe('job_not_requires_action');
    for (const body of [{ tool_outputs: [{ call_id: 'c' }] }, { tool_outputs: [{ call_id: '', output: 'x' }] }, { tool_outputs: 'x' }, {}]) {
      const res = await stack.api('POST', `/v1/jobs/${id}/tool_outputs`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
    }
    expect((await stack.api('POST', '/v1/jobs', loopJob({}, { max_turns: 0 }))).status).toBe(400);
    expect((await stack.api('POST', '/v1/jobs', loopJob({}, { max_turns: 101 }))).body.error.param).toBe('max_turns');
  });
});
