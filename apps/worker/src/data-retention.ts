/**
 * The sweeper's data retention and deletion work (sweeper.ts runs it under its lock):
 * - retention: jobs past their tenant's retention are erased, a bounded batch per statement
 *   (@longhaul/db retention.ts), batch after batch within the sweep's budget;
 * - provider deletes: erased jobs whose stored response the provider has not confirmed deleted
 *   are retried on their backoff schedule (@longhaul/db response-deletion.ts);
 * - tenant erasures (tenant-erasure.ts) share the budget.
 *
 * Bulk erasing competes with live traffic for Postgres: after each batch the sweeper pauses for
 * `pauseFactor` times the batch's duration, so a backlog (a retention turned on over years of
 * jobs) is worked off at a bounded share of the database instead of in one burst.
 */
import { DEFAULT_PROVIDER_DELETE_SCHEDULE, type ProviderDeleteSchedule, claimDueProviderDeletes, eraseJobsPastRetention } from '@longhaul/db';
import { deleteStoredResponse } from '@longhaul/engine';
import { jobLogFields } from '@longhaul/runtime';
import type { RetentionConfig, WorkerContext } from './deps.ts';

const DEFAULT_BATCH_SIZE = 500;
const DEFAULT_BUDGET_MS = 5_000;
const DEFAULT_ADMIN_AUDIT_DAYS = 365;
/** Provider deletes retried per sweep, and in flight at once. */
const PROVIDER_DELETES_PER_SWEEP = 200;
const PROVIDER_DELETE_CONCURRENCY = 8;

export interface RetentionSettings {
  defaultDays: number;
  batchSize: number;
  budgetMs: number;
  pauseFactor: number;
  providerDeletes: ProviderDeleteSchedule;
  adminAuditDays: number;
}

export function retentionSettings(config: RetentionConfig = {}): RetentionSettings {
  return {
    defaultDays: config.defaultDays ?? 0,
    batchSize: config.batchSize ?? DEFAULT_BATCH_SIZE,
    budgetMs: config.budgetMs ?? DEFAULT_BUDGET_MS,
    pauseFactor: config.pauseFactor ?? 1,
    providerDeletes: { ...DEFAULT_PROVIDER_DELETE_SCHEDULE, ...config.providerDeletes },
    adminAuditDays: config.adminAuditDays ?? DEFAULT_ADMIN_AUDIT_DAYS,
  };
}

/** Time left in a sweep's budget for bulk erasing, and the pause after each batch. */
export interface Budget {
  left(): boolean;
  /** Wait after a batch that took `ms`; false when the budget is spent. */
  pauseAfter(ms: number): Promise<boolean>;
}

export function sweepBudget(settings: RetentionSettings): Budget {
  const deadline = performance.now() + settings.budgetMs;
  const left = () => performance.now() < deadline;
  return {
    left,
    pauseAfter: async (ms) => {
      const pause = Math.min(ms * settings.pauseFactor, deadline - performance.now());
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
      return left();
    },
  };
}

export interface RetentionReport {
  jobsErased: number;
  batches: number;
  durationMs: number;
}

/** Erase jobs past retention, batch after batch, until none is left or the budget is spent. */
export async function sweepRetention(ctx: WorkerContext, settings: RetentionSettings, budget: Budget): Promise<RetentionReport> {
  const started = performance.now();
  const report: RetentionReport = { jobsErased: 0, batches: 0, durationMs: 0 };
  while (budget.left()) {
    const batchStarted = performance.now();
    const erased = await eraseJobsPastRetention(ctx.db.db, { now: ctx.clock(), defaultDays: settings.defaultDays, limit: settings.batchSize });
    report.batches += 1;
    report.jobsErased += erased;
    if (erased < settings.batchSize) break;
    if (!(await budget.pauseAfter(performance.now() - batchStarted))) break;
  }
  report.durationMs = Math.round(performance.now() - started);
  if (report.jobsErased > 0) ctx.logger.info({ jobs_erased: report.jobsErased, batches: report.batches, duration_ms: report.durationMs }, 'retention: job content erased');
  return report;
}

export interface ProviderDeleteReport {
  attempted: number;
  deleted: number;
  failed: number;
  abandoned: number;
}

/** Retry the provider deletes that are due. */
export async function retryProviderDeletes(ctx: WorkerContext, settings: RetentionSettings): Promise<ProviderDeleteReport> {
  const due = await claimDueProviderDeletes(ctx.db.db, ctx.clock(), settings.providerDeletes, PROVIDER_DELETES_PER_SWEEP);
  const report: ProviderDeleteReport = { attempted: due.length, deleted: 0, failed: 0, abandoned: 0 };
  await inParallel(due, PROVIDER_DELETE_CONCURRENCY, async (job) => {
    const log = ctx.logger.child(jobLogFields(job));
    const outcome = await deleteStoredResponse(deletionDeps(ctx), job, log);
    if (outcome !== 'failed') {
      report.deleted += 1;
      return;
    }
    report.failed += 1;
    if (job.lastAttempt) {
      report.abandoned += 1;
      log.error(
        { code: 'provider_delete_abandoned', reason: job.erasedReason },
        'gave up deleting the stored response at the provider; it stays there until the provider retention ends',
      );
    }
  });
  if (report.attempted > 0) ctx.logger.info({ ...report }, 'provider deletes retried');
  return report;
}

/** What @longhaul/engine's deletions need, from the worker's context. */
export function deletionDeps(ctx: WorkerContext) {
  return { db: ctx.db.db, provider: ctx.provider, logger: ctx.logger, clock: ctx.clock };
}

/** Run `work` over `items`, at most `limit` at once. */
export async function inParallel<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++] as T);
  });
  await Promise.all(lanes);
}
