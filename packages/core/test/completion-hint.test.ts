import { describe, expect, it } from 'vitest';
import { type CompletionMode, type PollContext, completionHintMs, hintedPollDelayMs, nextPollDelayMs, nextWorkFor, pollDelayMs } from '../src/index.ts';

const POLL = { initialMs: 1_000, factor: 2, maxMs: 30_000, safetyIntervalMs: 300_000, webhookGraceMs: 30_000 };

/** How many polls the schedule makes of a job that finishes `durationMs` after its submission, and when the last one comes. */
function pollsFor(durationMs: number, mode: CompletionMode, context: PollContext = {}): { polls: number; foundAtMs: number } {
  let at = 0;
  let polls = 0;
  while (at < durationMs) {
    at += nextPollDelayMs(mode, polls, POLL, undefined, context);
    polls += 1;
  }
  return { polls, foundAtMs: at };
}

describe('hintedPollDelayMs', () => {
  it('waits 90 % of the hint for the first poll, then the adaptive schedule from its start', () => {
    expect(hintedPollDelayMs(0, 300_000, POLL)).toBe(270_000);
    expect([1, 2, 3, 4, 5, 6, 7].map((attempt) => hintedPollDelayMs(attempt, 300_000, POLL))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    expect([1, 2, 3].map((attempt) => hintedPollDelayMs(attempt, 300_000, POLL))).toEqual([0, 1, 2].map((a) => pollDelayMs(a, POLL)));
  });

  it("never waits less than the schedule's first delay", () => {
    expect(hintedPollDelayMs(0, 500, POLL)).toBe(1_000);
    expect(hintedPollDelayMs(0, 0, POLL)).toBe(1_000);
    expect(hintedPollDelayMs(0, Number.NaN, POLL)).toBe(1_000);
  });

  it("lets the provider's poll hint win when it is larger, and follows it for the later polls", () => {
    expect(hintedPollDelayMs(0, 10_000, POLL, 20_000)).toBe(20_000);
    expect(hintedPollDelayMs(0, 300_000, POLL, 20_000)).toBe(270_000);
    expect(hintedPollDelayMs(1, 300_000, POLL, 5_000)).toBe(5_000);
  });
});

describe('completionHintMs', () => {
  it('is the stored hint, at most the time left until the deadline', () => {
    expect(completionHintMs(300_000)).toBe(300_000);
    expect(completionHintMs(300_000, 3_600_000)).toBe(300_000);
    expect(completionHintMs(86_400_000, 21_600_000)).toBe(21_600_000);
    expect(completionHintMs(300_000, -5)).toBe(0);
  });

  it('is undefined for a job that gave none', () => {
    for (const none of [null, undefined, 0, -1, Number.NaN]) expect(completionHintMs(none, 3_600_000)).toBeUndefined();
  });

  it('has a job hinted longer than its deadline polled before it', () => {
    const deadlineMs = 21_600_000;
    expect(nextPollDelayMs('poll', 0, POLL, undefined, { hintedDurationMs: completionHintMs(86_400_000, deadlineMs) })).toBeLessThan(deadlineMs);
  });
});

describe('nextPollDelayMs with a completion hint', () => {
  it('costs a 5-minute job hinted 5 minutes 6 polls instead of 14, and finds it as soon', () => {
    const hinted = pollsFor(300_000, 'poll', { hintedDurationMs: 300_000 });
    const unhinted = pollsFor(300_000, 'poll');
    expect(hinted.polls).toBe(6);
    expect(unhinted.polls).toBe(14);
    expect(hinted.foundAtMs).toBeLessThanOrEqual(unhinted.foundAtMs);
  });

  it('costs one poll for a job that ends before 90 % of its hint, and few for one that overruns it', () => {
    expect(pollsFor(200_000, 'poll', { hintedDurationMs: 300_000 }).polls).toBe(1);
    expect(pollsFor(400_000, 'poll', { hintedDurationMs: 300_000 }).polls).toBeLessThan(pollsFor(400_000, 'poll').polls);
  });

  it('shapes primary polling in hybrid mode while webhooks are not healthy', () => {
    for (const webhooks of [undefined, 'unknown', 'degraded'] as const) {
      expect(nextPollDelayMs('hybrid', 0, POLL, undefined, { webhooks, hintedDurationMs: 300_000, expectedDurationMs: 60_000 })).toBe(270_000);
      expect(nextPollDelayMs('hybrid', 1, POLL, undefined, { webhooks, hintedDurationMs: 300_000 })).toBe(1_000);
    }
  });

  it('replaces the learned duration of its kind for the safety poll while webhooks are healthy', () => {
    const healthy = { webhooks: 'healthy' as const, expectedDurationMs: 60_000 };
    expect(nextPollDelayMs('hybrid', 0, POLL, undefined, healthy)).toBe(90_000);
    expect(nextPollDelayMs('hybrid', 0, POLL, undefined, { ...healthy, hintedDurationMs: 300_000 })).toBe(330_000);
    expect(nextPollDelayMs('hybrid', 0, POLL, undefined, { webhooks: 'healthy', hintedDurationMs: 300_000 })).toBe(330_000);
    expect(nextPollDelayMs('hybrid', 1, POLL, undefined, { ...healthy, hintedDurationMs: 300_000 })).toBe(300_000);
  });

  it('leaves webhook mode as it is', () => {
    for (const attempt of [0, 1, 5]) expect(nextPollDelayMs('webhook', attempt, POLL, 2_000, { hintedDurationMs: 30_000, webhooks: 'healthy' })).toBe(300_000);
  });
});

describe('nextWorkFor with a completion hint', () => {
  const hinted = (status: 'queued' | 'in_progress') => ({ status, streamed: false, hintedDurationMs: 300_000 });

  it('schedules the first poll of a hinted job at about its hint, and the next ones from the start of the schedule', () => {
    expect(nextWorkFor(hinted('queued'), { type: 'submitted' }, { completionMode: 'poll', poll: POLL })).toEqual([{ kind: 'poll', attempt: 0, delayMs: 270_000 }]);
    expect(nextWorkFor(hinted('in_progress'), { type: 'polled', attempt: 0 }, { completionMode: 'poll', poll: POLL })).toEqual([{ kind: 'poll', attempt: 1, delayMs: 1_000 }]);
    expect(nextWorkFor(hinted('in_progress'), { type: 'polled', attempt: 2 }, { completionMode: 'poll', poll: POLL })).toEqual([{ kind: 'poll', attempt: 3, delayMs: 4_000 }]);
  });

  it('puts the safety poll after the hint, not the learned duration, while webhooks are healthy', () => {
    const job = { ...hinted('queued'), expectedDurationMs: 60_000 };
    expect(nextWorkFor(job, { type: 'submitted' }, { completionMode: 'hybrid', webhooks: 'healthy', poll: POLL })).toEqual([{ kind: 'poll', attempt: 0, delayMs: 330_000 }]);
  });

  it('follows a streamed job by its stream at once, hint or not', () => {
    expect(nextWorkFor({ ...hinted('queued'), streamed: true }, { type: 'submitted' }, { completionMode: 'poll', poll: POLL })).toEqual([{ kind: 'stream', delayMs: 0 }]);
  });
});
