/**
 * Advancing a pipeline run: the worker's `runs` work item, caused by the run's creation, a step
 * job's end (job-effects.ts), a cancel, or the sweeper finding the run overdue.
 *
 * In one transaction with the run's row locked (@longhaul/db pipelines.ts `withLockedRun`): the
 * core plans the run from its definition and its step jobs (@longhaul/core pipeline-run.ts
 * `planRun`), the step jobs that may start are inserted (one per step element: a retried advance
 * creates none twice), and the run's new state, events and callbacks are written. Then, after
 * commit, what follows outside Postgres: the new jobs go to the fair queue like any job
 * (`afterJobChange`), and the jobs of a run that ended early are cancelled. A crash after commit
 * leaves pending jobs the sweeper dispatches and a run whose next check (RUN_CHECK_MS) brings
 * another advance, which cancels what is left.
 */
import { type JobError, type NewStepJob, RunStatus, ValidationError, estimateInputTokens, isTerminal, planRun } from '@longhaul/core';
import { type Database, type Job, type PipelineRun, applyJobEvent, getJob, getPipelineVersion, insertStepJobs, newJobRow, withLockedRun, writeRunChange } from '@longhaul/db';
import { type Logger, jobLogFields } from '@longhaul/runtime';
import type { JobEffects } from './job-effects.ts';
import { applyPrompt } from './prompt-rendering.ts';

/** How long an active run may go without an advance before the sweeper advances it (its jobs' ends normally do). */
export const RUN_CHECK_MS = 5 * 60_000;

export interface RunAdvanceDeps {
  db: Database;
  jobEffects: JobEffects;
  logger: Logger;
  clock: () => Date;
  /** A step job's deadline from its creation (JOB_DEADLINE_SECONDS). */
  jobDeadlineMs: number;
}

export interface RunAdvanced {
  run: PipelineRun;
  created: Job[];
  cancelled: number;
}

/** Advance a run; null when it does not exist. */
export async function advanceRun(deps: RunAdvanceDeps, runId: string): Promise<RunAdvanced | null> {
  const { db, clock } = deps;
  const now = clock();
  const outcome = await withLockedRun(db, runId, async (tx, run, jobs) => {
    const version = await getPipelineVersion(tx as unknown as Database, run.tenantId, run.pipelineId, run.pipelineVersion);
    if (!version) throw new Error(`pipeline ${run.pipelineId} version ${run.pipelineVersion} of run ${run.id} does not exist`);
    const view = {
      status: run.status,
      inputs: run.inputs,
      cancelRequested: run.cancelRequestedAt !== null,
      previousSteps: run.steps,
      jobs: jobs.map((j) => ({ step: j.step, item: j.item, jobId: j.id, status: j.status, outputText: j.outputText, error: j.error })),
    };
    let plan = planRun(version.definition, view);
    let rows: Job[] = [];
    try {
      rows = await Promise.all(plan.create.map((step) => stepJobRow(tx as unknown as Database, run, step, now, deps.jobDeadlineMs)));
    } catch (err) {
      // A step's job cannot be made (its prompt is gone, a rendered request is refused): the run fails, naming it.
      if (!(err instanceof StepJobError)) throw err;
      plan = { ...plan, create: [], status: RunStatus.Failed, error: err.jobError, cancelJobs: jobs.filter((j) => !isTerminal(j.status)).map((j) => j.id) };
    }
    const created = await insertStepJobs(tx, rows);
    if (created.length > 0) {
      // The steps as they stand with the jobs just created (their ids, and that they started).
      const withCreated = [...view.jobs, ...created.map((j) => ({ step: j.runStep!, item: j.runItem!, jobId: j.id, status: j.status, outputText: null, error: null }))];
      const settled = planRun(version.definition, { ...view, jobs: withCreated });
      plan = { ...plan, steps: settled.steps, events: settled.events };
    }
    // The run's own changes are recorded as its status event (writeRunChange); the steps' here.
    const events = plan.events.filter((e) => e.type.startsWith('step_')).map(({ type, ...rest }) => ({ details: { kind: type, ...rest } }));
    const updated =
      plan.status === run.status && events.length === 0 && JSON.stringify(plan.steps) === JSON.stringify(run.steps)
        ? run
        : await writeRunChange(
            tx,
            run,
            { status: plan.status, steps: plan.steps, output: plan.output, error: plan.error, nextCheckAt: new Date(now.getTime() + RUN_CHECK_MS), events },
            now,
          );
    return { run: updated, created, cancelJobs: plan.cancelJobs };
  });
  if (!outcome) return null;
  const log = deps.logger.child({ run_id: runId, tenant_id: outcome.run.tenantId });
  if (outcome.run.status !== RunStatus.Pending) log.info({ status: outcome.run.status, created: outcome.created.length, cancelling: outcome.cancelJobs.length }, 'run advanced');
  for (const job of outcome.created) {
    await deps.jobEffects.afterJobChange({ ok: true, changed: true, job }, { type: 'created' }, { logger: log.child(jobLogFields(job)) });
  }
  let cancelled = 0;
  for (const jobId of outcome.cancelJobs) if (await cancelStepJob(deps, jobId, outcome.run, log)) cancelled += 1;
  return { run: outcome.run, created: outcome.created, cancelled };
}

