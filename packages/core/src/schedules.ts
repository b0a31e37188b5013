/**
 * Retry and poll schedules: pure functions of (attempt, elapsed). Callers pass randomness in so
 * the schedules stay deterministic under test.
 */

/**
 * How a job's completion is detected:
 * - `poll`: adaptive polling only (no webhooks configured);
 * - `webhook`: OpenAI's webhooks finish jobs; a poll every `safetyIntervalMs` catches lost ones;
 * - `hybrid`: webhooks and adaptive polling both, whichever comes first.
 */
export type CompletionMode = 'poll' | 'webhook' | 'hybrid';
export const COMPLETION_MODES: readonly CompletionMode[] = ['poll', 'webhook', 'hybrid'];

export interface PollScheduleOptions {
  /** Webhook mode: the safety-net poll interval. Default 300 000 ms (5 minutes). */
  safetyIntervalMs?: number;
  /** First delay after submission. Default 1 000 ms. */
  initialMs?: number;
  /** Growth factor per poll. Default 2. */
  factor?: number;
  /** Longest delay between two polls. Default 30 000 ms. */
  maxMs?: number;
}

/**
 * Delay before poll number `attempt` (0-based) of a job. Grows geometrically from `initialMs` to
 * `maxMs`: a 5-minute response costs about 14 polls instead of the ~150 of a fixed 2 s loop.
 * A provider hint (`openai-poll-after-ms`) wins when present, kept within [initialMs/4, maxMs].
 */
export function pollDelayMs(attempt: number, options: PollScheduleOptions = {}, providerHintMs?: number): number {
  const initial = options.initialMs ?? 1_000;
  const factor = options.factor ?? 2;
  const max = options.maxMs ?? 30_000;
  if (providerHintMs !== undefined && Number.isFinite(providerHintMs) && providerHintMs >= 0) {
    return Math.round(Math.min(max, Math.max(initial / 4, providerHintMs)));
  }
  return Math.round(Math.min(max, initial * factor ** Math.max(0, attempt)));
}

/** Delay before poll number `attempt` (0-based) in the given completion mode. */
export function nextPollDelayMs(mode: CompletionMode, attempt: number, options: PollScheduleOptions = {}, providerHintMs?: number): number {
  if (mode === 'webhook') return options.safetyIntervalMs ?? 300_000;
  return pollDelayMs(attempt, options, providerHintMs);
}

export interface RetryScheduleOptions {
  /** Delay before the first retry. Default 1 000 ms. */
  baseMs?: number;
  /** Longest delay between two attempts. Default 60 000 ms. */
  maxMs?: number;
}

/**
 * Delay before retry number `attempt` (1-based) of a transient failure: exponential backoff with
 * "equal jitter" (half fixed, half random) so a fleet of workers does not retry in lock step.
 * `random` is a number in [0, 1).
 */
export function retryDelayMs(attempt: number, random: number, options: RetryScheduleOptions = {}): number {
  const base = options.baseMs ?? 1_000;
  const max = options.maxMs ?? 60_000;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * Math.min(Math.max(random, 0), 1));
}

/**
 * Whether a transient failure may be retried again: retries continue until the attempt budget
 * or the time budget (since the job was accepted) runs out, whichever comes first.
 */
export function mayRetry(attempt: number, elapsedMs: number, budget: { maxAttempts: number; maxElapsedMs: number }): boolean {
  return attempt < budget.maxAttempts && elapsedMs < budget.maxElapsedMs;
}

/** Parse an HTTP `Retry-After` value (seconds or HTTP date) into milliseconds from `now`. */
export function parseRetryAfterMs(value: string | null | undefined, now: Date): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now.getTime());
}
