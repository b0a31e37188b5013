import { describe, expect, it } from 'vitest';
import { mayRetry, nextPollDelayMs, parseRetryAfterMs, pollDelayMs, retryDelayMs } from '../src/index.ts';

describe('pollDelayMs', () => {
  it('grows from 1 s to the 30 s cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 10].map((a) => pollDelayMs(a))).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  it('polls a 5-minute response at most 15 times (the fixed 2 s loop needs 150)', () => {
    let elapsed = 0;
    let polls = 0;
    while (elapsed < 300_000) {
      elapsed += pollDelayMs(polls);
      polls += 1;
    }
    expect(polls).toBeLessThanOrEqual(15);
  });

  it('follows a provider hint within bounds', () => {
    expect(pollDelayMs(0, {}, 5000)).toBe(5000);
    expect(pollDelayMs(0, {}, 10)).toBe(250);
    expect(pollDelayMs(0, {}, 999_999)).toBe(30_000);
  });
});

describe('retryDelayMs', () => {
  it('backs off exponentially with bounded jitter', () => {
    expect(retryDelayMs(1, 0)).toBe(500);
    expect(retryDelayMs(1, 0.999999)).toBe(1000);
    expect(retryDelayMs(3, 0)).toBe(2000);
    expect(retryDelayMs(20, 1)).toBe(60_000);
  });

  it('stops when either budget runs out', () => {
    expect(mayRetry(3, 1000, { maxAttempts: 5, maxElapsedMs: 10_000 })).toBe(true);
    expect(mayRetry(5, 1000, { maxAttempts: 5, maxElapsedMs: 10_000 })).toBe(false);
    expect(mayRetry(1, 10_000, { maxAttempts: 5, maxElapsedMs: 10_000 })).toBe(false);
  });
});

describe('parseRetryAfterMs', () => {
  const now = new Date('2026-01-01T00:00:00Z');
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfterMs('2', now)).toBe(2000);
    expect(parseRetryAfterMs('0.5', now)).toBe(500);
    expect(parseRetryAfterMs('Thu, 01 Jan 2026 00:00:03 GMT', now)).toBe(3000);
    expect(parseRetryAfterMs('soon', now)).toBeUndefined();
    expect(parseRetryAfterMs(undefined, now)).toBeUndefined();
  });
});

describe('nextPollDelayMs', () => {
  it('polls adaptively in poll and hybrid mode and at the safety interval in webhook mode', () => {
    expect(nextPollDelayMs('poll', 2)).toBe(4000);
    expect(nextPollDelayMs('hybrid', 2)).toBe(4000);
    expect(nextPollDelayMs('webhook', 0)).toBe(300_000);
    expect(nextPollDelayMs('webhook', 7, { safetyIntervalMs: 120_000 }, 10)).toBe(120_000);
  });
});
