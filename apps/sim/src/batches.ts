/**
 * OpenAI's Batch API (`/v1/batches`) for `/v1/responses` requests: create, retrieve, list and
 * cancel, with the batch's life derived from the clock (batch-lifecycle.ts) and its files in the
 * JSONL formats of batch-lines.ts.
 *
 * Every line's answer is decided at create, the way `POST /v1/responses` answers that body as a
 * plain (non-background, non-streamed) request, so `sim_outcome` and the other metadata directives
 * of a line apply to it; the batch only decides when each line finishes. Injected faults:
 * `batch_line_failure_rate` (a line answered 500), `batch_expire_rate` and the batch's own
 * `metadata.sim_batch_outcome` (`expired`: it expires half-way through in_progress; `failed`: it
 * fails validation).
 *
 * Invariant: the only scheduled work is one "settled" check per batch at its terminal time, which
 * writes the output and error files and sends the terminal `batch.*` webhook at most once; a read
 * of a batch past that time settles it first, so a client never sees a finished batch without
 * its files.
 */
import type { BatchStats } from './stats.ts';
import {
  batchStatusAt,
  batchTerminalAt,
  CANCELLING_SHARE,
  executedLines,
  FINALIZING_SHARE,
  isBatchTerminal,
  renderBatch,
  VALIDATING_SHARE,
  type BatchLine,
  type LineAnswer,
  type SimBatch,
} from './batch-lifecycle.ts';
import { parseBatchInput, resultFiles, type InputLine } from './batch-lines.ts';
import type { SimConfig } from './config.ts';
import { listLimit } from './conversations.ts';
import { ApiError, injectedServerError, invalidRequest } from './errors.ts';
import type { StoredFile } from './files.ts';
import { newId } from './ids.ts';
import { chance, type Random } from './random.ts';
import type { Clock, Scheduler } from './scheduler.ts';
import type { WebhookSender } from './webhooks.ts';

/** The one endpoint the simulator runs batches for. */
export const BATCH_ENDPOINT = '/v1/responses';
const BATCH_OUTCOMES = ['expired', 'failed'] as const;
type BatchOutcome = (typeof BATCH_OUTCOMES)[number];
/** Oldest batches are forgotten beyond this many, as the simulator forgets its oldest responses. */
const MAX_STORED_BATCHES = 10_000;

export interface BatchStoreDeps {
  clock: Clock;
  scheduler: Scheduler;
  webhooks: WebhookSender;
  config: () => SimConfig;
  random: () => Random;
  stats: () => BatchStats;
  /** Throws OpenAI's 400 when the body does not satisfy `CreateBatchRequest`. */
  validate: (body: unknown) => void;
  findFile: (id: string) => StoredFile | undefined;
  addFile: (file: Omit<StoredFile, 'id'>) => StoredFile;
  /** How `POST /v1/responses` answers `body` (status and JSON body), without counting it as a create. */
  answerLine: (body: Record<string, unknown>) => { statusCode: number; body: Record<string, unknown> };
}

interface CreateBatchBody {
  input_file_id: string;
  endpoint: string;
  completion_window: string;
  metadata?: Record<string, string> | null;
  output_expires_after?: { anchor: 'created_at'; seconds: number };
}

export class BatchStore {
  readonly #deps: BatchStoreDeps;
  #batches = new Map<string, SimBatch>();

  constructor(deps: BatchStoreDeps) {
    this.#deps = deps;
  }

