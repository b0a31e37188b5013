/**
 * Provider failures, classified by what the caller should do about them:
 * - `rate_limited`: wait (at least `retryAfterMs`) and retry;
 * - `transient`: 5xx, 408/409, timeouts, connection errors: retry with backoff;
 * - `rejected`: any other 4xx: retrying will not help; the job fails with the provider's error;
 * - `not_found`: the response does not exist (404);
 * - `unavailable`: a `service_tier: "flex"` request refused for want of flex capacity (429
 *   `resource_unavailable`, "Resource Unavailable"). Not a rate limit: it says nothing about the
 *   tenant's or the key's budget, is not billed, and the same request may run at once at another
 *   tier; the submit processor retries it on its own flex window (FLEX_RETRY_WINDOW_SECONDS).
 */
import OpenAI from 'openai';
import { parseRetryAfterMs } from '@longhaul/core';

export type ProviderErrorKind = 'rate_limited' | 'transient' | 'rejected' | 'not_found' | 'unavailable';

export class ProviderError extends Error {
  readonly kind: ProviderErrorKind;
  readonly status: number | null;
  /** The provider's error code (e.g. `rate_limit_exceeded`, `invalid_prompt`) or ours. */
  readonly code: string;
  readonly retryAfterMs: number | undefined;
  readonly requestId: string | null;
  constructor(message: string, opts: { kind: ProviderErrorKind; status: number | null; code: string; retryAfterMs?: number; requestId?: string | null; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.name = 'ProviderError';
    this.kind = opts.kind;
    this.status = opts.status;
    this.code = opts.code;
    this.retryAfterMs = opts.retryAfterMs;
    this.requestId = opts.requestId ?? null;
  }
}

function header(headers: Headers | undefined, name: string): string | null {
  return headers?.get?.(name) ?? null;
}

/**
 * A 429 that is flex capacity running short rather than a rate limit. OpenAI's flex guide names it
 * "429 Resource Unavailable" without documenting the body, so the code `resource_unavailable`
 * and the message's words are both taken as the sign.
 */
function isResourceUnavailable(code: string | null | undefined, message: string): boolean {
  return code === 'resource_unavailable' || /resource unavailable/i.test(message);
}

/** Map anything the SDK (or the network) threw into a ProviderError. */
export function toProviderError(err: unknown, now: Date): ProviderError {
  if (err instanceof ProviderError) return err;
  if (err instanceof OpenAI.APIConnectionError) {
    const timeout = err instanceof OpenAI.APIConnectionTimeoutError;
    return new ProviderError(err.message, { kind: 'transient', status: null, code: timeout ? 'provider_timeout' : 'provider_unreachable', cause: err });
  }
  if (err instanceof OpenAI.APIError) {
    const status = err.status ?? null;
    const requestId = err.requestID ?? null;
    const code = err.code ?? (status ? `http_${status}` : 'provider_error');
    const message = err.message;
    if (status === 429) {
      if (isResourceUnavailable(err.code, message)) return new ProviderError(message, { kind: 'unavailable', status, code: 'resource_unavailable', requestId, cause: err });
      const retryAfterMs = parseRetryAfterMs(
        header(err.headers, 'retry-after-ms') ? String(Number(header(err.headers, 'retry-after-ms')) / 1000) : header(err.headers, 'retry-after'),
        now,
      );
      return new ProviderError(message, { kind: 'rate_limited', status, code, retryAfterMs, requestId, cause: err });
    }
    if (status === 404) return new ProviderError(message, { kind: 'not_found', status, code, requestId, cause: err });
    if (status === undefined || status === null || status >= 500 || status === 408 || status === 409) {
      return new ProviderError(message, { kind: 'transient', status, code, requestId, cause: err });
    }
    return new ProviderError(message, { kind: 'rejected', status, code, requestId, cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ProviderError(message, { kind: 'transient', status: null, code: 'provider_error', cause: err });
}
