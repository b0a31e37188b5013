import express, { type Express } from 'express';
import { pinoHttp } from 'pino-http';
import { randomUUID } from 'node:crypto';
import type { Database } from '@longhaul/db';
import type { Queues } from '@longhaul/queue';
import type { Logger } from '@longhaul/runtime';
import { requireApiKey } from './auth.ts';
import { errorHandler, notFoundHandler } from './errors.ts';
import { jobsRouter } from './routes/jobs.ts';
import { openaiWebhooksRouter } from './routes/openai-webhooks.ts';

export interface ApiConfig {
  /** Largest accepted request body (bytes or e.g. "1mb"). */
  bodyLimit: string | number;
  /** A job not finished this long after it was accepted expires. */
  jobDeadlineMs: number;
  /** How long an Idempotency-Key is remembered. */
  idempotencyTtlMs: number;
  /** Secrets OpenAI signs its webhooks with (several during a rotation). Empty: receiver off. */
  openaiWebhookSecrets: string[];
}

export interface ApiDeps {
  db: Database;
  queues: Queues;
  logger: Logger;
  clock: () => Date;
  config: ApiConfig;
}

export function createServer(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.set('query parser', 'simple');

  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: (req, res) => {
        const incoming = req.headers['x-request-id'];
        const id = typeof incoming === 'string' && /^[\w.:-]{1,128}$/.test(incoming) ? incoming : `req_${randomUUID().replaceAll('-', '')}`;
        res.setHeader('X-Request-Id', id);
        return id;
      },
      customProps: (req) => ({ request_id: req.id }),
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
    }),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.use('/webhooks/openai', openaiWebhooksRouter(deps));

  const v1 = express.Router();
  v1.use(requireApiKey(deps.db));
  v1.use(express.json({ limit: deps.config.bodyLimit, strict: true, type: ['application/json', 'application/*+json'] }));
  v1.use('/jobs', jobsRouter(deps));
  app.use('/v1', v1);

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