class StepJobError extends Error {
  constructor(readonly jobError: JobError) {
    super(jobError.message);
  }
}

/** The row of a step's job: the rendered body as a job request (a Longhaul prompt rendered, as the API does). */
async function stepJobRow(db: Database, run: PipelineRun, step: NewStepJob, now: Date, deadlineMs: number): Promise<Job> {
  const { fallbacks, validate, metadata, prompt, ...params } = step.body as Record<string, unknown> & { metadata?: Record<string, string> };
  let providerParams: Record<string, unknown> = params;
  let promptId: string | null = null;
  let promptVersion: number | null = null;
  if (prompt !== undefined) {
    try {
      const rendered = await applyPrompt(db, run.tenantId, { ...params, prompt });
      providerParams = rendered.params;
      promptId = rendered.promptId;
      promptVersion = rendered.promptVersion;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new StepJobError({ code: err instanceof ValidationError ? 'invalid_step' : 'step_prompt_not_found', message: `step ${step.step}: ${message}` });
    }
  }
  const model = providerParams.model;
  if (typeof model !== 'string' || model.length === 0) {
    throw new StepJobError({ code: 'invalid_step', message: `step ${step.step} has no model (give it, or a prompt that sets one)` });
  }
  return newJobRow(
    {
      tenantId: run.tenantId,
      model,
      request: providerParams,
      metadata: { ...(metadata ?? {}) },
      callbackUrl: null,
      deadlineAt: new Date(now.getTime() + deadlineMs),
      promptId,
      promptVersion,
      estimatedInputTokens: estimateInputTokens(providerParams, {}),
      fallbacks: (fallbacks as Job['fallbacks']) ?? null,
      validation: (validate as Job['validation']) ?? null,
      runId: run.id,
      runStep: step.step,
      runItem: step.item,
    },
    now,
  );
}

/** Cancel a step job of a run that ended early (the guarded `cancel_requested`, then what follows it). */
async function cancelStepJob(deps: RunAdvanceDeps, jobId: string, run: PipelineRun, log: Logger): Promise<boolean> {
  const job = await getJob(deps.db, jobId);
  if (!job || isTerminal(job.status)) return false;
  const now = deps.clock();
  const result = await applyJobEvent(deps.db, job, { type: 'cancel_requested' }, { source: 'run', now, details: { run_id: run.id, run_status: run.status } }, { nextCheckAt: now });
  await deps.jobEffects.afterJobChange(result, { type: 'cancel_requested' }, { logger: log.child(jobLogFields(job)) });
  return result.ok && result.changed;
}
