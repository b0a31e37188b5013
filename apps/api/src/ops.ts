/**
 * The API's operations endpoints: `GET /healthz` (the process is alive), `GET /readyz` (Postgres
 * and Redis reachable, migrations applied; 503 with the reason when not) and `GET /metrics`
 * (Prometheus; behind METRICS_TOKEN when one is configured), plus the per-request HTTP metrics.
 */
import { Router, type RequestHandler } from 'express';
import { migrationsCheck, pingDatabase } from '@longhaul/db';
import type { Metrics } from '@longhaul/metrics';
import { pingRedis } from '@longhaul/queue';
import { checkReadiness, readinessResponse } from '@longhaul/runtime';
import { safeEqual } from './admin/auth.ts';
import type { ApiDeps } from './context.ts';

export function opsRouter(deps: ApiDeps & { metrics: Metrics }): Router {
  const router = Router();
  const checks = {
    postgres: () => pingDatabase(deps.db),
    migrations: migrationsCheck(deps.db),
    redis: () => pingRedis(deps.queues.connection),
  };

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (req, res) => {
    const report = await checkReadiness(checks);
    const { status, body } = readinessResponse(report);
    if (!report.ready) req.log.warn({ code: 'not_ready', reason: report.reason }, 'not ready');
    res.status(status).setHeader('Cache-Control', 'no-store').json(body);
  });

  if (deps.metrics.enabled) {
    const token = deps.config.metricsToken;
    router.get('/metrics', async (req, res) => {
      const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
      if (token && (bearer === undefined || !safeEqual(bearer, token))) {
        res.status(401).setHeader('WWW-Authenticate', 'Bearer realm="metrics"').type('text/plain').send('METRICS_TOKEN required\n');
        return;
      }
      res.setHeader('Content-Type', deps.metrics.contentType).send(await deps.metrics.render());
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
