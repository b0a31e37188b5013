/**
 * A poll work item's job snapshot against a real Postgres: it survives its trip through JSON
 * (Redis), a state change decided on it is the one a fresh row gives, and a snapshot the job has
 * moved past is decided again on the fresh row (the write is guarded by the snapshot's status).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { JobStatus } from '@longhaul/core';
import {
  applyJobEvent,
  claimSubmission,
  createJob,
  fromJobSnapshot,
  getJob,
  listJobEvents,
  reconcileJob,
  scheduleNextCheck,
  toJobObject,
  toJobSnapshot,
  type DbHandle,
  type Job,
} from '../src/index.ts';
import { sql } from 'drizzle-orm';
import { useTestDatabase } from './test-database.ts';

/** Give a job one fallback (another model), as the API would have at its creation. */
const sqlSetFallbacks = (jobId: string) => sql`update jobs set fallbacks = '[{"model":"gpt-4.1"}]'::jsonb where id = ${jobId}`;

const now = new Date('2026-01-01T00:00:00Z');
const testDb = useTestDatabase('snapshots');
let handle: DbHandle;
let tenantId: string;
beforeAll(() => {
  ({ handle, tenantId } = testDb);
});

/** A job submitted to the provider (status queued), as the submit processor leaves it. */
async function submittedJob(request: Record<string, unknown> = {}): Promise<Job> {
  const { job } = await createJob(
    handle.db,
    {
      tenantId,
      model: 'o3',
      request: { model: 'o3', input: 'x'.repeat(5_000), ...request },
      metadata: { team: 'a' },
      callbackUrl: null,
      deadlineAt: new Date(now.getTime() + 3_600_000),
    },
    now,
  );
  await claimSubmission(handle.db, job.id, now);
  const responseId = `resp_${job.id.slice(4)}`;
  const result = await applyJobEvent(handle.db, job.id, { type: 'submitted', responseId, responseStatus: 'queued' }, { source: 'submit', now }, { responseId, submittedAt: now });
  if (!result.ok) throw new Error('submit failed');
  return result.job;
}

const travel = (job: Job) => JSON.parse(JSON.stringify(toJobSnapshot(job))) as Record<string, unknown>;
const completed = (id: string) => ({ id, status: 'completed' as const, output: [{ type: 'message', content: [{ type: 'output_text', text: 'done' }] }] });

describe('job snapshots carried by poll work items', () => {
  it('leave the request body out and give back the same job object', async () => {
    const job = await submittedJob({ stream: false, reasoning: { effort: 'high', summary: 'auto' }, service_tier: 'flex' });
    const snapshot = travel(job);
    // The row's set columns only: a few hundred bytes of Redis, whatever the request holds.
    expect(JSON.stringify(snapshot).length).toBeLessThan(600);
    expect(snapshot.request).toEqual({ stream: false, reasoning: { effort: 'high' }, service_tier: 'flex' });
    const back = fromJobSnapshot(snapshot, job.id)!;
    expect(toJobObject(back)).toEqual(toJobObject((await getJob(handle.db, job.id))!));
    expect(back.submittedAt).toEqual(now);
  });

  it('decide a reconcile without reading the row', async () => {
    const job = await submittedJob();
    const back = fromJobSnapshot(travel(job), job.id)!;
    const result = await reconcileJob(handle.db, back, completed(job.responseId!), { source: 'poll', now });
    expect(result).toMatchObject({ ok: true, changed: true, from: JobStatus.Queued });
    const row = (await getJob(handle.db, job.id))!;
    expect(row.status).toBe(JobStatus.Completed);
    expect(row.outputText).toBe('done');
    // The full row's request is untouched by a decision taken on a snapshot.
    expect((row.request.input as string).length).toBe(5_000);
  });

  it('that the job moved past are decided again on the fresh row', async () => {
    const job = await submittedJob();
    const stale = fromJobSnapshot(travel(job), job.id)!;
    await reconcileJob(handle.db, job.id, { id: job.responseId!, status: 'in_progress' }, { source: 'webhook', now });
    const result = await reconcileJob(handle.db, stale, completed(job.responseId!), { source: 'poll', now });
    expect(result).toMatchObject({ ok: true, changed: true, from: JobStatus.InProgress });
    expect((await listJobEvents(handle.db, job.id)).map((e) => e.toStatus)).toEqual(['pending', 'queued', 'in_progress', 'completed']);
  });

  it('from an earlier attempt, at the same status again, are decided again on the fresh row (not by status alone)', async () => {
    // Attempt 1 is queued with response A; a poll work item carries that snapshot.
    const job = await submittedJob();
    await handle.db.execute(
      // (The fallbacks column: the job has one fallback left.)
      sqlSetFallbacks(job.id),
    );
    const first = (await getJob(handle.db, job.id))!;
    const stale = fromJobSnapshot(travel(first), job.id)!;
    // Attempt 1 fails retryably: attempt 2 is submitted with response B, queued again.
    const failedA = { id: first.responseId!, status: 'failed' as const, error: { code: 'server_error', message: 'boom' } };
    expect(await reconcileJob(handle.db, job.id, failedA, { source: 'webhook', now })).toMatchObject({ ok: true, changed: true });
    await claimSubmission(handle.db, job.id, now);
    const responseB = `resp_b${job.id.slice(5)}`;
    await applyJobEvent(handle.db, job.id, { type: 'submitted', responseId: responseB, responseStatus: 'queued' }, { source: 'submit', now }, { responseId: responseB });
    // The old snapshot's poll now reads response A as completed: it must not finish attempt 2.
    const late = await reconcileJob(handle.db, stale, completed(first.responseId!), { source: 'poll', now });
    expect(late).toMatchObject({ ok: true, changed: false });
    const row = (await getJob(handle.db, job.id))!;
    expect(row).toMatchObject({ status: JobStatus.Queued, attempt: 2, responseId: responseB, outputText: null });
  });

  it('are not carried for a finished job, and the next check tells a poll its job finished', async () => {
    const job = await submittedJob();
    expect(await scheduleNextCheck(handle.db, job.id, now, { poll: true })).toBe(JobStatus.Queued);
    const finished = await reconcileJob(handle.db, job.id, completed(job.responseId!), { source: 'webhook', now });
    expect(finished.ok && toJobSnapshot(finished.job)).toBeUndefined();
    expect(await scheduleNextCheck(handle.db, job.id, now, { poll: true })).toBeNull();
  });

  it('from another job or version are not used', async () => {
    const job = await submittedJob();
    expect(fromJobSnapshot(travel(job), 'job_other')).toBeUndefined();
    expect(fromJobSnapshot({ ...travel(job), createdAt: '2026-01-01' }, job.id)).toBeUndefined();
    expect(fromJobSnapshot(undefined, job.id)).toBeUndefined();
  });
});
