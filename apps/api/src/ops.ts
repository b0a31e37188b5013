/**
 * The API's operations endpoints on its tenant-facing port: `GET /healthz` (the process is alive),
 * `GET /readyz` (Postgres and Redis reachable, migrations applied; 503 with the reason when not),
 * and the per-request HTTP metrics. `GET /metrics` is served here only when METRICS_TOKEN is
 * configured, and then only with it (401 otherwise): the metrics name models and tenants. Without
 * a token it is a 404 like any unknown route; scrape the metrics listener instead
 * (METRICS_HOST:API_METRICS_PORT, loopback by default; see index.ts and @longhaul/metrics/server).
 */
import { Router, type RequestHandler } from 'express';
import { LonghaulError } from '@longhaul/core';
import { type Database, migrationsCheck, pingDatabase } from '@longhaul/db';
import type { Metrics } from '@longhaul/metrics';
import { bearerMatches } from '@longhaul/metrics/server';
import { type Queues, pingRedis } from '@longhaul/queue';
import { type ReadinessCheck, checkReadiness, readinessResponse } from '@longhaul/runtime';
import type { ApiDeps } from './context.ts';

/** The API's readiness, on its port and on its metrics listener: Postgres answers, migrations are applied, Redis answers. */
export function apiReadinessChecks(deps: { db: Database; queues: Queues }): Record<string, ReadinessCheck> {
  return {
    postgres: () => pingDatabase(deps.db),
    migrations: migrationsCheck(deps.db),
    redis: () => pingRedis(deps.queues.connection),
  };
}

export function opsRouter(deps: ApiDeps & { metrics: Metrics }): Router {
  const router = Router();
  const checks = apiReadinessChecks(deps);

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (req, res) => {
    const report = await checkReadiness(checks);
    const { status, body } = readinessResponse(report);
    if (!report.ready) req.log.warn({ code: 'not_ready', reason: report.reason }, 'not ready');
    res.status(status).setHeader('Cache-Control', 'no-store').json(body);
  });

  const token = deps.config.metricsToken;
  if (deps.metrics.enabled && token) {
    router.get('/metrics', async (req, res) => {
      if (!bearerMatches(req.headers.authorization, token)) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
        throw new LonghaulError('Send METRICS_TOKEN as "Authorization: Bearer <token>".', { code: 'invalid_metrics_token', status: 401, type: 'authentication_error' });
      }
      res
        .setHeader('Cache-Control', 'no-store')
        .setHeader('Content-Type', deps.metrics.contentType)
        .send(await deps.metrics.render());
    });
  }
  return router;
}

/** Count and time every request by route pattern (never by raw URL: ids would explode the series). */
export function httpMetrics(metrics: Metrics): RequestHandler {
  if (!metrics.enabled) return (_req, _res, next) => next();
  return (req, res, next) => {
    const started = performance.now();
    res.once('finish', () => {
      const route = req.route?.path !== undefined ? `${req.baseUrl}${String(req.route.path)}` : res.statusCode === 404 ? 'unmatched' : 'other';
      metrics.httpRequest(req.method, route, res.statusCode, performance.now() - started);
    });
    next();
  };
}
