/** Entrypoint: wire real dependencies, listen, shut down cleanly on SIGTERM/SIGINT or when the launcher is gone. */
import { createDb, ensureTenantWithApiKey, runMigrations } from '@longhaul/db';
import { createLogger, loadConfigOrExit, onShutdown, startupStepOrExit, throttled } from '@longhaul/runtime';
import { createQueues } from '@longhaul/queue';
import { createKeyring, createProvider } from '@longhaul/provider';
import { parseSecrets } from '@longhaul/webhooks';
import { createAddressPolicy, parseCidrs } from '@longhaul/callbacks';
import { Registry, createMetrics, disabledMetrics } from '@longhaul/metrics';
import { startMetricsServer } from '@longhaul/metrics/server';
import { checkReadiness, readinessResponse } from '@longhaul/runtime';
import { loadEnv } from './env.ts';
import { gracefulClose } from './graceful-close.ts';
import { apiReadinessChecks } from './ops.ts';
import { createServer } from './server.ts';
import { createStreamHub } from './stream-hub.ts';
import { loadRequestValidator } from '@longhaul/specs/validation';
import { startTelemetry } from '@longhaul/telemetry';

const env = loadConfigOrExit(loadEnv);
const logger = createLogger({ service: 'api', level: env.LOG_LEVEL });
// Traces only when the standard OTEL_* variables ask for them; otherwise no SDK is loaded.
const telemetry = await startTelemetry({ serviceName: 'longhaul-api' });
if (telemetry.enabled) logger.info({ code: 'tracing_enabled' }, 'OpenTelemetry tracing on (OTEL_* variables)');
if (telemetry.ignoredExporters.length > 0) {
  logger.warn({ code: 'otel_exporter_unsupported', exporters: telemetry.ignoredExporters }, 'OTEL_TRACES_EXPORTER names exporters Longhaul does not ship (otlp, console): ignored');
}
const dbHandle = createDb({ connectionString: env.DATABASE_URL, max: env.DATABASE_POOL_SIZE, applicationName: 'longhaul-api' });
const queues = createQueues({
  redisUrl: env.REDIS_URL,
  cluster: env.REDIS_CLUSTER ? { nodes: env.REDIS_CLUSTER_NODES } : undefined,
  prefix: env.QUEUE_PREFIX,
  role: 'producer',
  onError: throttled(10_000, (suppressed, err: Error) => logger.warn({ err, suppressed, code: 'redis_unavailable' }, 'redis connection error')),
});

if (env.LONGHAUL_MIGRATE_ON_START) {
  await startupStepOrExit(logger, { code: 'migration_failed', message: 'could not apply migrations at start-up; exiting' }, () => runMigrations(dbHandle.db));
}
if (env.LONGHAUL_BOOTSTRAP_API_KEY) {
  const key = env.LONGHAUL_BOOTSTRAP_API_KEY;
  const { tenantId, created, active } = await startupStepOrExit(logger, { code: 'bootstrap_key_failed', message: 'could not ensure the bootstrap API key; exiting' }, () =>
    ensureTenantWithApiKey(dbHandle.db, key, new Date()),
  );
  if (active) logger.info({ tenant_id: tenantId, created }, 'bootstrap API key ensured');
  else logger.warn({ tenant_id: tenantId, code: 'bootstrap_key_inactive' }, 'LONGHAUL_BOOTSTRAP_API_KEY is revoked or expired; it stays so (set a new one, or unset it)');
}

if (env.ADMIN_AUTH_DISABLED) logger.warn({ code: 'admin_auth_disabled' }, 'ADMIN_AUTH_DISABLED=true: the admin UI at /admin is open to anyone who can reach this port');

const streamHub = createStreamHub({ queues, logger, heartbeatMs: env.STREAM_HEARTBEAT_MS });

// Files and conversations are proxied to the provider the workers submit to (the same keys, the same URL).
const metrics = env.METRICS_ENABLED ? createMetrics(new Registry(), { processMetrics: true }) : disabledMetrics();
// OPENAI_API_KEYS_FILE is followed as it changes, and re-read on SIGHUP (keyring.ts).
const keyring =
  env.OPENAI_API_KEY || env.OPENAI_API_KEYS_FILE || env.OPENAI_BASE_URL
    ? await startupStepOrExit(logger, { code: 'provider_keys_invalid', message: 'could not load the provider keys; exiting' }, async () =>
        createKeyring({ file: env.OPENAI_API_KEYS_FILE, apiKey: env.OPENAI_API_KEY ?? 'sk-longhaul-simulator', logger, metrics }),
      )
    : undefined;
