/**
 * Fallbacks and validation (issue 16): what a job does when an attempt fails in a way another
 * attempt may fix, and what makes an attempt's output acceptable. Pure.
 *
 * Design note: a job's attempts are responses of its own, one after another, like a tool-call
 * loop's turns: attempt 1 runs the job's own request; when it ends with a retryable failure
 * (`context_length_exceeded`, a provider error after the retry window, `incomplete` for
 * `max_output_tokens`, a refusal) or fails its `validate`, the job goes back to `pending` with
 * attempt n + 1, whose request is the job's with fallback n's changes applied. The job ends with
 * the first attempt that passes, or the last attempt's outcome. Each attempt is recorded on the
 * job (`attempts`), and usage and cost add up over all of them.
 */

/** One fallback: what the next attempt changes in the job's request. */
export interface Fallback {
  model?: string;
  reasoning?: Record<string, unknown>;
  max_output_tokens?: number;
  instructions?: string;
  /** `truncate_half`: keep the first half of the input's text (context too long). */
  input?: 'truncate_half';
}

/** What an attempt's output must satisfy; a failure is treated as a retryable failure. */
export interface Validation {
  min_output_chars?: number;
  /** The output text must parse as JSON and validate against this schema. */
  json_schema?: Record<string, unknown>;
  /** Strings the output text must contain, all of them. */
  must_include?: string[];
}

/** One attempt, as the job shows it. */
export interface Attempt {
  attempt: number;
  model: string;
  response_id: string | null;
  status: string;
  error: { code: string; message: string } | null;
  usage: Record<string, unknown> | null;
}

/** Provider error codes of a failed response that another attempt (another model, a shorter input) may not meet. */
export const RETRYABLE_ERROR_CODES: ReadonlySet<string> = new Set([
  'context_length_exceeded',
  'server_error',
  // The provider gave up on the response under load: another model has its own limits.
  'rate_limit_exceeded',
  // A submission that failed for good after its retry window (the submit processor's error).
  'provider_unavailable',
]);

/** An attempt's ended response, as far as its verdict is concerned. */
export interface AttemptOutcome {
  /** The job status the response maps to (completed, failed, incomplete, cancelled, ...). */
  status: string;
  error?: { code: string; message: string } | null;
  incompleteDetails?: { reason?: string } | null;
  output?: readonly unknown[] | null;
  outputText?: string | null;
}

/**
 * Validates a value against a JSON schema: null when valid, else what is wrong. Passed in (the
 * core has no dependencies): @longhaul/db's `checkJsonSchema` (ajv) is the one in use.
 */
export type SchemaCheck = (schema: Record<string, unknown>, value: unknown) => string | null;

/** An attempt's verdict: passed (the job ends with it), or failed in a way a next attempt may fix (`retryable`). */
export type AttemptVerdict = { kind: 'passed' } | { kind: 'final' } | { kind: 'retryable'; error: { code: string; message: string }; rejected: boolean };

/** The text of the output's refusals (`refusal` content parts of its messages), or null when there is none. */
export function refusalOf(output: readonly unknown[] | null | undefined): string | null {
  for (const item of output ?? []) {
    if (!isRecord(item) || item.type !== 'message' || !Array.isArray(item.content)) continue;
    for (const part of item.content) {
      if (isRecord(part) && part.type === 'refusal') return typeof part.refusal === 'string' ? part.refusal : '';
    }
  }
  return null;
}

/** What the output text fails of `validation`, or null when it passes (or there is nothing to check). */
export function validationProblem(text: string, validation: Validation | null | undefined, checkSchema: SchemaCheck): string | null {
  if (!validation) return null;
  if (validation.min_output_chars !== undefined && text.length < validation.min_output_chars) {
    return `validate.min_output_chars: the output has ${text.length} characters, fewer than ${validation.min_output_chars}`;
  }
  const missing = (validation.must_include ?? []).filter((s) => !text.includes(s));
  if (missing.length > 0) return `validate.must_include: the output does not include ${missing.map((s) => JSON.stringify(s)).join(', ')}`;
  if (validation.json_schema) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return 'validate.json_schema: the output is not JSON';
    }
    const problem = checkSchema(validation.json_schema, value);
    if (problem !== null) return `validate.json_schema: ${problem}`;
  }
  return null;
}

/**
 * The verdict on an attempt whose response ended: `retryable` for a failure another attempt may
 * fix (a retryable provider error, `incomplete` for `max_output_tokens`, a refusal, an output
 * failing `validation`; `rejected`: the provider completed it and only Longhaul's checks refuse
 * it), `passed` for a completed output that passes, `final` for anything else (cancelled,
 * expired, another error or incomplete reason): the job ends with it.
 */
