/**
 * What the API proxies to the provider (files, conversations) goes through `callProvider`, which
 * turns a provider failure into the API's error shape: the provider's own 4xx is the caller's
 * problem and is passed on with its code; anything else is a 502/503 the caller may retry.
 */
import { LonghaulError, NotFoundError, ServiceUnavailableError, ValidationError } from '@longhaul/core';
import { NO_PROVIDER_KEY, PROVIDER_KEY_MISSING, PROVIDER_KEY_UNKNOWN, ProviderError, type Provider } from '@longhaul/provider';
import type { ApiContext } from './context.ts';

export function requireProvider(ctx: ApiContext): Provider {
  if (!ctx.provider) throw new ServiceUnavailableError('No provider is configured on this API (set OPENAI_API_KEY or OPENAI_BASE_URL).', 'provider_not_configured');
  return ctx.provider;
}

export async function callProvider<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof ProviderError)) throw err;
    // Longhaul's own keys (OPENAI_API_KEYS_FILE), not the caller's request: a 503 an operator fixes.
    if (err.code === NO_PROVIDER_KEY || err.code === PROVIDER_KEY_MISSING || err.code === PROVIDER_KEY_UNKNOWN) {
      throw new LonghaulError(err.message, { code: err.code, status: 503, type: 'service_unavailable_error', cause: err });
    }
    if (err.status === 401) {
      throw new LonghaulError('The provider rejected the key Longhaul reaches this object with; an operator must replace it.', {
        code: 'provider_key_rejected',
        status: 503,
        type: 'service_unavailable_error',
        cause: err,
      });
    }
    switch (err.kind) {
      case 'not_found':
        throw new NotFoundError(err.message, null, err.code);
      case 'rejected':
        throw new ValidationError(`The provider refused the request: ${err.message}`, null, err.code);
      case 'rate_limited':
        throw new LonghaulError(`The provider is rate limiting Longhaul; retry later. (${err.message})`, {
          code: 'provider_rate_limited',
          status: 503,
          type: 'service_unavailable_error',
          cause: err,
        });
      // (A flex capacity refusal: only creates ask for flex, so here it is the provider being unavailable.)
      case 'unavailable':
      case 'transient':
        throw new LonghaulError(`The provider is unavailable: ${err.message}`, { code: 'provider_unavailable', status: 502, type: 'service_unavailable_error', cause: err });
    }
  }
}
