/**
 * What the API builds once per process from its deps (`createServer`), the same as the worker's
 * `createWorker` does: per-tenant admission (@longhaul/engine), whose tenant-limit resolver the
 * request limiter shares.
 */
import { type Admission, type AdmissionConfig, createAdmission } from '@longhaul/engine';
import type { ApiConfig, ApiDeps } from './context.ts';

export interface ApiEngine {
  admission: Admission;
}

/** The deployment's admission settings, honouring the deprecated `rateLimits` aliases when `admission` leaves them unset. */
export function admissionConfigOf(config: ApiConfig): AdmissionConfig {
  const { admission = {}, rateLimits = {} } = config;
  return {
    ...admission,
    defaultTokenLimit: admission.defaultTokenLimit ?? rateLimits.defaultTokensPerMinute,
    limitCacheMs: admission.limitCacheMs ?? rateLimits.cacheTtlMs,
  };
}

export function createApiEngine(deps: ApiDeps): ApiEngine {
  const admission = createAdmission({
    db: deps.db,
    queues: deps.queues,
    clock: deps.clock,
    config: admissionConfigOf(deps.config),
    defaultRequestLimit: deps.config.rateLimits?.defaultRequestsPerMinute,
  });
  return { admission };
}
