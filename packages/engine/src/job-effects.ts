/**
 * What follows a job's state change, in one place: `afterJobChange`.
 *
 * Where a job's state changes: @longhaul/db `changeJobState` (packages/db/src/job-transitions.ts).
 * What follows it: this module. Every caller that changes a job's state (the API creating or
 * cancelling a job, each worker processor, the sweeper) hands the result here, and this records
 * the metrics, appends the lifecycle event to the job's stream and carries out the next work
 * item, which the pure `nextWorkFor` of @longhaul/core (next-work.ts) chooses.
 *
 * Design note:
 * - Metrics: a job finished (`observeStateChange`, counted once: only the change that made it
 *   terminal), created, or submitted.
 * - The lifecycle event (`job.<status>` on the job's Redis Stream, which SSE watchers read) follows
 *   every change of status, and a finished job's stream is set to expire. Best effort: Postgres
 *   already holds the change, and a watcher of a finished job is given its final state from there.
 *   A new job's stream starts empty: its first event is its first change. A job that does not
 *   stream from the provider has a stream only once someone watches it (the SSE route opens it
 *   with the job's state from Postgres): a job nobody watches costs Redis no stream.
 * - A `stream: true` job that finished at the provider (completed, failed, incomplete) is the
 *   exception: its `job.<status>` ends every watcher's SSE, so it must come after the provider's
 *   events up to its terminal one, and a webhook or a retrieve can learn the outcome before the
 *   stream work item has stored them. So is a turn of its tool-call loop that ended in
 *   `requires_action`: its `job.requires_action` comes after that turn's `response.completed` (the
 *   SSE goes on with the next turn once the tenant answers). The stream work item owns that end: whoever changes the
 *   state, it appends `job.<status>` (`streamEnded`) once it has stored the terminal event, and
 *   a stream work item that finds such a job finished without its end follows the provider's
 *   stream to it first (stream-job.ts). If no stream work item ever gets there, the API gives
 *   watchers the final state from Postgres (routes/job-stream.ts).
 * - The next work item: admission to the provider (the fair queue and a submit turn), a poll, a
 *   stream, a cancel, retiring a poll, or running a turn's tool calls at the job's tool executor
 *   (keyed by job and turn: `toolsWorkItemId`). A change learned from the provider (a poll, a
 *   webhook, the stream) that moved the job to `requires_action` is the end of its turn
 *   (`turn_ended`), whichever of them learned it first. A work item that continues itself (a poll
 *   re-delaying itself with BullMQ's `moveToDelayed`) names itself as `self`: the item of its own kind comes
 *   back as `again`, for it to reschedule, rather than being dispatched as a new work item.
 * - A failed dispatch: in the API (`onDispatchFailure: 'defer'`) it is logged as
 *   `dispatch_deferred` and the request goes on (the job is in Postgres; the sweeper dispatches
 *   whatever went missing); in the worker it throws, failing the work item at hand for BullMQ to
 *   retry, as any Redis error there does.
 * - Refused changes (`ok: false`) are followed by nothing.
 * - Tracing (@longhaul/telemetry): each work item dispatched here carries the `traceparent` of
 *   the span at hand (the API request, the processor's span), so the job stays one trace.
 * - Hybrid completion detection (`detection`, the worker's webhook-health tracker): the poll
 *   schedule `nextWorkFor` chooses depends on the webhooks' health and on how long a job of this
 *   kind is expected to take, both read from the tracker's cache (no Redis round trip here); a
 *   job that finished at the provider is reported to it, for the expected durations.
 * - A job's completion hint (`expectedDurationMs`, its `expected_duration_seconds`) goes to
 *   `nextWorkFor` with every change, in every mode, kept within the time left until its deadline
 *   (`completionHintMs`): the polls after the first follow a schedule it shifted.
 *
 * Why a package of its own (@longhaul/engine) rather than @longhaul/queue: it needs Postgres (the
 * job's row, its tenant's limit through admission.ts), Redis (queues, streams) and the metrics;
 * putting it in the queue package would make the Redis library depend on Postgres and Prometheus.
 * Here it composes them, and nothing below depends on it. Each process builds one
 * (`createJobEffects`, in the API's createServer and the worker's createWorker) and passes it in
 * its deps.
 */
