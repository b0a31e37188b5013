/**
 * Reconciliation rules: how a provider Response maps onto a job. Pure; the database layer applies
 * the result in one transaction together with the job's event row.
 */
import { type JobError, type JobStatus, type ProviderStatus, type TransitionResult, transition } from './job-state.ts';
import { type RequiredAction, turnEnd } from './tool-loop.ts';
import { isTerminalProviderStatus } from './vocabulary.ts';

export interface Usage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number; [k: string]: unknown };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number; [k: string]: unknown };
  total_tokens: number;
}

/** Two turns' usage added up (the job's usage is the sum over its turns); null counts as nothing. */
export function addUsage(a: Usage | null | undefined, b: Usage | null | undefined): Usage | null {
  if (!a) return b ?? null;
  if (!b) return a;
  return {
    input_tokens: a.input_tokens + b.input_tokens,
    input_tokens_details: { ...a.input_tokens_details, ...b.input_tokens_details, cached_tokens: a.input_tokens_details.cached_tokens + b.input_tokens_details.cached_tokens },
    output_tokens: a.output_tokens + b.output_tokens,
    output_tokens_details: {
      ...a.output_tokens_details,
      ...b.output_tokens_details,
      reasoning_tokens: a.output_tokens_details.reasoning_tokens + b.output_tokens_details.reasoning_tokens,
    },
    total_tokens: a.total_tokens + b.total_tokens,
  };
}

/** The part of an OpenAI Response object Longhaul reads. */
export interface ProviderResponse {
  id: string;
  status?: ProviderStatus | null;
  output?: unknown[] | null;
  usage?: Usage | null;
  error?: JobError | null;
  incomplete_details?: { reason?: string } | null;
  created_at?: number | null;
  completed_at?: number | null;
  /** The tier the response ran at (`default`, `flex`, `priority`, …); priced by cost.ts. */
  service_tier?: string | null;
}

/** The job columns a reconcile writes. */
export interface ReconcilePatch {
  status: JobStatus;
  output?: unknown[] | null;
  outputText?: string | null;
  usage?: Usage | null;
  error?: JobError | null;
  incompleteDetails?: { reason?: string } | null;
  reasoningSummary?: SummaryPart[] | null;
  /** A tool-call loop's turn that ended with work for the client: what the job waits for. */
  requiredAction?: RequiredAction | null;
}

/** Where a job running a tool-call loop is in it (tool-loop.ts): its current turn (1-based) and its last. */
export interface LoopPosition {
  turn: number;
  maxTurns: number;
}

/** One part of a reasoning summary, as the provider's `reasoning` output items carry them. */
export interface SummaryPart {
  type: string;
  text: string;
}

export type ReconcileDecision = { ok: true; changed: boolean; patch: ReconcilePatch } | Extract<TransitionResult, { ok: false }>;

/** Concatenate the text parts of the assistant messages, as the SDKs' `output_text` does. */
export function outputText(output: readonly unknown[] | null | undefined): string {
  if (!output) return '';
  const parts: string[] = [];
  for (const item of output) {
    if (!isRecord(item) || item.type !== 'message' || !Array.isArray(item.content)) continue;
    for (const part of item.content) {
      if (isRecord(part) && part.type === 'output_text' && typeof part.text === 'string') parts.push(part.text);
    }
  }
  return parts.join('');
}

/**
 * The reasoning summary parts of an output, in order, or null when there is none (no summary was
 * requested, or the model gave none).
 */
export function reasoningSummary(output: readonly unknown[] | null | undefined): SummaryPart[] | null {
  if (!output) return null;
  const parts: SummaryPart[] = [];
  for (const item of output) {
    if (!isRecord(item) || item.type !== 'reasoning' || !Array.isArray(item.summary)) continue;
    for (const part of item.summary) {
      if (isRecord(part) && typeof part.text === 'string') parts.push({ type: typeof part.type === 'string' ? part.type : 'summary_text', text: part.text });
    }
  }
  return parts.length > 0 ? parts : null;
}

/**
 * Decide what a provider Response does to a job. Terminal results carry output, usage, error and
 * incomplete details; non-terminal ones only (maybe) advance the status.
 */
export function reconcileResponse(job: { status: JobStatus }, response: ProviderResponse, loop?: LoopPosition, via: 'response' | 'batch_line' = 'response'): ReconcileDecision {
  if (!response.status) {
    return { ok: false, error: { code: 'illegal_transition', message: 'provider response has no status' } };
  }
  // A turn of a tool-call loop that completed with calls for the client: the job waits for them
  // (or, at its last turn, ends incomplete), the turn's output and usage recorded.
  const end = loop && response.status === 'completed' ? turnEnd(response.output, loop) : { kind: 'final' as const };
  if (end.kind !== 'final') {
    const decision = transition(job, { type: 'turn_ended', lastTurn: end.kind === 'max_turns' });
    if (!decision.ok) return decision;
    const patch: ReconcilePatch = { status: decision.status, ...turnResult(response) };
    if (decision.status === 'requires_action' && end.kind === 'requires_action') patch.requiredAction = end.requiredAction;
    if (decision.status === 'incomplete') patch.incompleteDetails = { reason: 'max_turns' };
    return { ok: true, changed: decision.changed, patch };
  }
  const decision = transition(job, { type: via === 'batch_line' ? 'batch_line' : 'observed', responseStatus: response.status });
  if (!decision.ok) return decision;
  const patch: ReconcilePatch = { status: decision.status };
  if (isTerminalProviderStatus(response.status)) Object.assign(patch, turnResult(response));
  return { ok: true, changed: decision.changed, patch };
}

/** What a finished response says: output, its text and reasoning summary, usage, error, incomplete details. */
function turnResult(response: ProviderResponse): Omit<ReconcilePatch, 'status'> {
  return {
    output: response.output ?? [],
    outputText: outputText(response.output),
    reasoningSummary: reasoningSummary(response.output),
    usage: response.usage ?? null,
    error: response.error ?? null,
    incompleteDetails: response.incomplete_details ?? null,
  };
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}
