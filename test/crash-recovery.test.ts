/**
 * Nothing is lost on a crash: SIGKILL a worker process while jobs are pending, queued, in
 * progress, cancelling and finished; a new worker process finishes every job. FLUSHALL on Redis
 * mid-run: the sweeper re-dispatches every job from Postgres. How we know: every job ends
 * terminal in Postgres, and the simulator's per-job create counts show at most one extra create,
 * only for submissions that were in flight when the process died.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { type PrivateRedis, startPrivateRedis } from './private-redis.ts';
import { exited, spawnWorker } from './worker-process.ts';

const SUBMIT_CONCURRENCY = 4;

async function statuses(stack: Stack, ids: string[]): Promise<Record<string, number>> {
  const { rows } = await stack.db.pool.query<{ status: string; n: number }>('select status, count(*)::int as n from jobs where id = any($1) group by status', [ids]);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

describe('crash safety', () => {
  let redis: PrivateRedis;
  let stack: Stack;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    redis = await startPrivateRedis();
    // Slow creates (latency) keep submissions in flight; time scale 0.02 makes 30 simulated s 600 ms.
    stack = await startStack({ startWorker: false, redisUrl: redis.url, sim: { time_scale: 0.02, latency_ms: 40 } });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    await stack?.stop();
    await redis?.stop();
  });

  it('finishes every job after a worker is SIGKILLed with jobs in every state', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const res = await stack.api('POST', '/v1/jobs', jobBody({ input: `crash story ${i}` }, (i % 6) * 10_000));
      ids.push(res.body.id);
    }
    const first = spawnWorker(stack, redis.url, { SUBMIT_CONCURRENCY: String(SUBMIT_CONCURRENCY) });
    children.push(first);

    // Wait for a mix: some finished, some still pending, some at the provider.
    const deadline = Date.now() + 20_000;
    let seen: Record<string, number> = {};
    while (Date.now() < deadline) {
      seen = await statuses(stack, ids);
      if ((seen.completed ?? 0) >= 3 && (seen.pending ?? 0) >= 3 && (seen.queued ?? 0) + (seen.in_progress ?? 0) >= 3) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    // Ask to cancel two jobs at the provider: their cancel work is in the dead worker's hands too.
    const atProvider = (await stack.db.pool.query<{ id: string }>("select id from jobs where id = any($1) and status in ('queued','in_progress') limit 2", [ids])).rows.map(
      (r) => r.id,
    );
    for (const id of atProvider) await stack.api('POST', `/v1/jobs/${id}/cancel`);
    const before = await statuses(stack, ids);
    first.kill('SIGKILL');
    await exited(first);
    expect(before.pending ?? 0, JSON.stringify(before)).toBeGreaterThan(0);
    expect((before.queued ?? 0) + (before.in_progress ?? 0) + (before.cancelling ?? 0), JSON.stringify(before)).toBeGreaterThan(0);

    const killedAt = Date.now();
    const second = spawnWorker(stack, redis.url, { SUBMIT_CONCURRENCY: String(SUBMIT_CONCURRENCY) });
    children.push(second);
    const done = await stack.waitForAll(ids, isTerminalJob, 60_000);
    const recoveryMs = Date.now() - killedAt;

    for (const job of done) {
      if (atProvider.includes(job.id)) expect(['cancelled', 'completed']).toContain(job.status);
      else expect(job.status, job.id).toBe('completed');
    }
    const stats = await stack.simApi('GET', '/sim/stats');
    const creates = ids.map((id) => stats.creates_by_job[id] ?? 0);
    expect(Math.min(...creates)).toBe(1);
    expect(Math.max(...creates)).toBeLessThanOrEqual(2);
    // Only creates in flight at the kill can repeat: at most one per submit slot.
    expect(creates.filter((n) => n === 2).length).toBeLessThanOrEqual(SUBMIT_CONCURRENCY);
    console.info(
      `[crash] states at kill ${JSON.stringify(before)}; all ${ids.length} terminal ${recoveryMs} ms after the kill; duplicate creates: ${creates.filter((n) => n === 2).length}`,
    );
    second.kill('SIGTERM');
    await exited(second);
    expect(second.exitCode).toBe(0);
  });

  it('finishes every job after FLUSHALL wipes Redis mid-run', async () => {
    // Two submissions at a time against 40 ms creates: a backlog of pending jobs builds up.
    const worker = stack.startWorker({ submitConcurrency: 2, sweep: { intervalMs: 500, overdueGraceMs: 1_000, batchSize: 500, webhookWaitMs: 60_000 } });
    const ids = (await Promise.all(Array.from({ length: 40 }, (_, i) => stack.api('POST', '/v1/jobs', jobBody({ input: `flush story ${i}` }, (i % 4) * 15_000))))).map(
      (r) => r.body.id as string,
    );
    // Flush once Redis holds both kinds of work: fair-queue entries of pending jobs and polls of
    // jobs at the provider.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const seen = await statuses(stack, ids);
      if ((seen.pending ?? 0) >= 5 && (seen.queued ?? 0) + (seen.in_progress ?? 0) >= 5) break;
      if (Date.now() > deadline) throw new Error(`no mix of pending and running jobs to flush: ${JSON.stringify(seen)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await stack.redis.flushall();
    const flushedAt = Date.now();
    // Postgres is untouched by the flush: these are the jobs whose Redis work was wiped.
    const atFlush = await statuses(stack, ids);
    expect(atFlush.pending ?? 0, JSON.stringify(atFlush)).toBeGreaterThan(0);
    expect((atFlush.queued ?? 0) + (atFlush.in_progress ?? 0), JSON.stringify(atFlush)).toBeGreaterThan(0);
    const done = await stack.waitForAll(ids, isTerminalJob, 30_000);
    for (const job of done) expect(job.status).toBe('completed');
    console.info(`[flushall] states at flush ${JSON.stringify(atFlush)}; all terminal ${Date.now() - flushedAt} ms after FLUSHALL`);
    await worker.close();
  });
});
