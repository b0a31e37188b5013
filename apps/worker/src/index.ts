/** Entrypoint: wire real dependencies, run until SIGTERM/SIGINT (or the launcher is gone), then drain and close. */
import { createDb, runMigrations } from '@longhaul/db';
import { createAddressPolicy, parseCidrs } from '@longhaul/callbacks';
import { createKeyring, createProvider } from '@longhaul/provider';
import { createQueues, createJobStreams } from '@longhaul/queue';
import { createLogger, loadConfigOrExit, onShutdown, startupStepOrExit, throttled } from '@longhaul/runtime';
import { Registry, callbackAttemptObserver, createMetrics, disabledMetrics } from '@longhaul/metrics';
import { startOpsServer, workerReadinessChecks } from './http.ts';
import { createProviderObserver } from './provider-observer.ts';
import { loadEnv } from './env.ts';
import { lowerCpuPriority } from './priority.ts';
import { DEFAULT_BATCHING, createWorker, providerRateLimitWindow } from './worker.ts';
import { startTelemetry } from '@longhaul/telemetry';

const env = loadConfigOrExit(loadEnv);
const logger = createLogger({ service: 'worker', level: env.LOG_LEVEL });
// First, before the pools and libuv's threads exist: threads started later inherit it.
if (env.WORKER_CPU_PRIORITY !== 'normal') {
  const priority = lowerCpuPriority(env.WORKER_CPU_PRIORITY);
  if (priority.fallback) logger.warn({ ...priority, code: 'cpu_priority_fallback' }, 'worker cpu priority: SCHED_IDLE unavailable, niceness used instead');
  else logger.info(priority, 'worker cpu priority set');
}
// Traces only when the standard OTEL_* variables ask for them; otherwise no SDK is loaded.
const telemetry = await startTelemetry({ serviceName: 'longhaul-worker' });
if (telemetry.enabled) logger.info({ code: 'tracing_enabled' }, 'OpenTelemetry tracing on (OTEL_* variables)');
if (telemetry.ignoredExporters.length > 0) {
  logger.warn({ code: 'otel_exporter_unsupported', exporters: telemetry.ignoredExporters }, 'OTEL_TRACES_EXPORTER names exporters Longhaul does not ship (otlp, console): ignored');
}
const db = createDb({ connectionString: env.DATABASE_URL, max: env.DATABASE_POOL_SIZE, applicationName: 'longhaul-worker' });
const queues = createQueues({
  redisUrl: env.REDIS_URL,
  cluster: env.REDIS_CLUSTER ? { nodes: env.REDIS_CLUSTER_NODES } : undefined,
  prefix: env.QUEUE_PREFIX,
  role: 'worker',
  onError: throttled(10_000, (suppressed, err: Error) => logger.warn({ err, suppressed, code: 'redis_unavailable' }, 'redis connection error')),
});
if (env.LONGHAUL_MIGRATE_ON_START) {
  await startupStepOrExit(logger, { code: 'migration_failed', message: 'could not apply migrations at start-up; exiting' }, () => runMigrations(db.db));
}

const metrics = env.METRICS_ENABLED ? createMetrics(new Registry(), { processMetrics: true }) : disabledMetrics();
const providerObserver = createProviderObserver({ db, metrics, logger, recordCalls: env.PROVIDER_CALL_LOG });
// OPENAI_API_KEYS_FILE is followed as it changes, and re-read on SIGHUP (keyring.ts).
const keyring = await startupStepOrExit(logger, { code: 'provider_keys_invalid', message: 'could not load the provider keys; exiting' }, async () =>
  createKeyring({
    file: env.OPENAI_API_KEYS_FILE,
    // The simulator accepts any key; OpenAI needs a real one.
    apiKey: env.OPENAI_API_KEY ?? 'sk-longhaul-simulator',
    logger,
    metrics,
  }),
);
process.on('SIGHUP', () => void keyring.reload('sighup'));
const provider = createProvider({
  keyring,
  baseURL: env.OPENAI_BASE_URL,
  timeoutMs: env.PROVIDER_TIMEOUT_MS,
  onRequest: providerObserver.onRequest,
});

// Before any work is taken: a worker that cannot serve its probes (METRICS_PORT taken) fails fast.
const ops = await startOpsServer({
  host: env.METRICS_HOST,
  port: env.METRICS_PORT,
  token: env.METRICS_TOKEN,
  metrics,
  checks: workerReadinessChecks({ db, queues }),
  logger,
}).catch((err: Error) => {
  throw new Error(`cannot listen on METRICS_HOST:METRICS_PORT ${env.METRICS_HOST}:${env.METRICS_PORT} (${err.message}); set METRICS_PORT to a free port, or 0 for any`);
});
logger.info({ url: ops.url, metrics_token: env.METRICS_TOKEN ? 'required' : 'none' }, 'worker metrics listener listening (/metrics, /healthz, /readyz)');

