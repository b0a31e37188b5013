/**
 * Batch jobs (issue 17): the OpenAI Batch API at half price for work that can wait. Pure.
 *
 * Design note: a job with `processing: "batch"` is accepted like any job and waits `pending`
 * with no batch. A worker collects such jobs per tenant and model (OpenAI's batches hold one
 * model) into a batch row, in the statement that tags each job with it, so a job is in one batch
 * at most (`flushDecision` says when). The batch then goes through `batchTransition` only:
 * its JSONL input file is uploaded, the batch created at the provider, followed by its webhooks
 * and by polls, and when it ends its output and error files are read and each line reconciles
 * its job (`parseBatchLine`, then the job's own `batch_line` event), once: a job that already
 * ended (cancelled meanwhile, or a line read twice after a crash) refuses the second line.
 */
import { type JobError, assertNever } from './job-state.ts';
import type { ProviderResponse } from './reconcile.ts';

/**
 * A batch's status: Longhaul's own first two (`building`: its jobs chosen, its input file not
 * yet uploaded; `uploaded`: the file is at the provider, the batch not yet created), then the
 * provider's (validating, in_progress, finalizing, completed, failed, expired, cancelling,
 * cancelled).
 */
export const BatchStatus = {
  Building: 'building',
  Uploaded: 'uploaded',
  Validating: 'validating',
  InProgress: 'in_progress',
  Finalizing: 'finalizing',
  Completed: 'completed',
  Failed: 'failed',
  Expired: 'expired',
  Cancelling: 'cancelling',
  Cancelled: 'cancelled',
} as const;
export type BatchStatus = (typeof BatchStatus)[keyof typeof BatchStatus];
export const BATCH_STATUSES = Object.values(BatchStatus) as [BatchStatus, ...BatchStatus[]];
/** Statuses a provider batch never leaves: its output (what there is) can be read. */
export const TERMINAL_BATCH_STATUSES: readonly BatchStatus[] = [BatchStatus.Completed, BatchStatus.Failed, BatchStatus.Expired, BatchStatus.Cancelled];
/** The provider's statuses, as its batch object names them. */
export type ProviderBatchStatus = Exclude<BatchStatus, 'building' | 'uploaded'>;

export function isTerminalBatch(status: BatchStatus): boolean {
  return TERMINAL_BATCH_STATUSES.includes(status);
}

/** Whether the provider knows the batch (it has a provider id). */
export function isBatchAtProvider(status: BatchStatus): boolean {
  return status !== BatchStatus.Building && status !== BatchStatus.Uploaded;
}

export type BatchEvent =
  /** The input file was uploaded (Files API, `purpose: batch`). */
  | { type: 'uploaded'; fileId: string }
  /** `POST /v1/batches` accepted it (or a crashed creator's batch was found by its metadata). */
  | { type: 'created'; providerStatus: ProviderBatchStatus }
  /** A retrieve (poll, or one a webhook asked for) reported this status. */
  | { type: 'observed'; providerStatus: ProviderBatchStatus }
  /** Every job of the batch was cancelled: the batch is to be cancelled at the provider. */
  | { type: 'cancel_requested' }
  /** It could not be sent (the upload or the create refused for good): its jobs fail or go back to wait. */
  | { type: 'submit_failed'; error: JobError };

export type BatchTransition = { ok: true; status: BatchStatus; changed: boolean } | { ok: false; error: JobError };

/** The provider's statuses in their order: a late report never moves a batch back. */
const RANK: Record<BatchStatus, number> = {
  building: 0,
  uploaded: 1,
  validating: 2,
  in_progress: 3,
  finalizing: 4,
  cancelling: 4,
  completed: 5,
  failed: 5,
  expired: 5,
  cancelled: 5,
};

/** The next status of a batch given an event; a refusal for an event that cannot happen from where it is. */
export function batchTransition(batch: { status: BatchStatus }, event: BatchEvent): BatchTransition {
  const from = batch.status;
  const ok = (status: BatchStatus): BatchTransition => ({ ok: true, status, changed: status !== from });
  const refuse = (message: string): BatchTransition => ({ ok: false, error: { code: 'illegal_transition', message } });
  if (isTerminalBatch(from)) {
    // Reports after the end (a duplicate webhook, a late poll) change nothing.
    if (event.type === 'observed' || event.type === 'cancel_requested') return ok(from);
    return refuse(`the batch is already ${from}`);
  }
  switch (event.type) {
    case 'uploaded':
      if (from === BatchStatus.Building) return ok(BatchStatus.Uploaded);
      return from === BatchStatus.Uploaded ? ok(from) : refuse(`a ${from} batch has its file already`);
    case 'created':
      if (from === BatchStatus.Uploaded) return ok(event.providerStatus);
      return isBatchAtProvider(from) ? ok(from) : refuse('a batch is created once its file is uploaded');
    case 'observed': {
      if (!isBatchAtProvider(from)) return refuse(`a ${from} batch is not at the provider yet`);
      const to = event.providerStatus;
      // Once cancelling, only the end counts.
      if (from === BatchStatus.Cancelling && !isTerminalBatch(to)) return ok(from);
      return ok(RANK[to] > RANK[from] || isTerminalBatch(to) ? to : from);
    }
    case 'cancel_requested':
      // Not at the provider yet: nothing to cancel there, the batch ends here.
      if (!isBatchAtProvider(from)) return ok(BatchStatus.Cancelled);
      return ok(from === BatchStatus.Finalizing ? from : BatchStatus.Cancelling);
    case 'submit_failed':
      return isBatchAtProvider(from) ? refuse('the provider has the batch already') : ok(BatchStatus.Failed);
    default:
      return assertNever(event);
  }
}

