/**
 * Webhook health and expected durations, shared by every worker of a deployment (hybrid mode):
 * what `nextWorkFor` chooses the poll schedule by, through `jobEffects` (the engine's
 * `CompletionDetection`).
 *
 * Design note:
 * - The shared record is one Redis hash, `<prefix>:webhook-health` (one key: cluster-safe): the
 *   health (`state`, `loss`, `samples`, `changed_at`), a `version`, and per kind of job
 *   (model|effort|tier, at most 200) its duration estimate (`d:<kind>`, JSON).
 * - Each worker counts what it sees in memory (webhooks that arrived, late webhooks its polls
 *   found, durations of finished jobs) and every `refreshMs` folds the counts into the record: it
 *   reads the hash, computes the next record with the pure core functions (webhook-health.ts,
 *   expected-duration.ts), and writes it back only if no worker wrote in between (a version check
 *   in a three-line Lua script; on a conflict it reads again). The same read refreshes its cache:
 *   processors and `jobEffects` read the health and expected durations from memory, never Redis.
 * - The worker whose write changed the state logs it (`webhooks_healthy`, `webhooks_degraded`,
 *   `webhooks_recovered`) and counts it (`longhaul_webhook_health_transitions_total`); every
 *   worker's `longhaul_webhook_health` gauge shows the state it polls by.
 * - Degraded after healthy: jobs in flight have their safety poll up to SAFETY_POLL_MS away. The
 *   worker that made the change moves every delayed poll to where the adaptive schedule would have
 *   it by now (`adaptivePollAfter`, from the poll work item's age), so no job waits for a webhook
 *   that will not come. If that worker dies half-way, the rest keep their safety poll.
 * - Redis unreachable: the cache stays as it was and the counts wait for the next flush.
 * - A job's completion hint (`expected_duration_seconds`) is its expected duration
 *   (`expectedDurationMs`) ahead of its kind's; a hinted job's duration is still learned for its
 *   kind, but the hint is never what tells a late webhook (`pollFoundFinished`).
 */
import type { Job as QueueJob } from 'bullmq';
import {
  type DurationEstimate,
  INITIAL_WEBHOOK_HEALTH,
  type PollScheduleOptions,
  type ProviderResponse,
  type WebhookHealth,
  type WebhookHealthOptions,
  adaptivePollAfter,
  durationKind,
  expectedDurationMs,
  isWebhookHealthState,
  observeDuration,
  observeWebhooks,
  webhookIsLate,
} from '@longhaul/core';
import type { Job } from '@longhaul/db';
import type { CompletionDetection } from '@longhaul/engine';
import type { Metrics } from '@longhaul/metrics';
import type { Queues } from '@longhaul/queue';
import { type Logger, throttled } from '@longhaul/runtime';

export interface WebhookHealthConfig extends WebhookHealthOptions {
  /** How often a worker folds what it saw into the shared record and reads it back. Default 2 000 ms. */
  refreshMs?: number;
}

export interface WebhookHealthTracker extends CompletionDetection {
  /** A webhook of a finished response arrived (it was applied, or found its job already finished). */
  webhookArrived(): void;
  /** This worker's poll found the job's response finished, with no webhook applied. */
  pollFoundFinished(job: Job, response: ProviderResponse): void;
  /** Fold what was seen into the shared record and read it back now (the timer does it every `refreshMs`). */
  refresh(): Promise<void>;
  /** Stop the timer after a last flush, and any pulling forward of polls. Idempotent. */
  close(): Promise<void>;
}

export interface WebhookHealthDeps {
  queues: Queues;
  logger: Logger;
  metrics: Metrics;
  clock: () => Date;
  /** The worker's poll schedule: its grace period (late webhooks) and adaptive schedule (degraded). */
  poll: PollScheduleOptions;
  config?: WebhookHealthConfig;
}

/** Kinds of job whose duration is kept; a new kind beyond them is not learned. */
const MAX_KINDS = 200;
/** Durations of one kind kept per flush: beyond them a burst of one kind teaches nothing more. */
const MAX_DURATIONS_PER_KIND = 64;
/** Parallel Redis round trips while pulling polls forward. */
const PULL_CONCURRENCY = 16;
const DURATION_FIELD = 'd:';
/** How long closing waits for the last flush. */
const CLOSE_FLUSH_TIMEOUT_MS = 1_000;

/** Write the fields only if no one wrote since `version` was read. */
const WRITE_IF_VERSION = `
if (redis.call('HGET', KEYS[1], 'version') or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1`;

interface Stored {
  version: string;
  health: WebhookHealth;
  durations: Map<string, DurationEstimate>;
}

