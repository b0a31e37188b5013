/**
 * pino JSON logs for every Longhaul process. Secrets never reach a log line: the redaction list
 * covers auth headers, API keys and webhook/signing secrets wherever they appear in an object,
 * and errors are written by `serializeError` (log-errors.ts), which keeps no query parameters,
 * statement text or Postgres details. No line grows with the request: a top-level string field,
 * a child binding or a message longer than FIELD_TEXT_LIMIT is cut, saying by how much.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';
import { capText, safeErrorMessage, serializeError } from './log-errors.ts';
import { stdoutDestination } from './stdio.ts';

export { serializeError } from './log-errors.ts';

export type { Logger } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["webhook-signature"]',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'authorization',
  'apiKey',
  'api_key',
  '*.apiKey',
  '*.api_key',
  'secret',
  '*.secret',
  'webhookSecret',
  '*.webhookSecret',
  'webhook_secret',
  '*.webhook_secret',
  'signingSecret',
  '*.signingSecret',
  'signing_secret',
  '*.signing_secret',
  'password',
  '*.password',
  'config.openaiApiKey',
  'config.bootstrapApiKey',
  'token',
  '*.token',
  'adminToken',
  '*.adminToken',
  'basicAuth',
  '*.basicAuth',
  'metricsToken',
  '*.metricsToken',
  'config.admin.token',
  'config.admin.basicAuth',
];

/** Longest top-level string field, child binding or message written; longer ones are cut. */
const FIELD_TEXT_LIMIT = 2_048;

/** Keys whose values are errors: written by `serializeError`. */
const ERROR_KEYS = ['err', 'error', 'cause'] as const;

/** Top-level strings cut to FIELD_TEXT_LIMIT and errors under any key serialized; copied only when something changes. */
function boundedFields(fields: Record<string, unknown>): Record<string, unknown> {
  let out = fields;
  for (const key of Object.keys(fields)) {
    const value = fields[key];
    let bounded = value;
    if (typeof value === 'string' && value.length > FIELD_TEXT_LIMIT) bounded = capText(value, FIELD_TEXT_LIMIT);
    else if (value instanceof Error) bounded = serializeError(value);
    if (bounded === value) continue;
    if (out === fields) out = { ...fields };
    out[key] = bounded;
  }
  return out;
}

export interface LoggerConfig {
  /** Process name, on every line as `service`. */
  service: string;
  level?: string;
  /**
   * Where lines go (tests pass a stream to read them back). Default stdout, through
   * `stdoutDestination`: a closed or unread stdout can neither block nor crash the process.
   */
  destination?: pino.DestinationStream;
}

export function createLogger(config: LoggerConfig): Logger {
  const options: LoggerOptions = {
    level: config.level ?? 'info',
    base: { service: config.service },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }), log: boundedFields },
    serializers: Object.fromEntries(ERROR_KEYS.map((key) => [key, serializeError])),
    hooks: {
      // pino uses an error's own message as the line's message when none is given; a failed
      // query's message is its statement and parameters, so the safe message is given instead.
      logMethod(args, method) {
        const [first, second] = args as unknown[];
        if (typeof first === 'string') return method.apply(this, [capText(first, FIELD_TEXT_LIMIT), ...args.slice(1)] as Parameters<typeof method>);
        if (typeof second === 'string') return method.apply(this, [first, capText(second, FIELD_TEXT_LIMIT), ...args.slice(2)] as Parameters<typeof method>);
        if (second === undefined && typeof first === 'object' && first !== null) {
          const err = first instanceof Error ? first : (first as { err?: unknown }).err;
          if (err instanceof Error && (first as { msg?: unknown }).msg === undefined) return method.apply(this, [first, safeErrorMessage(err)] as Parameters<typeof method>);
        }
        return method.apply(this, args);
      },
    },
  };
  const logger = pino(options, config.destination ?? stdoutDestination({ service: config.service }));
  // pino applies no formatter to a child's bindings (a header value, say), so `child` is wrapped;
  // every descendant finds this `child` first on its prototype chain.
  const child = logger.child;
  logger.child = function boundedChild(this: Logger, bindings, childOptions) {
    return child.call(this, boundedFields(bindings), childOptions);
  } as typeof logger.child;
  return logger;
}

/** The fields every log line about a job carries. */
export function jobLogFields(job: { id: string; tenantId: string; responseId?: string | null }): Record<string, string | null> {
  return { job_id: job.id, tenant_id: job.tenantId, response_id: job.responseId ?? null };
}

/**
 * Wrap a logging callback so a burst (a Redis reconnect loop, say) produces at most one line per
 * `intervalMs`, with the number of suppressed calls.
 */
export function throttled<A extends unknown[]>(intervalMs: number, fn: (suppressed: number, ...args: A) => void): (...args: A) => void {
  let last = 0;
  let suppressed = 0;
  return (...args: A) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed += 1;
      return;
    }
    last = now;
    fn(suppressed, ...args);
    suppressed = 0;
  };
}
