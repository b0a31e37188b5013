import type { DbHandle, ProviderDeleteSchedule } from '@longhaul/db';
import type { Provider } from '@longhaul/provider';
import type { Queues } from '@longhaul/queue';
import type { Logger } from '@longhaul/runtime';
import type { Metrics } from '@longhaul/metrics';
import type { CallbackScheduleOptions, CompletionMode, PollScheduleOptions, PriceTable, RetryScheduleOptions } from '@longhaul/core';
import type { AddressPolicy, AttemptOutcome } from '@longhaul/callbacks';
import type { JobStreams } from '@longhaul/queue';
import type { Admission, AdmissionConfig, BatchingConfig, JobEffects } from '@longhaul/engine';
import type { InboxSettler } from './inbox-settler.ts';
import type { WebhookHealthConfig, WebhookHealthTracker } from './webhook-health.ts';

export type { AdmissionConfig } from '@longhaul/engine';

export interface WorkerConfig {
  /** Parallel provider creates per process. */
  submitConcurrency: number;
  /** Parallel polls per process. */
  pollConcurrency: number;
  cancelConcurrency: number;
  webhookConcurrency: number;
  /** Provider create rate limit shared by every worker (BullMQ limiter): at most `max` per `durationMs`. */
  providerRateLimit?: { max: number; durationMs: number };
  /**
   * How completion is detected: `webhook` (polls only as a slow safety net), `poll`, or `hybrid`
   * (both: polls as a safety net while webhooks arrive, adaptive polling while they do not).
   */
  completionMode: CompletionMode;
  /** The poll schedules: adaptive (`initialMs`, `factor`, `maxMs`), the safety net (`safetyIntervalMs`) and the webhook grace period (`webhookGraceMs`). */
  poll: PollScheduleOptions;
  /** Hybrid mode: how the webhooks' health is learned and shared (thresholds, refresh interval). Defaults: webhook-health.ts. */
  webhookHealth?: WebhookHealthConfig;
  retry: RetryScheduleOptions & {
    /** A submission failing transiently is retried at most this many times... */
    maxAttempts: number;
    /** ...and for at most this long after the first failed attempt. */
    maxElapsedMs: number;
  };
  /**
   * How long a `service_tier: "flex"` create refused for flex capacity (429 Resource Unavailable)
   * is retried, from the first refusal, on the `retry` backoff, before the job runs at the standard
   * tier (`flex_fallback: "auto"`) or fails with `flex_unavailable` (FLEX_RETRY_WINDOW_SECONDS).
   * Default 900 000 ms (@longhaul/core flex.ts).
   */
  flexRetryWindowMs?: number;
  sweep: {
    /** How often a sweep runs (one worker at a time, under a Postgres advisory lock). */
    intervalMs: number;
    /** A job is re-dispatched when its expected next check is this late. */
    overdueGraceMs: number;
    batchSize: number;
    /** An inbox webhook no job claims within this long is recorded as an orphan. */
    webhookWaitMs: number;
    /** Provider call log rows (the admin timeline) older than this are deleted; 0 keeps them. Default 30 days. */
    providerCallRetentionMs?: number;
    /** Data retention and deletion: retention erases, retried provider deletes, tenant erasures (data-retention.ts). Default: retention off. */
    retention?: RetentionConfig;
  };
  callbacks: {
    /** Parallel deliveries per process. */
    concurrency: number;
    /** Retry schedule (Standard Webhooks by default) and its time scale. */
    schedule: CallbackScheduleOptions;
    /** Per-attempt timeout. */
    timeoutMs: number;
    /** An endpoint failing continuously this long is disabled. */
    disableAfterMs: number;
    /** Which addresses callbacks may connect to (SSRF guard). */
    policy: AddressPolicy;
    /** Observes every attempt (metrics). */
    onAttempt?: (attempt: { outcome: AttemptOutcome; latencyMs: number; deliveryLatencyMs: number }) => void;
  };
  /**
   * Tool executors (a job's `tool_executor`): each turn's calls are POSTed there, signed like the
   * job's callbacks and to the addresses `callbacks.policy` allows. Defaults: processors/execute-tools.ts.
   */
  toolExecutor?: ToolExecutorConfig;
  /** A pipeline step job's deadline from its creation (JOB_DEADLINE_SECONDS, as the API's jobs). Default 6 h. */
  jobDeadlineMs?: number;
  /** Parallel pipeline run advances per process (RUN_CONCURRENCY). Default 20. */
  runConcurrency?: number;
  /** Batch jobs (BATCH_* settings, @longhaul/engine batching.ts): how often the batch loop ticks, and its settings. Default: DEFAULT_BATCHING. */
  batching?: BatchingConfig & { tickMs: number };
  /** The evaluation loop (EVAL_TICK_MS): how often due evals are ticked. Default: DEFAULT_EVAL_LOOP. */
  evalLoop?: EvalLoopConfig;
  /** The rollout loop (ROLLOUT_TICK_MS). Default: DEFAULT_ROLLOUT_LOOP. */
  rolloutLoop?: RolloutLoopConfig;
  /** How long a finished job's event stream is kept. */
  streamRetentionSeconds: number;
  /** Parallel provider streams followed per process (each holds one connection open). */
  streamConcurrency: number;
  /** BullMQ lock duration: a crashed worker's jobs are retried after about this long. */
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** USD per 1M tokens per model, for each job's cost estimate (`DEFAULT_MODEL_PRICES` and MODEL_PRICES). */
  prices: PriceTable;
  /**
   * Per-tenant admission to the provider (fair share, token budgets): the same settings as the
   * API's `admission` (TENANT_TPM_LIMIT, ...). Default: fair, unlimited, 60 s window.
   */
  admission?: AdmissionConfig;
}

