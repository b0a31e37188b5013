/**
 * A tenant's delete request: what `DELETE /v1/jobs/{id}` and the OpenAI-compatible
 * `DELETE /v1/responses/{id}` share. The job's content is erased (reason `request`) and its stored
 * response deleted at the provider by @longhaul/engine's `deleteJob` (a failed provider call is
 * retried by the worker's sweeper). Only a finished job can be deleted; each route answers a
 * running one in its own API's terms.
 */
import type { Request } from 'express';
import { isTerminal } from '@longhaul/core';
import type { Job } from '@longhaul/db';
import { deleteJob } from '@longhaul/engine';
import type { ApiContext } from './context.ts';

/** The tombstone, or `not_finished` when the job is still running. */
export async function requestDeletion(ctx: ApiContext, req: Request, job: Job): Promise<{ ok: true; job: Job } | { ok: false; error: 'not_finished' }> {
  if (!isTerminal(job.status)) return { ok: false, error: 'not_finished' };
  const erased = await deleteJob({ db: ctx.db, provider: ctx.provider, logger: req.log, clock: ctx.clock, jobStreams: ctx.streamHub?.jobStreams }, job.tenantId, job.id);
  // A terminal job stays finished: only a row gone meanwhile could answer null.
  return erased ? { ok: true, job: erased } : { ok: false, error: 'not_finished' };
}