import {
  type JobChange,
  JobStatus,
  type NextWorkOptions,
  type WebhookHealthState,
  type WorkItem,
  type WorkSubject,
  assertNever,
  awaitsToolOutputs,
  completionHintMs,
  isTerminal,
  nextPollDelayMs,
  nextWorkFor,
  pollsArePrimary,
} from '@longhaul/core';
import { type Database, type Job, type JobSnapshot, applyCacheHit, cacheWaiters, getJob, releaseCacheWaiter, settleCacheEntry, toJobObject, toJobSnapshot } from '@longhaul/db';
import { type Metrics, observeStateChange } from '@longhaul/metrics';
import { type JobStreams, type Queues, runWorkItemId, toolsWorkItemId } from '@longhaul/queue';
import { type Logger, jobLogFields } from '@longhaul/runtime';
import { currentTraceparent } from '@longhaul/telemetry';
import type { Admission } from './admission.ts';

export interface JobEffectsConfig extends NextWorkOptions {
  /** How long a finished job's event stream is kept. Default 86 400 s (the worker's STREAM_RETENTION_SECONDS default). */
  streamRetentionSeconds?: number;
  /**
   * What a failed dispatch does: `defer` (producers, the API) logs `dispatch_deferred` and goes on,
   * giving Redis 1 s for the fair-queue push; `throw` (the worker) fails the work item at hand.
   * Default `throw`.
   */
  onDispatchFailure?: 'defer' | 'throw';
}

/**
 * What hybrid completion detection knows right now, learned across workers. Every method answers
 * from memory: the implementation (apps/worker/src/webhook-health.ts) refreshes from Redis on its
 * own timer.
 */
export interface CompletionDetection {
  /** The webhooks' health as last read: `healthy` makes polls a safety net. */
  webhookHealth(): WebhookHealthState;
  /** How long a job of this one's kind (model, effort, tier) is expected to take at the provider; undefined: not known yet. */
  expectedDurationMs(job: Job): number | undefined;
  /** A job finished at the provider (completed, failed, incomplete) `durationMs` after its submission. */
  jobFinished(job: Job, durationMs: number): void;
}

export interface JobEffectsDeps {
  db: Database;
  queues: Queues;
  /** The job event logs; absent (an API without streams): no lifecycle events. */
  jobStreams?: JobStreams;
  metrics: Metrics;
  admission: Admission;
  logger: Logger;
  config?: JobEffectsConfig;
  /** Hybrid mode's view of webhooks (the worker's); absent: the completion mode's fixed schedule (the API). */
  detection?: CompletionDetection;
  /** What time it is: a job not yet submitted counts its time left to its deadline from now (`firstCheckDelayMs`). Default the system clock. */
  clock?: () => Date;
}

/** The result of a state change (`changeJobState`), or a new job as `{ ok: true, changed: true, job }`. */
export type JobChangeResult = { ok: true; changed: boolean; job: Job } | { ok: false };

export interface AfterJobChangeOptions {
  /** The work item making the change, when it continues itself: the next item of its kind is handed back as `again`. */
  self?: 'poll' | 'stream';
  /** Where warnings about this change go (the request's logger in the API). Default: the module's. */
  logger?: Logger;
}

export type ContinuingWork = Extract<WorkItem, { kind: 'poll' | 'stream' }>;

export interface AfterJobChange {
  /** The work that follows the change, as `nextWorkFor` chose it. */
  work: readonly WorkItem[];
  /** The caller's own next run (see `self`); null when it is done with the job. */
  again: ContinuingWork | null;
}

/**
 * A job the sweeper found overdue (`findOverdueJobs`). `toolExecutor`: it has one and its turn's
 * tool calls still want their outputs.
 */
export type OverdueJob = Pick<Job, 'id' | 'tenantId' | 'status' | 'responseId' | 'turn'> & { streamed: boolean; toolExecutor: boolean };

