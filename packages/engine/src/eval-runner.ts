/**
 * The evaluation runner: one tick of an eval, run by the worker's eval loop for every eval that
 * is due (created, one of its jobs ended, or its safety-net check came round).
 *
 * In one transaction with the eval's row locked (@longhaul/db evals.ts `withLockedEval`, skip
 * locked: a second worker leaves it to the first): the results whose answer job ended are graded
 * (the deterministic graders here, @longhaul/core graders.ts; the model graders as jobs of their
 * own, graded when those end), the core plans what starts next under the eval's concurrency cap
 * (eval-run.ts `planEvalTick`), the new jobs are inserted with `eval_id` set, and the eval
 * finishes when every result is done. After commit the new jobs go to the fair queue like any
 * job (`afterJobChange`), where `eval_id` puts them in the tenant's low lane: production traffic
 * is taken first. A crash after commit leaves pending jobs the sweeper dispatches; a crash before
 * it leaves nothing, and the next tick does the same work again.
 *
 * A cancelled eval gets one more tick, which cancels its jobs still running (the guarded
 * `cancel_requested`, as for a pipeline run's jobs).
 */
import {
  type EvalResultKey,
  EvalResultStatus,
  EventSource,
  type Grade,
  type GradedItem,
  type GraderDefinition,
  type JobError,
  JobStatus,
  type PromptTemplate,
  composePromptRequest,
  estimateInputTokens,
  failedGrades,
  gradeOutput,
  isTerminal,
  modelGraderRequest,
  parseModelGrade,
  planEvalTick,
  promptCacheKey,
  renderPromptTemplate,
} from '@longhaul/core';
import {
  type Database,
  type DatasetItem,
  type Eval,
  type EvalJobView,
  type EvalResult,
  type EvalResultChange,
  type Job,
  type PromptVersion,
  applyJobEvent,
  checkJsonSchema,
  getDatasetItems,
  getJob,
  getPromptVersion,
  insertJobRows,
  newJobRow,
  setEvalNextCheck,
  updateEvalResults,
  withLockedEval,
  writeEvalStatus,
} from '@longhaul/db';
import { type Logger, jobLogFields } from '@longhaul/runtime';
import type { JobEffects } from './job-effects.ts';

/** How long a running eval may go without a tick before its safety-net check (its jobs' ends normally tick it). */
export const EVAL_CHECK_MS = 30_000;

export interface EvalRunnerDeps {
  db: Database;
  jobEffects: JobEffects;
  logger: Logger;
  clock: () => Date;
  /** A job's deadline from its creation (JOB_DEADLINE_SECONDS). */
  jobDeadlineMs: number;
}

export interface EvalTickReport {
  started: number;
  graded: number;
  finished: boolean;
  cancelled: number;
}

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];
const keyOf = (r: EvalResultKey): EvalResultKey => ({ version: r.version, itemIndex: r.itemIndex, repeat: r.repeat });
const keyString = (r: EvalResultKey) => `${r.version}:${r.itemIndex}:${r.repeat}`;

