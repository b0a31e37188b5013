/**
 * The metrics listener each process opens beside its work (METRICS_HOST, loopback by default):
 * `GET /metrics` (Prometheus; `Authorization: Bearer <token>` when a token is configured),
 * `GET /healthz` (the process is alive) and `GET /readyz` (its readiness checks; 503 with the
 * reason when one fails). Nothing else is served. The metrics name models and tenants, so they are
 * for a scraper on the host or a private network, never for tenants; the probes stay open (a
 * kubelet or a load balancer sends no token) and tell nothing beyond up or down and why.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.ts';

export interface MetricsServerOptions {
  /** Interface to listen on. Default `127.0.0.1`: reachable from this host only. */
  host?: string;
  /** 0 picks a free port (see `url`). */
  port: number;
  metrics: Metrics;
  /** When set, `GET /metrics` requires `Authorization: Bearer <token>` (401 otherwise). Default: none. */
  token?: string;
  /** The answer to `/readyz` (`readinessResponse(await checkReadiness(checks))` from @longhaul/runtime). */
  readiness: () => Promise<{ status: number; body: unknown }>;
  logger: { warn(fields: object, message: string): void };
}

export interface MetricsServer {
  /** Where it listens, from the bound address, e.g. `http://127.0.0.1:9464`. */
  url: string;
  /** Idempotent. */
  close(): Promise<void>;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Whether an `Authorization` header carries `Bearer <token>`; compared in constant time. */
export function bearerMatches(authorization: string | undefined, token: string): boolean {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
  return bearer !== undefined && timingSafeEqual(digest(bearer), digest(token));
}

/** The API's error shape, so every Longhaul port answers errors alike. */
function errorBody(type: string, code: string, message: string): string {
  return JSON.stringify({ error: { type, code, message, param: null } });
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { metrics, readiness, logger, token } = options;
  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }).end(body);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, errorBody('invalid_request_error', 'method_not_allowed', `${req.method} is not allowed here; use GET.`), { allow: 'GET, HEAD' });
    }
    if (path === '/healthz') return send(res, 200, JSON.stringify({ status: 'ok' }));
    if (path === '/readyz') {
      const { status, body } = await readiness();
      return send(res, status, JSON.stringify(body));
    }
    if (path === '/metrics' && metrics.enabled) {
      if (token && !bearerMatches(req.headers.authorization, token)) {
        return send(res, 401, errorBody('authentication_error', 'invalid_metrics_token', 'Send METRICS_TOKEN as "Authorization: Bearer <token>".'), {
          'www-authenticate': 'Bearer realm="metrics"',
        });
      }
      return send(res, 200, await metrics.render(), { 'content-type': metrics.contentType });
    }
    return send(res, 404, errorBody('not_found_error', 'not_found', `Unknown route: ${req.method} ${path}`));
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.warn({ err, code: 'ops_request_failed' }, 'metrics listener request failed');
      if (!res.headersSent) send(res, 500, errorBody('server_error', 'internal_error', 'Internal server error.'));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