interface Seen {
  arrived: number;
  late: number;
  durations: Map<string, number[]>;
}

const nothingSeen = (): Seen => ({ arrived: 0, late: 0, durations: new Map() });

export function webhookHealthKey(prefix: string): string {
  return `${prefix}:webhook-health`;
}

export function startWebhookHealth(deps: WebhookHealthDeps): WebhookHealthTracker {
  const { queues, logger, metrics, clock, poll } = deps;
  const config = deps.config ?? {};
  const redis = queues.connection;
  const key = webhookHealthKey(queues.prefix);
  const graceMs = poll.webhookGraceMs ?? 30_000;
  const warn = throttled(30_000, (suppressed, err: unknown) =>
    logger.warn({ err, suppressed, code: 'webhook_health_unavailable' }, 'could not share the webhook health through Redis'),
  );

  let health: WebhookHealth = INITIAL_WEBHOOK_HEALTH;
  let expected = new Map<string, number>();
  let seen = nothingSeen();
  let flushing: Promise<void> | undefined;
  let pulling: Promise<void> | undefined;
  let closed = false;
  metrics.webhookHealth(health.state, health.loss);

  function remember(stored: Stored): void {
    health = stored.health;
    expected = new Map();
    for (const [kind, estimate] of stored.durations) {
      const ms = expectedDurationMs(estimate);
      if (ms !== undefined) expected.set(kind, ms);
    }
    metrics.webhookHealth(health.state, health.loss);
  }

  /** Counts that could not be written go back to be written with the next flush. */
  function giveBack(batch: Seen): void {
    seen.arrived += batch.arrived;
    seen.late += batch.late;
    for (const [kind, ms] of batch.durations) for (const d of ms) addDuration(seen, kind, d);
  }

  async function flush(): Promise<void> {
    const batch = seen;
    seen = nothingSeen();
    const hasNews = batch.arrived + batch.late > 0 || batch.durations.size > 0;
    try {
      for (let tries = 0; ; tries++) {
        const stored = parseStored(await redis.hgetall(key));
        if (!hasNews) return remember(stored);
        const next = fold(stored, batch, clock().getTime(), config);
        const written = await redis.eval(WRITE_IF_VERSION, 1, key, stored.version, ...fields(stored, next, batch));
        if (written === 1) {
          remember(next);
          if (next.health.state !== stored.health.state) changed(stored.health, next.health);
          return;
        }
        if (tries >= 4) {
          giveBack(batch);
          return remember(stored);
        }
      }
    } catch (err) {
      giveBack(batch);
      warn(err);
    }
  }

  function changed(from: WebhookHealth, to: WebhookHealth): void {
    metrics.webhookHealthChanged(from.state, to.state);
    const fields = { from: from.state, to: to.state, loss: Math.round(to.loss * 1000) / 1000, samples: to.samples };
    if (to.state === 'degraded') {
      logger.warn({ ...fields, code: 'webhooks_degraded' }, 'OpenAI webhooks are late or lost: polling adaptively until they arrive again');
      if (from.state === 'healthy') pulling ??= pullPollsForward().finally(() => (pulling = undefined));
    } else if (to.state === 'healthy') {
      const code = from.state === 'degraded' ? 'webhooks_recovered' : 'webhooks_healthy';
      logger.info({ ...fields, code }, 'OpenAI webhooks are arriving: polls are only a safety net');
    }
  }

  /** Move every delayed poll to where the adaptive schedule would have it by now. */
  async function pullPollsForward(): Promise<void> {
    const queue = queues.get('poll');
    try {
      const ids = await queue.getRanges(['delayed'], 0, -1);
      let moved = 0;
      let next = 0;
      const runner = async () => {
        while (!closed && next < ids.length) {
          const work = (await queue.getJob(ids[next++]!)) as QueueJob | undefined;
          if (!work) continue;
          const at = adaptivePollAfter(clock().getTime() - work.timestamp, poll);
          try {
            await work.updateData({ jobId: work.data.jobId, attempt: at.attempt });
            await work.changeDelay(at.delayMs);
            moved += 1;
          } catch {
            // No longer delayed: it is running (and reschedules itself on the adaptive schedule) or done.
          }
        }
      };
      await Promise.all(Array.from({ length: PULL_CONCURRENCY }, runner));
      logger.info({ code: 'polls_pulled_forward', polls: moved, delayed: ids.length }, 'safety polls of jobs in flight moved onto the adaptive schedule');
    } catch (err) {
      logger.warn({ err, code: 'polls_pull_forward_failed' }, 'could not move safety polls forward: jobs in flight keep their safety poll');
    }
  }

  const refresh = () =>
    (flushing ??= flush().finally(() => {
      flushing = undefined;
    }));
  const timer = setInterval(() => void refresh(), config.refreshMs ?? 2_000);
  void refresh();

  let closing: Promise<void> | undefined;
  return {
    webhookHealth: () => health.state,
    // The job's own completion hint, when it gave one, before what was learned of its kind.
    expectedDurationMs: (job: Job) => job.expectedDurationMs ?? expected.get(durationKind(job.model, job.request)),
    jobFinished(job: Job, durationMs: number) {
      addDuration(seen, durationKind(job.model, job.request), durationMs);
    },
    webhookArrived() {
      seen.arrived += 1;
    },
    pollFoundFinished(job, response) {
      // Against the learned duration only, never the job's hint: the learned one holds the usual
      // webhook delay (webhookIsLate), a client's hint does not, and a wrong hint must not count
      // as a lost webhook against every job's schedule.
      const found = {
        response,
        nowMs: clock().getTime(),
        graceMs,
        submittedAtMs: job.submittedAt?.getTime(),
        expectedDurationMs: expected.get(durationKind(job.model, job.request)),
      };
      if (webhookIsLate(found)) seen.late += 1;
    },
    refresh,
    close: () =>
      (closing ??= (async () => {
        clearInterval(timer);
        closed = true;
        // A last flush of what was seen, unless Redis is not answering (then it is lost: it is only a few counts).
        const last = (async () => {
          await pulling;
          await flushing;
          await refresh();
        })();
        let timeout: NodeJS.Timeout | undefined;
        await Promise.race([last, new Promise((resolve) => (timeout = setTimeout(resolve, CLOSE_FLUSH_TIMEOUT_MS)))]);
        clearTimeout(timeout);
      })()),
  };
}

