/**
 * What the API proxies to the provider (files, conversations) goes through `callProvider`, which
 * turns a provider failure into the API's error shape: the provider's own 4xx is the caller's
 * problem and is passed on with its code; anything else is a 502/503 the caller may retry.
 */
import { LonghaulError, NotFoundError, ServiceUnavailableError, ValidationError } from '@longhaul/core';
import { ProviderError, type Provider } from '@longhaul/provider';
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
      case 'transient':
        throw new LonghaulError(`The provider is unavailable: ${err.message}`, { code: 'provider_unavailable', status: 502, type: 'service_unavailable_error', cause: err });
    }
  }
}
