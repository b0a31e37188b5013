/**
 * The worker process: one BullMQ Worker per queue (submit, poll, cancel, webhook, deliver, stream,
 * tools), the callback outbox listener and the sweeper timer.
 * `createWorker(deps)` is what tests drive; `index.ts` only wires real dependencies.
 */
import { Worker, type ConnectionOptions, type Processor, type WorkerOptions } from 'bullmq';
import { retryDelayMs } from '@longhaul/core';
import { type BatchTickReport, type EvalTickReport, createAdmission, createBatching, createJobEffects } from '@longhaul/engine';
import { duplicateWaiting, queueCatalog, queueDepths, type QueueKey } from '@longhaul/queue';
import { throttled } from '@longhaul/runtime';
import type { WorkerContext, WorkerDeps } from './deps.ts';
import { createInboxSettler } from './inbox-settler.ts';
import { cancelJobProcessor } from './processors/cancel-job.ts';
import { pollJobProcessor } from './processors/poll-job.ts';
import { processWebhookProcessor } from './processors/process-webhook.ts';
import { deliverCallbackProcessor } from './processors/deliver-callback.ts';
import { advanceRunProcessor } from './processors/advance-run.ts';
import { executeToolsProcessor, toolExecutorSettings } from './processors/execute-tools.ts';
import { streamJobProcessor } from './processors/stream-job.ts';
import { startOutboxListener } from './outbox-listener.ts';
import { DEFAULT_EVAL_LOOP, startEvalLoop } from './eval-loop.ts';
import { DEFAULT_ROLLOUT_LOOP, startRolloutLoop } from './rollout-loop.ts';
import { submitJobProcessor } from './processors/submit-job.ts';
import { sweepOnce, type SweepReport } from './sweeper.ts';
import { startWebhookHealth } from './webhook-health.ts';
import { startTicker } from './ticker.ts';
import { tracedProcessor } from './tracing.ts';

export type { WorkerConfig, WorkerDeps } from './deps.ts';
export { webhookHealthKey } from './webhook-health.ts';

/**
 * Batch jobs' loop when the config names none: ticks every second, batches of up to 50,000 jobs
 * and 190 MB (under OpenAI's 200 MB), sent a minute after their oldest job, polled every minute.
 */
export const DEFAULT_BATCHING = {
  tickMs: 1_000,
  limits: { maxJobs: 50_000, maxBytes: 190 * 1024 * 1024, maxWaitMs: 60_000 },
  pollMs: 60_000,
  leaseMs: 5 * 60_000,
  expiredPolicy: 'resubmit',
  reconcileConcurrency: 8,
  batchesPerTick: 20,
  deleteFiles: true,
} as const satisfies NonNullable<WorkerDeps['config']['batching']>;

