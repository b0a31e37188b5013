/**
 * The client's errors. Every failure the API answers arrives in one shape,
 * `{"error": {"type", "code", "message", "param", "request_id"}}`; `apiErrorFrom` turns it into one
 * `LonghaulError` subclass per HTTP status class, so callers can `instanceof` on the concept and
 * match on the stable `code`. Failures that never reached an answer (the network, a timeout, a
 * forged callback) have their own subclasses with a code of the client's own.
 */

export interface ErrorFields {
  /** The HTTP status the API answered (undefined when no answer arrived). */
  status?: number;
  /** The API's stable error code (`invalid_api_key`, `job_already_finished`, …), or the client's own. */
  code: string;
  /** The API's error type (`invalid_request_error`, `not_found_error`, …). */
  type?: string | null;
  /** The request field at fault, as the API names it (`input[0].content`), or null. */
  param?: string | null;
  /** The API's request id (`request_id` in the body, or the `x-request-id` header). */
  requestId?: string | null;
  cause?: unknown;
}

export class LonghaulError extends Error {
  readonly status: number | undefined;
  readonly code: string;
  readonly type: string | null;
  readonly param: string | null;
  readonly requestId: string | null;

  constructor(message: string, fields: ErrorFields) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = 'LonghaulError';
    this.status = fields.status;
    this.code = fields.code;
    this.type = fields.type ?? null;
    this.param = fields.param ?? null;
    this.requestId = fields.requestId ?? null;
  }
}

/** 400 and 413: the request itself is wrong; `param` names the field. */
export class BadRequestError extends LonghaulError {
  override readonly name = 'BadRequestError';
}
/** 401: missing, unknown, revoked or expired API key. */
export class AuthenticationError extends LonghaulError {
  override readonly name = 'AuthenticationError';
}
/** 403: the key lacks the scope the route needs. */
export class PermissionDeniedError extends LonghaulError {
  override readonly name = 'PermissionDeniedError';
}
/** 404: no such object, or another tenant's. */
export class NotFoundError extends LonghaulError {
  override readonly name = 'NotFoundError';
}
/** 409 and 422: the object's state (or an idempotency key) forbids the request. */
export class ConflictError extends LonghaulError {
  override readonly name = 'ConflictError';
}
/** 429: over the tenant's rate; `retryAfterSeconds` from `Retry-After`. */
export class RateLimitError extends LonghaulError {
  override readonly name = 'RateLimitError';
  readonly retryAfterSeconds: number | null;
  constructor(message: string, fields: ErrorFields & { retryAfterSeconds: number | null }) {
    super(message, fields);
    this.retryAfterSeconds = fields.retryAfterSeconds;
  }
}
/** 5xx: the server failed or is unavailable (`database_unavailable`, …). */
export class InternalServerError extends LonghaulError {
  override readonly name = 'InternalServerError';
}
/** No answer: the connection failed (`connection_error`). */
export class ConnectionError extends LonghaulError {
  override readonly name = 'ConnectionError';
}
/** `jobs.wait` ran out of time before the job finished (`wait_timeout`). */
export class WaitTimeoutError extends LonghaulError {
  override readonly name = 'WaitTimeoutError';
}
/** `callbacks.verify` refused a callback: forged, tampered with, or stale (`invalid_signature`). */
export class CallbackVerificationError extends LonghaulError {
  override readonly name = 'CallbackVerificationError';
}

interface ErrorBody {
  error?: { type?: unknown; code?: unknown; message?: unknown; param?: unknown; request_id?: unknown };
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The typed error for an API answer that is not a success; `body` is its parsed JSON (or text). */
export function apiErrorFrom(response: Response, body: unknown): LonghaulError {
  const status = response.status;
  const e = typeof body === 'object' && body !== null ? (body as ErrorBody).error : undefined;
  const fields: ErrorFields = {
    status,
    code: str(e?.code) ?? `http_${status}`,
    type: str(e?.type),
    param: str(e?.param),
    requestId: str(e?.request_id) ?? response.headers.get('x-request-id'),
  };
  const message = str(e?.message) ?? (typeof body === 'string' && body ? body.slice(0, 200) : `HTTP ${status}`);
  if (status === 400 || status === 413) return new BadRequestError(message, fields);
  if (status === 401) return new AuthenticationError(message, fields);
  if (status === 403) return new PermissionDeniedError(message, fields);
  if (status === 404) return new NotFoundError(message, fields);
  if (status === 409 || status === 422) return new ConflictError(message, fields);
  if (status === 429) {
    const retryAfter = Number(response.headers.get('retry-after'));
    return new RateLimitError(message, { ...fields, retryAfterSeconds: Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : null });
  }
  if (status >= 500) return new InternalServerError(message, fields);
  return new LonghaulError(message, fields);
}

/** An AbortSignal's abort is passed through as it is; anything else thrown by fetch is a ConnectionError. */
export function connectionErrorFrom(err: unknown): unknown {
  if (err instanceof LonghaulError || (err instanceof Error && err.name === 'AbortError')) return err;
  if (typeof DOMException !== 'undefined' && err instanceof DOMException && err.name === 'TimeoutError') return err;
  return new ConnectionError(err instanceof Error ? err.message : String(err), { code: 'connection_error', cause: err });
}