export interface JobEffects {
  /** Record, publish and dispatch what follows a job's state change. */
  afterJobChange(result: JobChangeResult, change: JobChange, options?: AfterJobChangeOptions): Promise<AfterJobChange>;
  /**
   * A job waiting for an identical job's result (response caching, `cached_from`) whose source has
   * ended or vanished: answer it, or let it run itself (the sweeper's safety net).
   */
  settleCacheWaiter(waiter: Job, logger?: Logger): Promise<void>;
  /**
   * The stream work item stored the provider's terminal event of the turn of a job that
   * `endsWithProviderStream` (finished, or waiting in `requires_action`): append its `job.<status>`
   * now (once; a retry appends nothing more). Best effort, as every lifecycle event.
   */
  streamEnded(job: Job, options?: Pick<AfterJobChangeOptions, 'logger'>): Promise<void>;
  /**
   * The delay before a job just submitted is next looked at, as `afterJobChange` will schedule it
   * (the submit processor stores it as the job's next check, for the sweeper).
   */
  firstCheckDelayMs(job: Job, pollAfterMs?: number): number;
  /**
   * The job as its next poll work item carries it (@longhaul/db toJobSnapshot), so the poll reads
   * nothing before its guarded write. Undefined while polls are only a safety net behind arriving
   * webhooks (such a poll reads the job first, which its webhook has most likely finished), and
   * for a poll more than a minute away: a job waiting long costs Redis no snapshot, and one read
   * per minute costs Postgres next to nothing.
   */
  pollSnapshot(job: Job, delayMs: number): JobSnapshot | undefined;
  /**
   * Dispatch an overdue job's work again (the sweeper). Work items are keyed by job id, so a live
   * one is left as it is. Returns true when the job's work had been lost (and is dispatched anew).
   */
  redispatch(job: OverdueJob): Promise<boolean>;
}

/** Work-item states of a live work item (a turn bound to a job may also wait for children). */
const LIVE_TURN = ['active', 'waiting', 'delayed', 'prioritized', 'waiting-children'];
const LIVE_WORK_ITEM = ['active', 'waiting', 'delayed', 'prioritized'];
const DEFERRED_PUSH_TIMEOUT_MS = 1_000;
/** A poll due later than this carries no job snapshot (`pollSnapshot`). */
const SNAPSHOT_HORIZON_MS = 60_000;
/** Outcomes whose duration is the provider's work (a cancelled or expired job's is not). */
const FINISHED_AT_PROVIDER: ReadonlySet<JobStatus> = new Set([JobStatus.Completed, JobStatus.Failed, JobStatus.Incomplete]);
/** Changes that learn the provider's outcome (from its stream or a retrieve), which its stream also carries to the end. */
const OUTCOME_FROM_PROVIDER: ReadonlySet<JobChange['type']> = new Set(['streamed', 'webhook', 'polled', 'cancel_answered']);

/**
 * A `stream: true` job finished with an outcome its provider stream ends with (`response.<status>`),
 * or a turn of its tool-call loop ended waiting for answers (`requires_action`, after that turn's
 * `response.completed`): the lifecycle event is appended by the stream work item after that event
 * (`streamEnded`).
 */
export function endsWithProviderStream(job: Pick<Job, 'status' | 'request'>): boolean {
  return job.request.stream === true && (FINISHED_AT_PROVIDER.has(job.status) || job.status === JobStatus.RequiresAction);
}

