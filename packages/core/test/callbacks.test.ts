import { describe, expect, it } from 'vitest';
import { STANDARD_WEBHOOKS_SCHEDULE_MS, callbackRetryDelayMs, shouldDisableEndpoint } from '../src/index.ts';

describe('callbackRetryDelayMs', () => {
  it('follows the Standard Webhooks schedule, then gives up', () => {
    const delays = STANDARD_WEBHOOKS_SCHEDULE_MS.map((_, i) => callbackRetryDelayMs(i, 0.5));
    expect(delays).toEqual([0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 50_400_000, 72_000_000, 86_400_000]);
    expect(callbackRetryDelayMs(10, 0.5)).toBeNull();
  });

  it('spreads each delay by at most ±10 %', () => {
    expect(callbackRetryDelayMs(1, 0)).toBe(4_500);
    expect(callbackRetryDelayMs(1, 0.9999999)).toBe(5_500);
  });

  it('scales time and honours Retry-After as a minimum', () => {
    expect(callbackRetryDelayMs(2, 0.5, { timeScale: 0.001 })).toBe(300);
    expect(callbackRetryDelayMs(1, 0.5, {}, 60_000)).toBe(60_000);
    expect(callbackRetryDelayMs(2, 0.5, {}, 1_000)).toBe(300_000);
  });
});

describe('shouldDisableEndpoint', () => {
  it('disables only after failing continuously for the whole period', () => {
    const now = new Date('2026-01-06T00:00:00Z');
    expect(shouldDisableEndpoint(null, now, 5 * 86_400_000)).toBe(false);
    expect(shouldDisableEndpoint(new Date('2026-01-02T00:00:01Z'), now, 4 * 86_400_000)).toBe(false);
    expect(shouldDisableEndpoint(new Date('2026-01-01T00:00:00Z'), now, 5 * 86_400_000)).toBe(true);
  });
});
