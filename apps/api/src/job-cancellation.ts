/**
 * A tenant's cancel request: what `POST /v1/jobs/{id}/cancel` and the OpenAI-compatible
 * `POST /v1/responses/{id}/cancel` share. The guarded `cancel_requested` transition (a pending
 * job is cancelled at once; one at the provider becomes `cancelling`, and a cancel work item
 * follows), then what follows it. Each route answers a refusal in its own API's terms.
 */
import type { Request } from 'express';
import { type ChangeResult, type Job, applyJobEvent } from '@longhaul/db';
import { jobLogFields } from '@longhaul/runtime';
import type { ApiContext } from './context.ts';

/** `details` go on the job event (the admin UI names the admin who cancelled). */
export async function requestCancel(deps: ApiContext, req: Request, job: Job, details?: Record<string, unknown>): Promise<ChangeResult> {
  const now = deps.clock();
  const result = await applyJobEvent(deps.db, job, { type: 'cancel_requested' }, { source: 'api', now, details }, { nextCheckAt: now });
  if (!result.ok) return result;
  if (result.changed) req.log.child(jobLogFields(result.job)).info({ from: result.from, to: result.job.status }, 'cancel requested');
  await deps.jobEffects.afterJobChange(result, { type: 'cancel_requested' }, { logger: req.log });
  return result;
}
