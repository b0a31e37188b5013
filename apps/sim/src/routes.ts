/**
 * HTTP surface: OpenAI's `/v1/responses` endpoints (bearer auth, fault injection), the Files,
 * Conversations and Batch endpoints, and the simulator's own `/sim/*` control endpoints. Every
 * error leaves through `errorHandler` in OpenAI's `{ error: { message, type, param, code } }` shape.
 */
import express, { type ErrorRequestHandler, type RequestHandler, type Router } from 'express';
import type { Logger } from 'pino';
import { ApiError, invalidRequest, missingApiKey } from './errors.ts';
import { injectFaults, type Delays } from './faults.ts';
import { newId } from './ids.ts';
import type { Simulator } from './simulator.ts';

const BEARER = /^Bearer\s+\S+/i;

export function requestId(): RequestHandler {
  return (_req, res, next) => {
    res.setHeader('x-request-id', newId('req', 16));
    next();
  };
}

export function v1Router(sim: Simulator, delays: Delays): Router {
  const router = express.Router();
  router.use((req, _res, next) => {
    next(BEARER.test(req.get('authorization') ?? '') ? undefined : missingApiKey());
  });

  router.post('/responses', injectFaults(sim, delays, 'create'), async (req, res) => {
    const created = sim.create(req.body);
    // The response exists (and may finish, and send its webhook) before the client hears of it.
    if (sim.config.create_answer_delay_ms > 0) await delays.wait(sim.config.create_answer_delay_ms);
    if (created.kind === 'stream') sim.streamCreated(res, created.response);
    else res.json(created.body);
  });
  router.get('/responses/:id', injectFaults(sim, delays, 'retrieve'), (req, res) => {
    const id = req.params['id'] as string;
    if (isTrue(req.query['stream'])) sim.resumeStream(res, id, startingAfter(req.query['starting_after']));
    else res.json(sim.retrieve(id));
  });
  router.post('/responses/:id/cancel', injectFaults(sim, delays, 'cancel'), (req, res) => {
    res.json(sim.cancel(req.params['id'] as string));
  });
  router.delete('/responses/:id', injectFaults(sim, delays, 'delete'), (req, res) => {
    res.json(sim.deleteResponse(req.params['id'] as string));
  });
  router.get('/responses/:id/input_items', (req, res) => {
    res.json(sim.listInputItems(req.params['id'] as string, req.query));
  });

  router.post('/conversations', (req, res) => {
    res.json(sim.createConversation(req.body));
  });
  router.get('/conversations/:id', (req, res) => {
    res.json(sim.retrieveConversation(req.params['id'] as string));
  });
  router.post('/conversations/:id', (req, res) => {
    res.json(sim.updateConversation(req.params['id'] as string, req.body));
  });
  router.delete('/conversations/:id', (req, res) => {
    res.json(sim.deleteConversation(req.params['id'] as string));
  });
  router.get('/conversations/:id/items', (req, res) => {
    res.json(sim.listConversationItems(req.params['id'] as string, req.query));
  });

  router.post('/files', async (req, res) => {
    res.json(await sim.createFile(req));
  });
  router.get('/files', (req, res) => {
    res.json(sim.listFiles(req.query));
  });
  router.get('/files/:id', (req, res) => {
    res.json(sim.retrieveFile(req.params['id'] as string));
  });
  router.get('/files/:id/content', (req, res) => {
    const file = sim.fileContent(req.params['id'] as string);
    res.type(file.contentType || 'application/octet-stream').send(file.data);
  });
  router.delete('/files/:id', (req, res) => {
    res.json(sim.deleteFile(req.params['id'] as string));
  });

  router.post('/batches', (req, res) => {
    res.json(sim.batches.create(req.body));
  });
  router.get('/batches', (req, res) => {
    res.json(sim.batches.list(req.query));
  });
  router.get('/batches/:id', (req, res) => {
    res.json(sim.batches.retrieve(req.params['id'] as string));
  });
  router.post('/batches/:id/cancel', (req, res) => {
    res.json(sim.batches.cancel(req.params['id'] as string));
  });
  return router;
}

function isTrue(value: unknown): boolean {
  return value === 'true' || value === '1';
}

function startingAfter(value: unknown): number | null {
  if (value === undefined || value === '') return null;
  const parsed = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed)) {
    throw invalidRequest(`Invalid 'starting_after': expected an integer, got '${String(value)}'.`, 'starting_after', 'invalid_type');
  }
  return parsed;
}

export function simRouter(sim: Simulator): Router {
  const router = express.Router();
  router.get('/config', (_req, res) => {
    res.json(sim.config);
  });
  router.post('/config', (req, res) => {
    res.json(sim.updateConfig(req.body ?? {}));
  });
  router.get('/stats', (_req, res) => {
    res.json(sim.stats);
  });
  router.post('/prompts', (req, res) => {
    res.json(sim.registerPrompt(req.body));
  });
  router.get('/request-log', (_req, res) => {
    res.json(sim.requests.list());
  });
  router.get('/responses/:id/timing', (req, res) => {
    res.json(sim.responseTiming(req.params['id'] as string));
  });
  router.get('/requests/:id', (req, res) => {
    res.json(sim.receivedRequest(req.params['id'] as string));
  });
  router.post('/reset', (_req, res) => {
    sim.reset();
    res.json({ ok: true });
  });
  return router;
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(
    new ApiError({
      status: 404,
      type: 'invalid_request_error',
      message: `Invalid URL (${req.method} ${req.path})`,
    }),
  );
};

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500 && !(error instanceof ApiError)) logger.error({ err: error }, 'unhandled error');
    res.status(apiError.status).set(apiError.headers).json(apiError.toBody());
  };
}

function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  // body-parser errors carry an HTTP status and a `type` such as 'entity.parse.failed'.
  const status = (error as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const message =
      (error as { type?: unknown }).type === 'entity.parse.failed'
        ? "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
        : (error as Error).message;
    return new ApiError({ status, type: 'invalid_request_error', message });
  }
  return new ApiError({ status: 500, type: 'server_error', message: 'The server had an error while processing your request.' });
}
