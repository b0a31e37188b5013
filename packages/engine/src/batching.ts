/**
 * Batch jobs' worker loop (@longhaul/core batch.ts): each tick collects waiting batch jobs into
 * batches, then works every batch that is due, one step per batch state:
 *
 *   building   → its jobs' lines uploaded as a JSONL file (Files API, purpose `batch`)  → uploaded
 *   uploaded   → POST /v1/batches (once: a crashed create is found again by its metadata)
 *   at the provider → retrieved (polled every `pollMs`; a `batch.*` webhook makes it due at once)
 *   ended      → its output and error files read, each line applied to its job (the job's own
 *                guarded `batch_line` change, so a line is applied once), the jobs it did not
 *                answer failed or sent again (`expiredPolicy`), the batch marked reconciled.
 *
 * Where a batch's state changes: @longhaul/db `changeBatchState`; where a job's: `reconcileJob`
 * / `applyJobEvent`, followed by `afterJobChange` as everywhere else. A worker killed at any step
 * leaves the batch due again when its lease runs out; what it may leave behind at the provider
 * is an input file uploaded twice, or (if the create's answer was lost) a batch the metadata
 * search finds again: a second batch is created only if that search misses it (see the README).
 */
import {
  type BatchLimits,
  type BatchStatus,
  type JobError,
  type PriceTable,
  type ProviderBatchStatus,
  JOB_ID_METADATA_KEY,
  JobStatus,
  batchInputLine,
  flushDecision,
  isTerminalBatch,
  parseBatchLine,
  unansweredError,
} from '@longhaul/core';
import {
  type Batch,
  type Database,
  type Job,
  applyJobEvent,
  batchJobs,
  changeBatchState,
  changeJobState,
  claimBatch,
  leaseDueBatch,
  reconcileJob,
  waitingBatchGroups,
} from '@longhaul/db';
import { type Provider, type ProviderBatch, ProviderError } from '@longhaul/provider';
import type { Logger } from '@longhaul/runtime';
import type { JobEffects } from './job-effects.ts';

/** How soon a batch step that failed (a provider error, a timeout) is tried again, at most. */
const STEP_RETRY_MS = 10_000;

/** Jobs whose lines are applied in one transaction while a batch is reconciled. */
const RECONCILE_CHUNK = 100;

/** A job's line applied in a chunk's transaction: the change, and what follows it once committed. */
interface LineChange {
  result: Awaited<ReturnType<typeof reconcileJob>>;
  follow: { type: 'batch_line' | 'submit_failed' } | null;
  applied: boolean;
}

/** Error codes of the lines an expired or cancelled batch did not run (OpenAI's): the request never ran. */
const UNRUN_LINE_CODES = ['batch_expired', 'batch_cancelled'];

/** The metadata key naming a provider batch's Longhaul batch: a create whose answer was lost is found by it. */
const BATCH_ID_METADATA_KEY = 'longhaul_batch_id';

export interface BatchingConfig {
  limits: BatchLimits;
  /** How often a batch at the provider is retrieved when no webhook says it moved (`BATCH_POLL_SECONDS`). */
  pollMs: number;
  /** How long a worker holds a batch it works on; another takes it after that (it died). */
  leaseMs: number;
  /** What becomes of the jobs an expired or cancelled batch did not answer: `resubmit` (into a new batch) or `fail`. */
  expiredPolicy: 'resubmit' | 'fail';
  /** Job changes applied at once while reconciling a batch's lines. */
  reconcileConcurrency: number;
  /** Batches worked per tick at most (the rest wait for the next tick). */
  batchesPerTick: number;
  /**
   * Delete a reconciled batch's input, output and error files at the provider (`BATCH_DELETE_FILES`):
   * every job has its line in Postgres by then, and the files count against the organization's storage.
   */
  deleteFiles: boolean;
}

export interface BatchingDeps {
  db: Database;
  provider: Provider;
  jobEffects: JobEffects;
  logger: Logger;
  clock: () => Date;
  prices?: PriceTable;
  config: BatchingConfig;
}

export interface BatchTickReport {
  /** Batches collected this tick. */
  collected: number;
  /** Batches worked on (one step each). */
  worked: number;
  /** Jobs whose line (or want of one) was applied. */
  jobsReconciled: number;
}

