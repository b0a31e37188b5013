/**
 * Retry and poll schedules: pure functions of (attempt, elapsed). Callers pass randomness in so
 * the schedules stay deterministic under test.
 *
 * A job's completion hint (`expected_duration_seconds` on its request, stored as
 * `expected_duration_ms`; `completionHintMs` keeps it within the job's deadline) says how long it
 * is expected to take at the provider. It shapes the poll schedule, by completion mode:
 * - primary polling (`poll` mode; `hybrid` while webhooks are not `healthy`): poll 0 waits
 *   `max(pollDelayMs(0), 0.9 × hint)`: about the hint, never less than the schedule's own first
 *   delay (the provider's `openai-poll-after-ms`, when it is larger, still wins); poll n ≥ 1 waits
 *   `pollDelayMs(n − 1)`: the adaptive schedule from its start. A 300 s job hinted 300 s costs 6
 *   polls (at 270, 271, 273, 277, 285, 301 s) instead of 14; one that ends before 90 % of its hint
 *   costs 1. A hint too short costs a few polls more than an exact one (after the first poll the
 *   job is polled as a new one would be); a hint too long delays finding the job, up to 90 % of
 *   the hint for one that ends at once: the hint is the client's trade of latency for calls.
 * - `hybrid` with webhooks `healthy`: the hint replaces the learned expected duration of the job's
 *   kind (`safetyNetPollDelayMs`): its one safety poll comes `webhookGraceMs` after the hint.
 * - `webhook`: unchanged, every `safetyIntervalMs`.
 */
import type { WebhookHealthState } from './webhook-health.ts';

/**
 * How a job's completion is detected:
 * - `poll`: adaptive polling only (no webhooks configured);
 * - `webhook`: OpenAI's webhooks finish jobs; a poll every `safetyIntervalMs` catches lost ones;
 * - `hybrid`: webhooks and polls both, whichever comes first, the polls chosen by the webhooks'
 *   health (webhook-health.ts): a safety net while webhooks arrive, adaptive polling otherwise.
 */
export type CompletionMode = 'poll' | 'webhook' | 'hybrid';
export const COMPLETION_MODES: readonly CompletionMode[] = ['poll', 'webhook', 'hybrid'];