const worker = createWorker({
  db,
  queues,
  jobStreams: createJobStreams(queues.connection, { prefix: queues.prefix }),
  provider,
  logger,
  metrics,
  clock: () => new Date(),
  config: {
    submitConcurrency: env.SUBMIT_CONCURRENCY,
    pollConcurrency: env.POLL_CONCURRENCY,
    cancelConcurrency: env.CANCEL_CONCURRENCY,
    webhookConcurrency: env.WEBHOOK_CONCURRENCY,
    completionMode: env.COMPLETION_MODE,
    providerRateLimit: env.PROVIDER_RATE_LIMIT_PER_SECOND ? providerRateLimitWindow(env.PROVIDER_RATE_LIMIT_PER_SECOND) : undefined,
    poll: { initialMs: env.POLL_INITIAL_MS, maxMs: env.POLL_MAX_MS, factor: env.POLL_FACTOR, safetyIntervalMs: env.SAFETY_POLL_MS, webhookGraceMs: env.WEBHOOK_GRACE_MS },
    retry: { baseMs: env.RETRY_BASE_MS, maxMs: env.RETRY_MAX_MS, maxAttempts: env.SUBMIT_MAX_ATTEMPTS, maxElapsedMs: env.SUBMIT_RETRY_WINDOW_SECONDS * 1000 },
    flexRetryWindowMs: env.FLEX_RETRY_WINDOW_SECONDS * 1000,
    sweep: {
      intervalMs: env.SWEEP_INTERVAL_MS,
      overdueGraceMs: env.SWEEP_OVERDUE_GRACE_MS,
      batchSize: 500,
      webhookWaitMs: env.WEBHOOK_WAIT_SECONDS * 1000,
      providerCallRetentionMs: env.PROVIDER_CALL_RETENTION_DAYS * 86_400_000,
      retention: {
        defaultDays: env.RETENTION_DAYS,
        batchSize: env.RETENTION_BATCH_SIZE,
        pauseFactor: env.RETENTION_PAUSE_FACTOR,
        providerDeletes: { baseMs: env.PROVIDER_DELETE_RETRY_MS },
        adminAuditDays: env.ADMIN_AUDIT_RETENTION_DAYS,
      },
    },
    callbacks: {
      concurrency: env.CALLBACK_CONCURRENCY,
      schedule: { scheduleMs: env.CALLBACK_RETRY_SCHEDULE_MS, timeScale: env.CALLBACK_TIME_SCALE },
      timeoutMs: env.CALLBACK_TIMEOUT_MS,
      disableAfterMs: env.CALLBACK_DISABLE_AFTER_SECONDS * 1000,
      policy: createAddressPolicy(parseCidrs(env.CALLBACK_ALLOWED_CIDRS)),
      onAttempt: callbackAttemptObserver(metrics),
    },
    jobDeadlineMs: env.JOB_DEADLINE_SECONDS * 1000,
    runConcurrency: env.RUN_CONCURRENCY,
    batching: {
      tickMs: env.BATCH_TICK_MS,
      limits: { maxJobs: env.BATCH_MAX_JOBS, maxBytes: env.BATCH_MAX_BYTES, maxWaitMs: env.BATCH_MAX_WAIT_SECONDS * 1000 },
      pollMs: env.BATCH_POLL_SECONDS * 1000,
      leaseMs: env.BATCH_LEASE_SECONDS * 1000,
      expiredPolicy: env.BATCH_EXPIRED_POLICY,
      reconcileConcurrency: env.BATCH_RECONCILE_CONCURRENCY,
      batchesPerTick: DEFAULT_BATCHING.batchesPerTick,
      deleteFiles: env.BATCH_DELETE_FILES,
    },
    evalLoop: { tickMs: env.EVAL_TICK_MS, evalsPerTick: 10 },
    rolloutLoop: { tickMs: env.ROLLOUT_TICK_MS, checkMs: env.ROLLOUT_CHECK_SECONDS * 1000, rolloutsPerTick: 20 },
    toolExecutor: { attempts: env.TOOL_EXECUTOR_ATTEMPTS, timeoutMs: env.TOOL_EXECUTOR_TIMEOUT_MS, concurrency: env.TOOL_EXECUTOR_CONCURRENCY },
    prices: env.MODEL_PRICES,
    streamRetentionSeconds: env.STREAM_RETENTION_SECONDS,
    streamConcurrency: env.STREAM_CONCURRENCY,
    lockDurationMs: env.LOCK_DURATION_MS,
    stalledIntervalMs: env.STALLED_INTERVAL_MS,
    admission: { defaultTokenLimit: env.TENANT_TPM_LIMIT, windowMs: env.TENANT_TPM_WINDOW_MS, order: env.ADMISSION_ORDER },
  },
});
logger.info(
  { provider: env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1', queue_prefix: queues.prefix, redis_cluster: env.REDIS_CLUSTER, completion_mode: env.COMPLETION_MODE },
  'worker started',
);

onShutdown(
  logger,
  env.SHUTDOWN_TIMEOUT_MS,
  async () => {
    await worker.close(env.SHUTDOWN_TIMEOUT_MS);
    await ops.close();
    await providerObserver.close();
    keyring.close();
    await queues.close();
    await db.close();
    await telemetry.shutdown();
  },
  { parentPid: env.LONGHAUL_PARENT_PID },
);
