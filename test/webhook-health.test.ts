/**
 * Hybrid mode learns whether OpenAI webhooks arrive, end to end: the simulator signs and sends
 * webhooks to the API's receiver (or drops them), the in-process worker polls on the schedule its
 * webhook health chooses, and every provider call is counted from the simulator's own request log.
 *
 * - webhooks arriving: a job costs 2 provider calls, its create and the retrieve its webhook
 *   triggers (the safety poll, SAFETY_POLL_MS, is far past the job's end);
 * - every webhook dropped: every job still completes; the worker says `webhooks_degraded` (log
 *   line, `longhaul_webhook_health` gauge, transitions counter), pulls the far-away safety polls of
 *   jobs in flight forward, and polls adaptively: a job costs at most its create, one safety-net
 *   poll and the adaptive schedule's polls up to its end, plus the one that finds it finished;
 * - webhooks arriving again: `webhooks_recovered`, and 2 calls per job again.
 *
 * Time is scaled (the simulator's 0.01; the worker's poll knobs, grace and refresh in ms), so the
 * file runs in seconds. A job that is never polled (its safety poll 10 minutes away) fails the
 * test by its timeout, not by a timing assertion.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, jobBody, startStack } from './harness.ts';
import { parseMetrics, total } from './prometheus.ts';

/** The simulator runs at the harness's time scale: 200 000 simulated ms are 2 s. */
const TIME_SCALE = 0.01;
const SHORT_SIM_MS = 200_000;
const LONG_SIM_MS = 1_000_000;
const POLL = { initialMs: 100, factor: 2, maxMs: 400, safetyIntervalMs: 600_000, webhookGraceMs: 1_500 };

interface Arrival {
  at_ms: number;
  method: string;
  path: string;
  status: number | null;
  job_id: string | null;
}

const lines: string[] = [];
const logged = (code: string) => lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.code === code);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    webhooks: true,
    sim: { time_scale: TIME_SCALE },
    worker: { completionMode: 'hybrid', poll: POLL, webhookHealth: { refreshMs: 100 } },
    logLevel: 'info',
    logDestination: { write: (chunk: string) => void lines.push(...chunk.split('\n').filter(Boolean)) },
  });
});
afterAll(async () => {
  await stack?.stop();
});

async function submit(n: number, simMs = SHORT_SIM_MS, effort = 'high'): Promise<string[]> {
  const res = await Promise.all(
    Array.from({ length: n }, (_, i) => stack.api('POST', '/v1/jobs', jobBody({ input: `health story ${Math.random()} ${i}`, reasoning: { effort } }, simMs))),
  );
  for (const r of res) expect(r.status).toBe(202);
  return res.map((r) => r.body.id as string);
}

/** Provider calls per job, from the simulator's request log: its creates and the retrieves of its response. */
async function callsPerJob(jobs: { id: string; response_id: string }[]): Promise<Map<string, number>> {
  const log: Arrival[] = (await stack.simApi('GET', '/sim/request-log')).data;
  const byResponse = new Map(jobs.map((j) => [`/v1/responses/${j.response_id}`, j.id]));
  const calls = new Map(jobs.map((j) => [j.id, 0]));
  for (const a of log) {
    const jobId = a.method === 'POST' && a.path === '/v1/responses' ? a.job_id : a.method === 'GET' ? byResponse.get(a.path) : undefined;
    if (jobId && calls.has(jobId)) calls.set(jobId, calls.get(jobId)! + 1);
  }
  return calls;
}

async function healthGauge(): Promise<Record<string, number>> {
  const samples = parseMetrics(await stack.workerMetrics.render());
  return Object.fromEntries(['unknown', 'healthy', 'degraded'].map((state) => [state, total(samples, 'longhaul_webhook_health', { state })]));
}

async function transitions(to: string): Promise<number> {
  return total(parseMetrics(await stack.workerMetrics.render()), 'longhaul_webhook_health_transitions_total', { to });
}

/** Wait until the worker's gauge says `state` (a hang fails by the test timeout). */
async function waitForHealth(state: string, meanwhile?: () => Promise<unknown>): Promise<void> {
  for (;;) {
    if ((await healthGauge())[state] === 1) return;
    await (meanwhile ? meanwhile() : new Promise((r) => setTimeout(r, 50)));
  }
}

