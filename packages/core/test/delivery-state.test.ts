import { describe, expect, it } from 'vitest';
import {
  DELIVERY_STATUSES,
  type DeliveryEvent,
  type DeliveryState,
  type DeliveryStatus,
  STANDARD_WEBHOOKS_SCHEDULE_MS,
  deliveryTransition,
  isTerminalDelivery,
} from '../src/index.ts';

const now = new Date('2026-01-01T00:00:00Z');
const pending: DeliveryState = { status: 'pending', attempts: 0, nextAttemptAt: now, finishedAt: null, lastStatusCode: null, lastError: null };
const at = (status: DeliveryStatus, patch: Partial<DeliveryState> = {}): DeliveryState => ({
  ...pending,
  status,
  nextAttemptAt: null,
  finishedAt: status === 'pending' ? null : now,
  ...patch,
});
const retry = { schedule: { jitter: 0 }, random: 0.5 };

const events: DeliveryEvent[] = [
  { type: 'attempt_succeeded', statusCode: 200 },
  { type: 'attempt_failed', statusCode: 500, error: 'HTTP 500', retry },
  { type: 'attempt_failed', statusCode: 410, error: 'endpoint answered 410 Gone', retry: null },
  { type: 'endpoint_removed', reason: 'endpoint deleted' },
  { type: 'redelivery_requested' },
];

describe('delivery statuses', () => {
  it('keeps the stored values, in the order of the Postgres enum', () => {
    expect(DELIVERY_STATUSES).toEqual(['pending', 'succeeded', 'failed', 'cancelled']);
    expect(DELIVERY_STATUSES.filter(isTerminalDelivery)).toEqual(['succeeded', 'failed', 'cancelled']);
  });
});

describe('deliveryTransition', () => {
  it('a 2xx finishes a pending delivery as succeeded, counting the attempt', () => {
    const r = deliveryTransition({ ...pending, attempts: 2, lastStatusCode: 500, lastError: 'HTTP 500' }, { type: 'attempt_succeeded', statusCode: 204 }, now);
    expect(r).toEqual({ ok: true, changed: true, next: { status: 'succeeded', attempts: 3, nextAttemptAt: null, finishedAt: now, lastStatusCode: 204, lastError: null } });
  });

  it('a failure is retried on the schedule, honouring Retry-After, until the schedule runs out', () => {
    const r = deliveryTransition(pending, { type: 'attempt_failed', statusCode: 500, error: 'HTTP 500', retry }, now);
    expect(r).toEqual({
      ok: true,
      changed: true,
      next: { status: 'pending', attempts: 1, nextAttemptAt: new Date(now.getTime() + 5_000), finishedAt: null, lastStatusCode: 500, lastError: 'HTTP 500' },
    });
    const slow = deliveryTransition(pending, { type: 'attempt_failed', statusCode: 503, error: 'HTTP 503', retry: { ...retry, retryAfterMs: 60_000 } }, now);
    expect(slow.ok && slow.next.nextAttemptAt).toEqual(new Date(now.getTime() + 60_000));
    const last = deliveryTransition({ ...pending, attempts: STANDARD_WEBHOOKS_SCHEDULE_MS.length - 1 }, { type: 'attempt_failed', statusCode: 500, error: 'HTTP 500', retry }, now);
    expect(last).toEqual({
      ok: true,
      changed: true,
      next: { status: 'failed', attempts: STANDARD_WEBHOOKS_SCHEDULE_MS.length, nextAttemptAt: null, finishedAt: now, lastStatusCode: 500, lastError: 'HTTP 500' },
    });
  });

  it('a failure that may not be retried is a dead letter at once', () => {
    const r = deliveryTransition(pending, { type: 'attempt_failed', statusCode: 410, error: 'endpoint answered 410 Gone', retry: null }, now);
    expect(r).toMatchObject({ ok: true, next: { status: 'failed', attempts: 1, nextAttemptAt: null, finishedAt: now } });
  });

  it('removing the endpoint cancels a pending delivery, and again is a no-op', () => {
    const r = deliveryTransition({ ...pending, attempts: 1, lastStatusCode: 500 }, { type: 'endpoint_removed', reason: 'endpoint deleted' }, now);
    expect(r).toEqual({
      ok: true,
      changed: true,
      next: { status: 'cancelled', attempts: 1, nextAttemptAt: null, finishedAt: now, lastStatusCode: 500, lastError: 'endpoint deleted' },
    });
    const cancelled = at('cancelled', { lastError: 'endpoint disabled' });
    expect(deliveryTransition(cancelled, { type: 'endpoint_removed', reason: 'endpoint deleted' }, now)).toEqual({ ok: true, changed: false, next: cancelled });
  });

  it('a redelivery restarts a failed or cancelled delivery with a fresh schedule', () => {
    for (const status of ['failed', 'cancelled'] as const) {
      const r = deliveryTransition(at(status, { attempts: 3, lastStatusCode: 503 }), { type: 'redelivery_requested' }, now);
      expect(r).toEqual({ ok: true, changed: true, next: { status: 'pending', attempts: 0, nextAttemptAt: now, finishedAt: null, lastStatusCode: 503, lastError: null } });
    }
    for (const status of ['pending', 'succeeded'] as const) {
      expect(deliveryTransition(at(status), { type: 'redelivery_requested' }, now)).toMatchObject({ ok: false, error: { code: 'delivery_not_retryable' } });
    }
  });

  it('terminal states are sticky: no attempt answer and no removal moves them', () => {
    for (const status of ['succeeded', 'failed', 'cancelled'] as const) {
      for (const event of events.filter((e) => e.type !== 'redelivery_requested')) {
        const r = deliveryTransition(at(status), event, now);
        if (r.ok) expect(r).toEqual({ ok: true, changed: false, next: at(status) });
        else expect(r.error.code).toBe('delivery_terminal');
      }
    }
  });

  it('an answer arriving after a cancellation is refused (the late attempt cannot revive it)', () => {
    const cancelled = deliveryTransition(pending, { type: 'endpoint_removed', reason: 'endpoint disabled' }, now);
    expect(cancelled.ok).toBe(true);
    const next = (cancelled as Extract<typeof cancelled, { ok: true }>).next;
    expect(deliveryTransition(next, { type: 'attempt_succeeded', statusCode: 200 }, now)).toEqual({
      ok: false,
      error: { code: 'delivery_terminal', message: 'delivery is already cancelled' },
    });
    expect(deliveryTransition(next, { type: 'attempt_failed', statusCode: 500, error: 'HTTP 500', retry }, now)).toMatchObject({ ok: false, error: { code: 'delivery_terminal' } });
  });
});
