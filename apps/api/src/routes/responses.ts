/**
 * /v1/responses: OpenAI's Responses API, served by Longhaul. Point the official SDK at Longhaul
 * (`new OpenAI({ baseURL: "<longhaul>/v1", apiKey: "lh_sk_…" })`) and every response is a durable
 * Longhaul job: it survives restarts, shows in the admin UI, counts in usage and goes to
 * callbacks. At the provider every one runs in background mode; the client's mode decides only
 * how it is answered:
 *
 *   background: true   the Response at once, `queued` (retrieve, cancel and stream it by its id)
 *   stream: true       OpenAI's event stream (../responses/stream.ts), live, resumable
 *   neither            held open until the job has finished, then the final Response; a client
 *                      that goes away leaves the job running (retrieve it later)
 *
 * Ids: ../responses/ids.ts. Objects: ../responses/response-object.ts. Errors are OpenAI's shape
 * (errors.ts), and an Idempotency-Key makes a retried create return the first one's response.
 */
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { ConflictError, LonghaulError, NotFoundError, ValidationError, isTerminal } from '@longhaul/core';
import { getJobForTenant, type Job } from '@longhaul/db';
import { jobLogFields } from '@longhaul/runtime';
import type { ApiContext } from '../context.ts';
import { idempotencyKeyOf, submitJob } from '../job-submission.ts';
import { requestCancel } from '../job-cancellation.ts';
import { requestDeletion } from '../job-deletion.ts';
import { parseInput } from '../request-input.ts';
import { parseResponseCreate } from '../responses/create-request.ts';
import { findResponseJob, responseIdOf } from '../responses/ids.ts';
import { inputItemsPage } from '../responses/input-items.ts';
import { responseStatusOf, toResponseObject } from '../responses/response-object.ts';
import { callProvider } from '../provider-calls.ts';
import { sendResponseEvents } from '../responses/stream.ts';

/** How long a cancel waits for the provider to confirm before answering with the response as it is. */
const CANCEL_WAIT_MS = 5_000;

export const inputItemsQuery = z.looseObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  order: z.enum(['asc', 'desc']).default('desc'),
  after: z.string().min(1).max(256).optional(),
});

export const retrieveQuery = z.looseObject({
  stream: z.enum(['true', 'false']).optional(),
  starting_after: z.coerce.number().int().min(-1).optional(),
  include_obfuscation: z.enum(['true', 'false']).optional(),
});

/** A job that never reached the provider failed on its request (or the provider was unreachable): the error OpenAI's synchronous create would answer. */
function createErrorOf(job: Job): LonghaulError | null {
  if (job.status !== 'failed' || job.responseId !== null) return null;
  const error = job.error ?? { code: 'server_error', message: 'The response failed.' };
  if (error.code === 'provider_unavailable' || error.code.startsWith('http_5')) {
    return new LonghaulError(error.message, { code: error.code, status: 502, type: 'server_error' });
  }
  // The provider's message as its own 400 said it (the SDK's text starts with the status).
  return new ValidationError(error.message.replace(/^\d{3} /, ''), null, error.code);
}

