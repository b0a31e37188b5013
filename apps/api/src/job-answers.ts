/**
 * A tenant's answers to a job waiting in `requires_action` (issue 15): `POST /v1/jobs/{id}/tool_outputs`
 * and `POST /v1/jobs/{id}/approvals`. The answers are checked against the turn's calls by the pure
 * rules of @longhaul/core tool-loop.ts; once every kind the turn asked for is answered, the guarded
 * `tool_outputs_submitted` transition moves the job to `pending` for its next turn (a submit work
 * item follows, as for a new job), with the answers kept on its `required_action` until that turn
 * is created. A turn that asked for both kinds keeps the first kind's answers until the second.
 */
import type { Request } from 'express';
import {
  type AnswerProblem,
  type AnswerResult,
  type Approval,
  ConflictError,
  JobStatus,
  type LonghaulError,
  PayloadTooLargeError,
  type RequiredAction,
  type ToolOutput,
  ValidationError,
  answerApprovals,
  answerToolOutputs,
  isAnswered,
} from '@longhaul/core';
import { type Job, applyJobEvent, changeJobState } from '@longhaul/db';
import { jobLogFields } from '@longhaul/runtime';
import type { ApiContext } from './context.ts';

export type Answers = { kind: 'tool_outputs'; tool_outputs: ToolOutput[] } | { kind: 'approvals'; approvals: Approval[] };

/** A refused answer as the API's error: 400 naming the parameter, 409, or 413. */
function problemError({ status, code, message, param }: AnswerProblem): LonghaulError {
  if (status === 409) return new ConflictError(message, code);
  if (status === 413) return new PayloadTooLargeError(message, param, code);
  return new ValidationError(message, param, code);
}

function answer(action: RequiredAction, answers: Answers): AnswerResult {
  return answers.kind === 'tool_outputs' ? answerToolOutputs(action, answers.tool_outputs) : answerApprovals(action, answers.approvals);
}

/** Record the answers; the job as it is now (`pending` for its next turn, or still waiting for the other kind). */
export async function submitAnswers(ctx: ApiContext, req: Request, job: Job, answers: Answers): Promise<Job> {
  if (job.status !== JobStatus.RequiresAction || !job.requiredAction) {
    throw new ConflictError(
      `Job ${job.id} is ${job.status}, not requires_action: it is not waiting for ${answers.kind === 'tool_outputs' ? 'tool outputs' : 'approvals'}.`,
      'job_not_requires_action',
    );
  }
  const checked = answer(job.requiredAction, answers);
  if (!checked.ok) throw problemError(checked.problem);
  const now = ctx.clock();
  const action = checked.action;
  const result = isAnswered(action)
    ? // The next turn: its submit attempts are counted afresh (a crash's duplicate create shows up per turn).
      await applyJobEvent(
        ctx.db,
        job,
        { type: 'tool_outputs_submitted' },
        { source: 'api', now, details: { turn: job.turn } },
        { requiredAction: action, turn: job.turn + 1, submitAttempts: 0, nextCheckAt: now },
      )
    : // The other kind is still to come: the answers are kept, the status stays.
      await changeJobState(ctx.db, job, { source: 'api', now }, (current) =>
        current.status === JobStatus.RequiresAction && current.turn === job.turn
          ? { ok: true, status: current.status, changed: false, fields: { requiredAction: action } }
          : { ok: false, error: { code: 'illegal_transition', message: `job is ${current.status}` } },
      );
  if (!result.ok || !result.job) {
    throw new ConflictError(`Job ${job.id} changed while its answers were recorded (it is ${result.job?.status ?? 'gone'}).`, 'job_not_requires_action');
  }
  const log = req.log.child(jobLogFields(result.job));
  if (result.changed) {
    log.info({ turn: job.turn, answered: answers.kind }, 'tool outputs submitted: next turn');
    await ctx.jobEffects.afterJobChange(result, { type: 'tool_outputs_submitted' }, { logger: req.log });
  } else log.info({ turn: job.turn, answered: answers.kind }, 'answers recorded: the turn waits for the rest');
  return result.job;
}
