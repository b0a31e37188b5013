/**
 * Errors that leave the simulator in OpenAI's shape `{ error: { message, type, param, code } }`.
 * Only the Express error middleware (routes.ts) turns them into HTTP responses.
 */
export type ApiErrorType = 'invalid_request_error' | 'rate_limit_error' | 'server_error' | 'authentication_error';

export class ApiError extends Error {
  readonly status: number;
  readonly type: ApiErrorType;
  readonly param: string | null;
  readonly code: string | null;
  readonly headers: Record<string, string>;

  constructor(init: {
    status: number;
    type: ApiErrorType;
    message: string;
    param?: string | null;
    code?: string | null;
    headers?: Record<string, string>;
  }) {
    super(init.message);
    this.name = 'ApiError';
    this.status = init.status;
    this.type = init.type;
    this.param = init.param ?? null;
    this.code = init.code ?? null;
    this.headers = init.headers ?? {};
  }

  toBody(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function invalidRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError({ status: 400, type: 'invalid_request_error', message, param, code });
}

export function responseNotFound(id: string): ApiError {
  return new ApiError({
    status: 404,
    type: 'invalid_request_error',
    message: `Response with id '${id}' not found.`,
    param: null,
    code: null,
  });
}

export function responseNotStreamable(): ApiError {
  return invalidRequest(
    'This response cannot be streamed: you can only start a new stream from a background response if you created it with stream=true.',
    'stream',
    'response_not_streamable',
  );
}

/** OpenAI refuses to stream a response again once it is older than 5 minutes. */
export function streamExpired(windowMs: number): ApiError {
  return invalidRequest(`This response can no longer be streamed because it is more than ${describeDuration(windowMs)} old.`, 'stream', 'stream_expired');
}

function describeDuration(ms: number): string {
  const plural = (n: number, unit: string): string => `${n} ${unit}${n === 1 ? '' : 's'}`;
  if (ms >= 60_000 && ms % 60_000 === 0) return plural(ms / 60_000, 'minute');
  if (ms >= 1000 && ms % 1000 === 0) return plural(ms / 1000, 'second');
  return plural(ms, 'millisecond');
}

export function missingApiKey(): ApiError {
  return new ApiError({
    status: 401,
    type: 'invalid_request_error',
    message: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    code: 'invalid_api_key',
  });
}

export function rateLimited(retryAfterS: number): ApiError {
  return new ApiError({
    status: 429,
    type: 'rate_limit_error',
    message: 'Rate limit reached for requests (simulated). Please try again later.',
    code: 'rate_limit_exceeded',
    headers: { 'retry-after': String(retryAfterS) },
  });
}

export function injectedServerError(): ApiError {
  return new ApiError({
    status: 500,
    type: 'server_error',
    message: 'The server had an error while processing your request. Sorry about that! (simulated)',
    code: 'server_error',
  });
}

/**
 * The 429 of a `service_tier: "flex"` request when flex capacity is short. OpenAI's flex guide
 * calls it "429 Resource Unavailable" (not billed) without documenting the body; the code
 * `resource_unavailable` is what clients written against it check for.
 */
export function flexResourceUnavailable(): ApiError {
  return new ApiError({
    status: 429,
    type: 'rate_limit_error',
    message: 'Resource Unavailable: flex processing does not have enough capacity for this request right now. Please retry later or use another service tier. (simulated)',
    code: 'resource_unavailable',
  });
}
