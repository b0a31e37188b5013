/**
 * Per-tenant admission to the provider, owned here for every process: the fair queue
 * (@longhaul/queue fair-queue.ts: per-tenant FIFO lists, round-robin, token buckets in Redis) and
 * the tenant limit each job is pushed with (the one resolver, tenant-limits.ts).
 *
 * Design note: the API (a new job), the worker's submit turns (re-admitting a turn's own job whose
 * push was lost) and the sweeper (re-pushing lost pending jobs) all push through `admit`, and each
 * push sets the tenant's limit in the fair queue's shared limits hash. With one resolver and one
 * setting (`defaultTokenLimit`, TENANT_TPM_LIMIT in both apps) they all push the same limit, so
 * no process undoes another's. Construct one per process (`createServer`, `createWorker`): the
 * limit cache is shared by everything in it. Postgres stays the truth: whatever Redis loses is
 * pushed again by the sweeper from the pending jobs.
 */
import type { Database, Job } from '@longhaul/db';
import { type AdmissionOrder, type FairQueue, type Queues, createFairQueue } from '@longhaul/queue';
import { type TenantLimitResolver, createTenantLimitResolver } from './tenant-limits.ts';

/** One deployment's admission settings: the same type, and the same values, in the API and the worker. */
export interface AdmissionConfig {
  /** Tokens per window for tenants without their own `tpm_limit` (TENANT_TPM_LIMIT); 0 = unlimited. Default 0. */
  defaultTokenLimit?: number;
  /** The window a token limit is counted over (the bucket refills fully in this long; TENANT_TPM_WINDOW_MS). Default 60 000 ms. */
  windowMs?: number;
  /** `fair` (round-robin over tenants, default) or `fifo` (oldest job first: fairness off; ADMISSION_ORDER). */
  order?: AdmissionOrder;
  /** How long a process remembers a tenant's limits: a changed limit applies within this long. Default 30 000 ms. */
  limitCacheMs?: number;
}

export interface AdmissionDeps {
  db: Database;
  queues: Pick<Queues, 'connection' | 'prefix'>;
  clock: () => Date;
  config?: AdmissionConfig;
  /** API requests per minute for tenants without their own `rpm_limit` (API_RPM_LIMIT; only the API counts requests). Default 0 = unlimited. */
  defaultRequestLimit?: number;
}

export interface Admission {
  fairQueue: FairQueue;
  /** Every tenant's limits in force (the API's request limiter reads them here too). */
  limits: TenantLimitResolver;
  /** Push a pending job into the fair queue with its tenant's token limit; false when it is already there (or being submitted). */
  admit(job: Pick<Job, 'id' | 'tenantId' | 'estimatedInputTokens' | 'evalId'>): Promise<boolean>;
}

export function createAdmission(deps: AdmissionDeps): Admission {
  const config = deps.config ?? {};
  const fairQueue = createFairQueue(deps.queues.connection, { prefix: deps.queues.prefix, windowMs: config.windowMs, order: config.order });
  const limits = createTenantLimitResolver(deps, { defaultTokenLimit: config.defaultTokenLimit, defaultRequestLimit: deps.defaultRequestLimit, cacheMs: config.limitCacheMs });
  return {
    fairQueue,
    limits,
    async admit(job) {
      const { tokensPerMinute } = await limits.of(job.tenantId);
      return fairQueue.push({
        jobId: job.id,
        tenantId: job.tenantId,
        tokens: job.estimatedInputTokens ?? 0,
        tokenLimit: tokensPerMinute,
        // Evaluation jobs wait for production traffic (fair-queue.ts, lanes).
        lane: job.evalId ? 'low' : 'normal',
      });
    },
  };
}
