import express, { type Express } from 'express';
import { pinoHttp } from 'pino-http';
import { randomUUID } from 'node:crypto';
import { queueDepths } from '@longhaul/queue';
import { serializeError } from '@longhaul/runtime';
import { adminRouter } from './admin/index.ts';
import { httpMetrics, opsRouter } from './ops.ts';
import { openApiRouter } from './openapi/docs-router.ts';
import { usageRouter } from './routes/usage.ts';
import { apiKeyAuth, requireScope } from './auth.ts';
import { rateLimitRequests } from './rate-limit.ts';
import { errorHandler, notFoundHandler } from './errors.ts';
import { refuseDeepJson } from './json-depth.ts';
import { apiKeysRouter } from './routes/api-keys.ts';
import { jobsRouter } from './routes/jobs.ts';
import { filesRouter } from './routes/files.ts';
import { conversationsRouter } from './routes/conversations.ts';
import { promptsRouter } from './routes/prompts.ts';
import { datasetsRouter } from './routes/datasets.ts';
import { evalsRouter } from './routes/evals.ts';
import { pipelinesRouter, runsRouter } from './routes/pipelines.ts';
import { batchesRouter } from './routes/batches.ts';
import { cacheRouter } from './routes/cache.ts';
import { responsesRouter } from './routes/responses.ts';
import { jobStreamRouter } from './routes/job-stream.ts';
import { openaiWebhooksRouter } from './routes/openai-webhooks.ts';
import { callbackSecretRouter, deliveriesRouter, webhookEndpointsRouter } from './routes/webhook-endpoints.ts';
import type { ApiContext, ApiDeps } from './context.ts';
import { createApiContext } from './engine.ts';
import { traceJobRequests } from './tracing.ts';

export { createStreamHub } from './stream-hub.ts';
export type { ApiConfig, ApiDeps } from './context.ts';

export function createServer(apiDeps: ApiDeps): Express {
  const deps: ApiContext = createApiContext(apiDeps);
  deps.metrics.setQueueDepthSource(() => queueDepths(deps.queues));
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.config.trustProxy ?? false);
  app.set('query parser', 'simple');

  app.use(
    pinoHttp({
      logger: deps.logger,
      // pino-http would otherwise put pino's standard serializer (every property, query params
      // included) in front of the logger's own on req.log.
      serializers: { err: serializeError },
      genReqId: (req, res) => {
        const incoming = req.headers['x-request-id'];
        const id = typeof incoming === 'string' && /^[\w.:-]{1,128}$/.test(incoming) ? incoming : `req_${randomUUID().replaceAll('-', '')}`;
        res.setHeader('X-Request-Id', id);
        return id;
      },
      // Called when the request starts (bind its id) and again when it completes (the response is
      // sent): by then auth has set the tenant and job routes have put job_id / response_id in
      // res.locals.logFields. Binding each key once keeps the JSON free of duplicate keys.
      customProps: (req, res) =>
        res.headersSent ? { ...(req.tenantId ? { tenant_id: req.tenantId } : {}), ...(res as { locals?: { logFields?: object } }).locals?.logFields } : { request_id: req.id },
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
    }),
  );

  app.use(httpMetrics(deps.metrics));
  app.use(opsRouter(deps));
  // GET /openapi.json and /docs: public, before the API key check.
  app.use(openApiRouter());
  app.use('/admin', adminRouter(deps));

  app.use('/webhooks/openai', openaiWebhooksRouter(deps));

  const v1 = express.Router();
  // Before authentication: a refused request is part of the client's trace too.
  v1.use(traceJobRequests());
  const apiKeys = apiKeyAuth(deps.db, { cacheTtlMs: deps.config.apiKeyCacheTtlMs, now: deps.clock });
  v1.use(apiKeys.authenticate);
  v1.use(requireScope);
  v1.use(rateLimitRequests({ limits: deps.admission.limits, redis: deps.queues.connection, prefix: deps.queues.prefix, logger: deps.logger, config: deps.config.rateLimits }));
  v1.use(express.json({ limit: deps.config.bodyLimit, strict: true, type: ['application/json', 'application/*+json'], verify: refuseDeepJson }));
  v1.use('/jobs', jobStreamRouter(deps));
  v1.use('/jobs', jobsRouter(deps));
  v1.use('/responses', responsesRouter(deps));
  v1.use('/usage', usageRouter(deps));
  v1.use('/cache', cacheRouter(deps));
  v1.use('/files', filesRouter(deps));
  v1.use('/conversations', conversationsRouter(deps));
  v1.use('/prompts', promptsRouter(deps));
  v1.use('/datasets', datasetsRouter(deps));
  v1.use('/evals', evalsRouter(deps));
  v1.use('/pipelines', pipelinesRouter(deps));
  v1.use('/runs', runsRouter(deps));
  v1.use('/batches', batchesRouter(deps));
  v1.use('/webhook-endpoints', webhookEndpointsRouter(deps));
  v1.use('/deliveries', deliveriesRouter(deps));
  v1.use('/callback-secret', callbackSecretRouter(deps));
  v1.use('/api-keys', apiKeysRouter(deps, apiKeys));
  app.use('/v1', v1);

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
