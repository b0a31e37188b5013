/**
 * The callback delivery state machine.
 *
 * Design note: a delivery (one event to one destination) only changes state through
 * `deliveryTransition()`, pure like the job `transition()`; @longhaul/db `changeDeliveryState`
 * takes the decision on the row in hand and writes it guarded by that row's status. An attempt
 * takes seconds and is not a state of its own: the row stays `pending` while the request is in
 * flight (a stored "delivering" would need a lease; BullMQ's lock on the work item already is
 * one). That is why the guard matters: the answer to an attempt applies only to a delivery that
 * is still pending, so an endpoint deleted or disabled during the attempt wins and the late
 * answer is only logged.
 *
 *   pending ──attempt_succeeded──▶ succeeded
 *      │ ▲
 *      │ └─attempt_failed (the schedule has another attempt)
 *      ├──attempt_failed (schedule exhausted, or not retryable)──▶ failed (a dead letter)
 *      └──endpoint_removed (deleted or disabled)──▶ cancelled
 *
 *   failed | cancelled ──redelivery_requested──▶ pending (a fresh schedule)
 *
 * Terminal states are sticky: no attempt and no removal moves a finished delivery. The one way
 * out is a redelivery the tenant asks for (POST /v1/deliveries/{id}/retry, endpoint recovery),
 * and a succeeded delivery is never sent again.
 */
import { type CallbackScheduleOptions, callbackRetryDelayMs } from './callbacks.ts';
import { assertNever } from './job-state.ts';

export const DeliveryStatus = {
  Pending: 'pending',
  Succeeded: 'succeeded',
  Failed: 'failed',
  Cancelled: 'cancelled',
} as const;
export type DeliveryStatus = (typeof DeliveryStatus)[keyof typeof DeliveryStatus];

/** Every delivery status, in the order of the Postgres enum built from it. */
export const DELIVERY_STATUSES = Object.values(DeliveryStatus) as [DeliveryStatus, ...DeliveryStatus[]];

export const TERMINAL_DELIVERY_STATUSES: readonly DeliveryStatus[] = [DeliveryStatus.Succeeded, DeliveryStatus.Failed, DeliveryStatus.Cancelled];

export function isTerminalDelivery(status: DeliveryStatus): boolean {
  return TERMINAL_DELIVERY_STATUSES.includes(status);
}

/** The part of a delivery its state machine reads and writes. */
export interface DeliveryState {
  status: DeliveryStatus;
  /** Attempts made since the delivery was (re)started; the retry schedule counts them. */
  attempts: number;
  nextAttemptAt: Date | null;
  finishedAt: Date | null;
  lastStatusCode: number | null;
  lastError: string | null;
}

/** How a failed attempt may be retried. */
export interface DeliveryRetry {
  schedule: CallbackScheduleOptions;
  /** A number in [0, 1) for the jitter. */
  random: number;
  /** From the receiver's `Retry-After`: waited at least. */
  retryAfterMs?: number;
}

/** What happened to a delivery. Every state change is one of these. */
export type DeliveryEvent =
  /** The receiver answered 2xx. */
  | { type: 'attempt_succeeded'; statusCode: number }
  /**
   * The attempt failed. With `retry`, the schedule decides whether another attempt follows;
   * `retry: null` gives up at once (410 Gone, an address the SSRF guard refuses, the endpoint
   * being disabled for its failures).
   */
  | { type: 'attempt_failed'; statusCode: number | null; error: string; retry: DeliveryRetry | null }
  /** The endpoint was deleted or disabled: nothing more is sent. */
  | { type: 'endpoint_removed'; reason: string }
  /** The tenant asked to send a dead letter (or a cancelled delivery) again. */
  | { type: 'redelivery_requested' };

export type DeliveryTransitionError = { code: 'delivery_terminal'; message: string } | { code: 'delivery_not_retryable'; message: string };

export type DeliveryTransitionResult = { ok: true; next: DeliveryState; changed: boolean } | { ok: false; error: DeliveryTransitionError };

const refuse = (code: DeliveryTransitionError['code'], message: string): DeliveryTransitionResult => ({ ok: false, error: { code, message } });
const move = (next: DeliveryState): DeliveryTransitionResult => ({ ok: true, next, changed: true });

/**
 * Decide a delivery's next state given an event. Pure: `now` is passed in, randomness comes with
 * the event. An attempt's answer counts as one more attempt of a pending delivery; on a finished
 * delivery it is refused (the caller still logs the attempt: it happened).
 */
export function deliveryTransition(delivery: DeliveryState, event: DeliveryEvent, now: Date): DeliveryTransitionResult {
  const from = delivery.status;
  switch (event.type) {
    case 'attempt_succeeded': {
      if (from !== DeliveryStatus.Pending) return refuse('delivery_terminal', `delivery is already ${from}`);
      return move({
        ...delivery,
        status: DeliveryStatus.Succeeded,
        attempts: delivery.attempts + 1,
        nextAttemptAt: null,
        finishedAt: now,
        lastStatusCode: event.statusCode,
        lastError: null,
      });
    }
    case 'attempt_failed': {
      if (from !== DeliveryStatus.Pending) return refuse('delivery_terminal', `delivery is already ${from}`);
      const attempts = delivery.attempts + 1;
      const delayMs = event.retry ? callbackRetryDelayMs(attempts, event.retry.random, event.retry.schedule, event.retry.retryAfterMs) : null;
      const failed = { ...delivery, attempts, lastStatusCode: event.statusCode, lastError: event.error };
      if (delayMs === null) return move({ ...failed, status: DeliveryStatus.Failed, nextAttemptAt: null, finishedAt: now });
      return move({ ...failed, status: DeliveryStatus.Pending, nextAttemptAt: new Date(now.getTime() + delayMs), finishedAt: null });
    }
    case 'endpoint_removed': {
      if (from === DeliveryStatus.Cancelled) return { ok: true, next: delivery, changed: false };
      if (from !== DeliveryStatus.Pending) return refuse('delivery_terminal', `delivery is already ${from}`);
      return move({ ...delivery, status: DeliveryStatus.Cancelled, nextAttemptAt: null, finishedAt: now, lastError: event.reason });
    }
    case 'redelivery_requested': {
      if (from !== DeliveryStatus.Failed && from !== DeliveryStatus.Cancelled) {
        return refuse('delivery_not_retryable', `delivery is ${from}; only failed or cancelled deliveries can be retried`);
      }
      return move({ ...delivery, status: DeliveryStatus.Pending, attempts: 0, nextAttemptAt: now, finishedAt: null });
    }
    default:
      return assertNever(event);
  }
}
