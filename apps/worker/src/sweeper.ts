/**
 * The sweeper: Redis only dispatches work and can lose it (restart without AOF, FLUSHALL, an
 * evicted key), so Postgres is swept periodically for jobs that nobody is working on:
 * - non-terminal jobs past their deadline become `expired` (their response is cancelled);
 * - non-terminal jobs whose next expected check is overdue get their work item dispatched again
 *   (work item ids are job ids, so this never duplicates live work); a pending job is pushed
 *   into the fair queue again only when it is neither waiting there nor taken by a live turn;
 * - webhooks whose processing was lost are dispatched again, and ones no job claims become orphans;
 * - pending callback deliveries whose attempt is overdue (work item lost) are dispatched again;
 * - expired idempotency keys are deleted, and provider call log rows past their retention.
 *
 * It runs on a plain timer in every worker process, not as a BullMQ job (that would vanish with
 * the very Redis data it is meant to recover), and a Postgres advisory lock lets one process at a
 * time do the work.
 */
import { JobStatus, type JobStatus as Status } from '@longhaul/core';
import { applyJobEvent, deleteExpiredIdempotencyKeys, deleteProviderCallsBefore, getJob, findExpiredJobs, findOverdueDeliveries, findOverdueJobs, findStaleInboxRows, orphanOldWaitingRows, scheduleNextCheck } from '@longhaul/db';
import type { QueueKey } from '@longhaul/queue';
import { jobLogFields } from '@longhaul/runtime';
import type { WorkerContext } from './deps.ts';
import { stateChanged } from './state-changes.ts';

const SWEEP_LOCK_ID = 7301972450114;

export interface SweepReport {
  ran: boolean;
  expired: number;
  redispatched: number;
  webhooksRedispatched: number;
  deliveriesRedispatched: number;
  webhooksOrphaned: number;
  idempotencyKeysDeleted: number;
  providerCallsDeleted: number;
}

const DEFAULT_PROVIDER_CALL_RETENTION_MS = 30 * 86_400_000;
/** Rows deleted per sweep: a bounded statement, repeated every sweep until the log is trimmed. */
const PROVIDER_CALL_DELETE_BATCH = 10_000;

function queueFor(status: Status, streamed: boolean): QueueKey {
  if (status === JobStatus.Pending) return 'submit';
  if (status === JobStatus.Cancelling) return 'cancel';
  return streamed ? 'stream' : 'poll';
}

const LIVE_WORK_ITEM = ['active', 'waiting', 'delayed', 'prioritized', 'waiting-children'];

/**
 * A pending job is waiting for its turn (in the fair queue: possibly for a long time, over its
 * tenant's token budget), being submitted by a turn, or lost (its push or its turn vanished with
 * Redis). A job taken by a turn that no longer exists is freed; a job nowhere in the fair queue is
 * pushed again; and a turn carrying its id is added if missing (a no-op when one is alive), so the
 * job is never without a turn. Returns true when the job had been lost.
 */
async function redispatchPending(deps: WorkerContext, jobId: string): Promise<boolean> {
  const { admission } = deps;
  const queue = deps.queues.get('submit');
  const where = await admission.fairQueue.locate(jobId);
  if (where.state === 'taken') {
    if (LIVE_WORK_ITEM.includes(await queue.getJobState(where.turnId))) return false;
    await admission.fairQueue.forgetTaken(jobId, where.turnId);
  }
  const job = await getJob(deps.db.db, jobId);
  if (!job || job.status !== JobStatus.Pending) return false;
  const lost = await admission.admit(job);
  const state = await queue.getJobState(jobId);
  if (state === 'failed' || state === 'completed') await queue.remove(jobId);
  await deps.queues.add('submit', { jobId });
  if (lost) deps.logger.child(jobLogFields(job)).warn({ status: job.status, queue: 'submit', previous_state: where.state, code: 'job_redispatched' }, 'pending job was missing from the fair queue: dispatched again');
  return lost;
}