export interface ToolExecutorConfig {
  /** Calls of one turn before the job fails with `tool_executor_failed` (TOOL_EXECUTOR_ATTEMPTS). Default 5. */
  attempts?: number;
  /** Each call's timeout (TOOL_EXECUTOR_TIMEOUT_MS). Default 120 000 ms. */
  timeoutMs?: number;
  /** Calls in flight per process (TOOL_EXECUTOR_CONCURRENCY). Default 50. */
  concurrency?: number;
}

export interface RetentionConfig {
  /** Days a finished job's content is kept for tenants without their own `retention_days` (RETENTION_DAYS); 0 keeps it until erased. Default 0. */
  defaultDays?: number;
  /** Jobs per erase statement (retention and tenant erasures). Default 500. */
  batchSize?: number;
  /** Most time one sweep spends erasing in batches; the rest waits for the next sweep. Default 5 000 ms. */
  budgetMs?: number;
  /** Pause after each batch, as a multiple of the batch's own duration (Postgres headroom for live traffic). Default 1. */
  pauseFactor?: number;
  /** When erased jobs' provider deletes are retried (@longhaul/db DEFAULT_PROVIDER_DELETE_SCHEDULE). */
  providerDeletes?: Partial<ProviderDeleteSchedule>;
  /** Days the admin audit log (admin_actions) is kept (ADMIN_AUDIT_RETENTION_DAYS); 0 keeps it. Default 365. */
  adminAuditDays?: number;
}

export interface WorkerDeps {
  /** Per-job event logs (Redis Streams) that SSE watchers read. */
  jobStreams: JobStreams;
  db: DbHandle;
  queues: Queues;
  provider: Provider;
  logger: Logger;
  clock: () => Date;
  config: WorkerConfig;
  /** Prometheus metrics (`createMetrics(registry)`, or `disabledMetrics()`). */
  metrics: Metrics;
}

/** What the processors and the sweeper are given: the deps and what `createWorker` builds from them, once per process. */
export interface WorkerContext extends WorkerDeps {
  /** Per-tenant admission (fair queue, tenant limits): the submit turns and the sweeper share its limit cache. */
  admission: Admission;
  /** What follows every state change (metrics, the lifecycle stream event, the next work item): `jobEffects.afterJobChange`. */
  jobEffects: JobEffects;
  /** Hybrid mode: the webhooks' health, which the poll and webhook processors report what they see to. Absent in other modes. */
  webhookHealth?: WebhookHealthTracker;
  /** Settles applied webhooks' inbox rows in batches. */
  inboxSettler: InboxSettler;
}

export interface EvalLoopConfig {
  /** How often the loop looks for due evals (EVAL_TICK_MS). Default 200 ms: an eval starts its next jobs in small steps as results end, not in bursts that production jobs would queue behind. */
  tickMs: number;
  /** Evals ticked per look. Default 10. */
  evalsPerTick: number;
}

export interface RolloutLoopConfig {
  /** How often the loop looks for due rollouts (ROLLOUT_TICK_MS). Default 1 000 ms. */
  tickMs: number;
  /** How long after a look a rollout is looked at again: how soon a step is judged once it has its jobs (ROLLOUT_CHECK_SECONDS). Default 5 000 ms. */
  checkMs: number;
  /** Rollouts looked at per tick. Default 20. */
  rolloutsPerTick: number;
}
