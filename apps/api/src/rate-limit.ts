/**
 * Per-tenant API rate limit: requests per minute, counted in Redis so every API instance shares
 * one count (rate-limiter-flexible: one atomic script per request, a fixed one-minute window per
 * tenant). Over the limit: 429 `rate_limit_exceeded` with `Retry-After`. Every counted response
 * carries OpenAI's `x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests` and
 * `x-ratelimit-reset-requests` headers.
 *
 * Redis unreachable or slow: the request is let through (fail open) with a throttled warning.
 * Jobs live in Postgres; refusing every read of them because the counter is down would turn a
 * Redis outage into an API outage, and the provider-facing protection (the fair queue's token
 * budgets) does not depend on this counter.
 *
 * A tenant's limit (`tenants.rpm_limit`, null = the deployment default) comes from the process's
 * one tenant-limit resolver (@longhaul/engine, shared with admission: one cache policy).
 */
import type { RequestHandler } from 'express';
import type { RedisClient } from '@longhaul/queue';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { RateLimitedError } from '@longhaul/core';
import type { TenantLimitResolver } from '@longhaul/engine';
import { type Logger, throttled } from '@longhaul/runtime';

export interface RateLimitConfig {
  /** API requests per minute for tenants without their own `rpm_limit` (API_RPM_LIMIT); 0 = unlimited. Default 0. */
  defaultRequestsPerMinute?: number;
  /**
   * @deprecated Use `ApiConfig.admission.defaultTokenLimit`, the setting of the same name as the
   * worker's (both read TENANT_TPM_LIMIT). Still honoured when that is unset.
   */
  defaultTokensPerMinute?: number;
  /** @deprecated Use `ApiConfig.admission.limitCacheMs` (one cache policy for every tenant limit). Still honoured when that is unset. */
  cacheTtlMs?: number;
  /** Give up on Redis after this long and let the request through. Default 500 ms. */
  redisTimeoutMs?: number;
}

export interface RateLimitDeps {
  /** The process's tenant-limit resolver (`admission.limits`). */
  limits: TenantLimitResolver;
  redis: RedisClient;
  prefix: string;
  logger: Logger;
  config?: RateLimitConfig;
}

const WINDOW_SECONDS = 60;

function resetIn(ms: number): string {
  return `${Math.max(0, Math.ceil(ms / 1000))}s`;
}

export function rateLimitRequests(deps: RateLimitDeps): RequestHandler {
  const config = deps.config ?? {};
  const redisTimeoutMs = config.redisTimeoutMs ?? 500;
  // One limiter per distinct limit, sharing one key per tenant: a changed limit keeps the count.
  const limiters = new Map<number, RateLimiterRedis>();
  const redisWarning = throttled(10_000, (suppressed, err: unknown) =>
    deps.logger.warn({ err, suppressed, code: 'rate_limit_unavailable' }, 'rate limit counter unavailable: letting requests through'),
  );

  function limiterFor(points: number): RateLimiterRedis {
    let limiter = limiters.get(points);
    if (!limiter) {
      limiter = new RateLimiterRedis({ storeClient: deps.redis, keyPrefix: `${deps.prefix}:rpm`, points, duration: WINDOW_SECONDS, rejectIfRedisNotReady: true });
      limiters.set(points, limiter);
    }
    return limiter;
  }

  async function consume(points: number, tenantId: string): Promise<RateLimiterRes> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer the rate limit check within ${redisTimeoutMs} ms`)), redisTimeoutMs);
    });
    try {
      return await Promise.race([limiterFor(points).consume(tenantId, 1), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  return async (req, res, next) => {
    try {
      const tenantId = req.tenantId!;
      const rpm = (await deps.limits.of(tenantId)).requestsPerMinute;
      if (rpm <= 0) return next();
      res.setHeader('x-ratelimit-limit-requests', String(rpm));
      let counted: RateLimiterRes;
      try {
        counted = await consume(rpm, tenantId);
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) {
          res.removeHeader('x-ratelimit-limit-requests');
          redisWarning(err);
          return next();
        }
        res.setHeader('x-ratelimit-remaining-requests', '0');
        res.setHeader('x-ratelimit-reset-requests', resetIn(err.msBeforeNext));
        req.log?.warn({ code: 'rate_limit_exceeded', limit: rpm }, 'tenant over its request rate limit');
        return next(
          new RateLimitedError(`Rate limit reached: ${rpm} requests per minute. Retry after ${Math.max(1, Math.ceil(err.msBeforeNext / 1000))} s.`, err.msBeforeNext / 1000),
        );
      }
      res.setHeader('x-ratelimit-remaining-requests', String(counted.remainingPoints));
      res.setHeader('x-ratelimit-reset-requests', resetIn(counted.msBeforeNext));
      next();
    } catch (err) {
      next(err);
    }
  };
}
