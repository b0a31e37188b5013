/**
 * /v1/jobs: submit (../job-submission.ts), read, list, cancel and delete (../job-deletion.ts) jobs. Postgres is written first;
 * what follows (the fair-queue push and submit turn of a new job, the cancel work item, the
 * lifecycle stream event, metrics) is `jobEffects.afterJobChange`, best effort here: Redis may
 * fail (Redis down) without losing the job, and the worker's sweeper dispatches any job whose
 * work item is missing.
 */
import { Router, type Request } from 'express';
import { z } from 'zod';
import { ConflictError, JOB_STATUSES, NotFoundError, ValidationError } from '@longhaul/core';
import { getJobForTenant, listJobEvents, listJobs } from '@longhaul/db';
import { jobLogFields } from '@longhaul/runtime';
import type { ApiContext } from '../context.ts';
import { jobRequestSchema } from '../job-request.ts';
import { checkPathIds, ids, parseInput } from '../request-input.ts';
import { idempotencyKeyOf, submitJob } from '../job-submission.ts';
import { requestCancel } from '../job-cancellation.ts';
import { requestDeletion } from '../job-deletion.ts';
import { submitAnswers } from '../job-answers.ts';
import { batchViews, listJobTurns, markBatchDue, toJobEventObject, toJobObject } from '@longhaul/db';

export const listQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: ids.job.optional(),
  status: z.enum(JOB_STATUSES).optional(),
  /** Any job of a conversation chain: lists the whole chain, oldest first. */
  thread: ids.job.optional(),
});

/** A tool output: text, or content parts as OpenAI's `function_call_output` takes them. */
export const toolOutputsSchema = z.strictObject({
  tool_outputs: z
    .array(z.strictObject({ call_id: z.string().min(1).max(256), output: z.union([z.string(), z.array(z.looseObject({})).max(64)]) }))
    .min(1)
    .max(128),
});
export const approvalsSchema = z.strictObject({
  approvals: z
    .array(z.strictObject({ approval_request_id: z.string().min(1).max(256), approve: z.boolean(), reason: z.string().max(4096).optional() }))
    .min(1)
    .max(128),
});

function tenantOf(req: Request): string {
  return req.tenantId!;
}

export function jobsRouter(deps: ApiContext): Router {
  const { db, clock } = deps;
  const router = Router();
  checkPathIds(router, { id: ids.job });

  router.post('/', async (req, res) => {
    if (req.body === undefined || req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
      throw new ValidationError('Request body must be a JSON object (Content-Type: application/json).', null, 'invalid_body');
    }
    const idempotencyKey = idempotencyKeyOf(req);
    const body = parseInput(jobRequestSchema, req.body);
    const { job, replayed } = await submitJob(deps, req, { tenantId: tenantOf(req), body, rawBody: req.body, idempotencyKey, toolLoop: true });
    res.locals.logFields = jobLogFields(job);
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(202).setHeader('Location', `/v1/jobs/${job.id}`).json(toJobObject(job));
  });

  router.get('/', async (req, res) => {
    const { thread, ...filters } = parseInput(listQuerySchema, req.query);
    let threadId: string | undefined;
    if (thread !== undefined) {
      const member = await getJobForTenant(db, tenantOf(req), thread);
      if (!member) throw new NotFoundError(`No job with id '${thread}'.`, 'thread');
      threadId = member.threadId ?? member.id;
    }
    const { data, hasMore } = await listJobs(db, { tenantId: tenantOf(req), ...filters, threadId });
    const batchesOf = await batchViews(
      db,
      data.flatMap((job) => (job.batchId ? [job.batchId] : [])),
    );
    res.json({
      object: 'list',
      data: data.map((job) => toJobObject(job, undefined, job.batchId ? batchesOf.get(job.batchId) : null)),
      first_id: data[0]?.id ?? null,
      last_id: data.at(-1)?.id ?? null,
      has_more: hasMore,
    });
  });

  router.get('/:id', async (req, res) => {
    const job = await getJobForTenant(db, tenantOf(req), req.params.id!);
    if (!job) throw new NotFoundError(`No job with id '${req.params.id}'.`, 'id');
    res.locals.logFields = jobLogFields(job);
    const batch = job.batchId ? (await batchViews(db, [job.batchId])).get(job.batchId) : null;
    res.json(toJobObject(job, job.maxTurns === null ? undefined : await listJobTurns(db, job.id), batch));
  });

  router.get('/:id/events', async (req, res) => {
    const job = await getJobForTenant(db, tenantOf(req), req.params.id!);
    if (!job) throw new NotFoundError(`No job with id '${req.params.id}'.`, 'id');
    res.locals.logFields = jobLogFields(job);
    const events = await listJobEvents(db, job.id);
    res.json({ object: 'list', data: events.map(toJobEventObject), has_more: false });
  });

  // Erase a finished job's content and delete its stored response at the provider; the tombstone
  // (usage, cost, timestamps) stays readable. A repeated delete answers the tombstone again.
  router.delete('/:id', async (req, res) => {
    const job = await getJobForTenant(db, tenantOf(req), req.params.id!);
    if (!job) throw new NotFoundError(`No job with id '${req.params.id}'.`, 'id');
    res.locals.logFields = jobLogFields(job);
    const result = await requestDeletion(deps, req, job);
    if (!result.ok) {
      throw new ConflictError(`Job ${job.id} is still ${job.status}: cancel it (POST /v1/jobs/${job.id}/cancel) or let it finish, then delete it.`, 'job_not_finished');
    }
    res.json({ ...toJobObject(result.job), deleted: true });
  });

  // A job in requires_action: the turn's tool outputs, or its MCP approvals (../job-answers.ts).
  router.post('/:id/tool_outputs', async (req, res) => {
    const { tool_outputs } = parseInput(toolOutputsSchema, req.body ?? {});
    const job = await getJobForTenant(db, tenantOf(req), req.params.id!);
    if (!job) throw new NotFoundError(`No job with id '${req.params.id}'.`, 'id');
    res.locals.logFields = jobLogFields(job);
    res.json(toJobObject(await submitAnswers(deps, req, job, { kind: 'tool_outputs', tool_outputs })));
  });

  router.post('/:id/approvals', async (req, res) => {
    const { approvals } = parseInput(approvalsSchema, req.body ?? {});
    const job = await getJobForTenant(db, tenantOf(req), req.params.id!);
    if (!job) throw new NotFoundError(`No job with id '${req.params.id}'.`, 'id');
    res.locals.logFields = jobLogFields(job);
    res.json(toJobObject(await submitAnswers(deps, req, job, { kind: 'approvals', approvals })));
  });

  router.post('/:id/cancel', async (req, res) => {
    const job = await getJobForTenant(db, tenantOf(req), req.params.id!);
    if (!job) throw new NotFoundError(`No job with id '${req.params.id}'.`, 'id');
    res.locals.logFields = jobLogFields(job);
    const result = await requestCancel(deps, req, job);
    // A batch job's batch looks again at once: with every job of it cancelled it is cancelled at the provider.
    if (result.ok && result.job.batchId) await markBatchDue(db, result.job.batchId, clock());
    if (!result.ok) {
      if (result.error.code === 'job_terminal') {
        throw new ConflictError(`Job ${job.id} has already finished (${result.job?.status}); it cannot be cancelled.`, 'job_already_finished');
      }
      throw new ConflictError(result.error.message, result.error.code);
    }
    res.json(toJobObject(result.job));
  });

  return router;
}
