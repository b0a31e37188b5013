/**
 * pino JSON logs for every Longhaul process. Secrets never reach a log line: the redaction list
 * covers auth headers, API keys and webhook/signing secrets wherever they appear in an object.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';
import { stdoutDestination } from './stdio.ts';

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
    formatters: { level: (label) => ({ level: label }) },
    serializers: { err: pino.stdSerializers.err },
  };
  return pino(options, config.destination ?? stdoutDestination({ service: config.service }));
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
