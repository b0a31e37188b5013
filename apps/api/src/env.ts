/**
 * The API's configuration, parsed once from the environment. Fails fast naming the variable; an
 * empty value counts as unset (see parseEnv in @longhaul/runtime).
 */
import { z } from 'zod';
import { parseEnv } from '@longhaul/runtime';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

const schema = z.object({
  HOST: z.string().default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  DATABASE_URL: z.url().default('postgres://postgres@127.0.0.1:5432/longhaul'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).default(10),
  REDIS_URL: z.url().default('redis://127.0.0.1:6379'),
  QUEUE_PREFIX: z.string().min(1).default('longhaul'),
  LONGHAUL_BOOTSTRAP_API_KEY: z.string().min(16, 'use at least 16 characters').optional(),
  LONGHAUL_MIGRATE_ON_START: bool.default(true),
  OPENAI_WEBHOOK_SECRET: z.string().optional(),
  OPENAI_API_KEY: z.string().min(1).optional(),
  OPENAI_BASE_URL: z.url().optional(),
  PROVIDER_TIMEOUT_MS: z.coerce.number().int().min(1000).default(60_000),
  CALLBACK_ALLOWED_CIDRS: z.string().optional(),
  STREAM_HEARTBEAT_MS: z.coerce.number().int().min(100).default(15_000),
  // Inline files (base64) of up to 32 MB per request make JSON bodies of ~43 MB.
  API_BODY_LIMIT: z.string().default('48mb'),
  API_RPM_LIMIT: z.coerce.number().int().min(0).default(600),
  TENANT_TPM_LIMIT: z.coerce.number().int().min(0).default(0),
  FILES_AUTO_UPLOAD_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(1024 * 1024),
  JOB_DEADLINE_SECONDS: z.coerce
    .number()
    .int()
    .min(60)
    .default(6 * 3600),
  IDEMPOTENCY_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(60)
    .default(24 * 3600),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
  /** Set by the launcher (scripts/start.mjs, scripts/run-app.mjs): exit when that process is gone. */
  LONGHAUL_PARENT_PID: z.coerce.number().int().positive().optional(),
  ADMIN_TOKEN: z.string().min(16, 'use at least 16 characters').optional(),
  ADMIN_BASIC_AUTH: z
    .string()
    .regex(/^[^:]+:.{12,}$/, 'expected user:password, with a password of at least 12 characters')
    .optional(),
  ADMIN_AUTH_DISABLED: bool.default(false),
  ADMIN_READ_ONLY: bool.default(false),
  METRICS_ENABLED: bool.default(true),
  METRICS_TOKEN: z.string().min(16, 'use at least 16 characters').optional(),
  // The metrics listener (/metrics, /healthz, /readyz), apart from the tenant-facing port. Its port
  // has a name of its own (the worker's is METRICS_PORT): npm start gives both apps one environment.
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  API_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9465),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type ApiEnv = z.infer<typeof schema>;

/** Throws InvalidConfigError (one line naming each bad variable); empty values count as unset. */
export function loadEnv(env: NodeJS.ProcessEnv = process.env): ApiEnv {
  return parseEnv(schema, env, 'API');
}
