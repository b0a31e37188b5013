/**
 * The worker's operations endpoint (METRICS_HOST:METRICS_PORT): `GET /metrics` (Prometheus),
 * `GET /healthz` (the process is alive) and `GET /readyz` (Postgres and Redis reachable,
 * migrations applied; 503 with the reason when not). The worker has no other HTTP surface.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type DbHandle, migrationsCheck, pingDatabase } from '@longhaul/db';
import type { Metrics } from '@longhaul/metrics';
import { type Queues, pingRedis } from '@longhaul/queue';
import { type Logger, type ReadinessCheck, checkReadiness, readinessResponse } from '@longhaul/runtime';

export interface OpsServerOptions {
  host: string;
  /** 0 picks a free port (see `url`). */
  port: number;
  metrics: Metrics;
  checks: Record<string, ReadinessCheck>;
  logger: Logger;
}

export interface OpsServer {
  url: string;
  /** Idempotent. */
  close(): Promise<void>;
}

/** The worker's readiness: Postgres answers, migrations are applied, Redis answers. */
export function workerReadinessChecks(deps: { db: DbHandle; queues: Queues }): Record<string, ReadinessCheck> {
  return {
    postgres: () => pingDatabase(deps.db.db),
    migrations: migrationsCheck(deps.db.db),
    redis: () => pingRedis(deps.queues.connection),
  };
}

export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const { metrics, checks, logger } = options;
  const send = (res: ServerResponse, status: number, body: string, contentType = 'application/json') => {
    res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, JSON.stringify({ error: 'method not allowed' }));
    if (path === '/healthz') return send(res, 200, JSON.stringify({ status: 'ok' }));
    if (path === '/readyz') {
      const { status, body } = readinessResponse(await checkReadiness(checks));
      return send(res, status, JSON.stringify(body));
    }
    if (path === '/metrics' && metrics.enabled) return send(res, 200, await metrics.render(), metrics.contentType);
    return send(res, 404, JSON.stringify({ error: 'not found' }));
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.warn({ err, code: 'ops_request_failed' }, 'ops endpoint failed');
      if (!res.headersSent) send(res, 500, JSON.stringify({ error: 'internal error' }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