  create(body: unknown): Record<string, unknown> {
    this.#deps.validate(body);
    const request = body as CreateBatchBody;
    if (request.endpoint !== BATCH_ENDPOINT) {
      throw invalidRequest(`Unsupported endpoint '${request.endpoint}': the simulator runs batches for '${BATCH_ENDPOINT}' only.`, 'endpoint', 'unsupported_value');
    }
    const forced = batchOutcomeOf(request.metadata);
    const file = this.#deps.findFile(request.input_file_id);
    if (file === undefined) throw invalidRequest(`No such File object: ${request.input_file_id}`, 'input_file_id', 'invalid_value');
    if (file.purpose !== 'batch') {
      throw invalidRequest(`The input file must be uploaded with purpose 'batch'; '${file.id}' has purpose '${file.purpose}'.`, 'input_file_id', 'invalid_value');
    }

    const config = this.#deps.config();
    const now = this.#deps.clock();
    const real = config.batch_duration_ms * config.time_scale;
    const inProgressAtMs = now + real * VALIDATING_SHARE;
    const finalizingAtMs = now + real * (1 - FINALIZING_SHARE);
    const parsed = parseBatchInput(file.data, request.endpoint);
    const batch: SimBatch = {
      id: newId('batch'),
      endpoint: request.endpoint,
      inputFileId: file.id,
      completionWindow: request.completion_window,
      metadata: request.metadata ?? null,
      model: undefined,
      createdAtMs: now,
      inProgressAtMs,
      finalizingAtMs,
      endsAtMs: now + real,
      expiresAtMs: now + config.batch_completion_window_ms * config.time_scale,
      plan: 'completed',
      expiredAtMs: null,
      errors: [],
      lines: [],
      cancellingAtMs: null,
      cancelledAtMs: null,
      outputExpiresAfterMs: request.output_expires_after === undefined ? null : request.output_expires_after.seconds * 1000,
      outputFileId: null,
      errorFileId: null,
      settled: false,
    };
    if (!parsed.ok || forced === 'failed') {
      batch.plan = 'failed';
      batch.errors = parsed.ok ? [simulatedValidationFailure()] : parsed.errors;
    } else {
      this.#planLines(batch, parsed.lines, forced === 'expired' || chance(this.#deps.random(), config.batch_expire_rate));
    }
    this.#remember(batch);
    this.#deps.stats().created++;
    this.#deps.scheduler.schedule(batchTerminalAt(batch), () => this.#settle(batch));
    return renderBatch(batch, now);
  }

  retrieve(id: string): Record<string, unknown> {
    const batch = this.#find(id);
    this.#deps.stats().retrieves++;
    return this.#render(batch);
  }