export interface PollScheduleOptions {
  /** Webhook mode, and hybrid mode while webhooks are healthy: the safety-net poll interval. Default 300 000 ms (5 minutes). */
  safetyIntervalMs?: number;
  /**
   * Hybrid mode: how late a webhook may be before it counts as lost. A job whose expected duration
   * is known is polled at the latest this long after it (its webhook overdue), and a poll that finds
   * a response finished this long ago with no webhook counts against webhooks. Default 30 000 ms.
   */
  webhookGraceMs?: number;
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

/** Share of a job's completion hint its first primary poll waits: a job that ends a little early is found by that poll, one on time a few polls later. */
const HINTED_FIRST_POLL_SHARE = 0.9;

/** What the choice of schedule depends on, beyond the mode. */
export interface PollContext {
  /** The webhooks' health: `healthy` polls as a safety net; anything else (or absent) polls adaptively. */
  webhooks?: WebhookHealthState;
  /** How long a job of its kind is expected to take at the provider, as learned (expected-duration.ts); absent: not known. */
  expectedDurationMs?: number;
  /**
   * The job's own completion hint (`completionHintMs`); absent: none given. It replaces
   * `expectedDurationMs` and shapes primary polling (`hintedPollDelayMs`).
   */
  hintedDurationMs?: number;
}

/** Delay before poll number `attempt` (0-based) in the given completion mode (the rule: the design note above). */
export function nextPollDelayMs(mode: CompletionMode, attempt: number, options: PollScheduleOptions = {}, providerHintMs?: number, context: PollContext = {}): number {
  if (mode === 'webhook') return options.safetyIntervalMs ?? 300_000;
  if (mode === 'hybrid' && context.webhooks === 'healthy') return safetyNetPollDelayMs(attempt, options, context.hintedDurationMs ?? context.expectedDurationMs);
  if (context.hintedDurationMs !== undefined) return hintedPollDelayMs(attempt, context.hintedDurationMs, options, providerHintMs);
  return pollDelayMs(attempt, options, providerHintMs);
}

/**
 * Primary polling of a job with a completion hint: poll 0 after about the hint (90 % of it, at
 * least the adaptive schedule's first delay, which the provider's poll hint may set), then the
 * adaptive schedule from its start (poll n ≥ 1 is its poll n − 1). Waiting the whole hint would
 * find a job that ends on time one poll later; 90 % finds a job that ends up to a tenth early
 * by the first poll and one on time within a few.
 */
export function hintedPollDelayMs(attempt: number, hintedDurationMs: number, options: PollScheduleOptions = {}, providerHintMs?: number): number {
  if (attempt > 0) return pollDelayMs(attempt - 1, options, providerHintMs);
  const first = pollDelayMs(0, options, providerHintMs);
  if (!Number.isFinite(hintedDurationMs)) return first;
  return Math.round(Math.max(first, HINTED_FIRST_POLL_SHARE * hintedDurationMs));
}

/**
 * A job's completion hint (its stored `expected_duration_ms`) as the schedules take it: at most
 * the time left until its deadline (`untilDeadlineMs`, from its submission), so a hint longer than
 * the job may run still has it polled before the sweeper expires it (the default deadline, 6 h,
 * is shorter than the longest hint, 24 h); undefined when the job gave none.
 */
export function completionHintMs(hintMs: number | null | undefined, untilDeadlineMs?: number): number | undefined {
  if (hintMs === null || hintMs === undefined || !Number.isFinite(hintMs) || hintMs <= 0) return undefined;
  if (untilDeadlineMs === undefined || !Number.isFinite(untilDeadlineMs)) return hintMs;
  return Math.max(0, Math.min(hintMs, untilDeadlineMs));
}

/**
 * Whether polls are how a job's outcome is found (poll mode; hybrid mode while webhooks are not
 * known to arrive) rather than a safety net behind webhooks. A primary poll carries the job as it
 * last knew it and reads nothing before its write; a safety-net poll first reads the job, which a
 * webhook has most likely finished already, to spare the provider a call.
 */
export function pollsArePrimary(mode: CompletionMode, webhooks?: WebhookHealthState): boolean {
  return mode === 'poll' || (mode === 'hybrid' && webhooks !== 'healthy');
}

/**
 * Hybrid mode while webhooks arrive: polls are only a safety net, for the webhook that gets lost.
 * A job's first poll comes when its webhook is overdue: `webhookGraceMs` after the job is expected
 * to have finished (`expectedDurationMs`: its completion hint, else the learned duration of its
 * kind; at most `safetyIntervalMs` after it); a job of no known duration is first polled after
 * `safetyIntervalMs`. Every later poll follows `safetyIntervalMs` after the one before. The
 * provider's poll hint is not followed: the webhook is what is waited for.
 *
 * So a job whose webhook arrives costs no poll at all (the webhook retires it), however long it
 * runs, and one whose webhook is lost is found a grace period after its expected end. (The first
 * poll is not capped at `safetyIntervalMs`: a 5-minute job and the default 5-minute interval would
 * have it poll right at the job's end and cost 3 calls instead of 2.)
 */
export function safetyNetPollDelayMs(attempt: number, options: PollScheduleOptions = {}, expectedDurationMs?: number): number {
  const safety = options.safetyIntervalMs ?? 300_000;
  if (attempt > 0 || expectedDurationMs === undefined || !Number.isFinite(expectedDurationMs)) return safety;
  return Math.round(Math.max(0, expectedDurationMs) + Math.min(options.webhookGraceMs ?? 30_000, safety));
}

/**
 * Where a job `elapsedMs` after its submission stands in the adaptive schedule (`pollDelayMs`):
 * the number of its next poll and the delay until it. Used to put a job back on adaptive polling
 * (webhooks degraded) as if it had always been on it, rather than starting the schedule again.
 */
export function adaptivePollAfter(elapsedMs: number, options: PollScheduleOptions = {}): { attempt: number; delayMs: number } {
  const max = options.maxMs ?? 30_000;
  const elapsed = Math.max(0, elapsedMs);
  let at = 0;
  for (let attempt = 0; ; attempt++) {
    const delay = pollDelayMs(attempt, options);
    // Once the delay is at its cap the rest of the schedule is regular: jump straight to the poll.
    if (delay >= max || delay <= 0 || (options.factor ?? 2) <= 1) {
      const skipped = delay > 0 ? Math.max(0, Math.floor((elapsed - at) / delay)) : 0;
      const next = at + (skipped + 1) * Math.max(1, delay);
      return { attempt: attempt + skipped, delayMs: Math.round(next - elapsed) };
    }
    at += delay;
    if (at > elapsed) return { attempt, delayMs: Math.round(at - elapsed) };
  }
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