/** One sweep. Returns `ran: false` when another process holds the sweep lock. */
export async function sweepOnce(deps: WorkerContext): Promise<SweepReport> {
  const { db, queues, provider, clock, config, logger } = deps;
  const client = await db.pool.connect();
  const report: SweepReport = { ran: false, expired: 0, redispatched: 0, webhooksRedispatched: 0, deliveriesRedispatched: 0, webhooksOrphaned: 0, idempotencyKeysDeleted: 0, providerCallsDeleted: 0 };
  try {
    const lock = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [SWEEP_LOCK_ID]);
    if (!lock.rows[0]?.locked) return report;
    report.ran = true;
    try {
      const now = clock();
      for (const job of await findExpiredJobs(db.db, now, config.sweep.batchSize)) {
        const result = await applyJobEvent(db.db, job.id, { type: 'expired' }, { source: 'sweeper', now, details: { reason: 'deadline' } }, { error: { code: 'job_expired', message: 'The job did not finish before its deadline.' } });
        await stateChanged(deps, result);
        if (!result.ok || !result.changed) continue;
        report.expired += 1;
        const log = logger.child(jobLogFields(job));
        log.warn({ from: job.status, code: 'job_expired' }, 'job expired');
        if (job.responseId && job.status !== JobStatus.Pending) {
          await provider.cancelResponse(job.responseId, { jobId: job.id }).catch((err: unknown) => log.warn({ err, code: 'expire_cancel_failed' }, 'could not cancel the expired response'));
        }
      }

      const overdueBefore = new Date(now.getTime() - config.sweep.overdueGraceMs);
      for (const job of await findOverdueJobs(db.db, overdueBefore, config.sweep.batchSize)) {
        if (job.status === JobStatus.Pending) {
          if (await redispatchPending(deps, job.id)) report.redispatched += 1;
          await scheduleNextCheck(db.db, job.id, new Date(now.getTime() + config.sweep.overdueGraceMs));
          continue;
        }
        const key = queueFor(job.status, job.streamed);
        const queue = queues.get(key);
        const state = await queue.getJobState(job.id);
        if (state === 'failed' || state === 'completed') await queue.remove(job.id);
        // Active, waiting or delayed work items are alive: adding with the same id is a no-op.
        await queues.add(key, key === 'poll' ? { jobId: job.id, attempt: 0 } : { jobId: job.id });
        if (job.status === JobStatus.Cancelling) await queues.add('poll', { jobId: job.id, attempt: 0 });
        await scheduleNextCheck(db.db, job.id, new Date(now.getTime() + config.sweep.overdueGraceMs));
        if (state !== 'active' && state !== 'waiting' && state !== 'delayed' && state !== 'prioritized') {
          report.redispatched += 1;
          logger.child(jobLogFields(job)).warn({ status: job.status, queue: key, previous_state: state, code: 'job_redispatched' }, 'work item was missing: dispatched again');
        }
      }

      for (const inboxId of await findStaleInboxRows(db.db, overdueBefore, config.sweep.batchSize)) {
        const state = await queues.get('webhook').getJobState(`inbox_${inboxId}`);
        if (state === 'failed' || state === 'completed') await queues.get('webhook').remove(`inbox_${inboxId}`);
        await queues.add('webhook', { inboxId });
        report.webhooksRedispatched += 1;
      }
      for (const deliveryId of await findOverdueDeliveries(db.db, overdueBefore, config.sweep.batchSize)) {
        const state = await queues.get('deliver').getJobState(deliveryId);
        if (state === 'active' || state === 'waiting' || state === 'delayed' || state === 'prioritized') continue;
        if (state === 'failed' || state === 'completed') await queues.get('deliver').remove(deliveryId);
        await queues.add('deliver', { deliveryId });
        report.deliveriesRedispatched += 1;
      }
      report.webhooksOrphaned = await orphanOldWaitingRows(db.db, new Date(now.getTime() - config.sweep.webhookWaitMs), now);
      report.idempotencyKeysDeleted = await deleteExpiredIdempotencyKeys(db.db, now);
      const retentionMs = config.sweep.providerCallRetentionMs ?? DEFAULT_PROVIDER_CALL_RETENTION_MS;
      if (retentionMs > 0) report.providerCallsDeleted = await deleteProviderCallsBefore(db.db, new Date(now.getTime() - retentionMs), PROVIDER_CALL_DELETE_BATCH);
    } finally {
      await client.query('select pg_advisory_unlock($1)', [SWEEP_LOCK_ID]);
    }
  } finally {
    client.release();
  }
  return report;
}
