import { describe, expect, it } from 'vitest';
import {
  INITIAL_WEBHOOK_HEALTH,
  type WebhookHealth,
  adaptivePollAfter,
  durationKind,
  expectedDurationMs,
  nextPollDelayMs,
  nextWorkFor,
  observeDuration,
  observeWebhooks,
  pollDelayMs,
  safetyNetPollDelayMs,
  webhookIsLate,
} from '../src/index.ts';

const T0 = 1_800_000_000_000;
const arrived = { arrived: 1, late: 0 };
const late = { arrived: 0, late: 1 };

/** Apply single observations one by one, a second apart. */
function replay(start: WebhookHealth, seen: { arrived: number; late: number }[]): WebhookHealth[] {
  const out: WebhookHealth[] = [];
  let h = start;
  for (const [i, s] of seen.entries()) {
    h = observeWebhooks(h, s, T0 + i * 1000);
    out.push(h);
  }
  return out;
}

const healthy = (): WebhookHealth => replay(INITIAL_WEBHOOK_HEALTH, Array(20).fill(arrived)).at(-1)!;

describe('observeWebhooks', () => {
  it('starts unknown and learns webhooks are healthy after three arrivals', () => {
    const states = replay(INITIAL_WEBHOOK_HEALTH, [arrived, arrived, arrived]).map((h) => h.state);
    expect(states).toEqual(['unknown', 'unknown', 'healthy']);
  });

  it('degrades after four late webhooks in a row, and records when', () => {
    const after = replay(healthy(), [late, late, late, late]);
    expect(after.map((h) => h.state)).toEqual(['healthy', 'healthy', 'healthy', 'degraded']);
    expect(after[3]!.changedAtMs).toBe(T0 + 3000);
    expect(after[3]!.loss).toBeCloseTo(1 - 0.8 ** 4, 2);
  });

  it('recovers only once the loss is down to a fifth: hysteresis', () => {
    const degraded = replay(healthy(), Array(10).fill(late)).at(-1)!;
    expect(degraded.state).toBe('degraded');
    const states = replay(degraded, Array(8).fill(arrived)).map((h) => h.state);
    // From a loss of ~0.9, eight arrivals take it to ~0.15; the first six leave it above 0.2.
    expect(states.slice(0, 6)).toEqual(Array(6).fill('degraded'));
    expect(states.at(-1)).toBe('healthy');
  });

  it('does not flap under a steady partial loss between the thresholds', () => {
    // One webhook in three late: the estimate wanders around 1/3, inside the hysteresis band.
    const pattern = Array.from({ length: 300 }, (_, i) => (i % 3 === 2 ? late : arrived));
    const states = replay(healthy(), pattern).map((h) => h.state);
    expect(new Set(states)).toEqual(new Set(['healthy']));
  });

  it('degrades a fresh deployment whose webhooks never come, once four are late', () => {
    expect(replay(INITIAL_WEBHOOK_HEALTH, [late, late, late, late]).map((h) => h.state)).toEqual(['unknown', 'unknown', 'unknown', 'degraded']);
  });

  it('takes a batch as that many observations of its average', () => {
    const batched = observeWebhooks(healthy(), { arrived: 0, late: 4 }, T0);
    const one = replay(healthy(), [late, late, late, late]).at(-1)!;
    expect(batched.loss).toBeCloseTo(one.loss, 10);
    expect(batched.state).toBe('degraded');
    expect(observeWebhooks(healthy(), { arrived: 0, late: 0 }, T0)).toEqual(healthy());
  });
});

describe('webhookIsLate', () => {
  const completed = { status: 'completed', completed_at: T0 / 1000 };

  it('counts a completed response found at least the grace period after it completed', () => {
    // completed_at is whole seconds: read as the end of its second.
    expect(webhookIsLate({ response: completed, nowMs: T0 + 31_000, graceMs: 30_000 })).toBe(true);
    expect(webhookIsLate({ response: completed, nowMs: T0 + 30_999, graceMs: 30_000 })).toBe(false);
    expect(webhookIsLate({ response: completed, nowMs: T0 + 999, graceMs: 0 })).toBe(false);
  });

  it('counts a response found finished once its job has run past its expected duration', () => {
    const job = { submittedAtMs: T0 - 60_000, graceMs: 30_000, nowMs: T0 + 100 };
    expect(webhookIsLate({ ...job, response: completed, expectedDurationMs: 60_000 })).toBe(true);
    expect(webhookIsLate({ ...job, response: { status: 'failed' }, expectedDurationMs: 60_000 })).toBe(true);
    expect(webhookIsLate({ ...job, response: completed, expectedDurationMs: 61_000 })).toBe(false);
    expect(webhookIsLate({ ...job, response: completed })).toBe(false);
  });

  it('says nothing of responses without a completion time early in their expected run', () => {
    expect(webhookIsLate({ response: { status: 'failed', completed_at: null }, nowMs: T0, graceMs: 0 })).toBe(false);
    expect(webhookIsLate({ response: { status: 'completed' }, nowMs: T0, graceMs: 0 })).toBe(false);
  });
});

