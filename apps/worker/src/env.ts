/**
 * The worker's configuration, parsed once from the environment. Fails fast naming the variable; an
 * empty value counts as unset (see parseEnv in @longhaul/runtime).
 */
import { z } from 'zod';
import { PROVIDER_BATCH_LIMITS, parsePriceTable } from '@longhaul/core';
import { clusterNodesSchema, defaultQueuePrefix, redisSettingsProblems } from '@longhaul/queue';
import { parseEnv } from '@longhaul/runtime';
import { CPU_PRIORITIES } from './priority.ts';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

const schema = z
  .object({
    DATABASE_URL: z.url().default('postgres://postgres@127.0.0.1:5432/longhaul'),
    DATABASE_POOL_SIZE: z.coerce.number().int().min(2).default(20),
    REDIS_URL: z.url().default('redis://127.0.0.1:6379'),
    /** REDIS_URL is one node of a Redis Cluster. */
    REDIS_CLUSTER: bool.default(false),
    REDIS_CLUSTER_NODES: clusterNodesSchema.optional(),
    /** Default `longhaul`, or `{longhaul}` with REDIS_CLUSTER (where it must hold a hash tag). */
    QUEUE_PREFIX: z.string().min(1).optional(),
    OPENAI_API_KEY: z.string().min(1).optional(),
    /** Several keys, rotated without a restart (JSON, see @longhaul/provider keyring.ts); wins over OPENAI_API_KEY. */
    OPENAI_API_KEYS_FILE: z.string().min(1).optional(),
    OPENAI_BASE_URL: z.url().optional(),
    PROVIDER_TIMEOUT_MS: z.coerce.number().int().min(1000).default(60_000),
    PROVIDER_RATE_LIMIT_PER_SECOND: z.coerce.number().positive().optional(),
    SUBMIT_CONCURRENCY: z.coerce.number().int().min(1).default(20),
    TENANT_TPM_LIMIT: z.coerce.number().int().min(0).default(0),
    TENANT_TPM_WINDOW_MS: z.coerce.number().int().min(100).default(60_000),
    ADMISSION_ORDER: z.enum(['fair', 'fifo']).default('fair'),
    POLL_CONCURRENCY: z.coerce.number().int().min(1).default(50),
    CANCEL_CONCURRENCY: z.coerce.number().int().min(1).default(10),
    WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).default(20),
    COMPLETION_MODE: z.enum(['poll', 'webhook', 'hybrid']).default('hybrid'),
    SAFETY_POLL_MS: z.coerce.number().int().min(1000).default(300_000),
    /** Hybrid mode: how late a webhook may be before it counts as lost (and a job's webhook is overdue). */
    WEBHOOK_GRACE_MS: z.coerce.number().int().min(0).default(30_000),
    WEBHOOK_WAIT_SECONDS: z.coerce.number().int().min(1).default(3600),
    POLL_INITIAL_MS: z.coerce.number().int().min(10).default(1_000),
    POLL_MAX_MS: z.coerce.number().int().min(10).default(30_000),
    POLL_FACTOR: z.coerce.number().min(1).default(2),
    RETRY_BASE_MS: z.coerce.number().int().min(1).default(1_000),
    RETRY_MAX_MS: z.coerce.number().int().min(1).default(60_000),
    SUBMIT_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(30),
    SUBMIT_RETRY_WINDOW_SECONDS: z.coerce.number().int().min(1).default(3600),
    /** How long a `service_tier: "flex"` create refused for capacity (429 Resource Unavailable) is retried before the job falls back or fails (`flex_fallback`). */
    FLEX_RETRY_WINDOW_SECONDS: z.coerce.number().int().min(0).default(900),
    CALLBACK_CONCURRENCY: z.coerce.number().int().min(1).default(50),
    CALLBACK_TIMEOUT_MS: z.coerce.number().int().min(100).default(15_000),
    CALLBACK_RETRY_SCHEDULE_MS: z
      .string()
      .regex(/^\d+(,\d+)*$/, 'comma-separated milliseconds, e.g. 0,5000,300000')
      .transform((v) => v.split(',').map(Number))
      .optional(),
    CALLBACK_TIME_SCALE: z.coerce.number().positive().default(1),
    CALLBACK_DISABLE_AFTER_SECONDS: z.coerce
      .number()
      .int()
      .min(1)
      .default(5 * 24 * 3600),
    CALLBACK_ALLOWED_CIDRS: z.string().optional(),
    /** Tool executors (`tool_executor`): calls per turn before the job fails with tool_executor_failed, each call's timeout, parallel calls per process. */
    TOOL_EXECUTOR_ATTEMPTS: z.coerce.number().int().min(1).default(5),
    TOOL_EXECUTOR_TIMEOUT_MS: z.coerce.number().int().min(100).default(120_000),
    TOOL_EXECUTOR_CONCURRENCY: z.coerce.number().int().min(1).default(50),
    STREAM_CONCURRENCY: z.coerce.number().int().min(1).default(200),
    /** Pipeline runs: a step job's deadline (as the API's JOB_DEADLINE_SECONDS), run advances in parallel per process. */
    JOB_DEADLINE_SECONDS: z.coerce
      .number()
      .int()
      .min(60)
      .default(6 * 3600),
    RUN_CONCURRENCY: z.coerce.number().int().min(1).default(20),
    // Batch jobs (processing: "batch"): when a batch goes out, how it is followed, what becomes of an expired batch's unanswered jobs.
    BATCH_MAX_JOBS: z.coerce.number().int().min(1).max(PROVIDER_BATCH_LIMITS.maxJobs).default(PROVIDER_BATCH_LIMITS.maxJobs),
    BATCH_MAX_BYTES: z.coerce
      .number()
      .int()
      .min(1_000)
      .max(PROVIDER_BATCH_LIMITS.maxBytes)
      .default(190 * 1024 * 1024),
    BATCH_MAX_WAIT_SECONDS: z.coerce.number().min(0).default(60),
    BATCH_POLL_SECONDS: z.coerce.number().min(0.1).default(60),
    BATCH_TICK_MS: z.coerce.number().int().min(50).default(1_000),
    EVAL_TICK_MS: z.coerce.number().int().min(50).default(200),
    ROLLOUT_TICK_MS: z.coerce.number().int().min(50).default(1_000),
    ROLLOUT_CHECK_SECONDS: z.coerce.number().min(0.05).default(5),
    BATCH_LEASE_SECONDS: z.coerce.number().min(1).default(300),
    BATCH_EXPIRED_POLICY: z.enum(['resubmit', 'fail']).default('resubmit'),
    BATCH_RECONCILE_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
    BATCH_DELETE_FILES: bool.default(true),
    STREAM_RETENTION_SECONDS: z.coerce
      .number()
      .int()
      .min(60)
      .default(24 * 3600),
    SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).default(10_000),
    SWEEP_OVERDUE_GRACE_MS: z.coerce.number().int().min(0).default(30_000),
    PROVIDER_CALL_RETENTION_DAYS: z.coerce.number().min(0).default(30),
    /** Days a finished job's content is kept for tenants without their own retention (`tenant limits --retention-days`); 0 keeps it until erased. */
    RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(0),
    /** Jobs erased per statement by retention and tenant erasures. */
    RETENTION_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
    /** Pause after each erase batch, as a multiple of the batch's duration (1: erasing half the time at most). */
    RETENTION_PAUSE_FACTOR: z.coerce.number().min(0).max(100).default(1),
    /** First retry of a failed provider delete after an erase (then doubling, up to 6 h, for 3 days). */
    PROVIDER_DELETE_RETRY_MS: z.coerce.number().int().min(100).default(30_000),
    /** Days the admin audit log is kept; 0 keeps it. */
    ADMIN_AUDIT_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_500).default(365),
    LOCK_DURATION_MS: z.coerce.number().int().min(1000).default(30_000),
    STALLED_INTERVAL_MS: z.coerce.number().int().min(1000).default(30_000),
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(30_000),
    /**
     * How much of a shared core the worker yields, set once at start: `normal` (what it inherited),
     * `low` (niceness 10) or `idle` (Linux SCHED_IDLE: only cores nothing else wants). `npm start`
     * sets `idle`, so that an API on the same cores keeps its latency.
     */
    WORKER_CPU_PRIORITY: z.enum(CPU_PRIORITIES).default('normal'),
    /** Set by the launcher (scripts/start.mjs, scripts/run-app.mjs): exit when that process is gone. */
    LONGHAUL_PARENT_PID: z.coerce.number().int().positive().optional(),
    LONGHAUL_MIGRATE_ON_START: z
      .enum(['true', 'false', '1', '0'])
      .default('true')
      .transform((v) => v === 'true' || v === '1'),
    METRICS_ENABLED: z
      .enum(['true', 'false', '1', '0'])
      .default('true')
      .transform((v) => v === 'true' || v === '1'),
    METRICS_HOST: z.string().min(1).default('127.0.0.1'),
    METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
    /** When set, GET /metrics on the metrics listener requires `Authorization: Bearer <METRICS_TOKEN>` (the probes stay open). */
    METRICS_TOKEN: z.string().min(16, 'use at least 16 characters').optional(),
    PROVIDER_CALL_LOG: z
      .enum(['true', 'false', '1', '0'])
      .default('true')
      .transform((v) => v === 'true' || v === '1'),
    MODEL_PRICES: z
      .string()
      .optional()
      .transform((v, ctx) => {
        const parsed = parsePriceTable(v);
        if (parsed.ok) return parsed.prices;
        ctx.addIssue({ code: 'custom', message: `${parsed.error}; expected e.g. {"o3": {"input": 2, "cached_input": 0.5, "output": 8}} (USD per 1M tokens)` });
        return z.NEVER;
      }),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .refine((e) => e.OPENAI_API_KEY || e.OPENAI_API_KEYS_FILE || e.OPENAI_BASE_URL, {
    message: 'set OPENAI_API_KEY or OPENAI_API_KEYS_FILE (OpenAI) or OPENAI_BASE_URL (a compatible server such as the simulator, http://127.0.0.1:3100/v1)',
    path: ['OPENAI_API_KEY'],
  })
  // The Redis settings as a whole: a cluster needs a hash-tagged prefix, and gets `{longhaul}` by default.
  .superRefine((e, ctx) => {
    for (const { variable, message } of redisSettingsProblems(e)) ctx.addIssue({ code: 'custom', path: [variable], message });
  })
  .transform((e) => ({ ...e, QUEUE_PREFIX: e.QUEUE_PREFIX ?? defaultQueuePrefix(e.REDIS_CLUSTER) }));

export type WorkerEnv = z.infer<typeof schema>;

/** Throws InvalidConfigError (one line naming each bad variable); empty values count as unset. */
export function loadEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv {
  return parseEnv(schema, env, 'worker');
}
