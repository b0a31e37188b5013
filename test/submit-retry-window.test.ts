/**
 * The submit retry budget (SUBMIT_RETRY_WINDOW_SECONDS) counts from a job's first failed create,
 * not from when it was accepted: a job that waited in `pending` for its tenant's token budget
 * still gets its retries when the provider has a transient failure.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { setTenantLimits } from '@longhaul/db';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    // A retry window far shorter than the budget wait below.
    worker: { submitConcurrency: 1, retry: { baseMs: 200, maxMs: 200, maxAttempts: 20, maxElapsedMs: 1_000 }, admission: { windowMs: 3_000 } },
    sim: { fault_endpoints: ['create'] },
  });
});
afterAll(async () => {
  await stack?.stop();
});

it('retries a transient create failure of a job that waited for its token budget', async () => {
  // Each job is estimated above the whole budget: the second waits for a full refill (> 3 s).
  await setTenantLimits(stack.db.db, stack.tenantId, { tpmLimit: 30 });
  const body = jobBody({ input: `Budgeted request ${'x'.repeat(400)}` }, 50);
  const first = (await stack.api('POST', '/v1/jobs', body)).body;
  await stack.waitForJob(first.id, (j) => j.status !== 'pending');
  // Every create fails from now on: the first job is already at the provider (its polls are not faulted).
  await stack.simApi('POST', '/sim/config', { error_rate: 1 });
  const second = (await stack.api('POST', '/v1/jobs', body)).body;

  // Its first create fails; the provider recovers for the retry.
  const deadline = Date.now() + 15_000;
  while ((await stack.simApi('GET', '/sim/stats')).errors < 1) {
    if (Date.now() > deadline) throw new Error('the second job never reached the provider');
    await new Promise((r) => setTimeout(r, 20));
  }
  await stack.simApi('POST', '/sim/config', { error_rate: 0 });
  const done = await stack.waitForJob(second.id, isTerminalJob, 15_000);
  expect(done.status, JSON.stringify(done.error)).toBe('completed');
  const { rows } = await stack.db.pool.query<{ submit_attempts: number; created_at: Date }>('select submit_attempts, created_at from jobs where id = $1', [second.id]);
  expect(rows[0]!.submit_attempts).toBeGreaterThanOrEqual(2);
  // The case under test: the failed create came after the job had waited in pending longer than
  // the whole retry window (1 s), so a window counted from acceptance would have failed the job.
  const { rows: creates } = await stack.db.pool.query<{ status_code: number | null; at: Date }>(
    "select status_code, at from provider_calls where job_id = $1 and operation = 'create' order by at",
    [second.id],
  );
  expect(creates[0]!.status_code, JSON.stringify(creates)).toBe(500);
  expect(creates[0]!.at.getTime() - rows[0]!.created_at.getTime()).toBeGreaterThan(1_000);
});
