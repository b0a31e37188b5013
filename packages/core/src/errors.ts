/**
 * Domain errors: each has a stable `code` (what clients and logs match on), an HTTP status for
 * the API edge and an OpenAI-style `type`. Only the API's error middleware turns them into
 * responses.
 */
export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'conflict_error'
  | 'rate_limit_error'
  | 'service_unavailable_error'
  | 'server_error';

export class LonghaulError extends Error {
  readonly code: string;
  readonly status: number;
  readonly type: ErrorType;
  readonly param: string | null;
  constructor(message: string, opts: { code: string; status: number; type: ErrorType; param?: string | null; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.name = 'LonghaulError';
    this.code = opts.code;
    this.status = opts.status;
    this.type = opts.type;
    this.param = opts.param ?? null;
  }
}

export class ValidationError extends LonghaulError {
  constructor(message: string, param: string | null = null, code = 'invalid_request') {
    super(message, { code, status: 400, type: 'invalid_request_error', param });
    this.name = 'ValidationError';
  }
}

export class AuthenticationError extends LonghaulError {
  constructor(message = 'Missing or invalid API key. Send it as "Authorization: Bearer <key>".', code = 'invalid_api_key') {
    super(message, { code, status: 401, type: 'authentication_error' });
    this.name = 'AuthenticationError';
  }
}

/** An API key that is known but may not do this (a scope it lacks, a key it may not make). */
export class PermissionError extends LonghaulError {
  constructor(message: string, code: string, param: string | null = null) {
    super(message, { code, status: 403, type: 'permission_error', param });
    this.name = 'PermissionError';
  }
}

export class NotFoundError extends LonghaulError {
  constructor(message: string, param: string | null = null, code = 'not_found') {
    super(message, { code, status: 404, type: 'not_found_error', param });
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends LonghaulError {
  constructor(message: string, code: string, status = 409) {
    super(message, { code, status, type: 'conflict_error' });
    this.name = 'ConflictError';
  }
}

export class ServiceUnavailableError extends LonghaulError {
  constructor(message: string, code = 'service_unavailable', cause?: unknown) {
    super(message, { code, status: 503, type: 'service_unavailable_error', cause });
    this.name = 'ServiceUnavailableError';
  }
}

/** A request (or one part of it, named by `param`) over a size limit. */
export class PayloadTooLargeError extends LonghaulError {
  constructor(message: string, param: string | null = null, code = 'request_too_large') {
    super(message, { code, status: 413, type: 'invalid_request_error', param });
    this.name = 'PayloadTooLargeError';
  }
}

/** A tenant over its request rate: retry after `retryAfterSeconds` (sent as `Retry-After`). */
export class RateLimitedError extends LonghaulError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number, code = 'rate_limit_exceeded') {
    super(message, { code, status: 429, type: 'rate_limit_error' });
    this.name = 'RateLimitedError';
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