/** One tick of an eval; null when it does not exist or another worker is ticking it. */
export async function tickEval(deps: EvalRunnerDeps, evalId: string): Promise<EvalTickReport | null> {
  const now = deps.clock();
  const outcome = await withLockedEval(deps.db, evalId, async (tx, locked) => {
    const row = locked.eval;
    if (row.status === 'cancelled') {
      await setEvalNextCheck(tx, row.id, null, now);
      const jobIds = locked.active.flatMap((r) => [r.jobId, ...(r.graderJobIds ?? [])]).filter((id): id is string => typeof id === 'string');
      return { created: [] as Job[], cancel: jobIds.filter((id) => !isTerminal(locked.jobs.get(id)?.status as JobStatus)), report: { started: 0, graded: 0, finished: false } };
    }
    if (row.status !== 'running') {
      await setEvalNextCheck(tx, row.id, null, now);
      return { created: [], cancel: [], report: { started: 0, graded: 0, finished: false } };
    }
    const versions = await loadVersions(tx, row);
    const changes: { key: EvalResultKey; change: EvalResultChange }[] = [];
    const created: Job[] = [];
    let graded = 0;
    const statusOf = new Map(locked.statuses.map((r) => [keyString(r), r.status]));

    // The items graded or started now: the oldest in-flight ones and the next few, a narrow range.
    const pendingKeys = locked.statuses.filter((r) => r.status === EvalResultStatus.Pending);
    const wanted = [...locked.active.map((r) => r.itemIndex), ...pendingKeys.slice(0, row.concurrency).map((r) => r.itemIndex)];
    const items = await loadItems(tx, row, wanted);

    for (const result of locked.active) {
      const item = items.get(result.itemIndex);
      const step = advanceResult(row, result, { expected: item?.expected ?? undefined, variables: item?.variables }, locked.jobs, now, deps.jobDeadlineMs);
      if (!step) continue;
      changes.push({ key: keyOf(result), change: step.change });
      created.push(...step.jobs);
      statusOf.set(keyString(result), step.change.status!);
      if (step.change.status === EvalResultStatus.Done || step.change.status === EvalResultStatus.Error) graded += 1;
    }

    const plan = planEvalTick(
      [...statusOf].map(([key, status]) => {
        const [version, itemIndex, repeat] = key.split(':').map(Number) as [number, number, number];
        return { version, itemIndex, repeat, status };
      }),
      row.concurrency,
    );
    if (plan.start.length > 0) {
      const missing = plan.start.map((k) => k.itemIndex).filter((i) => !items.has(i));
      for (const [index, item] of await loadItems(tx, row, missing)) items.set(index, item);
      for (const key of plan.start) {
        const item = items.get(key.itemIndex);
        const version = versions.get(key.version);
        const answer =
          item && version
            ? answerJob(row, version, item.variables, key, now, deps.jobDeadlineMs)
            : { error: { code: 'eval_item_missing', message: `dataset item ${key.itemIndex} or prompt version ${key.version} is gone` } };
        if ('error' in answer) {
          changes.push({ key, change: { status: EvalResultStatus.Error, error: answer.error, grades: failedGrades(row.graders, answer.error.message) } });
          continue;
        }
        created.push(answer.job);
        changes.push({ key, change: { status: EvalResultStatus.Running, jobId: answer.job.id } });
      }
    }
    await insertJobRows(tx, created, 'eval', (j) => ({ eval_id: row.id, ...(j.metadata ?? {}) }));
    await updateEvalResults(tx, row.id, changes, now);
    let finished = false;
    if (plan.finished) {
      const written = await writeEvalStatus(tx, row, { type: 'finished' }, now);
      finished = written.ok && written.changed;
    } else {
      await setEvalNextCheck(tx, row.id, new Date(now.getTime() + EVAL_CHECK_MS), now);
    }
    return { created, cancel: [] as string[], report: { started: plan.start.length, graded, finished } };
  });
  if (!outcome) return null;
  const log = deps.logger.child({ eval_id: evalId });
  for (const job of outcome.created) {
    await deps.jobEffects.afterJobChange({ ok: true, changed: true, job }, { type: 'created' }, { logger: log.child(jobLogFields(job)) });
  }
  let cancelled = 0;
  for (const jobId of outcome.cancel) if (await cancelEvalJob(deps, jobId, evalId, log)) cancelled += 1;
  if (outcome.report.finished) log.info({ code: 'eval_finished' }, 'eval finished');
  return { ...outcome.report, cancelled };
}

/** The dataset items at `indexes` (read as one range: the indexes a tick needs lie close together). */
async function loadItems(tx: Tx, row: Eval, indexes: readonly number[]): Promise<Map<number, DatasetItem>> {
  if (indexes.length === 0) return new Map();
  const first = Math.min(...indexes);
  const last = Math.max(...indexes);
  const rows = await getDatasetItems(tx as unknown as Database, row.tenantId, row.datasetId, row.datasetVersion, { offset: first, limit: last - first + 1 });
  return new Map(rows.map((i) => [i.index, i]));
}

/** The prompt versions the eval runs, read once per tick. */
async function loadVersions(tx: Tx, row: Eval): Promise<Map<number, PromptVersion>> {
  const out = new Map<number, PromptVersion>();
  for (const v of row.versions) {
    const version = await getPromptVersion(tx as unknown as Database, row.tenantId, row.promptId, v);
    if (version) out.set(v, version);
  }
  return out;
}

/**
 * The job answering one item with one version: the version's template rendered with the item's
 * variables (those the version uses: versions may differ in what they ask for), as a job naming
 * that version would send it.
 */
function answerJob(row: Eval, version: PromptVersion, variables: Record<string, string>, key: EvalResultKey, now: Date, deadlineMs: number): { job: Job } | { error: JobError } {
  const used = Object.fromEntries(Object.entries(variables).filter(([name]) => version.variables.includes(name)));
  const rendered = renderPromptTemplate(version.template as PromptTemplate, used);
  if (!rendered.ok) return { error: { code: rendered.error.code, message: rendered.error.message } };
  const params = composePromptRequest(rendered.value, {}, promptCacheKey(row.promptId, version.version));
  const model = params.model;
  if (typeof model !== 'string' || model.length === 0) return { error: { code: 'invalid_prompt', message: `prompt version ${version.version} sets no model` } };
  return {
    job: evalJob(row, model, params, { eval_item: String(key.itemIndex), eval_version: String(key.version), eval_repeat: String(key.repeat) }, now, deadlineMs, version.version),
  };
}

