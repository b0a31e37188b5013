/**
 * A tenant's answers to a job waiting in `requires_action` (issue 15): `POST /v1/jobs/{id}/tool_outputs`
 * and `POST /v1/jobs/{id}/approvals`. Checked and recorded by @longhaul/engine `recordAnswers`,
 * the path a job's tool executor's outputs take too (the first answer to a turn wins: a tenant may
 * answer a turn its executor is also working on); a refusal becomes the API's error here.
 */
import type { Request } from 'express';
import { type AnswerProblem, ConflictError, type LonghaulError, PayloadTooLargeError, ValidationError } from '@longhaul/core';
import type { Job } from '@longhaul/db';
import { type Answers, recordAnswers } from '@longhaul/engine';
import type { ApiContext } from './context.ts';

/** A refused answer as the API's error: 400 naming the parameter, 409, or 413. */
function problemError({ status, code, message, param }: AnswerProblem): LonghaulError {
  if (status === 409) return new ConflictError(message, code);
  if (status === 413) return new PayloadTooLargeError(message, param, code);
  return new ValidationError(message, param, code);
}

/** Record the answers; the job as it is now (`pending` for its next turn, or still waiting for the other kind). */
export async function submitAnswers(ctx: ApiContext, req: Request, job: Job, answers: Answers): Promise<Job> {
  const recorded = await recordAnswers(ctx, job, answers, { source: 'api', now: ctx.clock(), logger: req.log });
  if (!recorded.ok) throw problemError(recorded.problem);
  return recorded.job;
}
