/**
 * The completion hint (`expected_duration_seconds`, or the facade's `Longhaul-Expected-Duration`
 * header): a job that says how long it takes is polled about then, and costs fewer provider
 * calls than one found by the adaptive schedule alone. Poll mode, with the production poll
 * schedule scaled by the simulator's time scale (1 s → 10 ms), so a 5-minute response lasts 3 s.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';

const TIME_SCALE = 0.01;
/** A 5-minute response, as the simulator runs it (3 s). */
const SIM_DURATION_MS = 300_000;
const REAL_DURATION_S = (SIM_DURATION_MS * TIME_SCALE) / 1000;

let stack: Stack;
let client: OpenAI;
beforeAll(async () => {
  stack = await startStack({
    sim: { time_scale: TIME_SCALE },
    // The worker's defaults (1 s doubling to 30 s), on the simulator's time scale.
    worker: { completionMode: 'poll', poll: { initialMs: 1_000 * TIME_SCALE, factor: 2, maxMs: 30_000 * TIME_SCALE } },
  });
  client = new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.apiUrl}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await stack?.stop();
});

/** Retrieves of one response the simulator received: the job's polls. */
async function retrievesOf(responseId: string): Promise<number> {
  const log = await stack.simApi('GET', '/sim/request-log');
  return (log.data as { method: string; path: string }[]).filter((r) => r.method === 'GET' && r.path === `/v1/responses/${responseId}`).length;
}

/** What Longhaul sent the provider to create the job's response. */
async function sentToProvider(jobId: string): Promise<Record<string, unknown>> {
  const job = await stack.waitForJob(jobId, (j) => j.response_id !== null, 10_000);
  return stack.simApi('GET', `/sim/requests/${job.response_id}`);
}

describe('the completion hint on POST /v1/jobs', () => {
  it('costs a 5-minute job hinted 5 minutes a few polls instead of the adaptive schedule’s dozen', async () => {
    const body = jobBody({}, SIM_DURATION_MS);
    const [hinted, unhinted] = await Promise.all([stack.api('POST', '/v1/jobs', { ...body, expected_duration_seconds: REAL_DURATION_S }), stack.api('POST', '/v1/jobs', body)]);
    expect(hinted.status).toBe(202);
    expect(unhinted.status).toBe(202);
    expect(hinted.body.expected_duration_seconds).toBe(REAL_DURATION_S);
    expect(unhinted.body.expected_duration_seconds).toBeNull();

    const [doneHinted, doneUnhinted] = await stack.waitForAll([hinted.body.id, unhinted.body.id], isTerminalJob, 20_000);
    expect(doneHinted.status).toBe('completed');
    expect(doneUnhinted.status).toBe('completed');
    const calls = { hinted: await retrievesOf(doneHinted.response_id), unhinted: await retrievesOf(doneUnhinted.response_id) };
    console.log(`retrieve calls for a ${REAL_DURATION_S} s job: ${calls.hinted} with the hint, ${calls.unhinted} without`);
    // The schedule's arithmetic: 6 and 14 (packages/core/test/completion-hint.test.ts); a real
    // poll takes a few ms, so the unhinted job may need one or two fewer.
    expect(calls.hinted).toBeGreaterThanOrEqual(1);
    expect(calls.hinted).toBeLessThanOrEqual(7);
    expect(calls.unhinted).toBeGreaterThanOrEqual(2 * calls.hinted);
    // And the hint does not find the job later than polling without it does.
    expect(doneHinted.finished_at - doneHinted.submitted_at).toBeLessThanOrEqual(doneUnhinted.finished_at - doneUnhinted.submitted_at + 1);
  });

  it('is never sent to the provider, and takes fractions of a second', async () => {
    const created = await stack.api('POST', '/v1/jobs', { ...jobBody({}, 100), expected_duration_seconds: 0.25 });
    expect(created.status).toBe(202);
    expect(created.body.expected_duration_seconds).toBe(0.25);
    const sent = await sentToProvider(created.body.id);
    expect(sent.input).toBe(jobBody().input);
    expect(sent).not.toHaveProperty('expected_duration_seconds');
    expect((await stack.api('GET', `/v1/jobs/${created.body.id}`)).body.expected_duration_seconds).toBe(0.25);
  });

  it('refuses a hint that is not a positive number of seconds up to a day, naming it', async () => {
    for (const value of [0, -5, 86_401, '30', null, true]) {
      const res = await stack.api('POST', '/v1/jobs', { ...jobBody(), expected_duration_seconds: value });
      expect(res.status, JSON.stringify(value)).toBe(400);
      expect(res.body.error.param, JSON.stringify(value)).toBe('expected_duration_seconds');
    }
    expect((await stack.api('POST', '/v1/jobs', { ...jobBody({}, 100), expected_duration_seconds: 86_400 })).status).toBe(202);
  });
});

describe('the completion hint on POST /v1/responses', () => {
  const sim = { sim_duration_ms: '100' };
  const jobOf = async (response: OpenAI.Responses.Response) => (await stack.api('GET', `/v1/jobs/${response.metadata?.longhaul_job_id}`)).body;

  it('takes the Longhaul-Expected-Duration header and the extra body field, and sends neither to the provider', async () => {
    const viaHeader = await client.responses.create({ model: 'o3', input: 'Plan a bridge.', background: true, metadata: sim }, { headers: { 'Longhaul-Expected-Duration': '30' } });
    const viaBody = await client.responses.create({
      model: 'o3',
      input: 'Plan a bridge.',
      background: true,
      metadata: sim,
      expected_duration_seconds: 12.5,
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    // The same value both ways is no conflict: the header is read as a number.
    const both = await client.responses.create(
      { model: 'o3', input: 'Plan a bridge.', background: true, metadata: sim, expected_duration_seconds: 30 } as OpenAI.Responses.ResponseCreateParamsNonStreaming,
      { headers: { 'Longhaul-Expected-Duration': '30' } },
    );
    for (const [response, seconds] of [
      [viaHeader, 30],
      [viaBody, 12.5],
      [both, 30],
    ] as const) {
      const job = await jobOf(response);
      expect(job.expected_duration_seconds).toBe(seconds);
      const sent = await sentToProvider(job.id);
      expect(sent.model).toBe('o3');
      expect(sent).not.toHaveProperty('expected_duration_seconds');
    }
  });

  it('refuses an invalid hint, header or body, with a 400 naming it', async () => {
    const attempts: [Record<string, unknown>, Record<string, string>][] = [
      [{}, { 'Longhaul-Expected-Duration': 'soon' }],
      [{}, { 'Longhaul-Expected-Duration': '0' }],
      [{}, { 'Longhaul-Expected-Duration': '-3' }],
      [{}, { 'Longhaul-Expected-Duration': '86401' }],
      [{ expected_duration_seconds: 0 }, {}],
      [{ expected_duration_seconds: '30' }, {}],
      [{ expected_duration_seconds: 20 }, { 'Longhaul-Expected-Duration': '30' }],
    ];
    for (const [extra, headers] of attempts) {
      const refused = await client.responses
        .create({ model: 'o3', input: 'x', background: true, metadata: sim, ...extra } as OpenAI.Responses.ResponseCreateParamsNonStreaming, { headers })
        .catch((err: unknown) => err);
      const label = JSON.stringify({ extra, headers });
      expect(refused, label).toBeInstanceOf(OpenAI.BadRequestError);
      expect((refused as InstanceType<typeof OpenAI.BadRequestError>).param, label).toBe('expected_duration_seconds');
    }
  });
});
