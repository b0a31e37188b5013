/**
 * Working through a tenant's offboarding erase (@longhaul/db tenant-erasure.ts), batch after
 * batch within the sweep's budget. Each batch, in one transaction with the erasure's row locked:
 * revoke the tenant's API keys and disable its webhook endpoints (again every batch: a key made
 * meanwhile goes too), walk the next jobs: request the cancel of active ones (the API's cancel
 * path: the guarded `cancel_requested` transition, then `afterJobChange` dispatches the cancel
 * work item) and erase finished ones with reason `tenant`, then record the cursor and counts.
 * After the commit: the cancels' work items and the provider deletes of the jobs just erased
 * (a failure is retried by the sweeper's provider-delete retries, and counted when it succeeds).
 *
 * When the walk has reached the end, the jobs it left behind are done (cancelled jobs that have
 * since finished), the tenant's files and conversations are deleted at the provider, and the erasure completes once
 * no job of the tenant is active and no provider delete is still to be retried. Provider deletes
 * given up on (and files or conversations still there after the give-up period) are its `providerDeleteFailures`.
 */
import { isTerminal } from '@longhaul/core';
import {
  type ChangeResult,
  type Database,
  type ErasedJob,
  type TenantErasure,
  applyJobEvent,
  completeTenantErasure,
  countActiveTenantJobs,
  disableTenantEndpoints,
  eraseTenantJobs,
  liveTenantObjects,
  lockRunningErasure,
  markErasedTenantObject,
  nextTenantJobs,
  recordErasureProgress,
  revokeTenantApiKeys,
  runningTenantErasures,
  tenantProviderDeleteState,
  tenantStragglers,
} from '@longhaul/db';
import { deleteStoredObject, deleteStoredResponse } from '@longhaul/engine';
import { jobLogFields } from '@longhaul/runtime';
import { type Budget, type RetentionSettings, deletionDeps, inParallel } from './data-retention.ts';
import type { WorkerContext } from './deps.ts';

/** Erasures worked on per sweep (oldest first). */
const ERASURES_PER_SWEEP = 10;
const PROVIDER_CONCURRENCY = 8;

export interface TenantErasureReport {
  batches: number;
  completed: number;
}

type Step = 'progress' | 'waiting' | 'completed' | 'busy';

export async function advanceTenantErasures(ctx: WorkerContext, settings: RetentionSettings, budget: Budget): Promise<TenantErasureReport> {
  const report: TenantErasureReport = { batches: 0, completed: 0 };
  for (const erasure of await runningTenantErasures(ctx.db.db, ERASURES_PER_SWEEP)) {
    while (budget.left()) {
      const started = performance.now();
      const step = await erasureStep(ctx, settings, erasure);
      report.batches += 1;
      if (step === 'completed') report.completed += 1;
      if (step !== 'progress') break;
      if (!(await budget.pauseAfter(performance.now() - started))) break;
    }
  }
  return report;
}

interface BatchResult {
  erasure: TenantErasure;
  cancels: ChangeResult[];
  erased: ErasedJob[];
  /** Jobs the batch found to work on (0: the walk is at its end and nothing was left behind). */
  found: number;
}

