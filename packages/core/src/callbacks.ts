/**
 * Callback retry rules, pure. The default schedule is Standard Webhooks' (as Svix uses):
 * immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h after each failure.
 */

export const STANDARD_WEBHOOKS_SCHEDULE_MS: readonly number[] = [
  0,
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  14 * 3_600_000,
  20 * 3_600_000,
  24 * 3_600_000,
];

export interface CallbackScheduleOptions {
  /** Delay before each attempt (the first is normally 0). Default: the Standard Webhooks schedule. */
  scheduleMs?: readonly number[];
  /** Multiplies every delay (tests run the whole schedule in seconds). Default 1. */
  timeScale?: number;
  /** ± fraction of random spread on each delay. Default 0.1. */
  jitter?: number;
}

/**
 * Delay before the next attempt after `attemptsMade` attempts failed, or `null` when the
 * schedule is exhausted (the delivery becomes a dead letter). A `Retry-After` from the receiver
 * is honoured as a minimum. `random` is a number in [0, 1).
 */
export function callbackRetryDelayMs(attemptsMade: number, random: number, options: CallbackScheduleOptions = {}, retryAfterMs?: number): number | null {
  const schedule = options.scheduleMs ?? STANDARD_WEBHOOKS_SCHEDULE_MS;
  const base = schedule[attemptsMade];
  if (base === undefined) return null;
  const jitter = options.jitter ?? 0.1;
  const scaled = base * (options.timeScale ?? 1);
  const spread = scaled * jitter * (2 * Math.min(Math.max(random, 0), 1) - 1);
  return Math.max(Math.round(scaled + spread), retryAfterMs ?? 0);
}

/** Whether an endpoint failing since `failingSince` has failed long enough to be disabled. */
export function shouldDisableEndpoint(failingSince: Date | null, now: Date, disableAfterMs: number): boolean {
  return failingSince !== null && now.getTime() - failingSince.getTime() >= disableAfterMs;
}