function evalJob(row: Eval, model: string, request: Record<string, unknown>, metadata: Record<string, string>, now: Date, deadlineMs: number, promptVersion: number | null): Job {
  return newJobRow(
    {
      tenantId: row.tenantId,
      model,
      request,
      metadata: { eval_id: row.id, ...metadata },
      callbackUrl: null,
      deadlineAt: new Date(now.getTime() + deadlineMs),
      promptId: promptVersion === null ? null : row.promptId,
      promptVersion,
      estimatedInputTokens: estimateInputTokens(request, {}),
      evalId: row.id,
    },
    now,
  );
}

/**
 * What an in-flight result becomes now that its jobs may have ended: graded (done), in error,
 * waiting for its model graders (with their jobs), or unchanged (null).
 */
function advanceResult(
  row: Eval,
  result: EvalResult,
  item: GradedItem,
  jobs: Map<string, EvalJobView>,
  now: Date,
  deadlineMs: number,
): { change: EvalResultChange; jobs: Job[] } | null {
  const answer = result.jobId ? jobs.get(result.jobId) : undefined;
  if (!answer || !isTerminal(answer.status as JobStatus)) return null;
  const figures = answerFigures(answer);
  if (answer.status !== JobStatus.Completed) {
    const error = answer.error ?? { code: `job_${answer.status}`, message: `the answer job ended ${answer.status}` };
    return { change: { status: EvalResultStatus.Error, error, grades: failedGrades(row.graders, error.message), ...figures }, jobs: [] };
  }
  const output = answer.outputText ?? '';
  if (result.status === EvalResultStatus.Running) {
    const grades = row.graders.map((g): Grade | null => (g.type === 'model' ? null : gradeOutput(g, item, output, { schemaCheck: checkJsonSchema })));
    const graderJobs = row.graders.map((g) => (g.type === 'model' ? graderJob(row, g, result, item, output, now, deadlineMs) : null));
    const created = graderJobs.filter((j): j is Job => j !== null);
    if (created.length === 0) return { change: { status: EvalResultStatus.Done, grades, ...figures }, jobs: [] };
    return { change: { status: EvalResultStatus.Grading, grades, graderJobIds: graderJobs.map((j) => j?.id ?? null), ...figures }, jobs: created };
  }
  // Grading: done once every model grader's job has ended.
  const graderIds = result.graderJobIds ?? [];
  const ended = graderIds.map((id) => (id ? jobs.get(id) : undefined));
  if (ended.some((j, i) => graderIds[i] && (!j || !isTerminal(j.status as JobStatus)))) return null;
  let graderCost = 0;
  const grades = row.graders.map((g, i): Grade => {
    const job = ended[i];
    if (g.type !== 'model' || !job) return (result.grades ?? [])[i] ?? { score: 0, pass: false, detail: 'not graded' };
    graderCost += job.costUsd ?? 0;
    if (job.status !== JobStatus.Completed) return { score: 0, pass: false, detail: `the grader job ended ${job.status}` };
    return parseModelGrade(job.outputText, g.threshold);
  });
  return {
    change: { status: EvalResultStatus.Done, grades, graderCostUsd: graderCost, costUsd: (result.costUsd ?? 0) + graderCost },
    jobs: [],
  };
}

function answerFigures(job: EvalJobView): EvalResultChange {
  return {
    inputTokens: job.usage?.input_tokens ?? null,
    outputTokens: job.usage?.output_tokens ?? null,
    costUsd: job.costUsd ?? 0,
    latencyMs: job.finishedAt ? job.finishedAt.getTime() - job.createdAt.getTime() : null,
  };
}

function graderJob(row: Eval, grader: Extract<GraderDefinition, { type: 'model' }>, result: EvalResult, item: GradedItem, output: string, now: Date, deadlineMs: number): Job {
  const request = modelGraderRequest(grader, item, output);
  return evalJob(row, grader.model, request, { eval_item: String(result.itemIndex), eval_version: String(result.version), eval_grader: 'model' }, now, deadlineMs, null);
}

/** Cancel a job of a cancelled eval (the guarded `cancel_requested`, then what follows it). */
async function cancelEvalJob(deps: EvalRunnerDeps, jobId: string, evalId: string, log: Logger): Promise<boolean> {
  const job = await getJob(deps.db, jobId);
  if (!job || isTerminal(job.status)) return false;
  const now = deps.clock();
  const result = await applyJobEvent(deps.db, job, { type: 'cancel_requested' }, { source: EventSource.Eval, now, details: { eval_id: evalId } }, { nextCheckAt: now });
  await deps.jobEffects.afterJobChange(result, { type: 'cancel_requested' }, { logger: log.child(jobLogFields(job)) });
  return result.ok && result.changed;
}
