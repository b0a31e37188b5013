/**
 * The model of one simulated batch (`batch_…`) and its lazily derived state, as responses.ts does
 * for responses: nothing advances a batch, its status is a pure function of the clock.
 *
 * A batch is `validating` until `inProgressAtMs`, then either `failed` (its input did not validate,
 * or `sim_batch_outcome: "failed"`) or `in_progress` while its lines finish one after another,
 * evenly spread up to `finalizingAtMs`, then `finalizing` until `endsAtMs` and `completed`. A batch
 * planned to expire is `expired` from `expiredAtMs` on, with only the lines finished by then
 * executed. A cancel (`cancellingAtMs`) overrides all of that: `cancelling`, then `cancelled` at
 * `cancelledAtMs`, with the lines finished before the cancel executed. Every line's answer is fixed
 * at creation, so reads never compute twice differently, and terminal states are sticky by
 * construction (a cancel is refused once the batch is terminal).
 */
import { assertNever } from './responses.ts';

export const BATCH_STATUSES = ['validating', 'failed', 'in_progress', 'finalizing', 'completed', 'expired', 'cancelling', 'cancelled'] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];
export type BatchTerminalStatus = Extract<BatchStatus, 'completed' | 'failed' | 'expired' | 'cancelled'>;

/** Shares of `batch_duration_ms` spent validating and finalizing; the rest is in_progress. */
export const VALIDATING_SHARE = 0.05;
export const FINALIZING_SHARE = 0.1;
/** A cancel takes this share of `batch_duration_ms` (at OpenAI up to 10 minutes) to become `cancelled`. */
export const CANCELLING_SHARE = 0.05;

export function isBatchTerminal(status: BatchStatus): status is BatchTerminalStatus {
  return status === 'completed' || status === 'failed' || status === 'expired' || status === 'cancelled';
}

/** One entry of `Batch.errors.data` (the spec's `BatchError`). */
export interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

/** A line's fixed answer: what `/v1/responses` answered it, or (expired, cancelled) why it never ran. */
export interface LineAnswer {
  statusCode: number;
  requestId: string;
  body: Record<string, unknown>;
}

export interface BatchLine {
  /** `batch_req_…`: the id of this line's output record. */
  id: string;
  customId: string;
  /** When the line finishes (simulator clock). */
  doneAtMs: number;
  answer: LineAnswer;
}

export interface SimBatch {
  id: string;
  endpoint: string;
  inputFileId: string;
  completionWindow: string;
  metadata: Record<string, string> | null;
  /** The model of the first line, once validated. */
  model: string | undefined;
  createdAtMs: number;
  inProgressAtMs: number;
  finalizingAtMs: number;
  endsAtMs: number;
  expiresAtMs: number;
  /** What the batch ends as unless cancelled. */
  plan: 'completed' | 'failed' | 'expired';
  /** When an `expired` plan expires. */
  expiredAtMs: number | null;
  /** Validation errors of a `failed` plan. */
  errors: BatchError[];
  lines: BatchLine[];
  cancellingAtMs: number | null;
  cancelledAtMs: number | null;
  /** `output_expires_after.seconds` in ms: how long the output and error files live; null: kept. */
  outputExpiresAfterMs: number | null;
  outputFileId: string | null;
  errorFileId: string | null;
  /** Whether the terminal webhook has been emitted and the result files written (at most once). */
  settled: boolean;
}

export function batchStatusAt(batch: SimBatch, now: number): BatchStatus {
  if (batch.cancellingAtMs !== null && batch.cancelledAtMs !== null) return now < batch.cancelledAtMs ? 'cancelling' : 'cancelled';
  if (now < batch.inProgressAtMs) return 'validating';
  switch (batch.plan) {
    case 'failed':
      return 'failed';
    case 'expired':
      return now < (batch.expiredAtMs as number) ? 'in_progress' : 'expired';
    case 'completed':
      if (now < batch.finalizingAtMs) return 'in_progress';
      return now < batch.endsAtMs ? 'finalizing' : 'completed';
    default:
      return assertNever(batch.plan);
  }
}

