/**
 * Recording the answers to a job waiting in `requires_action` (issue 15), whoever gives them: the
 * tenant over the API (`POST /v1/jobs/{id}/tool_outputs`, `/approvals`) or the job's tool
 * executor (the worker's tools processor). One path for both, so the executor's outputs are held to
 * exactly the API's rules.
 *
 * The answers are checked against the turn's calls by the pure rules of @longhaul/core
 * tool-loop.ts; once every kind the turn asked for is answered, the guarded
 * `tool_outputs_submitted` transition moves the job to `pending` for its next turn (a submit work
 * item follows through `afterJobChange`, as for a new job), with the answers kept on its
 * `required_action` until that turn is created. A turn that asked for both kinds keeps the first
 * kind's answers until the second.
 *
 * First answer wins: the tenant may answer a turn that its executor is also answering; whichever
 * is recorded first moves the job, and the other is refused as answered already (409), which the
 * executor's processor logs and drops. The write is guarded by the job's status, so a job
 * cancelled (or expired) meanwhile refuses the answers too.
 */
import {
  type AnswerProblem,
  type AnswerResult,
  type Approval,
  type EventSource,
  JobStatus,
  type RequiredAction,
  type ToolOutput,
  answerApprovals,
  answerToolOutputs,
  isAnswered,
} from '@longhaul/core';
import { type Database, type Job, applyJobEvent, changeJobState } from '@longhaul/db';
import { type Logger, jobLogFields } from '@longhaul/runtime';
import type { JobEffects } from './job-effects.ts';

export type Answers = { kind: 'tool_outputs'; tool_outputs: ToolOutput[] } | { kind: 'approvals'; approvals: Approval[] };

export interface RecordAnswersDeps {
  db: Database;
  jobEffects: JobEffects;
}

export interface RecordAnswersOptions {
  /** Who answers: `api` (the tenant) or `tool_executor`. Recorded on the job's event and turn. */
  source: EventSource;
  now: Date;
  logger: Logger;
  /** Refuse unless the job is at this turn (the executor answers the turn it was sent). */
  turn?: number;
}

export type RecordAnswersResult =
  /** `changed`: the job moved on to its next turn (false: it still waits for the other kind). */
  { ok: true; job: Job; changed: boolean } | { ok: false; problem: AnswerProblem };

const kindName = (answers: Answers) => (answers.kind === 'tool_outputs' ? 'tool outputs' : 'approvals');
const notWaiting = (message: string): RecordAnswersResult => ({ ok: false, problem: { status: 409, code: 'job_not_requires_action', message, param: null } });

function answer(action: RequiredAction, answers: Answers): AnswerResult {
  return answers.kind === 'tool_outputs' ? answerToolOutputs(action, answers.tool_outputs) : answerApprovals(action, answers.approvals);
}

/** Check and record the answers on `job` (read just before); the job as it is now, or what refused them. */
export async function recordAnswers(deps: RecordAnswersDeps, job: Job, answers: Answers, options: RecordAnswersOptions): Promise<RecordAnswersResult> {
  const { db, jobEffects } = deps;
  const { source, now } = options;
  if (job.status !== JobStatus.RequiresAction || !job.requiredAction) {
    return notWaiting(`Job ${job.id} is ${job.status}, not requires_action: it is not waiting for ${kindName(answers)}.`);
  }
  if (options.turn !== undefined && job.turn !== options.turn) return notWaiting(`Job ${job.id} is at turn ${job.turn}, not ${options.turn}.`);
  const checked = answer(job.requiredAction, answers);
  if (!checked.ok) return checked;
  const action = checked.action;
  const result = isAnswered(action)
    ? // The next turn: its submit attempts are counted afresh (a crash's duplicate create shows up per turn).
      await applyJobEvent(
        db,
        job,
        { type: 'tool_outputs_submitted' },
        { source, now, details: { turn: job.turn } },
        { requiredAction: action, turn: job.turn + 1, submitAttempts: 0, nextCheckAt: now },
      )
    : // The other kind is still to come: the answers are kept, the status stays.
      await changeJobState(db, job, { source, now }, (current) =>
        current.status === JobStatus.RequiresAction && current.turn === job.turn
          ? { ok: true, status: current.status, changed: false, fields: { requiredAction: action } }
          : { ok: false, error: { code: 'illegal_transition', message: `job is ${current.status}` } },
      );
  if (!result.ok || !result.job) return notWaiting(`Job ${job.id} changed while its answers were recorded (it is ${result.job?.status ?? 'gone'}).`);
  const log = options.logger.child(jobLogFields(result.job));
  if (result.changed) {
    log.info({ turn: job.turn, answered: answers.kind, source }, 'tool outputs submitted: next turn');
    await jobEffects.afterJobChange(result, { type: 'tool_outputs_submitted' }, { logger: options.logger });
  } else log.info({ turn: job.turn, answered: answers.kind, source }, 'answers recorded: the turn waits for the rest');
  return { ok: true, job: result.job, changed: result.changed };
}