/** Polls the adaptive schedule makes strictly before `durationMs` after the submission (under load polls only come later). */
function adaptivePollsBefore(durationMs: number): number {
  let at = 0;
  let polls = 0;
  for (;;) {
    at += Math.min(POLL.maxMs, POLL.initialMs * POLL.factor ** polls);
    if (at >= durationMs) return polls;
    polls += 1;
  }
}

/** Completion sources of the jobs' terminal transitions. */
async function sources(ids: string[]): Promise<Record<string, number>> {
  const { rows } = await stack.db.pool.query<{ source: string; n: number }>(
    "select source::text, count(*)::int n from job_events where job_id = any($1) and to_status = 'completed' group by source",
    [ids],
  );
  return Object.fromEntries(rows.map((r) => [r.source, r.n]));
}

describe('hybrid completion detection learns whether webhooks arrive', () => {
  it('while webhooks arrive, a job costs 2 provider calls: its create and the retrieve its webhook triggers', async () => {
    // Learning: a fresh deployment polls adaptively until webhooks have been seen arriving.
    const warmup = await submit(5);
    await stack.waitForAll(warmup, (j) => j.status === 'completed', 30_000);
    await waitForHealth('healthy');
    expect(logged('webhooks_healthy')).toHaveLength(1);
    expect(await transitions('healthy')).toBe(1);

    const ids = await submit(20);
    const done = await stack.waitForAll(ids, (j) => j.status === 'completed', 30_000);
    const calls = await callsPerJob(done);
    expect([...calls.values()]).toEqual(ids.map(() => 2));
    expect(await sources(ids)).toEqual({ webhook: 20 });
  });

  it('when every webhook is dropped, every job still completes: the worker says webhooks_degraded, pulls safety polls forward and polls adaptively', async () => {
    await stack.simApi('POST', '/sim/config', { webhook_drop_rate: 1 });
    // No duration is known for medium effort yet: its first poll is the safety poll, 10 minutes away.
    const [long] = await submit(1, LONG_SIM_MS, 'medium');
    await stack.waitForJob(long!, (j) => j.response_id !== null && j.status !== 'pending', 10_000);
    // Their webhooks overdue, these jobs are polled one grace period after their expected end and
    // found finished: the webhooks are late, and after a few the worker stops waiting for them.
    const first = await submit(8);
    const firstDone = await stack.waitForAll(first, (j) => j.status === 'completed', 30_000);
    await waitForHealth('degraded');
    const degraded = logged('webhooks_degraded');
    expect(degraded).toHaveLength(1);
    expect(degraded[0]).toMatchObject({ level: 'warn', from: 'healthy', to: 'degraded' });
    expect(await transitions('degraded')).toBe(1);
    // Only a poll pulled forward can finish the long job before its safety poll is due.
    const [longDone] = await stack.waitForAll([long!], (j) => j.status === 'completed', 40_000);

    const then = await submit(8);
    const thenDone = await stack.waitForAll(then, (j) => j.status === 'completed', 30_000);
    expect(await sources([...first, ...then, long!])).toEqual({ poll: 17 });
    const bound = (simMs: number) => 2 + adaptivePollsBefore(simMs * TIME_SCALE);
    for (const [id, n] of await callsPerJob([...firstDone, ...thenDone])) expect(n, id).toBeLessThanOrEqual(bound(SHORT_SIM_MS));
    expect((await callsPerJob([longDone])).get(long!)).toBeLessThanOrEqual(bound(LONG_SIM_MS));
    // Adaptive polling: jobs submitted once degraded are polled more than once.
    expect(Math.max(...(await callsPerJob(thenDone)).values())).toBeGreaterThan(2);
  });

  it('when webhooks arrive again, the worker says webhooks_recovered and a job costs 2 provider calls again', async () => {
    await stack.simApi('POST', '/sim/config', { webhook_drop_rate: 0 });
    const meanwhile: string[] = [];
    await waitForHealth('healthy', async () => {
      const ids = await submit(3);
      meanwhile.push(...ids);
      await stack.waitForAll(ids, (j) => j.status === 'completed', 30_000);
    });
    expect(logged('webhooks_recovered')).toHaveLength(1);
    expect(logged('webhooks_recovered')[0]).toMatchObject({ from: 'degraded', to: 'healthy' });
    expect(await transitions('healthy')).toBe(2);

    const ids = await submit(10);
    const done = await stack.waitForAll(ids, (j) => j.status === 'completed', 30_000);
    expect([...(await callsPerJob(done)).values()]).toEqual(ids.map(() => 2));
  });
});