/** When the batch reaches (or reached) its terminal state, as things stand now. */
export function batchTerminalAt(batch: SimBatch): number {
  if (batch.cancelledAtMs !== null) return batch.cancelledAtMs;
  if (batch.plan === 'failed') return batch.inProgressAtMs;
  if (batch.plan === 'expired') return batch.expiredAtMs as number;
  return batch.endsAtMs;
}

/** The lines executed by `now`: none of a failed batch, and none finished after a cancel or the expiry. */
export function executedLines(batch: SimBatch, now: number): BatchLine[] {
  if (batch.plan === 'failed' || now < batch.inProgressAtMs) return [];
  let cutoff = now;
  if (batch.cancellingAtMs !== null) cutoff = Math.min(cutoff, batch.cancellingAtMs);
  if (batch.plan === 'expired') cutoff = Math.min(cutoff, batch.expiredAtMs as number);
  return batch.lines.filter((line) => line.doneAtMs <= cutoff);
}

export function isSuccess(answer: LineAnswer): boolean {
  return answer.statusCode >= 200 && answer.statusCode < 300;
}

const seconds = (ms: number): number => Math.floor(ms / 1000);

/**
 * The OpenAI Batch object as of `now`. Timestamps, files and errors not (yet) set are left out
 * rather than sent as null: the spec's `Batch` declares them non-nullable and the official SDK's
 * type has them optional.
 */
export function renderBatch(batch: SimBatch, now: number): Record<string, unknown> {
  const status = batchStatusAt(batch, now);
  const executed = executedLines(batch, now);
  const completed = executed.filter((line) => isSuccess(line.answer)).length;
  const body: Record<string, unknown> = {
    id: batch.id,
    object: 'batch',
    endpoint: batch.endpoint,
    input_file_id: batch.inputFileId,
    completion_window: batch.completionWindow,
    status,
    created_at: seconds(batch.createdAtMs),
    expires_at: seconds(batch.expiresAtMs),
    request_counts: { total: status === 'validating' ? 0 : batch.lines.length, completed, failed: executed.length - completed },
    metadata: batch.metadata,
  };
  if (batch.model !== undefined) body['model'] = batch.model;
  if (batch.errors.length > 0 && now >= batch.inProgressAtMs) body['errors'] = { object: 'list', data: batch.errors };
  const at = (key: string, ms: number | null, reached: boolean): void => {
    if (ms !== null && reached && now >= ms) body[key] = seconds(ms);
  };
  at('in_progress_at', batch.inProgressAtMs, batch.plan !== 'failed' && (batch.cancellingAtMs === null || batch.cancellingAtMs >= batch.inProgressAtMs));
  at('failed_at', batch.inProgressAtMs, batch.plan === 'failed' && batch.cancellingAtMs === null);
  at('finalizing_at', batch.finalizingAtMs, batch.plan === 'completed' && (batch.cancellingAtMs === null || batch.cancellingAtMs >= batch.finalizingAtMs));
  at('completed_at', batch.endsAtMs, status === 'completed');
  at('expired_at', batch.expiredAtMs, status === 'expired');
  at('cancelling_at', batch.cancellingAtMs, true);
  at('cancelled_at', batch.cancelledAtMs, status === 'cancelled');
  if (batch.outputFileId !== null) body['output_file_id'] = batch.outputFileId;
  if (batch.errorFileId !== null) body['error_file_id'] = batch.errorFileId;
  const usage = sumUsage(executed);
  if (usage !== null) body['usage'] = usage;
  return body;
}

/** Token usage over the executed lines that produced a response, in the spec's `Batch.usage` shape. */
function sumUsage(lines: BatchLine[]): Record<string, unknown> | null {
  let input = 0;
  let cached = 0;
  let output = 0;
  let reasoning = 0;
  let any = false;
  for (const line of lines) {
    const usage = line.answer.body['usage'] as
      | { input_tokens: number; input_tokens_details?: { cached_tokens?: number }; output_tokens: number; output_tokens_details?: { reasoning_tokens?: number } }
      | undefined;
    if (!isSuccess(line.answer) || usage === undefined) continue;
    any = true;
    input += usage.input_tokens;
    cached += usage.input_tokens_details?.cached_tokens ?? 0;
    output += usage.output_tokens;
    reasoning += usage.output_tokens_details?.reasoning_tokens ?? 0;
  }
  if (!any) return null;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: cached },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: reasoning },
    total_tokens: input + output,
  };
}