describe('expected durations', () => {
  it('are known after three jobs, a high estimate that covers their spread', () => {
    let e = observeDuration(undefined, 60_000);
    e = observeDuration(e, 60_000);
    expect(expectedDurationMs(e)).toBeUndefined();
    e = observeDuration(e, 60_000);
    expect(expectedDurationMs(e)).toBe(60_000);
    for (const ms of [40_000, 90_000, 50_000, 80_000, 60_000, 70_000]) e = observeDuration(e, ms);
    const expected = expectedDurationMs(e)!;
    expect(expected).toBeGreaterThan(80_000);
    expect(expected).toBeLessThan(200_000);
  });

  it('follow a change of duration', () => {
    let e = observeDuration(undefined, 1_000);
    for (let i = 0; i < 10; i++) e = observeDuration(e, 1_000);
    for (let i = 0; i < 60; i++) e = observeDuration(e, 300_000);
    expect(expectedDurationMs(e)).toBeGreaterThan(300_000);
    expect(expectedDurationMs(e)).toBeLessThan(1.15 * 300_000);
  });

  it('are kept per model, reasoning effort and service tier', () => {
    expect(durationKind('o3', { reasoning: { effort: 'high' } })).toBe('o3|high|');
    expect(durationKind('o3', { reasoning: { effort: 'high' }, service_tier: 'flex' })).toBe('o3|high|flex');
    expect(durationKind('o3', { service_tier: 'auto' })).toBe('o3||');
  });
});

describe('hybrid poll schedule', () => {
  const POLL = { initialMs: 1_000, factor: 2, maxMs: 30_000, safetyIntervalMs: 300_000, webhookGraceMs: 30_000 };

  it('while webhooks are healthy: the first poll when the job is overdue, then every safety interval', () => {
    // A 4 s job: polled 30 s after its expected end (its webhook overdue), then every 5 minutes.
    expect(safetyNetPollDelayMs(0, POLL, 4_000)).toBe(34_000);
    expect(safetyNetPollDelayMs(1, POLL, 4_000)).toBe(300_000);
    // A 5-minute job with the 5-minute safety interval: not at its end (a poll then may find it
    // running, its webhook not due yet) but when its webhook is overdue; a longer one alike.
    expect(safetyNetPollDelayMs(0, POLL, 300_000)).toBe(330_000);
    expect(safetyNetPollDelayMs(0, POLL, 600_000)).toBe(630_000);
    // The grace period is at most the safety interval.
    expect(safetyNetPollDelayMs(0, { ...POLL, safetyIntervalMs: 2_000 }, 4_000)).toBe(6_000);
    // No known duration: the safety interval.
    expect(safetyNetPollDelayMs(0, POLL)).toBe(300_000);
  });

  it('chooses by the webhooks health in hybrid mode only, and ignores the provider hint while healthy', () => {
    const healthyCtx = { webhooks: 'healthy' as const, expectedDurationMs: 4_000 };
    expect(nextPollDelayMs('hybrid', 0, POLL, 2_000, healthyCtx)).toBe(34_000);
    expect(nextPollDelayMs('hybrid', 0, POLL, 2_000, { ...healthyCtx, webhooks: 'degraded' })).toBe(2_000);
    expect(nextPollDelayMs('hybrid', 3, POLL, undefined, { ...healthyCtx, webhooks: 'unknown' })).toBe(8_000);
    expect(nextPollDelayMs('poll', 0, POLL, undefined, healthyCtx)).toBe(1_000);
    expect(nextPollDelayMs('webhook', 0, POLL, undefined, healthyCtx)).toBe(300_000);
  });

  it('nextWorkFor passes the health and the expected duration on to the schedule', () => {
    const job = { status: 'queued' as const, streamed: false, expectedDurationMs: 4_000 };
    expect(nextWorkFor(job, { type: 'submitted' }, { completionMode: 'hybrid', poll: POLL, webhooks: 'healthy' })).toEqual([{ kind: 'poll', attempt: 0, delayMs: 34_000 }]);
    expect(nextWorkFor(job, { type: 'polled', attempt: 0 }, { completionMode: 'hybrid', poll: POLL, webhooks: 'healthy' })).toEqual([
      { kind: 'poll', attempt: 1, delayMs: 300_000 },
    ]);
    expect(nextWorkFor(job, { type: 'submitted' }, { completionMode: 'hybrid', poll: POLL, webhooks: 'degraded' })).toEqual([{ kind: 'poll', attempt: 0, delayMs: 1_000 }]);
    // A stream the provider will not serve is retried soon whatever the webhooks do: its watchers wait.
    expect(nextWorkFor({ ...job, streamed: true }, { type: 'stream_unavailable', attempt: 0 }, { completionMode: 'hybrid', poll: POLL, webhooks: 'healthy' })).toEqual([
      { kind: 'stream', delayMs: 1_000 },
    ]);
  });

  it('puts a job back on the adaptive schedule where it would be after its elapsed time', () => {
    // Adaptive polls at 1, 3, 7, 15, 31, 61, 91 ... s.
    expect(adaptivePollAfter(0, POLL)).toEqual({ attempt: 0, delayMs: 1_000 });
    expect(adaptivePollAfter(2_000, POLL)).toEqual({ attempt: 1, delayMs: 1_000 });
    expect(adaptivePollAfter(3_000, POLL)).toEqual({ attempt: 2, delayMs: 4_000 });
    expect(adaptivePollAfter(40_000, POLL)).toEqual({ attempt: 5, delayMs: 21_000 });
    expect(adaptivePollAfter(100_000, POLL)).toEqual({ attempt: 7, delayMs: 21_000 });
    // The next poll then follows the schedule from there.
    expect(pollDelayMs(adaptivePollAfter(100_000, POLL).attempt + 1, POLL)).toBe(30_000);
    expect(adaptivePollAfter(6 * 3_600_000, POLL).delayMs).toBeLessThanOrEqual(30_000);
    expect(adaptivePollAfter(5_000, { ...POLL, factor: 1 })).toEqual({ attempt: 5, delayMs: 1_000 });
  });
});