/** What a flush may hold, from the provider's limits down to the operator's settings. */
export interface BatchLimits {
  /** Jobs per batch (`BATCH_MAX_JOBS`; OpenAI's limit is 50,000 requests). */
  maxJobs: number;
  /** Bytes of its input file (`BATCH_MAX_BYTES`; OpenAI's limit is 200 MB). */
  maxBytes: number;
  /** How long the oldest waiting job may wait before its batch goes out (`BATCH_MAX_WAIT_SECONDS`). */
  maxWaitMs: number;
}

/** OpenAI's own limits for one batch: 50,000 requests, a 200 MB input file. */
export const PROVIDER_BATCH_LIMITS = { maxJobs: 50_000, maxBytes: 200 * 1024 * 1024 } as const;

/** Jobs waiting for a batch, of one tenant and model: how many, their lines' bytes, the oldest's age. */
export interface WaitingGroup {
  count: number;
  bytes: number;
  oldestAgeMs: number;
}

/** Whether a group of waiting jobs goes out now: it fills a batch (by count or bytes), or its oldest has waited long enough. */
export function flushDecision(group: WaitingGroup, limits: BatchLimits): { flush: boolean; reason: 'size' | 'bytes' | 'age' | null } {
  if (group.count === 0) return { flush: false, reason: null };
  if (group.count >= limits.maxJobs) return { flush: true, reason: 'size' };
  if (group.bytes >= limits.maxBytes) return { flush: true, reason: 'bytes' };
  if (group.oldestAgeMs >= limits.maxWaitMs) return { flush: true, reason: 'age' };
  return { flush: false, reason: null };
}

/** One line of a batch's input file: the job's own create body, sent as is (not in background, never streamed). */
export function batchInputLine(jobId: string, body: Record<string, unknown>): string {
  const { background: _background, stream: _stream, ...rest } = body;
  return JSON.stringify({ custom_id: jobId, method: 'POST', url: '/v1/responses', body: rest });
}

/** What one output or error line says about its job: the response it got, or the error that stands for it. */
export type BatchLineResult = { jobId: string; response: ProviderResponse } | { jobId: string; error: JobError };

/**
 * Read one line of a batch's output or error file: `{custom_id, response: {status_code, body}, error}`.
 * A 2xx line carries the job's response; any other (a 4xx/5xx body, or an `error` without a
 * response, e.g. `batch_expired`) the error the job ends with. Null for a line that is not one.
 */
export function parseBatchLine(line: string): BatchLineResult | null {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return null;
  }
  if (!isRecord(record) || typeof record.custom_id !== 'string') return null;
  const jobId = record.custom_id;
  const response = isRecord(record.response) ? record.response : null;
  const status = typeof response?.status_code === 'number' ? response.status_code : null;
  const body = isRecord(response?.body) ? response.body : null;
  if (status !== null && status >= 200 && status < 300 && body && typeof body.id === 'string') return { jobId, response: body as unknown as ProviderResponse };
  const bodyError = isRecord(body?.error) ? body.error : null;
  const lineError = isRecord(record.error) ? record.error : null;
  const source = bodyError ?? lineError;
  const code = typeof source?.code === 'string' && source.code ? source.code : status !== null ? `provider_${status}` : 'batch_line_failed';
  const message = typeof source?.message === 'string' ? source.message : `the batch answered this request with ${status ?? 'no response'}`;
  return { jobId, error: { code, message } };
}

/** The job error for a batch that ended before answering a job: it failed validation, was cancelled or expired. */
export function unansweredError(status: BatchStatus, batchErrors: string | null): JobError {
  if (status === BatchStatus.Expired) return { code: 'batch_expired', message: 'The batch expired (24 h completion window) before this request ran.' };
  if (status === BatchStatus.Cancelled) return { code: 'batch_cancelled', message: 'The batch was cancelled before this request ran.' };
  return { code: 'batch_failed', message: `The batch failed${batchErrors ? `: ${batchErrors}` : '.'}` };
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
