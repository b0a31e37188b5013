/**
 * The API's configuration, parsed once from the environment. Fails fast naming the variable; an
 * empty value counts as unset (see parseEnv in @longhaul/runtime).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { clusterNodesSchema, defaultQueuePrefix, redisSettingsProblems } from '@longhaul/queue';
import { parseEnv } from '@longhaul/runtime';
import { adminUsersSchema } from './admin/passwords.ts';
import type { TrustProxySetting } from './context.ts';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

const NAMED_PROXY_RANGES = ['loopback', 'linklocal', 'uniquelocal'];

function isAddressOrCidr(entry: string): boolean {
  const [address = '', prefix, extra] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

/**
 * TRUST_PROXY, as Express's `trust proxy` takes it: `true`/`false`, a number of hops, or a
 * comma-separated list of addresses, CIDR ranges and the names loopback, linklocal, uniquelocal.
 */
const trustProxy = z.string().transform((value, ctx): TrustProxySetting => {
  const v = value.trim().toLowerCase();
  if (['true', 'yes'].includes(v)) return true;
  if (['false', 'no', '0'].includes(v)) return false;
  if (/^\d+$/.test(v)) return Number(v);
  const entries = value.split(',').map((e) => e.trim());
  const bad = entries.findIndex((e) => !NAMED_PROXY_RANGES.includes(e) && !isAddressOrCidr(e));
  if (bad >= 0) {
    ctx.addIssue({
      code: 'custom',
      message: `entry ${bad + 1} is not an IP address, a CIDR range or one of ${NAMED_PROXY_RANGES.join(', ')} (or use true, false or a number of hops)`,
    });
    return z.NEVER;
  }
  return entries;
});

/** ADMIN_PUBLIC_ORIGIN: comma-separated origins such as https://admin.example.com (no path). */
const origins = z.string().transform((value, ctx) => {
  const out: string[] = [];
  for (const [i, entry] of value
    .split(',')
    .map((e) => e.trim())
    .entries()) {
    const url = URL.canParse(entry) ? new URL(entry) : undefined;
    if (!url || !['http:', 'https:'].includes(url.protocol) || entry.replace(/\/$/, '') !== url.origin) {
      ctx.addIssue({ code: 'custom', message: `entry ${i + 1} is not an origin like https://admin.example.com (scheme, host, optional port, no path)` });
      return z.NEVER;
    }
    out.push(url.origin);
  }
  return out;
});

const cookieSecure = z.enum(['auto', 'true', 'false', '1', '0', 'yes', 'no']).transform((v) => (v === 'auto' ? ('auto' as const) : v === 'true' || v === '1' || v === 'yes'));

const schema = z.object({
  HOST: z.string().default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  DATABASE_URL: z.url().default('postgres://postgres@127.0.0.1:5432/longhaul'),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).default(10),
  REDIS_URL: z.url().default('redis://127.0.0.1:6379'),
  /** REDIS_URL is one node of a Redis Cluster. */
  REDIS_CLUSTER: bool.default(false),
  REDIS_CLUSTER_NODES: clusterNodesSchema.optional(),
  /** Default `longhaul`, or `{longhaul}` with REDIS_CLUSTER (where it must hold a hash tag). */
  QUEUE_PREFIX: z.string().min(1).optional(),
  LONGHAUL_BOOTSTRAP_API_KEY: z.string().min(16, 'use at least 16 characters').optional(),
  LONGHAUL_MIGRATE_ON_START: bool.default(true),
  OPENAI_WEBHOOK_SECRET: z.string().optional(),
  OPENAI_API_KEY: z.string().min(1).optional(),
  /** Several keys, rotated without a restart (JSON, see @longhaul/provider keyring.ts); wins over OPENAI_API_KEY. */
  OPENAI_API_KEYS_FILE: z.string().min(1).optional(),
  OPENAI_BASE_URL: z.url().optional(),
  PROVIDER_TIMEOUT_MS: z.coerce.number().int().min(1000).default(60_000),
  CALLBACK_ALLOWED_CIDRS: z.string().optional(),
  STREAM_HEARTBEAT_MS: z.coerce.number().int().min(100).default(15_000),
  // Inline files (base64) of up to 32 MB per request make JSON bodies of ~43 MB.
  API_BODY_LIMIT: z.string().default('48mb'),
  API_RPM_LIMIT: z.coerce.number().int().min(0).default(600),
  /** How long a tenant API key is remembered per process: a key revoked elsewhere works here at most this long. */
  API_KEY_CACHE_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(2_000),
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
  /** Named admins: `name:scrypt:…` (hash-password) entries, comma-separated. */
  ADMIN_USERS: adminUsersSchema.optional(),
  ADMIN_AUTH_DISABLED: bool.default(false),
  ADMIN_READ_ONLY: bool.default(false),
  /** Where browsers open the admin UI, when a proxy changes the scheme or Host (cross-site check). */
  ADMIN_PUBLIC_ORIGIN: origins.optional(),
  ADMIN_COOKIE_SECURE: cookieSecure.default('auto'),
  ADMIN_SESSION_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(60)
    .default(12 * 3600),
  /** Wrong passwords per user name (all addresses), and wrong tokens per address, per window. */
  ADMIN_AUTH_MAX_FAILURES_PER_CREDENTIAL: z.coerce.number().int().min(1).default(10),
  /** Wrong admin credentials per client address per window, whatever they name. */
  ADMIN_AUTH_MAX_FAILURES: z.coerce.number().int().min(1).default(50),
  ADMIN_AUTH_MAX_FAILURES_GLOBAL: z.coerce.number().int().min(0).default(1000),
  ADMIN_AUTH_FAILURE_WINDOW_SECONDS: z.coerce.number().int().min(1).default(900),
  TRUST_PROXY: trustProxy.default(false),
  METRICS_ENABLED: bool.default(true),
  METRICS_TOKEN: z.string().min(16, 'use at least 16 characters').optional(),
  // The metrics listener (/metrics, /healthz, /readyz), apart from the tenant-facing port. Its port
  // has a name of its own (the worker's is METRICS_PORT): npm start gives both apps one environment.
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  API_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9465),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** The Redis settings as a whole: a cluster needs a hash-tagged prefix, and gets `{longhaul}` by default. */
const settings = schema
  .superRefine((e, ctx) => {
    for (const { variable, message } of redisSettingsProblems(e)) ctx.addIssue({ code: 'custom', path: [variable], message });
  })
  .transform((e) => ({ ...e, QUEUE_PREFIX: e.QUEUE_PREFIX ?? defaultQueuePrefix(e.REDIS_CLUSTER) }));

export type ApiEnv = z.infer<typeof settings>;

/** Throws InvalidConfigError (one line naming each bad variable); empty values count as unset. */
export function loadEnv(env: NodeJS.ProcessEnv = process.env): ApiEnv {
  return parseEnv(settings, env, 'API');
}
