/**
 * Flex processing (issue 17): what a job does when its `service_tier: "flex"` create is refused
 * with 429 Resource Unavailable (flex capacity short; not billed, not a rate limit). Pure.
 *
 * Design note: such a create is retried with exponential backoff until the flex window
 * (FLEX_RETRY_WINDOW_SECONDS, default 15 minutes) has passed since the job's first failed flex
 * create; then the job either runs at the standard tier (`flex_fallback: "auto"`) or fails with
 * `flex_unavailable`. The backoff is a function of the time already spent (each wait about as long
 * as everything before it, capped), not of a retry counter: nothing has to be stored per retry,
 * and a worker that crashed mid-window resumes the same schedule from the work item's first
 * failure time. The last retry is moved to the window's end, so a job is never given up on
 * before its window is over, nor kept waiting long after it.
 */

/** FLEX_RETRY_WINDOW_SECONDS' default: 15 minutes of retrying flex before giving up on it. */
export const DEFAULT_FLEX_RETRY_WINDOW_MS = 900_000;

/**
 * The tier a job falls back to: OpenAI's `default` ("standard pricing and performance"). Not
 * `auto`, which means the project's configured tier and could be flex again.
 */
const STANDARD_SERVICE_TIER = 'default';

/** Whether a create request asks for flex processing. */
export function isFlexRequest(params: Readonly<Record<string, unknown>>): boolean {
  return params.service_tier === 'flex';
}

/** The same request at the standard tier. */
export function standardTierRequest<T extends Record<string, unknown>>(params: T): T & { service_tier: string } {
  return { ...params, service_tier: STANDARD_SERVICE_TIER };
}

export interface FlexRetryInput {
  /** Time since the job's first failed flex create (ms), this refusal included. */
  elapsedMs: number;
  /** How long flex is retried (FLEX_RETRY_WINDOW_SECONDS in ms). */
  windowMs: number;
  /** The job's `flex_fallback`: `auto` runs it at the standard tier once the window is over. */
  fallback: 'auto' | null;
  /** First and longest waits (the worker's RETRY_BASE_MS and RETRY_MAX_MS). */
  baseMs: number;
  maxMs: number;
  /** A number in [0, 1): the jitter. */
  random: number;
}

export type FlexRetryDecision = { kind: 'retry'; delayMs: number } | { kind: 'standard' } | { kind: 'fail'; error: { code: 'flex_unavailable'; message: string } };

/**
 * What follows a flex create refused for capacity: another try after `delayMs` while the window
 * lasts (equal jitter over a ceiling of the time spent so far, at least `baseMs`, at most `maxMs`,
 * never past the window's end), then the standard tier or the job's failure.
 */
export function flexRetryDecision(input: FlexRetryInput): FlexRetryDecision {
  const elapsed = Math.max(0, input.elapsedMs);
  const left = input.windowMs - elapsed;
  if (left <= 0) {
    if (input.fallback === 'auto') return { kind: 'standard' };
    const seconds = Math.round(input.windowMs / 1000);
    return {
      kind: 'fail',
      error: {
        code: 'flex_unavailable',
        message: `Flex processing had no capacity for this request for ${seconds} s (429 Resource Unavailable). Retry later, submit it at another service_tier, or set flex_fallback: "auto" to run it at the standard tier when flex is unavailable.`,
      },
    };
  }
  const ceiling = Math.min(input.maxMs, Math.max(input.baseMs, elapsed));
  const jittered = Math.round(ceiling / 2 + (ceiling / 2) * Math.min(Math.max(input.random, 0), 1));
  return { kind: 'retry', delayMs: Math.max(1, Math.min(jittered, Math.ceil(left))) };
}