export function responsesRouter(ctx: ApiContext): Router {
  const { db } = ctx;
  const router = Router();

  const requireFollowing = () => {
    if (!ctx.following)
      throw new LonghaulError('Response streams and synchronous responses need the stream hub, which this server runs without.', {
        code: 'streams_disabled',
        status: 503,
        type: 'server_error',
      });
    return ctx.following;
  };

  /** The tenant's job a path's response id names (404 otherwise), bound to the request's log line and its Longhaul-Job-Id header. */
  const findJob = async (req: Request, res: Response): Promise<Job> => {
    const id = String(req.params.id);
    const job = await findResponseJob(db, req.tenantId!, id);
    // An erased (deleted) response is gone, as at OpenAI.
    if (!job || job.erasedAt !== null) throw new NotFoundError(`Response with id '${id}' not found.`, 'response_id', 'response_not_found');
    res.locals.logFields = jobLogFields(job);
    res.setHeader('Longhaul-Job-Id', job.id);
    return job;
  };

  /** Wait until the job is terminal (or `timeoutMs` passes, or the client goes away); the job as it then is. */
  const waitForEnd = async (req: Request, job: Job, timeoutMs?: number): Promise<Job> => {
    if (isTerminal(job.status)) return job;
    const following = requireFollowing();
    await new Promise<void>((resolve) => {
      let settled = false;
      let stop = () => {};
      const done = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.off('close', onClose);
        stop();
        resolve();
      };
      const onClose = () => done();
      const timer = timeoutMs === undefined ? undefined : setTimeout(done, timeoutMs);
      req.on('close', onClose);
      following
        .follow(job, { cursor: '0-0', logger: req.log, send: () => {}, end: done })
        .then((follower) => {
          stop = follower.stop;
          if (settled) follower.stop();
        })
        .catch(done);
    });
    return (await getJobForTenant(db, job.tenantId, job.id)) ?? job;
  };

  router.post('/', async (req: Request, res: Response) => {
    const create = parseResponseCreate(req);
    if (create.answer !== 'background') requireFollowing();
    const idempotencyKey = idempotencyKeyOf(req);
    const { job, replayed } = await submitJob(ctx, req, {
      tenantId: req.tenantId!,
      body: create.body,
      rawBody: req.body,
      idempotencyKey,
      finish: create.finish,
      toolLoop: create.toolLoop,
    });
    res.locals.logFields = jobLogFields(job);
    res.setHeader('Longhaul-Job-Id', job.id);
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    if (create.answer === 'stream') return sendResponseEvents(ctx, req, res, job, null);
    if (create.answer === 'background') return void res.json(toResponseObject(job));
    res.socket?.setKeepAlive(true, 30_000);
    const finished = await waitForEnd(req, job);
    if (res.writableEnded || req.socket.destroyed) return;
    const failure = createErrorOf(finished);
    if (failure) throw failure;
    res.json(toResponseObject(finished));
  });

  router.get('/:id', async (req: Request, res: Response) => {
    const query = parseInput(retrieveQuery, req.query);
    const job = await findJob(req, res);
    if (query.stream !== 'true') return void res.json(toResponseObject(job));
    requireFollowing();
    if (job.request.stream !== true) {
      throw new ValidationError('This response cannot be streamed because it was not created with stream=true.', 'stream', 'response_not_streamable');
    }
    return sendResponseEvents(ctx, req, res, job, query.starting_after ?? null);
  });

  router.post('/:id/cancel', async (req: Request, res: Response) => {
    const job = await findJob(req, res);
    // Cancelling a finished response answers it as it is: cancel is idempotent.
    if (isTerminal(job.status)) return void res.json(toResponseObject(job));
    const result = await requestCancel(ctx, req, job);
    if (!result.ok) {
      if (result.job && isTerminal(result.job.status)) return void res.json(toResponseObject(result.job));
      throw new ConflictError(result.error.message, result.error.code);
    }
    const current = ctx.following ? await waitForEnd(req, result.job, CANCEL_WAIT_MS) : result.job;
    res.json(toResponseObject(current));
  });

  router.get('/:id/input_items', async (req: Request, res: Response) => {
    const query = parseInput(inputItemsQuery, req.query);
    const job = await findJob(req, res);
    if (job.responseId === null || !ctx.provider) return void res.json(inputItemsPage(job, query));
    const provider = ctx.provider;
    const responseId = job.responseId;
    const page = await callProvider(() =>
      provider.listInputItems(responseId, { limit: query.limit, order: query.order, after: query.after }, { jobId: job.id, keyId: job.providerKeyId }),
    ).catch((err: unknown) => {
      // Gone at the provider (its retention): the job still has its input.
      if (err instanceof NotFoundError) return inputItemsPage(job, query);
      throw err;
    });
    res.json(page);
  });

  router.delete('/:id', async (req: Request, res: Response) => {
    const job = await findJob(req, res);
    const result = await requestDeletion(ctx, req, job);
    if (!result.ok) {
      throw new ConflictError(
        `Response ${responseIdOf(job.id)} is still ${responseStatusOf(job.status)}: cancel it (POST /v1/responses/{id}/cancel) or let it finish, then delete it.`,
        'response_not_finished',
      );
    }
    res.json({ id: responseIdOf(job.id), object: 'response.deleted', deleted: true });
  });

  return router;
}