export function createBatching(deps: BatchingDeps) {
  const { db, provider, jobEffects, logger, clock, config } = deps;

  /** Collect every group that should go out now into batches. */
  async function collect(): Promise<number> {
    let collected = 0;
    for (const group of await waitingBatchGroups(db)) {
      let waiting = group;
      for (;;) {
        const decision = flushDecision({ count: waiting.count, bytes: waiting.bytes, oldestAgeMs: clock().getTime() - waiting.oldestAt.getTime() }, config.limits);
        if (!decision.flush) break;
        const claimed = await claimBatch(db, group, config.limits, clock());
        if (!claimed) break;
        collected += 1;
        logger.info(
          { batch_id: claimed.batch.id, tenant_id: group.tenantId, model: group.model, jobs: claimed.jobIds.length, bytes: claimed.batch.bytes, reason: decision.reason },
          'batch collected',
        );
        // What is left of the group: as large a batch again, or the rest, which waits unless it is full too.
        const left = waiting.count - claimed.jobIds.length;
        if (left <= 0) break;
        waiting = { ...waiting, count: left, bytes: Math.max(0, waiting.bytes - claimed.batch.bytes) };
      }
    }
    return collected;
  }

  async function tick(): Promise<BatchTickReport> {
    const report: BatchTickReport = { collected: await collect(), worked: 0, jobsReconciled: 0 };
    for (let i = 0; i < config.batchesPerTick; i++) {
      const batch = await leaseDueBatch(db, clock(), config.leaseMs);
      if (!batch) break;
      report.worked += 1;
      const log = logger.child({ batch_id: batch.id, tenant_id: batch.tenantId, provider_batch_id: batch.providerBatchId });
      try {
        report.jobsReconciled += await work(batch, log);
      } catch (err) {
        // Tried again soon (a poll interval at most); if Postgres is what failed, the lease runs out instead.
        const retryAt = new Date(clock().getTime() + Math.min(config.pollMs, STEP_RETRY_MS));
        await changeBatchState(db, batch.id, null, { nextCheckAt: retryAt }, clock(), {}, { leasedUntil: batch.nextCheckAt }).catch(() => {});
        log.warn(
          { err, code: err instanceof ProviderError ? err.code : 'batch_step_failed', status: batch.status, retry_at: retryAt.toISOString() },
          'batch step failed; tried again later',
        );
      }
    }
    return report;
  }

  /** One step of a batch, by its state; returns the jobs reconciled. */
  async function work(batch: Batch, log: Logger): Promise<number> {
    if (batch.status === 'building') return upload(batch, log);
    if (batch.status === 'uploaded') return create(batch, log);
    if (!isTerminalBatch(batch.status)) return follow(batch, log);
    return reconcile(batch, log);
  }

  async function upload(batch: Batch, log: Logger): Promise<number> {
    const jobs = (await batchJobs(db, batch.id)).filter((j) => j.status === JobStatus.Pending);
    // Every job was cancelled before the batch went out: nothing to send.
    if (jobs.length === 0) {
      await changeBatchState(db, batch.id, { type: 'cancel_requested' }, { reconciledAt: clock() }, clock(), { reason: 'no job left' });
      return 0;
    }
    const lines = jobs.map((j) => batchInputLine(j.id, { ...j.request, metadata: { ...j.metadata, [JOB_ID_METADATA_KEY]: j.id } }));
    const data = new TextEncoder().encode(`${lines.join('\n')}\n`);
    let uploaded: Awaited<ReturnType<Provider['createFile']>>;
    try {
      uploaded = await provider.createFile({ data, filename: `${batch.id}.jsonl`, contentType: 'application/jsonl' }, 'batch');
    } catch (err) {
      if (err instanceof ProviderError && err.kind === 'rejected') return sendFailed(batch, { code: err.code ?? 'batch_upload_rejected', message: err.message }, log);
      throw err;
    }
    await changeBatchState(
      db,
      batch.id,
      { type: 'uploaded', fileId: uploaded.file.id },
      { inputFileId: uploaded.file.id, providerKeyId: uploaded.keyId, nextCheckAt: clock() },
      clock(),
      {
        file_id: uploaded.file.id,
        lines: jobs.length,
        bytes: data.byteLength,
      },
    );
    log.info({ file_id: uploaded.file.id, lines: jobs.length, bytes: data.byteLength }, 'batch input uploaded');
    return 0;
  }

  async function create(batch: Batch, log: Logger): Promise<number> {
    const context = { keyId: batch.providerKeyId ?? undefined };
    // An earlier create may have reached the provider and its answer been lost (the worker died):
    // the provider's batches carry our id in their metadata; the newest page is searched first.
    if (batch.createAttempts > 0) {
      const found = (await provider.listBatches({ limit: 100 }, context)).data.find((b) => b.metadata?.[BATCH_ID_METADATA_KEY] === batch.id);
      if (found) {
        log.warn({ provider_batch_id: found.id, code: 'batch_create_recovered' }, 'found the batch an interrupted create made');
        return created(batch, found, log);
      }
    }
    // Counted before the call: a crash after it leaves the count saying a batch may exist.
    await changeBatchState(db, batch.id, null, { createAttempts: batch.createAttempts + 1 }, clock());
    let made: ProviderBatch;
    try {
      made = await provider.createBatch(
        { input_file_id: batch.inputFileId!, endpoint: '/v1/responses', completion_window: '24h', metadata: { [BATCH_ID_METADATA_KEY]: batch.id } },
        context,
      );
    } catch (err) {
      if (err instanceof ProviderError && err.kind === 'rejected') return sendFailed(batch, { code: err.code ?? 'batch_create_rejected', message: err.message }, log);
      throw err;
    }
    return created(batch, made, log);
  }

  async function created(batch: Batch, made: ProviderBatch, log: Logger): Promise<number> {
    const now = clock();
    await changeBatchState(
      db,
      batch.id,
      { type: 'created', providerStatus: made.status },
      { providerBatchId: made.id, submittedAt: now, nextCheckAt: new Date(now.getTime() + config.pollMs), requestCounts: made.request_counts ?? null },
      now,
      { provider_batch_id: made.id },
      { leasedUntil: batch.nextCheckAt },
    );
    log.info({ provider_batch_id: made.id, status: made.status }, 'batch created at the provider');
    return 0;
  }

  /** Read the batch at the provider; cancel it there once none of its jobs wants its line any more. */
  async function follow(batch: Batch, log: Logger): Promise<number> {
    const context = { keyId: batch.providerKeyId ?? undefined };
    const jobs = await batchJobs(db, batch.id);
    if (batch.status !== 'cancelling' && jobs.every((j) => j.status !== JobStatus.Pending)) {
      await changeBatchState(db, batch.id, { type: 'cancel_requested' }, {}, clock(), { reason: 'every job cancelled' });
      await provider.cancelBatch(batch.providerBatchId!, context);
      log.info({ code: 'batch_cancelled' }, 'every job of the batch was cancelled: cancelling it at the provider');
    }
    const seen = await provider.retrieveBatch(batch.providerBatchId!, context);
    const now = clock();
    const ended = isTerminalBatch(seen.status as BatchStatus);
    const change = await changeBatchState(
      db,
      batch.id,
      { type: 'observed', providerStatus: seen.status as ProviderBatchStatus },
      {
        requestCounts: seen.request_counts ?? null,
        outputFileId: seen.output_file_id ?? null,
        errorFileId: seen.error_file_id ?? null,
        ...(seen.status === 'failed' ? { error: providerBatchError(seen) } : {}),
        // Ended: reconciled right away (below); else looked at again after the poll interval.
        nextCheckAt: ended ? now : new Date(now.getTime() + config.pollMs),
      },
      now,
      { request_counts: seen.request_counts ?? null },
      { leasedUntil: batch.nextCheckAt },
    );
    if (change.ok && change.changed) log.info({ status: change.batch.status, request_counts: seen.request_counts }, 'batch moved');
    return change.ok && ended ? reconcile(change.batch, log) : 0;
  }

  /** Apply every line of an ended batch to its job, once; then what became of the jobs without one. */
  async function reconcile(batch: Batch, log: Logger): Promise<number> {
    const context = { keyId: batch.providerKeyId ?? undefined };
    const lines = new Map<string, ReturnType<typeof parseBatchLine>>();
    let unreadable = 0;
    for (const fileId of [batch.outputFileId, batch.errorFileId]) {
      if (!fileId) continue;
      for (const raw of (await provider.fileContent(fileId, context)).split('\n')) {
        if (raw.trim() === '') continue;
        const line = parseBatchLine(raw);
        if (line) lines.set(line.jobId, line);
        else unreadable += 1;
      }
    }
    const jobs = (await batchJobs(db, batch.id)).filter((j) => j.status === JobStatus.Pending);
    let applied = 0;
    // Lines are applied RECONCILE_CHUNK jobs to a transaction (each job's change its own guarded
    // statement in it), and what follows each change once its chunk has committed.
    const chunks = Array.from({ length: Math.ceil(jobs.length / RECONCILE_CHUNK) }, (_, i) => jobs.slice(i * RECONCILE_CHUNK, (i + 1) * RECONCILE_CHUNK));
    await inParallel(chunks, config.reconcileConcurrency, async (chunk) => {
      const changes = await db.transaction(async (tx) => {
        const done: LineChange[] = [];
        for (const job of chunk) done.push(await applyLine(tx as unknown as Database, batch, job, lines.get(job.id) ?? null));
        return done;
      });
      for (const change of changes) {
        if (change.follow) await jobEffects.afterJobChange(change.result, change.follow);
        if (change.applied) applied += 1;
      }
    });
    await changeBatchState(db, batch.id, null, { reconciledAt: clock(), nextCheckAt: null }, clock());
    log.info({ status: batch.status, lines: lines.size, jobs: jobs.length, applied, unreadable, code: unreadable > 0 ? 'batch_lines_unreadable' : undefined }, 'batch reconciled');
    if (config.deleteFiles) await deleteFiles(batch, log);
    return applied;
  }

  /**
   * Best effort, after the batch is reconciled: a file left behind (a failed delete, a worker
   * killed in between) costs storage, never a job; the provider reports a gone file as not found.
   */
  async function deleteFiles(batch: Batch, log: Logger): Promise<void> {
    const context = { keyId: batch.providerKeyId ?? undefined };
    for (const fileId of [batch.inputFileId, batch.outputFileId, batch.errorFileId]) {
      if (!fileId) continue;
      await provider.deleteFile(fileId, context).catch((err: unknown) => {
        if (err instanceof ProviderError && err.kind === 'not_found') return;
        log.warn({ err, file_id: fileId, code: 'batch_file_delete_failed' }, 'could not delete a reconciled batch file at the provider');
      });
    }
  }

  /**
   * One job's line (or its want of one), through the job's own guarded change, in `tx`; what
   * follows the change (`follow`) is for after the commit. `applied` false: the job had moved on.
   */
  async function applyLine(tx: Database, batch: Batch, job: Job, line: ReturnType<typeof parseBatchLine>): Promise<LineChange> {
    const now = clock();
    const details = { batch_id: batch.id, provider_batch_id: batch.providerBatchId };
    if (line && 'response' in line) {
      const result = await reconcileJob(tx, job, line.response, { source: 'batch', now, prices: deps.prices, via: 'batch_line', details });
      return { result, follow: { type: 'batch_line' }, applied: result.ok && result.changed };
    }
    // An expired (or cancelled) batch reports the requests it never ran as error lines of their own.
    const unanswered = !line || ('error' in line && UNRUN_LINE_CODES.includes(line.error.code));
    if (unanswered && deps.config.expiredPolicy === 'resubmit' && (batch.status === 'expired' || batch.status === 'cancelled') && job.cancelRequestedAt === null) {
      // Sent again in a later batch: the job waits for one again (a change of its batch, not of its status).
      const result = await changeJobState(tx, job, { source: 'batch', now, details }, (j) =>
        j.status === JobStatus.Pending
          ? { ok: true, status: j.status, changed: false, fields: { batchId: null } }
          : { ok: false, error: { code: 'illegal_transition', message: `a ${j.status} job is not waiting for a batch` } },
      );
      return { result, follow: null, applied: result.ok };
    }
    const error: JobError = line && 'error' in line ? line.error : unansweredError(batch.status, batch.error?.message ?? null);
    const result = await applyJobEvent(tx, job, { type: 'submit_failed', error }, { source: 'batch', now, details }, { error });
    return { result, follow: { type: 'submit_failed' }, applied: result.ok && result.changed };
  }

  /** The batch could not be sent (the provider refused its file or its create): its jobs fail with why. */
  async function sendFailed(batch: Batch, error: JobError, log: Logger): Promise<number> {
    await changeBatchState(db, batch.id, { type: 'submit_failed', error }, { error, nextCheckAt: clock() }, clock(), { code: error.code });
    log.warn({ code: error.code, err: error.message }, 'the provider refused the batch');
    const failed = await changeBatchState(db, batch.id, null, {}, clock());
    return failed.ok ? reconcile(failed.batch, log) : 0;
  }

  return { tick, collect };
}

/** What a failed batch's `errors` say, in one line. */
function providerBatchError(batch: ProviderBatch): JobError {
  const errors = batch.errors?.data ?? [];
  const message = errors.length
    ? errors
        .slice(0, 5)
        .map((e) => `${e.line ? `line ${e.line}: ` : ''}${e.code ?? 'error'}${e.message ? ` (${e.message})` : ''}`)
        .join('; ')
    : 'the provider failed the batch';
  return { code: errors[0]?.code ?? 'batch_failed', message };
}

/** Run `fn` over `items`, at most `limit` at once. */
async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