export function createJobEffects(deps: JobEffectsDeps): JobEffects {
  const { db, queues, jobStreams, metrics, admission, logger } = deps;
  const config = deps.config ?? {};
  const defer = config.onDispatchFailure === 'defer';
  const retentionSeconds = config.streamRetentionSeconds ?? 86_400;
  const { detection } = deps;
  const clock = deps.clock ?? (() => new Date());

  /** What a poll work item carries of its job: a snapshot for a primary poll due soon, else nothing (see `JobEffects.pollSnapshot`). */
  const pollSnapshot = (job: Job, delayMs: number) =>
    delayMs <= SNAPSHOT_HORIZON_MS && pollsArePrimary(config.completionMode ?? 'hybrid', detection?.webhookHealth()) ? toJobSnapshot(job) : undefined;

  /** The schedules, with the webhooks' health as last read. */
  const workOptions = (): NextWorkOptions => (detection ? { ...config, webhooks: detection.webhookHealth() } : config);
  /**
   * The job as `nextWorkFor` sees it. The learned expected duration only matters to the poll after
   * its submission; the job's own hint to every poll (the later ones follow a schedule it shifted).
   */
  const subject = (job: Job, change: JobChange): WorkSubject => ({
    status: job.status,
    streamed: job.request.stream === true,
    batched: job.processing === 'batch',
    expectedDurationMs: change.type === 'submitted' ? detection?.expectedDurationMs(job) : undefined,
    hintedDurationMs: completionHintMs(job.expectedDurationMs, job.deadlineAt.getTime() - (job.submittedAt ?? clock()).getTime()),
    toolExecutor: job.toolExecutorUrl === null ? undefined : { turn: job.turn, callsPending: awaitsToolOutputs(job.requiredAction) },
  });

  async function publishLifecycle(job: Job, change: JobChange['type'] | 'stream_ended', log: Logger): Promise<void> {
    if (!jobStreams) return;
    const type = `job.${job.status}`;
    const data = JSON.stringify({ type, job: toJobObject(job) });
    try {
      if (change === 'stream_ended') await jobStreams.appendLifecycleEventOnce(job.id, type, data);
      // A job that does not stream from the provider has a stream only once someone watches it
      // (the SSE route opens it): waiting unwatched, it costs no Redis for its events.
      else if (job.request.stream !== true) await jobStreams.appendLifecycleEventIfOpen(job.id, type, data);
      // The stream work item appends this one after the provider's terminal event (`streamEnded`).
      else if (!(endsWithProviderStream(job) && OUTCOME_FROM_PROVIDER.has(change))) await jobStreams.appendLifecycleEvent(job.id, type, data);
      if (isTerminal(job.status)) await jobStreams.expire(job.id, retentionSeconds);
    } catch (err) {
      log.warn({ err, ...jobLogFields(job), code: 'event_log_unavailable' }, 'could not append a lifecycle event to the job stream');
    }
  }

  /** One dispatch step; in `defer` mode a failure is logged and reported as false. */
  async function step(job: Job, queue: string, log: Logger, run: () => Promise<unknown>): Promise<boolean> {
    if (!defer) {
      await run();
      return true;
    }
    try {
      await run();
      return true;
    } catch (err) {
      log.warn({ err, job_id: job.id, queue, code: 'dispatch_deferred' }, 'could not reach Redis; the sweeper will dispatch the job');
      return false;
    }
  }

  /** Push with a deadline (producers): the push may land later, which is harmless (it is idempotent). */
  function admitWithin(job: Job): Promise<boolean> {
    const pushing = admission.admit(job);
    if (!defer) return pushing;
    pushing.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not accept the job within ${DEFERRED_PUSH_TIMEOUT_MS} ms`)), DEFERRED_PUSH_TIMEOUT_MS);
    });
    return Promise.race([pushing, timeout]).finally(() => clearTimeout(timer));
  }

  async function dispatch(job: Job, item: WorkItem, log: Logger): Promise<void> {
    // The next work item joins the job's trace as a child of the span at hand (undefined when not tracing).
    const traceparent = currentTraceparent();
    switch (item.kind) {
      case 'submit':
        // No turn without the push: the sweeper pushes the job and adds its turn together.
        if (await step(job, 'submit', log, () => admitWithin(job))) await step(job, 'submit', log, () => queues.add('submit', { jobId: job.id, traceparent }));
        return;
      case 'poll':
        await step(job, 'poll', log, () =>
          queues.add('poll', { jobId: job.id, attempt: item.attempt, job: pollSnapshot(job, item.delayMs), traceparent }, { delayMs: item.delayMs }),
        );
        return;
      case 'stream':
        await step(job, 'stream', log, () => queues.add('stream', { jobId: job.id, traceparent }, { delayMs: item.delayMs }));
        return;
      case 'cancel':
        await step(job, 'cancel', log, () => queues.add('cancel', { jobId: job.id, traceparent }));
        return;
      case 'retire_poll':
        await retirePoll(job.id);
        return;
      case 'execute_tools':
        await step(job, 'tools', log, () => queues.add('tools', { jobId: job.id, turn: item.turn, traceparent }));
        return;
      default:
        return assertNever(item);
    }
  }

  /** One advance work item per ending step job; if Redis is out of reach the sweeper finds the run overdue. */
  async function advanceItsRun(job: Job, log: Logger): Promise<void> {
    const runId = job.runId!;
    try {
      await queues.add('runs', { runId }, { jobId: runWorkItemId(runId, job.id) });
    } catch (err) {
      log.warn({ err, ...jobLogFields(job), run_id: runId, code: 'dispatch_deferred' }, 'could not reach Redis; the sweeper will advance the run');
    }
  }

  /** Best effort: a poll left behind finds the job finished and ends. */
  async function retirePoll(jobId: string): Promise<void> {
    await queues
      .get('poll')
      .remove(jobId)
      .catch(() => 0);
  }

  /**
   * Add a work item again unless a live one carries its id (the job's, or `id`); a finished one is
   * removed first. Returns its previous state.
   */
  async function revive(key: 'submit' | 'poll' | 'stream' | 'cancel' | 'tools', jobId: string, payload: object, delayMs?: number, id = jobId): Promise<string> {
    const queue = queues.get(key);
    const state = await queue.getJobState(id);
    if (state === 'failed' || state === 'completed') await queue.remove(id);
    await queues.add(key, payload as never, { delayMs });
    return state;
  }

  /**
   * A pending job is waiting for its turn (in the fair queue: possibly for a long time, over its
   * tenant's token budget), being submitted by a turn, or lost (its push or its turn vanished with
   * Redis). A job taken by a turn that no longer exists is freed; a job nowhere in the fair queue is
   * pushed again; and a turn carrying its id is added if missing (a no-op when one is alive), so the
   * job is never without a turn. Returns true when the job had been lost.
   */
  async function redispatchPending(jobId: string): Promise<boolean> {
    const where = await admission.fairQueue.locate(jobId);
    if (where.state === 'taken') {
      if (LIVE_TURN.includes(await queues.get('submit').getJobState(where.turnId))) return false;
      await admission.fairQueue.forgetTaken(jobId, where.turnId);
    }
    const job = await getJob(db, jobId);
    if (!job || job.status !== JobStatus.Pending) return false;
    const lost = await admission.admit(job);
    await revive('submit', jobId, { jobId });
    if (lost)
      logger
        .child(jobLogFields(job))
        .warn({ status: job.status, queue: 'submit', previous_state: where.state, code: 'job_redispatched' }, 'pending job was missing from the fair queue: dispatched again');
    return lost;
  }

  /**
   * A response-cache source ended: its entry answers from now on (completed) or goes, and the
   * identical jobs waiting for it are answered with its result, or run themselves. A crash in
   * between leaves waiters whose source has ended: the sweeper settles them (`settleCacheWaiter`).
   */
  async function settleCache(source: Job, log: Logger): Promise<void> {
    await settleCacheEntry(db, source);
    for (const waiter of await cacheWaiters(db, source.id)) await settleCacheWaiter(waiter, source, log);
  }

  async function settleCacheWaiter(waiter: Job, source: Job, log: Logger): Promise<void> {
    if (source.status === JobStatus.Completed && source.erasedAt === null) {
      const hit = await applyCacheHit(db, waiter, source, { source: 'cache', now: clock() });
      if (hit.ok) metrics.responseCache('hit', source.outputText?.length ?? 0);
      await effects.afterJobChange(hit, { type: 'cache_hit' }, { logger: log });
      return;
    }
    const released = await releaseCacheWaiter(db, waiter.id);
    if (released) await effects.afterJobChange({ ok: true, changed: true, job: released }, { type: 'cache_released' }, { logger: log });
  }

  const effects: JobEffects = {
    async settleCacheWaiter(waiter, log) {
      const source = waiter.cachedFrom ? await getJob(db, waiter.cachedFrom) : null;
      if (source && isTerminal(source.status)) await settleCacheWaiter(waiter, source, log ?? logger);
      else if (!source) {
        const released = await releaseCacheWaiter(db, waiter.id);
        if (released) await effects.afterJobChange({ ok: true, changed: true, job: released }, { type: 'cache_released' }, { logger: log ?? logger });
      }
    },

    async afterJobChange(result, change, options = {}) {
      observeStateChange(metrics, result);
      if (!result.ok) return { work: [], again: null };
      const { job } = result;
      const log = options.logger ?? logger;
      if (change.type === 'created') metrics.jobCreated(job.model);
      if (change.type === 'submitted' && job.submittedAt) metrics.jobSubmitted(job.model, job.submittedAt.getTime() - job.createdAt.getTime());
      if (result.changed && change.type !== 'created') await publishLifecycle(job, change.type, log);
      if (detection && result.changed && FINISHED_AT_PROVIDER.has(job.status) && job.submittedAt && job.finishedAt) {
        detection.jobFinished(job, job.finishedAt.getTime() - job.submittedAt.getTime());
      }

      // Only a source has an entry and waiters: a hit (`cachedFrom` set) was answered from one.
      if (result.changed && isTerminal(job.status) && job.cacheKey && job.cachedFrom === null) await settleCache(job, log);

      // A pipeline run's step job ended: its run advances (run-advance.ts), whoever ended it.
      if (result.changed && isTerminal(job.status) && job.runId) await advanceItsRun(job, log);

      // A provider's report that moved the job to requires_action ended its turn, whoever learned it.
      const turnEnded = result.changed && job.status === JobStatus.RequiresAction && OUTCOME_FROM_PROVIDER.has(change.type);
      // One that sent the job back to pending ended an attempt with a fallback left (fallbacks.ts): the next attempt follows.
      const attemptFailed = result.changed && job.status === JobStatus.Pending && OUTCOME_FROM_PROVIDER.has(change.type);
      const work = nextWorkFor(subject(job, change), turnEnded ? { type: 'turn_ended' } : attemptFailed ? { type: 'attempt_failed' } : change, workOptions());
      let again: ContinuingWork | null = null;
      for (const item of work) {
        if ((item.kind === 'poll' || item.kind === 'stream') && item.kind === options.self) again = item;
        else await dispatch(job, item, log);
      }
      return { work, again };
    },

    async streamEnded(job, options = {}) {
      if (endsWithProviderStream(job)) await publishLifecycle(job, 'stream_ended', options.logger ?? logger);
    },

    pollSnapshot,

    firstCheckDelayMs(job, pollAfterMs) {
      const submitted: JobChange = { type: 'submitted', pollAfterMs };
      const [first] = nextWorkFor({ ...subject(job, submitted), status: JobStatus.Queued }, submitted, workOptions());
      // A streamed job is followed at once, and looked at again on the poll schedule if its stream fails.
      if (first?.kind === 'poll') return first.delayMs;
      return nextPollDelayMs(config.completionMode ?? 'hybrid', 0, config.poll, pollAfterMs);
    },

    async redispatch(job) {
      let lost = false;
      const toolExecutor = job.toolExecutor ? { turn: job.turn, callsPending: true } : undefined;
      const work = nextWorkFor({ status: job.status, streamed: job.streamed, toolExecutor }, { type: 'overdue' }, config);
      for (const [i, item] of work.entries()) {
        // The first item is the job's own work: whether it was missing is what counts as lost.
        let missing: boolean;
        switch (item.kind) {
          case 'submit':
            missing = await redispatchPending(job.id);
            break;
          case 'poll':
          case 'stream':
          case 'cancel': {
            const payload = item.kind === 'poll' ? { jobId: job.id, attempt: item.attempt } : { jobId: job.id };
            const state = await revive(item.kind, job.id, payload, item.kind === 'cancel' ? undefined : item.delayMs);
            missing = !LIVE_WORK_ITEM.includes(state);
            if (missing && i === 0)
              logger
                .child(jobLogFields(job))
                .warn({ status: job.status, queue: item.kind, previous_state: state, code: 'job_redispatched' }, 'work item was missing: dispatched again');
            break;
          }
          case 'retire_poll':
            await retirePoll(job.id);
            missing = false;
            break;
          case 'execute_tools': {
            const id = toolsWorkItemId(job.id, item.turn);
            const state = await revive('tools', job.id, { jobId: job.id, turn: item.turn }, undefined, id);
            missing = !LIVE_WORK_ITEM.includes(state);
            if (missing && i === 0)
              logger
                .child(jobLogFields(job))
                .warn(
                  { status: job.status, queue: 'tools', turn: item.turn, previous_state: state, code: 'job_redispatched' },
                  'tool executor work item was missing: dispatched again',
                );
            break;
          }
          default:
            return assertNever(item);
        }
        if (i === 0) lost = missing;
      }
      return lost;
    },
  };
  return effects;
}
