import { describe, expect, it } from 'vitest';
import { DEFAULT_FLEX_RETRY_WINDOW_MS, flexRetryDecision, isFlexRequest, standardTierRequest } from '../src/index.ts';

const base = { windowMs: 900_000, fallback: null, baseMs: 1_000, maxMs: 60_000, random: 0.5 } as const;

describe('flexRetryDecision', () => {
  it('retries within the window with backoff that grows with the time spent, capped, with jitter', () => {
    const delay = (elapsedMs: number, random = 0.5) => {
      const d = flexRetryDecision({ ...base, elapsedMs, random });
      if (d.kind !== 'retry') throw new Error(`expected a retry, got ${d.kind}`);
      return d.delayMs;
    };
    // The first refusal waits about baseMs: half fixed, half jitter.
    expect(delay(0, 0)).toBe(500);
    expect(delay(0, 0.999999)).toBe(1000);
    // Each wait about as long as everything before it: exponential in the number of retries.
    expect(delay(4_000, 0)).toBe(2_000);
    expect(delay(4_000, 0.999999)).toBe(4_000);
    expect(delay(16_000, 0.5)).toBe(12_000);
    // Capped at maxMs however long flex has been refused.
    expect(delay(600_000, 0.999999)).toBe(60_000);
    expect(delay(600_000, 0)).toBe(30_000);
    // Jitter spreads retries that failed together.
    expect(new Set([0, 0.25, 0.5, 0.75].map((r) => delay(30_000, r))).size).toBe(4);
  });

  it('covers the window in a bounded number of retries, the last at its very end', () => {
    let elapsed = 0;
    let retries = 0;
    for (;;) {
      const d = flexRetryDecision({ ...base, elapsedMs: elapsed, random: 0.5 });
      if (d.kind !== 'retry') break;
      elapsed += d.delayMs;
      retries += 1;
    }
    // Ends exactly at the window: the last wait is cut to what was left of it.
    expect(elapsed).toBe(900_000);
    expect(retries).toBeGreaterThan(10);
    expect(retries).toBeLessThan(40);
  });

  it('never waits past the end of the window', () => {
    expect(flexRetryDecision({ ...base, elapsedMs: 899_000, random: 0.999 })).toEqual({ kind: 'retry', delayMs: 1_000 });
    expect(flexRetryDecision({ ...base, elapsedMs: 899_999.5, random: 0.999 })).toEqual({ kind: 'retry', delayMs: 1 });
  });

  it('once the window is over: the standard tier with flex_fallback auto, else flex_unavailable', () => {
    expect(flexRetryDecision({ ...base, elapsedMs: 900_000, fallback: 'auto' })).toEqual({ kind: 'standard' });
    expect(flexRetryDecision({ ...base, elapsedMs: 2_000_000, fallback: 'auto' })).toEqual({ kind: 'standard' });
    const failed = flexRetryDecision({ ...base, elapsedMs: 900_000 });
    expect(failed).toMatchObject({ kind: 'fail', error: { code: 'flex_unavailable' } });
    expect(failed.kind === 'fail' && failed.error.message).toMatch(/900 s.*flex_fallback/);
  });

  it('a window of 0 decides at the first refusal', () => {
    expect(flexRetryDecision({ ...base, windowMs: 0, elapsedMs: 0, fallback: 'auto' })).toEqual({ kind: 'standard' });
    expect(flexRetryDecision({ ...base, windowMs: 0, elapsedMs: 0 }).kind).toBe('fail');
  });

  it('defaults to a 15 minute window', () => {
    expect(DEFAULT_FLEX_RETRY_WINDOW_MS).toBe(15 * 60 * 1000);
  });
});

describe('flex requests', () => {
  it('is flex only with service_tier flex', () => {
    expect(isFlexRequest({ model: 'o3', service_tier: 'flex' })).toBe(true);
    expect(isFlexRequest({ model: 'o3' })).toBe(false);
    expect(isFlexRequest({ model: 'o3', service_tier: 'auto' })).toBe(false);
  });

  it('the standard-tier request is the same request at service_tier default', () => {
    const flex = { model: 'o3', input: 'x', service_tier: 'flex', metadata: { a: '1' } };
    expect(standardTierRequest(flex)).toEqual({ model: 'o3', input: 'x', service_tier: 'default', metadata: { a: '1' } });
    expect(flex.service_tier).toBe('flex');
  });
});