export function attemptVerdict(outcome: AttemptOutcome, validation: Validation | null | undefined, checkSchema: SchemaCheck): AttemptVerdict {
  switch (outcome.status) {
    case 'failed':
      return outcome.error && RETRYABLE_ERROR_CODES.has(outcome.error.code) ? { kind: 'retryable', error: outcome.error, rejected: false } : { kind: 'final' };
    case 'incomplete':
      return outcome.incompleteDetails?.reason === 'max_output_tokens'
        ? { kind: 'retryable', error: { code: 'max_output_tokens', message: 'the response ran out of output tokens' }, rejected: false }
        : { kind: 'final' };
    case 'completed': {
      const refusal = refusalOf(outcome.output);
      if (refusal !== null) return { kind: 'retryable', error: { code: 'refusal', message: refusal ? `the model refused: ${refusal}` : 'the model refused' }, rejected: false };
      const problem = validationProblem(outcome.outputText ?? '', validation, checkSchema);
      return problem === null ? { kind: 'passed' } : { kind: 'retryable', error: { code: 'validation_failed', message: problem }, rejected: true };
    }
    default:
      return { kind: 'final' };
  }
}

/** Whether a job at `attempt` (1-based) has a fallback left for a next attempt. */
export function hasFallbackLeft(job: { attempt: number; fallbacks: readonly Fallback[] | null }): boolean {
  return job.attempt <= (job.fallbacks?.length ?? 0);
}

/**
 * The request attempt `attempt` (1-based) sends: the job's own for attempt 1, else the job's with
 * fallback `attempt − 1` applied (model, reasoning, max_output_tokens and instructions replaced;
 * `input: "truncate_half"` keeps the first half of the input's text). Fallbacks do not accumulate:
 * each is a change to the job's own request.
 */
export function attemptParams(request: Record<string, unknown>, fallbacks: readonly Fallback[] | null, attempt: number): Record<string, unknown> {
  const fallback = attempt > 1 ? fallbacks?.[attempt - 2] : undefined;
  if (!fallback) return request;
  const params = { ...request };
  if (fallback.model !== undefined) params.model = fallback.model;
  if (fallback.reasoning !== undefined) params.reasoning = fallback.reasoning;
  if (fallback.max_output_tokens !== undefined) params.max_output_tokens = fallback.max_output_tokens;
  if (fallback.instructions !== undefined) params.instructions = fallback.instructions;
  if (fallback.input === 'truncate_half' && request.input !== undefined) params.input = truncateHalf(request.input);
  return params;
}

/** The model attempt `attempt` runs with. */
export function attemptModel(jobModel: string, fallbacks: readonly Fallback[] | null, attempt: number): string {
  const fallback = attempt > 1 ? fallbacks?.[attempt - 2] : undefined;
  return fallback?.model ?? jobModel;
}

/**
 * The first half of an input's text: a string is cut at half its length; a list of items keeps
 * its items in order until half the text of all of them (string contents and `input_text` parts)
 * is used, cutting the item where the half falls and dropping the text items after it.
 */
export function truncateHalf(input: unknown): unknown {
  if (typeof input === 'string') return input.slice(0, Math.ceil(input.length / 2));
  if (!Array.isArray(input)) return input;
  let budget = Math.ceil(input.reduce((n: number, item) => n + textLength(item), 0) / 2);
  const kept: unknown[] = [];
  for (const item of input) {
    const length = textLength(item);
    if (length === 0) {
      kept.push(item);
      continue;
    }
    if (budget <= 0) continue;
    kept.push(length <= budget ? item : cutText(item as Record<string, unknown>, budget));
    budget -= length;
  }
  return kept;
}

function textLength(item: unknown): number {
  if (!isRecord(item)) return 0;
  if (typeof item.content === 'string') return item.content.length;
  if (!Array.isArray(item.content)) return 0;
  return item.content.reduce((n: number, part) => n + (isRecord(part) && part.type === 'input_text' && typeof part.text === 'string' ? part.text.length : 0), 0);
}

function cutText(item: Record<string, unknown>, budget: number): Record<string, unknown> {
  if (typeof item.content === 'string') return { ...item, content: item.content.slice(0, budget) };
  let left = budget;
  const content: unknown[] = [];
  for (const part of item.content as unknown[]) {
    if (!(isRecord(part) && part.type === 'input_text' && typeof part.text === 'string')) {
      content.push(part);
      continue;
    }
    if (left <= 0) continue;
    content.push({ ...part, text: part.text.slice(0, left) });
    left -= part.text.length;
  }
  return { ...item, content };
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}
