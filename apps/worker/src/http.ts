/**
 * The worker's metrics listener (METRICS_HOST:METRICS_PORT, loopback by default): `GET /metrics`
 * (Prometheus; behind METRICS_TOKEN when one is configured), `GET /healthz` and `GET /readyz`
 * (Postgres and Redis reachable, migrations applied; 503 with the reason when not). The worker has
 * no other HTTP surface. The server itself is @longhaul/metrics' `startMetricsServer`, shared with
 * the API.
 */
import { type DbHandle, migrationsCheck, pingDatabase } from '@longhaul/db';
import type { Metrics } from '@longhaul/metrics';
import { type MetricsServer, startMetricsServer } from '@longhaul/metrics/server';
import { type Queues, pingRedis } from '@longhaul/queue';
import { type Logger, type ReadinessCheck, checkReadiness, readinessResponse } from '@longhaul/runtime';

export interface OpsServerOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** 0 picks a free port (see `url`). */
  port: number;
  metrics: Metrics;
  /** When set, `GET /metrics` requires `Authorization: Bearer <token>`. Default: none. */
  token?: string;
  checks: Record<string, ReadinessCheck>;
  logger: Logger;
}

export type OpsServer = MetricsServer;

/** The worker's readiness: Postgres answers, migrations are applied, Redis answers. */
export function workerReadinessChecks(deps: { db: DbHandle; queues: Queues }): Record<string, ReadinessCheck> {
  return {
    postgres: () => pingDatabase(deps.db.db),
    migrations: migrationsCheck(deps.db.db),
    redis: () => pingRedis(deps.queues.connection),
  };
}

export function startOpsServer({ checks, ...options }: OpsServerOptions): Promise<OpsServer> {
  return startMetricsServer({ ...options, readiness: async () => readinessResponse(await checkReadiness(checks)) });
}
