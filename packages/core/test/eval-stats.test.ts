import { describe, expect, it } from 'vitest';
import { compareVersions, mean, passRateInterval, percentile, signTestPValue } from '../src/index.ts';

describe('passRateInterval', () => {
  it('is the Wilson score interval: 8/10 ≈ [0.490, 0.943]', () => {
    const { rate, low, high } = passRateInterval(8, 10);
    expect(rate).toBe(0.8);
    expect(low).toBeCloseTo(0.4902, 4);
    expect(high).toBeCloseTo(0.9433, 4);
  });

  it('stays inside [0, 1] and is not a point at 0/n or n/n', () => {
    const none = passRateInterval(0, 20);
    expect(none.low).toBe(0);
    expect(none.high).toBeCloseTo(0.1611, 4);
    const all = passRateInterval(20, 20);
    expect(all.high).toBe(1);
    expect(all.low).toBeCloseTo(0.8389, 4);
  });

  it('narrows with a smaller z and gives nulls for n = 0', () => {
    const wide = passRateInterval(8, 10);
    const narrow = passRateInterval(8, 10, 1);
    expect(narrow.low!).toBeGreaterThan(wide.low!);
    expect(narrow.high!).toBeLessThan(wide.high!);
    expect(passRateInterval(0, 0)).toEqual({ rate: null, low: null, high: null });
  });
});

describe('mean and percentile', () => {
  it('mean of values, null for none', () => {
    expect(mean([1, 2, 3, 4])).toBe(2.5);
    expect(mean([])).toBeNull();
  });

  it('nearest-rank percentile of unsorted values, always one of them', () => {
    const values = [15, 20, 35, 40, 50];
    expect(percentile(values, 0.05)).toBe(15);
    expect(percentile(values, 0.3)).toBe(20);
    expect(percentile(values, 0.4)).toBe(20);
    expect(percentile(values, 0.5)).toBe(35);
    expect(percentile([50, 15, 40, 20, 35], 1)).toBe(50);
    expect(percentile(values, 0)).toBe(15);
    expect(percentile([], 0.5)).toBeNull();
  });

  it('does not reorder its input', () => {
    const values = [3, 1, 2];
    percentile(values, 0.5);
    expect(values).toEqual([3, 1, 2]);
  });
});

describe('signTestPValue', () => {
  it('is the two-sided exact binomial tail', () => {
    expect(signTestPValue(9, 1)).toBeCloseTo(22 / 1024, 10); // 0.0215
    expect(signTestPValue(1, 9)).toBeCloseTo(22 / 1024, 10);
    expect(signTestPValue(10, 0)).toBeCloseTo(2 / 1024, 10);
    expect(signTestPValue(5, 5)).toBe(1);
    expect(signTestPValue(0, 0)).toBe(1);
  });

  it('holds for large counts where 0.5^n underflows', () => {
    const p = signTestPValue(600, 1400);
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(1e-50);
    expect(signTestPValue(1000, 1000)).toBe(1);
  });
});

describe('compareVersions', () => {
  // b beats a on 9 items by 0.2..1.0 and loses one by 0.1; two items tie.
  const pairs = [...[0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1].map((d) => ({ a: 0, b: d })), { a: 0.6, b: 0.5 }, { a: 1, b: 1 }, { a: 0.5, b: 0.5 }];

  it('counts wins, losses and ties of b against a, and the mean difference', () => {
    const result = compareVersions(pairs, { seed: 1 });
    expect(result).toMatchObject({ n: 12, wins: 9, losses: 1, ties: 2 });
    expect(result.meanDifference).toBeCloseTo((5.4 - 0.1) / 12, 10);
    expect(result.pValue).toBeCloseTo(22 / 1024, 10);
  });

  it('calls a clear improvement significant: p < alpha and the bootstrap interval excludes 0', () => {
    const result = compareVersions(pairs, { seed: 7 });
    expect(result.interval!.low).toBeGreaterThan(0);
    expect(result.interval!.high).toBeLessThanOrEqual(1);
    expect(result.interval!.low).toBeLessThan(result.meanDifference!);
    expect(result.interval!.high).toBeGreaterThan(result.meanDifference!);
    expect(result.significant).toBe(true);
    // The same data at alpha 0.01: the sign test's 0.0215 no longer passes.
    expect(compareVersions(pairs, { seed: 7, alpha: 0.01 }).significant).toBe(false);
  });

  it('is deterministic for a seed and draws differently for another', () => {
    const noisy = Array.from({ length: 30 }, (_, i) => ({ a: ((i * 7) % 10) / 10, b: ((i * 3) % 10) / 10 }));
    const first = compareVersions(noisy, { seed: 42, resamples: 500 });
    expect(compareVersions(noisy, { seed: 42, resamples: 500 })).toEqual(first);
    expect(compareVersions(noisy, { seed: 43, resamples: 500 }).interval).not.toEqual(first.interval);
  });

  it('is not significant when the versions do not differ', () => {
    const same = Array.from({ length: 20 }, (_, i) => ({ a: i % 2, b: (i + 1) % 2 }));
    const result = compareVersions(same, { seed: 3 });
    expect(result).toMatchObject({ wins: 10, losses: 10, ties: 0, pValue: 1, significant: false });
    expect(result.interval!.low).toBeLessThan(0);
    expect(result.interval!.high).toBeGreaterThan(0);
  });

  it('needs both tests: many tiny wins and one large loss are not significant', () => {
    // The sign test alone would call it (p ≈ 4e-5), but the mean difference is negative.
    const skewed = [...Array.from({ length: 19 }, () => ({ a: 0.5, b: 0.51 })), { a: 1, b: 0 }];
    const result = compareVersions(skewed, { seed: 5 });
    expect(result.pValue).toBeLessThan(0.001);
    expect(result.meanDifference!).toBeLessThan(0);
    expect(result.significant).toBe(false);
  });

  it('gives no interval for no items', () => {
    expect(compareVersions([], { seed: 1 })).toEqual({ n: 0, wins: 0, losses: 0, ties: 0, meanDifference: null, pValue: 1, interval: null, significant: false });
  });
});
