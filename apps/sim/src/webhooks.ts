/**
 * Sender of OpenAI project webhooks (thin `response.*` and `batch.*` events signed per Standard Webhooks).
 *
 * Every send happens through the shared Scheduler, so there is never more than one timer besides
 * the per-attempt request timeout. A delivery is one event to one endpoint; its `webhook-id` is the
 * event id and stays the same across retries and injected duplicates. Failed attempts (non-2xx or
 * network error) are retried with exponential backoff until 72 h have passed since the first
 * attempt; all retry delays are multiplied by the time scale read when the retry is scheduled.
 *
 * Fault injection, decided with the simulator's (optionally seeded) randomness:
 * - drop: the delivery is never attempted;
 * - duplicate: after the first attempt, 1–2 more single-shot sends with the same webhook-id;
 * - delay: the first attempt waits `webhook_delay_ms × time_scale` longer;
 * - reorder: first attempts are held for `webhook_reorder_window_ms` and sent shuffled;
 * - bad signature: an attempt is signed with a secret the receiver does not know.
 */
import type { Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import { generateWebhookSecret, type SimConfig } from './config.ts';
import { newEventId } from './ids.ts';
import { chance, shuffle, type Random } from './random.ts';
import type { BatchTerminalStatus } from './batch-lifecycle.ts';
import type { TerminalStatus } from './responses.ts';
import type { Clock, Scheduler } from './scheduler.ts';
import type { WebhookStats } from './stats.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
/** Delay before retry n (1-based); the last one repeats. Unscaled. */
export const RETRY_DELAYS_MS = [5 * SECOND, 30 * SECOND, 2 * MINUTE, 10 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR];
export const RETRY_WINDOW_MS = 72 * HOUR;
/** Gap between injected duplicate sends, before scaling. */
const DUPLICATE_GAP_MS = 1 * SECOND;

export interface WebhookEvent {
  id: string;
  object: 'event';
  type: `response.${TerminalStatus}` | `batch.${BatchTerminalStatus}`;
  created_at: number;
  data: { id: string };
}

interface Delivery {
  event: WebhookEvent;
  body: string;
  url: string;
  failedAttempts: number;
  firstAttemptAt: number | null;
}

export interface WebhookSenderDeps {
  clock: Clock;
  scheduler: Scheduler;
  logger: Logger;
  config: () => SimConfig;
  random: () => Random;
  stats: () => WebhookStats;
}

export class WebhookSender {
  readonly #deps: WebhookSenderDeps;
  readonly #wrongSecret = generateWebhookSecret();
  readonly #signers = new Map<string, Webhook>();
  readonly #inflight = new Set<{ controller: AbortController; done: Promise<void> }>();
  #held: Delivery[] = [];
  /** Bumped by reset(): attempts started before it settle silently. */
  #generation = 0;

  constructor(deps: WebhookSenderDeps) {
    this.#deps = deps;
  }

  /** Fans a response's terminal-state event out to every configured endpoint. */
  emit(status: TerminalStatus, responseId: string, occurredAtMs: number): void {
    this.emitEvent(`response.${status}`, responseId, occurredAtMs);
  }

  /** Fans an event about `objectId` (a response or a batch) out to every configured endpoint. */
  emitEvent(type: WebhookEvent['type'], objectId: string, occurredAtMs: number): void {
    const config = this.#deps.config();
    if (config.webhook_urls.length === 0) return;
    const event: WebhookEvent = {
      id: newEventId(),
      object: 'event',
      type,
      created_at: Math.floor(occurredAtMs / 1000),
      data: { id: objectId },
    };
    const body = JSON.stringify(event);
    const due = this.#deps.clock() + config.webhook_delay_ms * config.time_scale;
    for (const url of config.webhook_urls) {
      if (chance(this.#deps.random(), config.webhook_drop_rate)) {
        this.#deps.stats().dropped++;
        this.#deps.logger.debug({ eventId: event.id, url }, 'webhook dropped (injected)');
        continue;
      }
      const delivery: Delivery = { event, body, url, failedAttempts: 0, firstAttemptAt: null };
      this.#deps.scheduler.schedule(due, () => this.#release(delivery));
    }
  }

  /** Forgets held deliveries and aborts requests in flight (pending retries live in the scheduler). */
  reset(): void {
    this.#generation++;
    this.#held = [];
    for (const request of this.#inflight) request.controller.abort();
  }

  async close(): Promise<void> {
    this.reset();
    await Promise.all([...this.#inflight].map((request) => request.done));
  }

  #release(delivery: Delivery): void {
    const config = this.#deps.config();
    if (!config.webhook_reorder) {
      this.#sendFirst(delivery);
      return;
    }
    if (this.#held.length === 0) {
      this.#deps.scheduler.schedule(this.#deps.clock() + config.webhook_reorder_window_ms, () => this.#flushHeld());
    }
    this.#held.push(delivery);
  }

  #flushHeld(): void {
    const batch = shuffle(this.#held, this.#deps.random());
    this.#held = [];
    for (const delivery of batch) this.#sendFirst(delivery);
  }

  #sendFirst(delivery: Delivery): void {
    const config = this.#deps.config();
    delivery.firstAttemptAt = this.#deps.clock();
    this.#post(delivery, true);
    const random = this.#deps.random();
    if (!chance(random, config.webhook_duplicate_rate)) return;
    const extra = random() < 0.5 ? 1 : 2;
    this.#deps.stats().duplicated += extra;
    const gap = Math.max(1, DUPLICATE_GAP_MS * config.time_scale);
    for (let k = 1; k <= extra; k++) {
      this.#deps.scheduler.schedule(this.#deps.clock() + k * gap, () => this.#post(delivery, false));
    }
  }

  #post(delivery: Delivery, retryOnFailure: boolean): void {
    const config = this.#deps.config();
    const stats = this.#deps.stats();
    const badSignature = chance(this.#deps.random(), config.webhook_bad_signature_rate);
    if (badSignature) stats.bad_signature++;
    const secret = badSignature ? this.#wrongSecret : config.webhook_secret;
    const now = this.#deps.clock();
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'OpenAI/1.0 (+https://platform.openai.com/docs/webhooks) longhaul-sim',
      'webhook-id': delivery.event.id,
      'webhook-timestamp': String(Math.floor(now / 1000)),
      'webhook-signature': this.#signer(secret).sign(delivery.event.id, new Date(now), delivery.body),
    };
    stats.sent++;
    const generation = this.#generation;
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(new Error('webhook attempt timed out')), config.webhook_timeout_ms);
    const done = fetch(delivery.url, { method: 'POST', headers, body: delivery.body, signal: controller.signal })
      .then(async (res) => {
        await res.body?.cancel();
        return res.status >= 200 && res.status < 300 ? null : `HTTP ${res.status}`;
      })
      .catch((error: unknown) => (error instanceof Error ? error.message : String(error)))
      .then((failure) => {
        // A reset or close aborted this attempt: the delivery no longer exists.
        if (generation === this.#generation) this.#settle(delivery, failure, retryOnFailure);
      })
      .finally(() => {
        clearTimeout(timeout);
        this.#inflight.delete(request);
      });
    const request = { controller, done };
    this.#inflight.add(request);
  }

  #settle(delivery: Delivery, failure: string | null, retryOnFailure: boolean): void {
    const stats = this.#deps.stats();
    const log = { eventId: delivery.event.id, url: delivery.url, attempt: delivery.failedAttempts + 1 };
    if (failure === null) {
      stats.delivered++;
      this.#deps.logger.debug(log, 'webhook delivered');
      return;
    }
    stats.failed_attempts++;
    if (!retryOnFailure) return;
    delivery.failedAttempts++;
    const config = this.#deps.config();
    const now = this.#deps.clock();
    const delay = (RETRY_DELAYS_MS[Math.min(delivery.failedAttempts, RETRY_DELAYS_MS.length) - 1] as number) * config.time_scale;
    const elapsed = now + delay - (delivery.firstAttemptAt ?? now);
    if (elapsed > RETRY_WINDOW_MS * config.time_scale) {
      stats.exhausted++;
      this.#deps.logger.warn({ ...log, failure }, 'webhook delivery abandoned after retry window');
      return;
    }
    this.#deps.logger.debug({ ...log, failure, retryInMs: delay }, 'webhook attempt failed');
    this.#deps.scheduler.schedule(now + delay, () => this.#post(delivery, true));
  }

  #signer(secret: string): Webhook {
    let signer = this.#signers.get(secret);
    if (signer === undefined) {
      signer = new Webhook(secret);
      this.#signers.set(secret, signer);
    }
    return signer;
  }
}