export interface LonghaulWorker {
  /** Run one sweep now (tests, admin). */
  sweep(): Promise<SweepReport>;
  /** Run one tick of the batch jobs' loop now (tests). */
  batchTick(): Promise<BatchTickReport>;
  /** Tick every due eval now (tests). */
  evalTick(): Promise<EvalTickReport[]>;
  /** Look at every due rollout now (tests); how many were looked at. */
  rolloutTick(): Promise<number>;
  /** Stop taking work, wait for in-flight work (up to `timeoutMs`), close connections. Idempotent. */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * PROVIDER_RATE_LIMIT_PER_SECOND as a BullMQ limiter window (whole creates per window): never
 * above the rate, fractional rates included (0.5 is one create per 2 s, 2.5 two per 800 ms).
 */
export function providerRateLimitWindow(perSecond: number): { max: number; durationMs: number } {
  const max = Math.max(1, Math.floor(perSecond));
  return { max, durationMs: Math.ceil((1_000 * max) / perSecond) };
}

export function createWorker(deps: WorkerDeps): LonghaulWorker {
  const { config, logger } = deps;
  deps.metrics.setQueueDepthSource(() => queueDepths(deps.queues));
  // Workers need a connection that waits for Redis (maxRetriesPerRequest: null) whatever the
  // producer side uses; BullMQ duplicates it again for its blocking commands.
  const connection = duplicateWaiting(deps.queues.connection);
  const redisWarning = throttled(10_000, (suppressed, err: Error, queue?: string) => logger.warn({ err, suppressed, queue, code: 'redis_unavailable' }, 'redis connection error'));
  connection.on('error', (err) => redisWarning(err));

  const settings = {
    backoffStrategy: (attemptsMade: number) => retryDelayMs(attemptsMade, Math.random(), config.retry),
  };
  const make = (key: QueueKey, processor: Processor, concurrency: number, extra: Partial<WorkerOptions> = {}) => {
    const worker = new Worker(queueCatalog[key].name, tracedProcessor(deps.queues, key, processor), {
      connection: connection as ConnectionOptions,
      prefix: deps.queues.prefix,
      concurrency,
      lockDuration: config.lockDurationMs,
      stalledInterval: config.stalledIntervalMs,
      // A crashed worker's job is retried, not failed: stalls are our crash-recovery path.
      maxStalledCount: 1_000,
      settings,
      ...extra,
    });
    worker.on('failed', (job, err) => {
      logger.warn({ err, queue: key, job_id: job?.data?.jobId, attempts: job?.attemptsMade, code: 'work_item_failed' }, 'work item failed');
    });
    worker.on('error', (err) => redisWarning(err, key));
    return worker;
  };

  // The submit worker always has a limiter: BullMQ only consults the queue's rate-limit key (set by
  // `queue.rateLimit()` when the provider answers 429) for workers configured with one, so without
  // it a Retry-After would pause nothing. With no PROVIDER_RATE_LIMIT_PER_SECOND the limit is
  // effectively infinite and only Retry-After pauses submissions.
  const submitLimiter = config.providerRateLimit
    ? { max: config.providerRateLimit.max, duration: config.providerRateLimit.durationMs }
    : { max: Number.MAX_SAFE_INTEGER, duration: 1_000 };
  /** Aborted on close: long provider streams are handed back instead of waited for. */
  const shuttingDown = new AbortController();
  // One admission per process (the submit turns and the sweeper share its tenant-limit cache), and
  // one place that carries out what follows every state change, for the processors and the sweeper.
  const admission = createAdmission({ db: deps.db.db, queues: deps.queues, clock: deps.clock, config: config.admission });
  // Hybrid mode learns whether webhooks arrive, shared by every worker through Redis.
  const webhookHealth =
    config.completionMode === 'hybrid'
      ? startWebhookHealth({ queues: deps.queues, logger, metrics: deps.metrics, clock: deps.clock, poll: config.poll, config: config.webhookHealth })
      : undefined;
  const jobEffects = createJobEffects({
    db: deps.db.db,
    queues: deps.queues,
    jobStreams: deps.jobStreams,
    metrics: deps.metrics,
    admission,
    logger,
    config: { completionMode: config.completionMode, poll: config.poll, streamRetentionSeconds: config.streamRetentionSeconds },
    detection: webhookHealth,
  });
  const inboxSettler = createInboxSettler({ db: deps.db, logger });
  const ctx: WorkerContext = { ...deps, admission, jobEffects, webhookHealth, inboxSettler };
  const workers = [
    make('submit', submitJobProcessor(ctx), config.submitConcurrency, { limiter: submitLimiter }),
    make('poll', pollJobProcessor(ctx), config.pollConcurrency),
    make('cancel', cancelJobProcessor(ctx), config.cancelConcurrency),
    make('webhook', processWebhookProcessor(ctx), config.webhookConcurrency),
    make('deliver', deliverCallbackProcessor(deps), config.callbacks.concurrency),
    make('stream', streamJobProcessor(ctx, shuttingDown.signal), config.streamConcurrency),
    make('tools', executeToolsProcessor(ctx), toolExecutorSettings(config.toolExecutor).concurrency),
    make('runs', advanceRunProcessor(ctx), config.runConcurrency ?? 20),
  ];
  const outboxListener = startOutboxListener(deps);

  let sweeping: Promise<SweepReport> | undefined;
  const sweep = () =>
    (sweeping ??= sweepOnce(ctx)
      .then((report) => {
        if (report.expired || report.redispatched || report.providerCallsDeleted) logger.info({ ...report }, 'sweep finished');
        return report;
      })
      .finally(() => {
        sweeping = undefined;
      }));
  const timer = setInterval(() => {
    sweep().catch((err: unknown) => logger.warn({ err, code: 'sweep_failed' }, 'sweep failed'));
  }, config.sweep.intervalMs);

  // Batch jobs: collect, send, follow and reconcile batches (one tick at a time per process).
  const batchingConfig = config.batching ?? DEFAULT_BATCHING;
  const batching = createBatching({ db: deps.db.db, provider: deps.provider, jobEffects, logger, clock: deps.clock, prices: config.prices, config: batchingConfig });
  const batchLoop = startTicker(batching.tick, batchingConfig.tickMs, (err) => logger.warn({ err, code: 'batch_tick_failed' }, 'batch loop tick failed'));

  // Evaluations: grade what ended, start what the concurrency cap allows (eval-loop.ts).
  const evalLoop = startEvalLoop(ctx, config.evalLoop ?? DEFAULT_EVAL_LOOP);
  // Rollouts: measure each step, advance or roll back (rollout-loop.ts).
  const rolloutLoop = startRolloutLoop(ctx, config.rolloutLoop ?? DEFAULT_ROLLOUT_LOOP);

  let closing: Promise<void> | undefined;
  return {
    sweep,
    batchTick: batchLoop.tick,
    evalTick: evalLoop.tick,
    rolloutTick: rolloutLoop.tick,
    close: (timeoutMs = 10_000) =>
      (closing ??= (async () => {
        clearInterval(timer);
        // The loops stop ticking now; the batch tick in progress is waited for with the work below.
        const batchLoopClosed = batchLoop.close();
        await evalLoop.close();
        await rolloutLoop.close();
        shuttingDown.abort();
        await outboxListener.close();
        // Stop taking new work; in-flight jobs get `timeoutMs` to finish. After that we stop
        // waiting: BullMQ cannot turn a close in progress into a forced one (`close(true)` returns
        // the pending graceful close), so the unfinished work items stay locked until their lock
        // lapses once this process is gone, and another worker takes them up as stalled.
        const graceful = Promise.all(workers.map((w) => w.close()));
        const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref());
        if ((await Promise.race([graceful, deadline])) === 'timeout') {
          graceful.catch(() => {});
          logger.warn({ code: 'shutdown_forced' }, 'in-flight work did not finish in time: leaving it to another worker');
        }
        await sweeping?.catch(() => {});
        await batchLoopClosed;
        await inboxSettler.close();
        await webhookHealth?.close();
        connection.disconnect();
      })()),
  };
}