/** One batch of the erasure; `progress` when there may be more to do at once. */
async function erasureStep(ctx: WorkerContext, settings: RetentionSettings, row: TenantErasure): Promise<Step> {
  const { tenantId } = row;
  const log = ctx.logger.child({ tenant_id: tenantId, erasure_id: row.id });
  const batch = await ctx.db.db.transaction(async (tx): Promise<BatchResult | null> => {
    const db = tx as unknown as Database;
    const now = ctx.clock();
    const erasure = await lockRunningErasure(db, row.id);
    if (!erasure) return null;
    const keysRevoked = await revokeTenantApiKeys(db, tenantId, now);
    const endpointsDisabled = await disableTenantEndpoints(db, tenantId, now);
    const walked = await nextTenantJobs(db, tenantId, erasure.cursor, settings.batchSize);
    const { toCancel, toErase } =
      walked.length > 0
        ? { toCancel: walked.filter((j) => !isTerminal(j.status) && j.cancelRequestedAt === null), toErase: walked.filter((j) => j.finishedAt !== null) }
        : await tenantStragglers(db, tenantId, settings.batchSize);
    const cancels: ChangeResult[] = [];
    for (const job of toCancel) {
      const result = await applyJobEvent(db, job, { type: 'cancel_requested' }, { source: 'sweeper', now, details: { reason: 'tenant_erased' } }, { nextCheckAt: now });
      if (result.ok && result.changed) cancels.push(result);
    }
    const erased = await eraseTenantJobs(
      db,
      tenantId,
      toErase.map((j) => j.id),
      now,
    );
    const counts = await recordErasureProgress(
      db,
      erasure,
      { cursor: walked.at(-1)?.id, add: { keysRevoked, endpointsDisabled, jobsCancelled: cancels.length, jobsErased: toErase.length } },
      now,
    );
    return { erasure: { ...erasure, counts }, cancels, erased, found: walked.length + toCancel.length + toErase.length };
  });
  if (!batch) return 'busy';

  // What cannot be in the transaction. A lost cancel work item is dispatched again by the sweeper
  // (the job is overdue); a failed provider delete is retried from the index.
  for (const cancel of batch.cancels) {
    await ctx.jobEffects
      .afterJobChange(cancel, { type: 'cancel_requested' })
      .catch((err: unknown) => log.warn({ err, code: 'dispatch_deferred', job_id: cancel.ok ? cancel.job.id : null }, 'cancel work item not dispatched; the sweeper will'));
  }
  await inParallel(
    batch.erased.filter((j) => j.response_id !== null && j.provider_deleted_at === null && j.erased_reason === 'tenant'),
    PROVIDER_CONCURRENCY,
    async (j) => {
      const job = { id: j.id, tenantId: j.tenant_id, responseId: j.response_id as string, providerKeyId: j.provider_key_id };
      await deleteStoredResponse(deletionDeps(ctx), job, log.child(jobLogFields(job)));
    },
  );
  if (batch.found > 0) {
    log.info({ counts: batch.erasure.counts, cursor: batch.erasure.cursor }, 'tenant erasure: batch done');
    return 'progress';
  }
  return finishErasure(ctx, settings, batch.erasure, log);
}

/** The walk is done and nothing is left behind: files and conversations, then completion once nothing is pending. */
async function finishErasure(ctx: WorkerContext, settings: RetentionSettings, erasure: TenantErasure, log: WorkerContext['logger']): Promise<Step> {
  const db = ctx.db.db;
  const now = ctx.clock();
  const givingUp = now.getTime() - erasure.createdAt.getTime() > settings.providerDeletes.giveUpAfterMs;
  let objectsLeft = 0;
  if (!givingUp) {
    const live = await liveTenantObjects(db, erasure.tenantId, settings.batchSize);
    await inParallel(live, PROVIDER_CONCURRENCY, async (object) => {
      const outcome = await deleteStoredObject(ctx, object, log);
      if (outcome === 'failed') objectsLeft += 1;
      else await markErasedTenantObject(db, erasure.tenantId, object, ctx.clock());
    });
    if (objectsLeft > 0) return 'waiting';
    if (live.length > 0) return 'progress';
  }
  if ((await countActiveTenantJobs(db, erasure.tenantId)) > 0) return 'waiting';
  const deletes = await tenantProviderDeleteState(db, erasure.tenantId, now, settings.providerDeletes);
  if (deletes.pending > 0) return 'waiting';
  const abandonedObjects = givingUp ? (await liveTenantObjects(db, erasure.tenantId, Number.MAX_SAFE_INTEGER)).length : 0;
  const counts = await db.transaction(async (tx) => {
    const locked = await lockRunningErasure(tx as unknown as Database, erasure.id);
    if (!locked) return null;
    return completeTenantErasure(tx as unknown as Database, locked, deletes.abandoned + abandonedObjects, now);
  });
  if (!counts) return 'busy';
  const done = { counts, duration_ms: now.getTime() - erasure.createdAt.getTime() };
  if (counts.providerDeleteFailures > 0) log.warn({ ...done, code: 'tenant_erasure_provider_failures' }, 'tenant erasure completed; some provider deletes were given up on');
  else log.info(done, 'tenant erasure completed');
  return 'completed';
}
