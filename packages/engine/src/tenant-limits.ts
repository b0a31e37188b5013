/**
 * The one resolver of a tenant's effective limits: its own (`tenants.rpm_limit` / `tpm_limit`),
 * else the deployment default; a tenant's own 0 means unlimited, as does a default of 0.
 *
 * Design note: every process resolves limits through this (the API's request limiter, the API
 * pushing a new job into the fair queue, the worker's submit turns and sweeper re-pushing one), so
 * processes given the same defaults push the same limit into the fair queue's shared limits hash.
 * A tenant's row is remembered for `cacheMs` (one policy everywhere): a limit changed in Postgres
 * reaches every process within that long, and until then a process may still push the old one.
 * Time comes from the injected clock.
 */
import { type Database, getTenantLimits } from '@longhaul/db';

/** A tenant's limits in force; 0 = unlimited. */
export interface EffectiveLimits {
  /** API requests per minute. */
  requestsPerMinute: number;
  /** Estimated provider input tokens per admission window (a minute by default). */
  tokensPerMinute: number;
  /** Response caching for the tenant's jobs that do not say otherwise (seconds; 0: off). */
  cacheTtlSeconds: number;
}

export interface TenantLimitOptions {
  /** Tokens per window for tenants without their own `tpm_limit` (TENANT_TPM_LIMIT); 0 = unlimited. Default 0. */
  defaultTokenLimit?: number;
  /** API requests per minute for tenants without their own `rpm_limit` (API_RPM_LIMIT); 0 = unlimited. Default 0. */
  defaultRequestLimit?: number;
  /** How long a tenant's limits are remembered in this process. Default 30 000 ms. */
  cacheMs?: number;
}

export interface TenantLimitResolver {
  /** The tenant's limits in force (an unknown tenant gets the defaults). */
  of(tenantId: string): Promise<EffectiveLimits>;
}

/** Remembered tenants per process; past this the cache starts afresh (bounded memory). */
const MAX_CACHED_TENANTS = 10_000;

export function createTenantLimitResolver(deps: { db: Database; clock: () => Date }, options: TenantLimitOptions = {}): TenantLimitResolver {
  const cacheMs = options.cacheMs ?? 30_000;
  const cache = new Map<string, { limits: EffectiveLimits; until: number }>();
  return {
    async of(tenantId) {
      const now = deps.clock().getTime();
      const hit = cache.get(tenantId);
      if (hit && hit.until > now) return hit.limits;
      const row = await getTenantLimits(deps.db, tenantId);
      const limits = {
        requestsPerMinute: row?.rpmLimit ?? options.defaultRequestLimit ?? 0,
        tokensPerMinute: row?.tpmLimit ?? options.defaultTokenLimit ?? 0,
        cacheTtlSeconds: row?.cacheTtlSeconds ?? 0,
      };
      if (cache.size >= MAX_CACHED_TENANTS) cache.clear();
      cache.set(tenantId, { limits, until: now + cacheMs });
      return limits;
    },
  };
}
