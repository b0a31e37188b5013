/**
 * Retention: the provider call log behind the admin timeline is trimmed by the sweeper
 * (PROVIDER_CALL_RETENTION_DAYS, 30 by default); 0 keeps it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Stack, FAST_WORKER_CONFIG, startStack } from './harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ startWorker: false });
});
afterAll(async () => {
  await stack?.stop();
});

const DAY = 86_400_000;

async function logCalls(ages: number[]): Promise<void> {
  for (const age of ages) {
    await stack.db.pool.query("insert into provider_calls (job_id, operation, status_code, latency_ms, at) values ('job_retention0000', 'retrieve', 200, 12, $1)", [
      new Date(Date.now() - age),
    ]);
  }
}

async function remainingAges(): Promise<number[]> {
  const { rows } = await stack.db.pool.query<{ at: Date }>("select at from provider_calls where job_id = 'job_retention0000' order by at");
  return rows.map((r) => Math.round((Date.now() - r.at.getTime()) / DAY));
}

it('deletes provider calls older than the retention, keeps the rest, and keeps everything at 0', async () => {
  await logCalls([40 * DAY, 31 * DAY, 45 * DAY, 2 * DAY, 29 * DAY]);
  const keeper = stack.startWorker({ sweep: { ...FAST_WORKER_CONFIG.sweep, intervalMs: 3_600_000, providerCallRetentionMs: 0 } });
  expect((await keeper.sweep()).providerCallsDeleted).toBe(0);
  expect(await remainingAges()).toHaveLength(5);
  await keeper.close();

  const trimmer = stack.startWorker({ sweep: { ...FAST_WORKER_CONFIG.sweep, intervalMs: 3_600_000 } });
  const report = await trimmer.sweep();
  expect(report.providerCallsDeleted).toBe(3);
  expect(await remainingAges()).toEqual([29, 2]);
  expect((await trimmer.sweep()).providerCallsDeleted).toBe(0);
});
