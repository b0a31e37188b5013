/**
 * What the API builds once per process from its deps (`createServer`), as the worker's
 * `createWorker` does (@longhaul/engine): per-tenant admission, whose tenant-limit resolver the
 * request limiter shares, and `jobEffects`, what follows a job's state change (a new job's
 * fair-queue push and submit turn, a cancel's work item, lifecycle stream events, metrics). The
 * API is a producer: a dispatch Redis does not take is logged and left to the sweeper.
 */
import { type AdmissionConfig, createAdmission, createJobEffects } from '@longhaul/engine';
import { disabledMetrics } from '@longhaul/metrics';
import type { ApiConfig, ApiContext, ApiDeps } from './context.ts';
import { createFollowing } from './job-follow.ts';

/** The deployment's admission settings, honouring the deprecated `rateLimits` aliases when `admission` leaves them unset. */
function admissionConfigOf(config: ApiConfig): AdmissionConfig {
  const { admission = {}, rateLimits = {} } = config;
  return {
    ...admission,
    defaultTokenLimit: admission.defaultTokenLimit ?? rateLimits.defaultTokensPerMinute,
    limitCacheMs: admission.limitCacheMs ?? rateLimits.cacheTtlMs,
  };
}

/** The routers' context: the deps with defaults filled in, and the engine built from them. */
export function createApiContext(deps: ApiDeps): ApiContext {
  const metrics = deps.metrics ?? disabledMetrics();
  const admission = createAdmission({
    db: deps.db,
    queues: deps.queues,
    clock: deps.clock,
    config: admissionConfigOf(deps.config),
    defaultRequestLimit: deps.config.rateLimits?.defaultRequestsPerMinute,
  });
  const jobEffects = createJobEffects({
    db: deps.db,
    queues: deps.queues,
    jobStreams: deps.streamHub?.jobStreams,
    metrics,
    admission,
    logger: deps.logger,
    config: { onDispatchFailure: 'defer' },
  });
  const following = deps.streamHub ? createFollowing({ ...deps, streamHub: deps.streamHub }) : undefined;
  return { ...deps, metrics, admission, jobEffects, following };
}