  /** `GET /v1/batches`: newest first, `after` a batch id, `limit` 1–100 (default 20). */
  list(query: { after?: unknown; limit?: unknown }): Record<string, unknown> {
    const limit = listLimit(query.limit, 100, 20);
    const batches = [...this.#batches.values()].reverse();
    let start = 0;
    if (typeof query.after === 'string' && query.after !== '') {
      start = batches.findIndex((batch) => batch.id === query.after) + 1;
      if (start === 0) throw invalidRequest(`No batch found with id '${query.after}'.`, 'after', 'invalid_value');
    }
    this.#deps.stats().lists++;
    const data = batches.slice(start, start + limit).map((batch) => this.#render(batch));
    const body: Record<string, unknown> = { object: 'list', data, has_more: start + limit < batches.length };
    if (data.length > 0) {
      body['first_id'] = data[0]?.['id'];
      body['last_id'] = data.at(-1)?.['id'];
    }
    return body;
  }

  /** `POST /v1/batches/{id}/cancel`: `cancelling` now, `cancelled` a little later; again while cancelling is a no-op. */
  cancel(id: string): Record<string, unknown> {
    const batch = this.#find(id);
    const now = this.#deps.clock();
    const status = batchStatusAt(batch, now);
    if (status !== 'cancelling') {
      if (isBatchTerminal(status)) {
        this.#settle(batch);
        throw new ApiError({ status: 409, type: 'invalid_request_error', message: `Cannot cancel a batch with status '${status}'.`, code: 'batch_not_cancellable' });
      }
      const config = this.#deps.config();
      batch.cancellingAtMs = now;
      batch.cancelledAtMs = now + Math.max(1, config.batch_duration_ms * config.time_scale * CANCELLING_SHARE);
      this.#deps.scheduler.schedule(batch.cancelledAtMs, () => this.#settle(batch));
    }
    this.#deps.stats().cancels++;
    return renderBatch(batch, now);
  }

  clear(): void {
    this.#batches.clear();
  }

  /** Fixes each line's finishing time and answer; a batch that expires only runs the lines due before it. */
  #planLines(batch: SimBatch, lines: InputLine[], forceExpiry: boolean): void {
    const span = batch.finalizingAtMs - batch.inProgressAtMs;
    if (forceExpiry) {
      batch.expiresAtMs = batch.inProgressAtMs + span / 2;
      batch.plan = 'expired';
      batch.expiredAtMs = batch.expiresAtMs;
    } else if (batch.expiresAtMs < batch.endsAtMs) {
      batch.plan = 'expired';
      batch.expiredAtMs = Math.max(batch.expiresAtMs, batch.inProgressAtMs);
    }
    const config = this.#deps.config();
    batch.model = typeof lines[0]?.body['model'] === 'string' ? (lines[0].body['model'] as string) : undefined;
    batch.lines = lines.map((line, index): BatchLine => {
      const doneAtMs = batch.inProgressAtMs + ((index + 1) / lines.length) * span;
      const runs = batch.expiredAtMs === null || doneAtMs <= batch.expiredAtMs;
      let answer: LineAnswer = { statusCode: 0, requestId: '', body: {} };
      if (runs) {
        const result = chance(this.#deps.random(), config.batch_line_failure_rate)
          ? { statusCode: 500, body: injectedServerError().toBody() }
          : lineResult(this.#deps.answerLine({ ...line.body, background: false, stream: false }));
        answer = { ...result, requestId: newId('req', 16) };
      }
      return { id: newId('batch_req', 16), customId: line.customId, doneAtMs, answer };
    });
  }

  #render(batch: SimBatch): Record<string, unknown> {
    const now = this.#deps.clock();
    if (!batch.settled && isBatchTerminal(batchStatusAt(batch, now))) this.#settle(batch);
    return renderBatch(batch, now);
  }

  /** Writes the result files and sends the terminal webhook once the batch is terminal. */
  #settle(batch: SimBatch): void {
    if (batch.settled) return;
    const now = this.#deps.clock();
    const status = batchStatusAt(batch, now);
    if (!isBatchTerminal(status)) {
      this.#deps.scheduler.schedule(batchTerminalAt(batch), () => this.#settle(batch));
      return;
    }
    batch.settled = true;
    const terminalAt = batchTerminalAt(batch);
    const executed = executedLines(batch, terminalAt);
    const files = resultFiles(batch.lines, new Set(executed), status === 'expired' ? 'batch_expired' : status === 'cancelled' ? 'batch_cancelled' : null);
    if (files.output !== null) batch.outputFileId = this.#writeFile(batch, 'output', files.output, terminalAt);
    if (files.errors !== null) batch.errorFileId = this.#writeFile(batch, 'error', files.errors, terminalAt);
    const stats = this.#deps.stats();
    const completed = executed.filter((line) => line.answer.statusCode >= 200 && line.answer.statusCode < 300).length;
    stats.lines_completed += completed;
    stats.lines_failed += executed.length - completed;
    stats[status]++;
    this.#deps.webhooks.emitEvent(`batch.${status}`, batch.id, terminalAt);
  }

  #writeFile(batch: SimBatch, kind: 'output' | 'error', content: string, createdAtMs: number): string {
    const file = this.#deps.addFile({
      filename: `${batch.id}_${kind}.jsonl`,
      purpose: 'batch_output',
      createdAtMs,
      // Anchored at the file's creation, as OpenAI's `output_expires_after` is; not time-scaled, like `expires_after` of uploads.
      expiresAtMs: batch.outputExpiresAfterMs === null ? null : createdAtMs + batch.outputExpiresAfterMs,
      contentType: 'application/jsonl',
      data: Buffer.from(content, 'utf8'),
    });
    return file.id;
  }

  #find(id: string): SimBatch {
    const batch = this.#batches.get(id);
    if (batch === undefined) throw new ApiError({ status: 404, type: 'invalid_request_error', message: `No batch found with id '${id}'.`, param: null, code: null });
    return batch;
  }

  #remember(batch: SimBatch): void {
    this.#batches.set(batch.id, batch);
    if (this.#batches.size > MAX_STORED_BATCHES) {
      const oldest = this.#batches.keys().next().value;
      if (oldest !== undefined) this.#batches.delete(oldest);
    }
  }
}

/**
 * A response that ended `failed` (`sim_outcome: "failed"`) is, in a batch, a request that failed:
 * a 500 with the response's error in the error file.
 */
function lineResult(result: { statusCode: number; body: Record<string, unknown> }): { statusCode: number; body: Record<string, unknown> } {
  if (result.statusCode !== 200 || result.body['status'] !== 'failed') return result;
  const error = result.body['error'] as { code?: string; message?: string } | null;
  return {
    statusCode: 500,
    body: {
      error: { message: error?.message ?? 'The server had an error while processing your request.', type: 'server_error', param: null, code: error?.code ?? 'server_error' },
    },
  };
}

function batchOutcomeOf(metadata: Record<string, string> | null | undefined): BatchOutcome | null {
  const raw = metadata?.['sim_batch_outcome'];
  if (raw === undefined) return null;
  if (!(BATCH_OUTCOMES as readonly string[]).includes(raw)) {
    throw invalidRequest(`Invalid 'metadata.sim_batch_outcome': expected one of ${BATCH_OUTCOMES.join(', ')}, got '${raw}'.`, 'metadata.sim_batch_outcome', 'invalid_value');
  }
  return raw as BatchOutcome;
}

function simulatedValidationFailure(): { code: string; message: string; param: null; line: null } {
  return { code: 'invalid_request', message: 'The batch failed validation. (simulated: metadata.sim_batch_outcome)', param: null, line: null };
}
