/**
 * Response caching: an identical request of the same tenant answered from an earlier job's result
 * instead of a new provider run. Pure rules here (what the key is, which requests may be cached,
 * for how long); the entries live in Postgres (@longhaul/db response-cache.ts).
 *
 * The key is a hash of the provider request as Longhaul sends it (after prompt rendering and file
 * resolution), canonical: key order does not matter, and neither do the fields that change how the
 * answer is delivered or labelled rather than what the model is asked (`metadata`, `stream`,
 * `stream_options`, `background`, `store`). It is scoped to the tenant by where it is stored.
 *
 * What is never cached: requests with tools (a tool loop has side effects), continuations
 * (`previous_response_id`, `conversation`) unless the caller allows them, and `store: false`.
 * Only a completed source is ever reused (a failed, cancelled or incomplete one is not).
 */
import { createHash } from 'node:crypto';

/** Create parameters that do not change what the model is asked. */
const NOT_IN_KEY = new Set(['metadata', 'stream', 'stream_options', 'background', 'store']);

/** A job's (or prompt version's, or tenant's) cache setting, as given. */
export interface CacheSetting {
  /** How long a completed result may answer identical requests. */
  ttlSeconds: number;
  /** Continuations (`previous_response_id`, `conversation`) may be cached too. Default false. */
  continuations?: boolean;
}

/** The longest a result may be cached: 30 days (OpenAI keeps a stored response that long). */
export const MAX_CACHE_TTL_SECONDS = 30 * 86_400;

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** The cache key of a provider request: sha256 of its canonical JSON, without the fields that do not matter. */
export function responseCacheKey(params: Record<string, unknown>): string {
  const asked = Object.fromEntries(Object.entries(params).filter(([k, v]) => !NOT_IN_KEY.has(k) && v !== undefined));
  return createHash('sha256')
    .update(JSON.stringify(canonical(asked)))
    .digest('hex');
}

export type CacheDecision = { cache: true; ttlSeconds: number } | { cache: false; reason: 'not_requested' | 'tools' | 'continuation' | 'not_stored' };

/**
 * Whether a job may be answered from (and become) a cache entry. `job` is the job's own setting
 * (`false`: never, whatever the defaults say), then the prompt version's default, then the tenant's.
 */
export function cacheDecision(
  params: Record<string, unknown>,
  settings: { job?: CacheSetting | false; prompt?: CacheSetting | null; tenant?: CacheSetting | null },
): CacheDecision {
  if (settings.job === false) return { cache: false, reason: 'not_requested' };
  const setting = settings.job ?? settings.prompt ?? settings.tenant ?? null;
  if (!setting || !(setting.ttlSeconds > 0)) return { cache: false, reason: 'not_requested' };
  if (params.store === false) return { cache: false, reason: 'not_stored' };
  if (Array.isArray(params.tools) && params.tools.length > 0) return { cache: false, reason: 'tools' };
  const continues = params.previous_response_id !== undefined || params.conversation !== undefined;
  if (continues && setting.continuations !== true) return { cache: false, reason: 'continuation' };
  return { cache: true, ttlSeconds: Math.min(setting.ttlSeconds, MAX_CACHE_TTL_SECONDS) };
}
