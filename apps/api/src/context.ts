/**
 * What the API's routers are built from: its configuration and dependencies. Routers import these
 * types from here (not from server.ts), so the server factory is the only module that imports routers.
 */
import type { AddressPolicy } from '@longhaul/callbacks';
import type { Database } from '@longhaul/db';
import type { Admission, AdmissionConfig, JobEffects } from '@longhaul/engine';
import type { Metrics } from '@longhaul/metrics';
import type { Provider } from '@longhaul/provider';
import type { Queues } from '@longhaul/queue';
import type { Logger } from '@longhaul/runtime';
import type { AdminConfig } from './admin/auth.ts';
import type { Following } from './job-follow.ts';
import type { RateLimitConfig } from './rate-limit.ts';
import type { StreamHub } from './stream-hub.ts';

export interface ApiConfig {
  /** Largest accepted request body (bytes or e.g. "1mb"). */
  bodyLimit: string | number;
  /** A job not finished this long after it was accepted expires. */
  jobDeadlineMs: number;
  /** How long an Idempotency-Key is remembered. */
  idempotencyTtlMs: number;
  /** Secrets OpenAI signs its webhooks with (several during a rotation). Empty: receiver off. */
  openaiWebhookSecrets: string[];
  /** Which addresses callback URLs may point at (SSRF guard), checked when they are registered. */
  callbackPolicy: AddressPolicy;
  /** Admin UI (/admin) credentials and mode. Default: not configured (the UI answers 503). */
  admin?: AdminConfig;
  /**
   * Which proxies in front of the API are trusted to say who the client is (X-Forwarded-For) and
   * how it connected (X-Forwarded-Proto, X-Forwarded-Host): Express's `trust proxy` (`true`: any;
   * a number: that many hops; addresses, CIDR ranges or `loopback`/`linklocal`/`uniquelocal`).
   * The admin UI's credential throttle counts per client address. Default false: the socket's
   * peer is the client, and forwarding headers are ignored.
   */
  trustProxy?: TrustProxySetting;
  /**
   * `GET /metrics` on the tenant-facing port is served only when this is set, and then only with
   * `Authorization: Bearer <metricsToken>` (401 otherwise); unset, it is a 404. Scrapers use the
   * metrics listener (METRICS_HOST:API_METRICS_PORT), which takes the same token.
   */
  metricsToken?: string;
  /** File input limits and automatic upload of large inline files (see job-preparation/files.ts). */
  files?: Partial<FileLimits>;
  /** Per-tenant API request limit (requests per minute). Default: unlimited. */
  rateLimits?: RateLimitConfig;
  /** Per-tenant admission toward the provider (TENANT_TPM_LIMIT, ...): the same settings as the worker's `admission`. Default: unlimited. */
  admission?: AdmissionConfig;
  /**
   * How long each API process remembers a tenant API key it has read (API_KEY_CACHE_TTL_MS): a key
   * revoked through another process (or the CLI) keeps working here for at most this long.
   * Default 2 000 ms; 0: every request reads the key from Postgres.
   */
  apiKeyCacheTtlMs?: number;
  /** How often a job stream checks Postgres for a final state its event log never carried. Default 5 000 ms. */
  streamFinalCheckMs?: number;
}

export type TrustProxySetting = boolean | number | string[];

export interface ApiDeps {
  /** Live job event streams (SSE); absent: /v1/jobs/{id}/stream answers 404. */
  streamHub?: StreamHub;
  db: Database;
  queues: Queues;
  /** The provider, for what the API proxies (files, conversations). Absent: those routes answer 503. */
  provider?: Provider;
  logger: Logger;
  clock: () => Date;
  config: ApiConfig;
  /** Prometheus metrics (`createMetrics(registry)`). Default: `disabledMetrics()` (no /metrics). */
  metrics?: Metrics;
}

/** What routers get: the dependencies with defaults filled in, and what `createServer` builds from them once (engine.ts). */
export type ApiContext = ApiDeps & {
  metrics: Metrics;
  admission: Admission;
  /** What follows a job's state change (metrics, the lifecycle stream event, the next work item). */
  jobEffects: JobEffects;
  /** Following jobs' event logs live (SSE, synchronous waits); absent without a stream hub. */
  following?: Following;
};

export interface FileLimits {
  /** A file must be smaller than this. Default 10 MiB (the guide: "less than 10 MB"). */
  maxFileBytes: number;
  /** All files of one request together at most this. Default 32 MiB. */
  maxTotalBytes: number;
  /** Inline files of at least this many bytes are uploaded and referenced by id; 0: never. Default 1 MiB. */
  autoUploadBytes: number;
}
