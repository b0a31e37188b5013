/**
 * Evaluation statistics (issue 18): pass rates with confidence intervals, score summaries, and
 * the item-by-item comparison of two versions' scores. Pure and deterministic: the bootstrap
 * draws from a seeded PRNG, so the same results and seed give the same interval.
 */

/**
 * The pass rate with its Wilson score interval (z = 1.96: 95%). Wilson rather than the normal
 * approximation because evaluations are small and pass rates sit near 0 or 1, where the normal
 * interval leaves [0, 1] or collapses to a point. n = 0 gives nulls.
 */
export function passRateInterval(passes: number, n: number, z = 1.96): { rate: number | null; low: number | null; high: number | null } {
  if (n <= 0) return { rate: null, low: null, high: null };
  const rate = passes / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const center = (rate + z2 / (2 * n)) / denominator;
  const half = (z * Math.sqrt((rate * (1 - rate)) / n + z2 / (4 * n * n))) / denominator;
  return { rate, low: Math.max(0, center - half), high: Math.min(1, center + half) };
}

/** The arithmetic mean, or null for no values. */
export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/**
 * Nearest-rank percentile (`p` in [0, 1]): the smallest value with at least p of the values at
 * or below it, always one of the values (the same rule as the benchmarks' `percentile`). The
 * values need not be sorted; null for no values.
 */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  return nearestRank(
    [...values].sort((x, y) => x - y),
    p,
  );
}

function nearestRank(sorted: readonly number[], p: number): number {
  const rank = Math.ceil(p * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Two versions compared on the same items; differences are b − a, so positive favours b. */
export interface VersionComparison {
  /** Items compared. */
  n: number;
  /** Items where b scored higher than a. */
  wins: number;
  /** Items where b scored lower than a. */
  losses: number;
  ties: number;
  /** Mean of b − a over the items; null for no items. */
  meanDifference: number | null;
  /** Two-sided exact sign test over the non-tied items (1 when all tie). */
  pValue: number;
  /** Paired bootstrap percentile interval of the mean difference at 1 − alpha; null for no items. */
  interval: { low: number; high: number } | null;
  /** pValue < alpha and the interval excludes 0. */
  significant: boolean;
}

/**
 * Compares two versions item by item (`a` and `b` are one item's scores under each). Two tests
 * must agree for `significant`: the sign test (does b win more often than chance?) and the
 * paired bootstrap interval of the mean difference (is the average gain clear of 0?). Requiring
 * both guards against many tiny wins that do not move the mean, and against one large win among
 * ties moving it. The bootstrap resamples items with replacement `resamples` times (default
 * 2000) from a mulberry32 PRNG seeded with `seed`; `alpha` defaults to 0.05.
 */
export function compareVersions(pairs: readonly { a: number; b: number }[], options: { seed: number; resamples?: number; alpha?: number }): VersionComparison {
  const alpha = options.alpha ?? 0.05;
  const resamples = Math.max(1, Math.floor(options.resamples ?? 2000));
  const differences = pairs.map(({ a, b }) => b - a);
  const wins = differences.filter((d) => d > 0).length;
  const losses = differences.filter((d) => d < 0).length;
  const pValue = signTestPValue(wins, losses);
  const meanDifference = mean(differences);
  const interval = differences.length === 0 ? null : bootstrapMeanInterval(differences, resamples, alpha, mulberry32(options.seed));
  const significant = interval !== null && pValue < alpha && (interval.low > 0 || interval.high < 0);
  return { n: pairs.length, wins, losses, ties: pairs.length - wins - losses, meanDifference, pValue, interval, significant };
}

/**
 * Two-sided exact sign test: 2 · P(X ≤ min(wins, losses)) for X ~ Binomial(wins + losses, ½),
 * capped at 1. Summed in log space so it holds for thousands of items (½ⁿ underflows past 1074).
 */
export function signTestPValue(wins: number, losses: number): number {
  const n = wins + losses;
  if (n === 0) return 1;
  const k = Math.min(wins, losses);
  const logHalfPowN = -n * Math.LN2;
  let logChoose = 0;
  let tail = 0;
  for (let i = 0; i <= k; i++) {
    if (i > 0) logChoose += Math.log(n - i + 1) - Math.log(i);
    tail += Math.exp(logChoose + logHalfPowN);
  }
  return Math.min(1, 2 * tail);
}

function bootstrapMeanInterval(differences: readonly number[], resamples: number, alpha: number, random: () => number): { low: number; high: number } {
  const n = differences.length;
  const means = new Array<number>(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += differences[Math.floor(random() * n)]!;
    means[r] = sum / n;
  }
  means.sort((x, y) => x - y);
  return { low: nearestRank(means, alpha / 2), high: nearestRank(means, 1 - alpha / 2) };
}

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1) (the simulator's, apps/sim/src/random.ts). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
