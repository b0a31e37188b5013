/**
 * The sweeper: Redis only dispatches work and can lose it (restart without AOF, FLUSHALL, an
 * evicted key), so Postgres is swept periodically for jobs that nobody is working on:
 * - non-terminal jobs past their deadline become `expired` (their response is cancelled);
 * - non-terminal jobs whose next expected check is overdue get their work item dispatched again
 *   (`jobEffects.redispatch`, the work `nextWorkFor` gives an overdue job; work item ids are job
 *   ids, so this never duplicates live work); a pending job is pushed into the fair queue again
 *   only when it is neither waiting there nor taken by a live turn;
 * - pipeline runs nobody advanced for a while (their work item lost) are advanced again;
 * - webhooks whose processing was lost are dispatched again, and ones no job claims become orphans;
 * - pending callback deliveries whose attempt is overdue (work item lost) are dispatched again;
 * - expired idempotency keys are deleted, and provider call log and admin audit rows past their
 *   retention;
 * - data retention and deletion (data-retention.ts): erased jobs' provider deletes are retried,
 *   tenant erasures advance (tenant-erasure.ts), and jobs past their tenant's retention are
 *   erased, in bounded batches within a time budget, last (the rest of the sweep is never held up
 *   by a backlog).
 *
 * It runs on a plain timer in every worker process, not as a BullMQ job (that would vanish with
 * the very Redis data it is meant to recover), and a Postgres advisory lock lets one process at a
 * time do the work.
 */
import { JobStatus } from '@longhaul/core';
import {
  applyJobEvent,
  deleteAdminActionsBefore,
  deleteExpiredIdempotencyKeys,
  deleteProviderCallsBefore,
  findExpiredJobs,
  findOverdueDeliveries,
  findOverdueJobs,
  findOverdueRuns,
  scheduleRunCheck,
  staleCacheWaiters,
  deleteExpiredCacheEntries,
  findStaleInboxRows,
  orphanOldWaitingRows,
  scheduleNextCheck,
} from '@longhaul/db';
import { RUN_CHECK_MS } from '@longhaul/engine';
import { runWorkItemId } from '@longhaul/queue';
import { jobLogFields } from '@longhaul/runtime';
import { retentionSettings, retryProviderDeletes, sweepBudget, sweepRetention } from './data-retention.ts';
import type { WorkerContext } from './deps.ts';
import { advanceTenantErasures } from './tenant-erasure.ts';

const SWEEP_LOCK_ID = 7301972450114;

export interface SweepReport {
  ran: boolean;
  expired: number;
  redispatched: number;
  webhooksRedispatched: number;
  deliveriesRedispatched: number;
  /** Pipeline runs overdue for an advance, advanced again. */
  runsAdvanced: number;
  webhooksOrphaned: number;
  idempotencyKeysDeleted: number;
  providerCallsDeleted: number;
  /** Admin audit rows past ADMIN_AUDIT_RETENTION_DAYS. */
  adminActionsDeleted: number;
  /** Jobs waiting for an identical job's result whose source had ended: answered or released. */
  cacheWaitersSettled: number;
  cacheEntriesExpired: number;
  /** Jobs erased past their tenant's retention. */
  retentionErased: number;
  /** Provider deletes of erased jobs retried, and how many the provider confirmed (or reported gone). */
  providerDeletesRetried: number;
  providerDeletesConfirmed: number;
  /** Tenant erasure batches run, and erasures completed. */
  tenantErasureBatches: number;
  tenantErasuresCompleted: number;
}

const DEFAULT_PROVIDER_CALL_RETENTION_MS = 30 * 86_400_000;
/** Rows deleted per sweep: a bounded statement, repeated every sweep until the log is trimmed. */
const PROVIDER_CALL_DELETE_BATCH = 10_000;