function addDuration(seen: Seen, kind: string, durationMs: number): void {
  const list = seen.durations.get(kind);
  if (list) {
    if (list.length < MAX_DURATIONS_PER_KIND) list.push(durationMs);
  } else if (seen.durations.size < MAX_KINDS) seen.durations.set(kind, [durationMs]);
}

function parseStored(raw: Record<string, string>): Stored {
  const number = (value: string | undefined, fallback: number) => {
    const n = Number(value);
    return value !== undefined && Number.isFinite(n) ? n : fallback;
  };
  const durations = new Map<string, DurationEstimate>();
  for (const [field, value] of Object.entries(raw)) {
    if (!field.startsWith(DURATION_FIELD)) continue;
    try {
      const e = JSON.parse(value) as Partial<DurationEstimate>;
      if (typeof e.mean === 'number' && typeof e.deviation === 'number' && typeof e.samples === 'number') durations.set(field.slice(DURATION_FIELD.length), e as DurationEstimate);
    } catch {
      // A field someone else wrote: ignored, and replaced by the next duration of its kind.
    }
  }
  return {
    version: raw.version ?? '',
    health: {
      state: isWebhookHealthState(raw.state) ? raw.state : INITIAL_WEBHOOK_HEALTH.state,
      loss: number(raw.loss, INITIAL_WEBHOOK_HEALTH.loss),
      samples: number(raw.samples, 0),
      changedAtMs: raw.changed_at ? number(raw.changed_at, 0) : null,
    },
    durations,
  };
}

function fold(stored: Stored, batch: Seen, nowMs: number, options: WebhookHealthOptions): Stored {
  const durations = new Map(stored.durations);
  for (const [kind, list] of batch.durations) {
    if (!durations.has(kind) && durations.size >= MAX_KINDS) continue;
    let estimate = durations.get(kind);
    for (const ms of list) estimate = observeDuration(estimate, ms);
    if (estimate) durations.set(kind, estimate);
  }
  const health = observeWebhooks(stored.health, batch, nowMs, options);
  return { version: String(Number(stored.version || 0) + 1), health, durations };
}

/** The hash fields `next` changes, after its version. */
function fields(stored: Stored, next: Stored, batch: Seen): string[] {
  const out = ['version', next.version, 'state', next.health.state, 'loss', String(next.health.loss), 'samples', String(next.health.samples)];
  if (next.health.changedAtMs !== null) out.push('changed_at', String(next.health.changedAtMs));
  for (const kind of batch.durations.keys()) {
    const estimate = next.durations.get(kind);
    if (estimate && estimate !== stored.durations.get(kind)) out.push(`${DURATION_FIELD}${kind}`, JSON.stringify(estimate));
  }
  return out;
}
