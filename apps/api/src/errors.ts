/**
 * The API's one error shape, `{"error": {"type", "code", "message", "param", "request_id"}}`, and
 * the only place errors become HTTP responses.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { z } from 'zod';
import { LonghaulError, NotFoundError, RateLimitedError, ServiceUnavailableError, ValidationError } from '@longhaul/core';

/** `['input', 0, 'content']` → `input[0].content`, as OpenAI names params. */
export function pathToParam(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/** The value at `path` in `root`, or undefined. */
function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current = root;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/**
 * The first zod issue as a ValidationError naming the offending field. A value of the wrong type
 * is told from a missing one by looking at `input` (what was parsed) when given: zod 4 does not put
 * the offending value in its issues.
 */
export function fromZodError(err: z.ZodError, prefix: string[] = [], input?: unknown): ValidationError {
  const issue = err.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const param = pathToParam([...prefix, ...issue.path, issue.keys[0]!]);
    return new ValidationError(`Unknown parameter: '${param}'.`, param, 'unknown_parameter');
  }
  const param = pathToParam([...prefix, ...issue.path]) || null;
  const where = param ? `Invalid '${param}': ` : '';
  const missing = issue.code === 'invalid_type' && (input === undefined ? / received undefined$/.test(issue.message) : valueAt(input, issue.path) === undefined);
  const code = missing ? 'missing_required_parameter' : 'invalid_value';
  const message = missing ? `Missing required parameter: '${param}'.` : `${where}${issue.message}.`;
  return new ValidationError(message, param, code);
}

/** Postgres unreachable / shutting down: the caller should retry later, not see a 500. */
function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: string; message?: string; cause?: unknown } | undefined;
  if (!e) return false;
  const code = e.code ?? '';
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '53300'].includes(code) || code.startsWith('08')) return true;
  if (/Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection refused/i.test(e.message ?? '')) return true;
  return e.cause !== undefined && e.cause !== err && isDatabaseUnavailable(e.cause);
}

/**
 * Postgres's refusals of a value (SQLSTATE) that a request carried past the checks in
 * request-input.ts, and what the caller is told. They are the caller's 400, never a 500: class 22
 * codes name a value that cannot be stored as given, 54001 a value too deeply nested to process.
 * Postgres's own message is not passed on (it can quote the value).
 */
const POSTGRES_INPUT_ERRORS: Record<string, { code: string; message: string }> = {
  '22021': { code: 'invalid_characters', message: 'The request contains characters that cannot be stored (such as NUL, \\u0000).' },
  '22P05': { code: 'invalid_characters', message: 'The request contains characters that cannot be stored (such as NUL, \\u0000).' },
  '54001': { code: 'request_too_complex', message: 'The request is too deeply nested or too complex to store.' },
  '22P02': { code: 'invalid_value', message: 'The request contains a value that cannot be stored as given.' },
  '22001': { code: 'invalid_value', message: 'The request contains a value that is too long to store.' },
  '22003': { code: 'invalid_value', message: 'The request contains a number out of the range that can be stored.' },
  '22007': { code: 'invalid_value', message: 'The request contains a date or time that cannot be stored.' },
  '22008': { code: 'invalid_value', message: 'The request contains a date or time out of the range that can be stored.' },
};

/**
 * The refusal, when `err` is (or wraps: drizzle's DrizzleQueryError has it as `cause`) a Postgres
 * error (pg's DatabaseError: a SQLSTATE `code` and a `severity`) listed in POSTGRES_INPUT_ERRORS.
 */
function postgresInputError(err: unknown): { sqlstate: string; code: string; message: string } | null {
  let current = err as { code?: unknown; severity?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    if (typeof current.code === 'string' && typeof current.severity === 'string') {
      const refused = Object.hasOwn(POSTGRES_INPUT_ERRORS, current.code) ? POSTGRES_INPUT_ERRORS[current.code] : undefined;
      return refused ? { sqlstate: current.code, ...refused } : null;
    }
    current = current.cause as typeof current;
  }
  return null;
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`Unknown route: ${req.method} ${req.path}`));
};

export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  let error: LonghaulError;
  const refusedValue = postgresInputError(err);
  const status = (err as { status?: number; type?: string }).status;
  const bodyErrorType = (err as { type?: string }).type;
  if (err instanceof LonghaulError) {
    error = err;
  } else if (err instanceof z.ZodError) {
    error = fromZodError(err);
  } else if (bodyErrorType === 'entity.too.large' || status === 413) {
    error = new LonghaulError('Request body is too large.', { code: 'request_too_large', status: 413, type: 'invalid_request_error' });
  } else if (bodyErrorType === 'entity.parse.failed') {
    error = new ValidationError('Request body is not valid JSON.', null, 'invalid_json');
  } else if (bodyErrorType === 'encoding.unsupported' || bodyErrorType === 'charset.unsupported') {
    error = new LonghaulError('Unsupported content encoding or charset.', { code: 'unsupported_encoding', status: 415, type: 'invalid_request_error' });
  } else if (typeof status === 'number' && status >= 400 && status < 500) {
    error = new LonghaulError((err as Error).message || 'Bad request.', { code: 'invalid_request', status, type: 'invalid_request_error' });
  } else if (refusedValue) {
    error = new ValidationError(refusedValue.message, null, refusedValue.code);
    // The error serializer keeps the SQLSTATE, routine, table and column, never the values.
    req.log?.warn({ err, code: refusedValue.code, sqlstate: refusedValue.sqlstate }, 'database refused a value of the request');
  } else if (isDatabaseUnavailable(err)) {
    error = new ServiceUnavailableError('The database is unavailable; retry later.', 'database_unavailable', err);
  } else {
    req.log?.error({ err }, 'unhandled error');
    error = new LonghaulError('Internal server error.', { code: 'internal_error', status: 500, type: 'server_error' });
  }
  if (error.status >= 500) req.log?.warn({ err, code: error.code }, error.message);
  if (error.status === 503) res.setHeader('Retry-After', '5');
  if (error instanceof RateLimitedError) res.setHeader('Retry-After', String(Math.max(1, Math.ceil(error.retryAfterSeconds))));
  res.status(error.status).json({
    error: { type: error.type, code: error.code, message: error.message, param: error.param, request_id: req.id ?? null },
  });
};