/** One sweep. Returns `ran: false` when another process holds the sweep lock. */
export async function sweepOnce(deps: WorkerContext): Promise<SweepReport> {
  const { db, queues, provider, clock, config, logger, jobEffects } = deps;
  const client = await db.pool.connect();
  // Released with an error (so the pool closes it) unless the lock was given back: a pooled
  // connection still holding the sweep lock would stop every later sweep, and one whose server
  // went away must not be handed out again.
  let unlocked = false;
  const report: SweepReport = {
    ran: false,
    expired: 0,
    redispatched: 0,
    webhooksRedispatched: 0,
    deliveriesRedispatched: 0,
    runsAdvanced: 0,
    webhooksOrphaned: 0,
    idempotencyKeysDeleted: 0,
    providerCallsDeleted: 0,
    adminActionsDeleted: 0,
    cacheWaitersSettled: 0,
    cacheEntriesExpired: 0,
    retentionErased: 0,
    providerDeletesRetried: 0,
    providerDeletesConfirmed: 0,
    tenantErasureBatches: 0,
    tenantErasuresCompleted: 0,
  };
  try {
    const lock = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [SWEEP_LOCK_ID]);
    if (!lock.rows[0]?.locked) {
      unlocked = true;
      return report;
    }
    report.ran = true;
    try {
      const now = clock();
      for (const job of await findExpiredJobs(db.db, now, config.sweep.batchSize)) {
        const result = await applyJobEvent(
          db.db,
          job.id,
          { type: 'expired' },
          { source: 'sweeper', now, details: { reason: 'deadline' } },
          { error: { code: 'job_expired', message: 'The job did not finish before its deadline.' } },
        );
        await jobEffects.afterJobChange(result, { type: 'expired' });
        if (!result.ok || !result.changed) continue;
        report.expired += 1;
        const log = logger.child(jobLogFields(job));
        log.warn({ from: job.status, code: 'job_expired' }, 'job expired');
        if (job.responseId && job.status !== JobStatus.Pending) {
          await provider
            .cancelResponse(job.responseId, { jobId: job.id })
            .catch((err: unknown) => log.warn({ err, code: 'expire_cancel_failed' }, 'could not cancel the expired response'));
        }
      }

      const overdueBefore = new Date(now.getTime() - config.sweep.overdueGraceMs);
      const overdue = await findOverdueJobs(db.db, overdueBefore, config.sweep.batchSize);
      for (const job of overdue) {
        if (await jobEffects.redispatch(job)) report.redispatched += 1;
        await scheduleNextCheck(db.db, job.id, new Date(now.getTime() + config.sweep.overdueGraceMs));
      }
      deps.metrics.sweep({ overdue: overdue.length, redispatched: report.redispatched });

      // Pipeline runs nobody advanced for a while (their work item lost with Redis): advance them.
      for (const runId of await findOverdueRuns(db.db, overdueBefore, config.sweep.batchSize)) {
        await queues.add('runs', { runId }, { jobId: runWorkItemId(runId, `sweep_${now.getTime()}`) });
        await scheduleRunCheck(db.db, runId, new Date(now.getTime() + RUN_CHECK_MS));
        report.runsAdvanced += 1;
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
      for (const waiter of await staleCacheWaiters(db.db, config.sweep.batchSize)) {
        await jobEffects.settleCacheWaiter(waiter);
        report.cacheWaitersSettled += 1;
      }
      report.cacheEntriesExpired = await deleteExpiredCacheEntries(db.db, now, config.sweep.batchSize);
      const retentionMs = config.sweep.providerCallRetentionMs ?? DEFAULT_PROVIDER_CALL_RETENTION_MS;
      if (retentionMs > 0) report.providerCallsDeleted = await deleteProviderCallsBefore(db.db, new Date(now.getTime() - retentionMs), PROVIDER_CALL_DELETE_BATCH);

      const retention = retentionSettings(config.sweep.retention);
      if (retention.adminAuditDays > 0) {
        const before = new Date(now.getTime() - retention.adminAuditDays * 86_400_000);
        report.adminActionsDeleted = await deleteAdminActionsBefore(db.db, before, PROVIDER_CALL_DELETE_BATCH);
      }
      const deletes = await retryProviderDeletes(deps, retention);
      report.providerDeletesRetried = deletes.attempted;
      report.providerDeletesConfirmed = deletes.deleted;
      const budget = sweepBudget(retention);
      const erasures = await advanceTenantErasures(deps, retention, budget);
      report.tenantErasureBatches = erasures.batches;
      report.tenantErasuresCompleted = erasures.completed;
      report.retentionErased = (await sweepRetention(deps, retention, budget)).jobsErased;
    } finally {
      await client.query('select pg_advisory_unlock($1)', [SWEEP_LOCK_ID]);
      unlocked = true;
    }
  } finally {
    client.release(!unlocked);
  }
  return report;
}