if (keyring) process.on('SIGHUP', () => void keyring.reload('sighup'));
const provider = keyring
  ? createProvider({
      keyring,
      baseURL: env.OPENAI_BASE_URL,
      timeoutMs: env.PROVIDER_TIMEOUT_MS,
      onRequest: (e) => metrics.providerRequest({ endpoint: e.operation, status: e.status, durationMs: e.durationMs }),
    })
  : undefined;
if (!provider) logger.warn({ code: 'provider_not_configured' }, 'OPENAI_API_KEY / OPENAI_API_KEYS_FILE / OPENAI_BASE_URL unset: /v1/files and /v1/conversations answer 503');

const app = createServer({
  db: dbHandle.db,
  queues,
  provider,
  streamHub,
  logger,
  metrics,
  clock: () => new Date(),
  config: {
    bodyLimit: env.API_BODY_LIMIT,
    jobDeadlineMs: env.JOB_DEADLINE_SECONDS * 1000,
    idempotencyTtlMs: env.IDEMPOTENCY_TTL_SECONDS * 1000,
    openaiWebhookSecrets: parseSecrets(env.OPENAI_WEBHOOK_SECRET),
    callbackPolicy: createAddressPolicy(parseCidrs(env.CALLBACK_ALLOWED_CIDRS)),
    admin: {
      token: env.ADMIN_TOKEN,
      basicAuth: env.ADMIN_BASIC_AUTH,
      users: env.ADMIN_USERS,
      authDisabled: env.ADMIN_AUTH_DISABLED,
      readOnly: env.ADMIN_READ_ONLY,
      publicOrigins: env.ADMIN_PUBLIC_ORIGIN,
      cookieSecure: env.ADMIN_COOKIE_SECURE,
      sessionTtlMs: env.ADMIN_SESSION_TTL_SECONDS * 1000,
      maxFailuresPerCredential: env.ADMIN_AUTH_MAX_FAILURES_PER_CREDENTIAL,
      maxFailuresPerAddress: env.ADMIN_AUTH_MAX_FAILURES,
      maxFailuresGlobal: env.ADMIN_AUTH_MAX_FAILURES_GLOBAL,
      failureWindowSeconds: env.ADMIN_AUTH_FAILURE_WINDOW_SECONDS,
    },
    trustProxy: env.TRUST_PROXY,
    metricsToken: env.METRICS_TOKEN,
    rateLimits: { defaultRequestsPerMinute: env.API_RPM_LIMIT },
    apiKeyCacheTtlMs: env.API_KEY_CACHE_TTL_MS,
    admission: { defaultTokenLimit: env.TENANT_TPM_LIMIT },
    files: { autoUploadBytes: env.FILES_AUTO_UPLOAD_BYTES },
  },
});
// The metrics listener opens before the tenant-facing port: an API whose API_METRICS_PORT is taken
// stops here, and once the port answers, so do the metrics. The public port serves /metrics only
// with METRICS_TOKEN (ops.ts).
const readinessChecks = apiReadinessChecks({ db: dbHandle.db, queues });
const metricsServer = env.METRICS_ENABLED
  ? await startMetricsServer({
      host: env.METRICS_HOST,
      port: env.API_METRICS_PORT,
      token: env.METRICS_TOKEN,
      metrics,
      readiness: async () => readinessResponse(await checkReadiness(readinessChecks)),
      logger,
    }).catch((err: Error) => {
      throw new Error(
        `cannot listen on METRICS_HOST:API_METRICS_PORT ${env.METRICS_HOST}:${env.API_METRICS_PORT} (${err.message}); set API_METRICS_PORT to a free port, or 0 for any`,
      );
    })
  : undefined;
if (metricsServer) {
  logger.info({ url: metricsServer.url, metrics_token: env.METRICS_TOKEN ? 'required' : 'none' }, 'api metrics listener listening (/metrics, /healthz, /readyz)');
}

// OpenAI's OpenAPI document is compiled before the port opens (about half a second), so the first
// POST /v1/responses does not pay for it.
const compileStarted = performance.now();
loadRequestValidator();
logger.debug({ duration_ms: Math.round(performance.now() - compileStarted) }, 'OpenAPI request validation compiled');

const server = app.listen(env.PORT, env.HOST, () => {
  logger.info({ url: `http://${env.HOST}:${env.PORT}` }, 'api listening');
});
server.keepAliveTimeout = 65_000;
// Requests in flight at shutdown are finished and answered with `Connection: close` (graceful-close.ts).
const httpServer = gracefulClose(server);

onShutdown(
  logger,
  env.SHUTDOWN_TIMEOUT_MS,
  async () => {
    const closing = httpServer.close();
    // Live job streams end now; their clients resume on another instance with Last-Event-ID.
    await streamHub.close();
    await closing;
    await metricsServer?.close();
    keyring?.close();
    await queues.close();
    await dbHandle.close();
    await telemetry.shutdown();
  },
  { parentPid: env.LONGHAUL_PARENT_PID },
);
