/**
 * Expected durations: how long a kind of job (its model, reasoning effort and service tier) takes
 * at the provider, learned from the jobs of that kind that finished. Hybrid mode, webhooks
 * healthy, polls a job first when its webhook is overdue: a grace period after its expected
 * duration (schedules.ts `safetyNetPollDelayMs`), not before (a poll before the end finds
 * nothing), nor long after (it would catch a lost webhook late).
 *
 * Design note: durations of one kind spread multiplicatively (a longer prompt, more reasoning),
 * so the estimate lives in log space: an exponentially weighted mean `mean` of ln(ms) and mean
 * absolute deviation `deviation` (each new duration weighs `weight`, 0.1, or 1/n while there are
 * fewer than 10). The expected duration is exp(mean + 2 × deviation): a high estimate, that most
 * jobs of the kind finish before, robust to the odd outlier. Known only after `minSamples`.
 */

export interface DurationEstimate {
  /** Weighted mean of ln(duration in ms). */
  mean: number;
  /** Weighted mean absolute deviation of ln(duration in ms) from `mean`. */
  deviation: number;
  samples: number;
}

export interface DurationEstimateOptions {
  /** Weight of each new duration once 10 are known. Default 0.1. */
  weight?: number;
  /** Durations needed before the estimate is used. Default 3. */
  minSamples?: number;
}

/** The estimate after one more finished job of `durationMs`. Pure. */
export function observeDuration(estimate: DurationEstimate | undefined, durationMs: number, options: DurationEstimateOptions = {}): DurationEstimate {
  const x = Math.log(Math.max(1, Number.isFinite(durationMs) ? durationMs : 1));
  if (!estimate || !(estimate.samples > 0)) return { mean: x, deviation: 0, samples: 1 };
  const samples = estimate.samples + 1;
  const weight = Math.max(options.weight ?? 0.1, 1 / samples);
  const mean = estimate.mean + weight * (x - estimate.mean);
  const deviation = estimate.deviation + weight * (Math.abs(x - mean) - estimate.deviation);
  return { mean, deviation, samples };
}

/** How long a job of the estimate's kind is expected to take at most (ms), or undefined while too few finished. */
export function expectedDurationMs(estimate: DurationEstimate | undefined, options: DurationEstimateOptions = {}): number | undefined {
  if (!estimate || estimate.samples < (options.minSamples ?? 3)) return undefined;
  const ms = Math.exp(estimate.mean + 2 * estimate.deviation);
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/** Longest kind key kept (a model name is the tenant's string). */
const MAX_KIND_LENGTH = 160;

/**
 * The kind of a job, as far as its duration goes: `model|effort|tier` from its create parameters
 * (effort and tier empty when not set).
 */
export function durationKind(model: string, request: Record<string, unknown>): string {
  const reasoning = request.reasoning as { effort?: unknown } | null | undefined;
  const effort = typeof reasoning?.effort === 'string' ? reasoning.effort : '';
  const tier = typeof request.service_tier === 'string' && request.service_tier !== 'auto' && request.service_tier !== 'default' ? request.service_tier : '';
  return `${model}|${effort}|${tier}`.slice(0, MAX_KIND_LENGTH);
}
