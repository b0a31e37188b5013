/**
 * One outgoing callback attempt: POST with a hard timeout, SSRF-checked at parse and connect
 * time, no redirects followed (a 3xx is a failure, reported by its status: its Location goes to
 * the operator's log as a host only), and at most `maxResponseBytes` of the answer read. Never
 * throws: every outcome is a result the delivery log can record.
 */
import http from 'node:http';
import https from 'node:https';
import { parseRetryAfterMs } from '@longhaul/core';
import { SpanKind, SpanStatusCode, withSpan } from '@longhaul/telemetry';
import { type AddressPolicy, SsrfBlockedError, checkCallbackUrl, guardedLookup } from './ssrf.ts';

export type AttemptOutcome = 'success' | 'failure' | 'gone' | 'timeout' | 'blocked' | 'network_error' | 'redirect';

export interface AttemptResult {
  outcome: AttemptOutcome;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  /** From `Retry-After` on a 429 or 503. */
  retryAfterMs?: number;
  /** The first bytes of the answer (for the delivery log). */
  responseSnippet?: string;
  /**
   * On a redirect: the host its Location pointed at, at most 100 characters, for the operator's
   * log only. `error` (what the tenant sees) never carries the Location: it could name an
   * internal host or carry a secret in its path or query.
   */
  redirectHost?: string;
}

export interface SendOptions {
  url: string;
  body: string;
  headers: Record<string, string>;
  policy: AddressPolicy;
  /** Default 15 000 ms. */
  timeoutMs?: number;
  /** Default 4 096 bytes. */
  maxResponseBytes?: number;
  now?: () => Date;
}

/** How long a host's checked DNS answer serves new connections (see guardedLookup). */
const DNS_CACHE_TTL_MS = 30_000;

const agents = new Map<string, http.Agent>();
function agentFor(protocol: string): http.Agent {
  // Keep-alive per protocol: a socket to an endpoint's host and port is reused by the next
  // attempt to it. The lookup hook travels with each request's options, and a reused socket was
  // checked when it connected.
  let agent = agents.get(protocol);
  if (!agent) {
    agent = protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 256 }) : new http.Agent({ keepAlive: true, maxSockets: 256 });
    agents.set(protocol, agent);
  }
  return agent;
}

/** One lookup hook (and so one DNS cache) per policy. */
const lookups = new WeakMap<AddressPolicy, ReturnType<typeof guardedLookup>>();
function lookupFor(policy: AddressPolicy): ReturnType<typeof guardedLookup> {
  let lookup = lookups.get(policy);
  if (!lookup) {
    lookup = guardedLookup(policy, { cacheTtlMs: DNS_CACHE_TTL_MS });
    lookups.set(policy, lookup);
  }
  return lookup;
}

/** The host a redirect's Location names (relative to the request URL), bounded; never its path or query. */
function redirectHost(location: string | undefined, base: URL): string {
  if (!location) return '(none)';
  try {
    return new URL(location, base).host.slice(0, 100) || '(none)';
  } catch {
    return '(unparsable)';
  }
}

/**
 * The URL as a span attribute (`url.full`): no credentials, and every query value replaced (a
 * callback URL often carries its receiver's token there).
 */
export function redactedUrl(raw: string): string {
  try {
    const url = new URL(raw);
    url.username = '';
    url.password = '';
    for (const key of new Set(url.searchParams.keys())) url.searchParams.set(key, 'REDACTED');
    return url.toString();
  } catch {
    return '(unparsable)';
  }
}

/** One attempt, in an HTTP client span (`POST`, @longhaul/telemetry) when tracing. */
export function sendCallback(options: SendOptions): Promise<AttemptResult> {
  return withSpan('POST', { kind: SpanKind.CLIENT, attributes: { 'http.request.method': 'POST', 'url.full': redactedUrl(options.url) } }, async (span) => {
    const result = await attemptCallback(options);
    if (span) {
      span.setAttribute('longhaul.callback.outcome', result.outcome);
      if (result.statusCode !== null) span.setAttribute('http.response.status_code', result.statusCode);
      if (result.outcome !== 'success') {
        span.setAttribute('error.type', result.statusCode !== null ? String(result.statusCode) : result.outcome);
        span.setStatus({ code: SpanStatusCode.ERROR, message: result.error ?? result.outcome });
      }
    }
    return result;
  });
}

function attemptCallback(options: SendOptions): Promise<AttemptResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const checked = checkCallbackUrl(options.url, options.policy);
  if (!checked.ok) return Promise.resolve({ outcome: 'blocked', statusCode: null, latencyMs: 0, error: checked.reason });
  const url = checked.url;
  const maxBytes = options.maxResponseBytes ?? 4096;
  const client = url.protocol === 'https:' ? https : http;

  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: AttemptResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const req = client.request(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(options.body), 'user-agent': 'Longhaul-Webhooks/1.0', ...options.headers },
        lookup: lookupFor(options.policy) as never,
        agent: agentFor(url.protocol),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < maxBytes) chunks.push(chunk.subarray(0, maxBytes - size));
          size += chunk.length;
          if (size >= maxBytes) res.destroy();
        });
        const done = () => {
          const snippet = Buffer.concat(chunks).toString('utf8');
          const base = { statusCode: status, latencyMs: elapsed(), responseSnippet: snippet };
          if (status >= 200 && status < 300) return finish({ ...base, outcome: 'success', error: null });
          if (status >= 300 && status < 400) {
            return finish({ ...base, outcome: 'redirect', error: `redirect refused (status ${status})`, redirectHost: redirectHost(res.headers.location, url) });
          }
          if (status === 410) return finish({ ...base, outcome: 'gone', error: 'endpoint answered 410 Gone' });
          const retryAfterMs = status === 429 || status === 503 ? parseRetryAfterMs(res.headers['retry-after'], options.now?.() ?? new Date()) : undefined;
          finish({ ...base, outcome: 'failure', error: `HTTP ${status}`, retryAfterMs });
        };
        res.on('end', done);
        res.on('close', done);
        res.on('error', done);
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish({ outcome: 'timeout', statusCode: null, latencyMs: elapsed(), error: `no answer within ${options.timeoutMs ?? 15_000} ms` });
    }, options.timeoutMs ?? 15_000);
    req.on('error', (err: Error & { code?: string }) => {
      if (err instanceof SsrfBlockedError) return finish({ outcome: 'blocked', statusCode: null, latencyMs: elapsed(), error: err.message });
      finish({ outcome: 'network_error', statusCode: null, latencyMs: elapsed(), error: `${err.code ?? 'error'}: ${err.message}` });
    });
    req.end(options.body);
  });
}
