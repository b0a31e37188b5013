/**
 * Pipeline runs (issue 16): the run state machine and the planner. Pure.
 *
 * Design note: a run's status changes only through `runTransition`:
 *
 *   pending ──started──▶ running ──completed──▶ completed
 *      │                    └────failed───────▶ failed
 *      └──cancel_requested──┴─────────────────▶ cancelled        (terminal states are sticky)
 *
 * What a run does next is `planRun`'s answer, computed from scratch from the definition and the
 * run's step jobs as Postgres has them (never from what an earlier advance remembered), so any
 * worker, after any crash, plans the same thing: the step jobs to create now (each step element
 * once: the caller's insert skips one that exists), the jobs to cancel, every step's state, the
 * run's next status and output. Steps are visited in dependency order; a step starts once each of
 * its dependencies completed or failed with `on_failure: "continue"`; a fan-out (`for_each`) keeps
 * at most `concurrency` element jobs running and adds more as they finish. The first step that
 * fails without `continue` fails the run: nothing new is created in that plan, and the run's
 * running jobs are cancelled.
 */
import { type JobError, type JobStatus, isTerminal } from './job-state.ts';
import { dependenciesOf, stepOrder } from './pipeline-definition.ts';
import { type StepResult, type TemplateScope, TemplateError, renderTemplate, resolveReference, wholeReference } from './pipeline-template.ts';
import {
  DEFAULT_FOR_EACH_CONCURRENCY,
  MAX_FOR_EACH_ITEMS,
  type PipelineDefinition,
  RunStatus,
  type RunStepState,
  type StepDefinition,
  StepStatus,
  isTerminalRun,
} from './pipeline.ts';

export type RunEvent =
  | { type: 'started' }
  | { type: 'step_started'; step: string }
  | { type: 'step_completed'; step: string }
  | { type: 'step_failed'; step: string; error: JobError }
  | { type: 'completed' }
  | { type: 'failed'; error: JobError }
  | { type: 'cancel_requested' };

export type RunTransitionResult = { ok: true; status: RunStatus; changed: boolean } | { ok: false; error: { code: 'run_terminal' | 'illegal_transition'; message: string } };

/** Decide a run's next status given an event. */
export function runTransition(run: { status: RunStatus }, event: RunEvent): RunTransitionResult {
  const from = run.status;
  const ok = (status: RunStatus): RunTransitionResult => ({ ok: true, status, changed: status !== from });
  if (isTerminalRun(from)) {
    if (event.type === 'cancel_requested' && from === RunStatus.Cancelled) return ok(from);
    return { ok: false, error: { code: 'run_terminal', message: `the run is already ${from}` } };
  }
  switch (event.type) {
    case 'started':
      return ok(RunStatus.Running);
    case 'step_started':
    case 'step_completed':
    case 'step_failed':
      return ok(from === RunStatus.Pending ? RunStatus.Running : from);
    case 'completed':
      return ok(RunStatus.Completed);
    case 'failed':
      return ok(RunStatus.Failed);
    case 'cancel_requested':
      return ok(RunStatus.Cancelled);
  }
}

/** A step job of the run, as Postgres has it. */
export interface StepJobView {
  step: string;
  item: number;
  jobId: string;
  status: JobStatus;
  outputText: string | null;
  error: JobError | null;
}

export interface RunView {
  status: RunStatus;
  inputs: Record<string, unknown>;
  cancelRequested: boolean;
  jobs: StepJobView[];
  /** The steps' states as last recorded: what changed since is told in the plan's events. */
  previousSteps?: Record<string, RunStepState>;
}

/** A step element's job to create: the job body (what POST /v1/jobs takes) with its text rendered. */
export interface NewStepJob {
  step: string;
  item: number;
  body: Record<string, unknown>;
}

export interface RunPlan {
  status: RunStatus;
  steps: Record<string, RunStepState>;
  create: NewStepJob[];
  cancelJobs: string[];
  output?: unknown;
  error?: JobError | null;
  events: RunEvent[];
}

/** Fields of a step that are the pipeline's, not its job's. */
const PIPELINE_FIELDS = new Set(['name', 'depends_on', 'for_each', 'concurrency', 'on_failure']);

/** A settled step as later steps see it; a step that failed with `continue` reads as null. */
function resultOf(jobs: (StepJobView | undefined)[], fanOut: boolean): StepResult {
  const texts = jobs.map((j) => (j?.status === 'completed' ? (j.outputText ?? '') : null));
  const outputs = texts.map((t) => (t === null ? null : parseJson(t)));
  if (fanOut) return { output_text: texts, output: outputs.map((o) => (o === undefined ? null : o)) };
  return { output_text: texts[0] ?? null, output: texts[0] === null ? null : outputs[0] };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Render every string of a value (a job body's fields) with the scope. */
function renderValue(value: unknown, scope: TemplateScope): unknown {
  if (typeof value === 'string') return renderTemplate(value, scope);
  if (Array.isArray(value)) return value.map((v) => renderValue(v, scope));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderValue(v, scope)]));
  return value;
}

/** The job body of one element of a step: its job fields, the texts (instructions, input, prompt variables) rendered. */
function stepBody(step: StepDefinition, scope: TemplateScope): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(step)) {
    if (PIPELINE_FIELDS.has(key) || value === undefined) continue;
    // Only the texts are templates: a JSON schema's or a tool's strings are left as they are.
    body[key] = key === 'instructions' || key === 'input' || key === 'prompt' ? renderValue(value, scope) : value;
  }
  return body;
}

const stepFailure = (step: string, item: number | null, job: StepJobView): JobError => ({
  code: 'step_failed',
  message: `step ${step}${item === null ? '' : ` (item ${item})`} ${job.status}${job.error ? `: ${job.error.message}` : ''}`,
});

/** What the run does now (see the design note). */
export function planRun(def: PipelineDefinition, run: RunView): RunPlan {
  const order = stepOrder(def);
  const deps = dependenciesOf(def);
  const byName = new Map(def.steps.map((s) => [s.name, s]));
  const jobsByStep = new Map<string, StepJobView[]>();
  for (const job of run.jobs) {
    const list = jobsByStep.get(job.step) ?? [];
    list.push(job);
    jobsByStep.set(job.step, list);
  }
  const stopped = run.cancelRequested || isTerminalRun(run.status);
  const steps: Record<string, RunStepState> = {};
  const results: Record<string, StepResult> = {};
  const create: NewStepJob[] = [];
  let failure: JobError | null = null;

  for (const name of order) {
    const step = byName.get(name)!;
    const jobs = new Map<number, StepJobView>();
    for (const j of jobsByStep.get(name) ?? []) jobs.set(j.item, j);
    const jobIds = [...jobs.values()].sort((a, b) => a.item - b.item).map((j) => j.jobId);
    const fanOut = step.for_each !== undefined;
    const depStates = deps[name]!.map((d) => ({ state: steps[d]!, continues: byName.get(d)!.on_failure === 'continue' }));
    const blocked = depStates.some(
      (d) => d.state.status === StepStatus.Skipped || d.state.status === StepStatus.Cancelled || (d.state.status === StepStatus.Failed && !d.continues),
    );
    const ready = depStates.every((d) => d.state.status === StepStatus.Completed || (d.state.status === StepStatus.Failed && d.continues));
    if (jobs.size === 0 && !ready) {
      steps[name] = { status: blocked || stopped ? StepStatus.Skipped : StepStatus.Waiting, job_ids: [] };
      continue;
    }
    const scope: TemplateScope = { input: run.inputs, steps: results };
    const fail = (error: JobError) => {
      steps[name] = { status: StepStatus.Failed, job_ids: jobIds, error, ...(fanOut ? { items: jobs.size, finished: countFinished(jobs) } : {}) };
      if (step.on_failure === 'continue') results[name] = { output_text: null, output: null };
      else failure ??= error;
    };

    // The elements: one for a plain step; the array's for a fan-out (resolved the same way every time).
    let elements: unknown[] = [undefined];
    if (fanOut) {
      let resolved: unknown;
      try {
        resolved = resolveReference(step.for_each!, scope);
      } catch (err) {
        if (!(err instanceof TemplateError)) throw err;
        fail({ code: 'template_error', message: `step ${name}: ${err.message}` });
        continue;
      }
      if (!Array.isArray(resolved) || resolved.length > MAX_FOR_EACH_ITEMS) {
        const what = Array.isArray(resolved) ? `${resolved.length} elements (at most ${MAX_FOR_EACH_ITEMS})` : `not an array (${resolved === null ? 'null' : typeof resolved})`;
        fail({ code: 'template_error', message: `step ${name}: for_each ${step.for_each} is ${what}` });
        continue;
      }
      elements = resolved;
    }

    let running = 0;
    let finished = 0;
    let firstFailed: StepJobView | undefined;
    for (const job of jobs.values()) {
      if (!isTerminal(job.status)) running++;
      else {
        finished++;
        if (job.status !== 'completed' && (firstFailed === undefined || job.item < firstFailed.item)) firstFailed = job;
      }
    }
    const counts = fanOut ? { items: elements.length, finished } : {};
    if (firstFailed && step.on_failure !== 'continue') {
      fail(stepFailure(name, fanOut ? firstFailed.item : null, firstFailed));
      continue;
    }
    if (!stopped) {
      const slots = (fanOut ? (step.concurrency ?? DEFAULT_FOR_EACH_CONCURRENCY) : 1) - running;
      const newJobs: NewStepJob[] = [];
      try {
        for (let item = 0; item < elements.length && newJobs.length < slots; item++) {
          if (jobs.has(item)) continue;
          newJobs.push({ step: name, item, body: stepBody(step, fanOut ? { ...scope, item: elements[item] } : scope) });
        }
      } catch (err) {
        if (!(err instanceof TemplateError)) throw err;
        fail({ code: 'template_error', message: `step ${name}: ${err.message}` });
        continue;
      }
      create.push(...newJobs);
    }
    if (finished === elements.length) {
      const ordered = elements.map((_, i) => jobs.get(i));
      if (firstFailed) {
        steps[name] = { status: StepStatus.Failed, job_ids: jobIds, error: stepFailure(name, fanOut ? firstFailed.item : null, firstFailed), ...counts };
        results[name] = fanOut ? resultOf(ordered, true) : { output_text: null, output: null };
      } else {
        steps[name] = { status: StepStatus.Completed, job_ids: jobIds, ...counts };
        results[name] = resultOf(ordered, fanOut);
      }
      continue;
    }
    // Unfinished: running (a stopped run marks it cancelled below).
    steps[name] = { status: StepStatus.Running, job_ids: jobIds, ...counts };
  }

  const unfinished = run.jobs.filter((j) => !isTerminal(j.status)).map((j) => j.jobId);
  const events: RunEvent[] = [];
  let status = run.status;
  let output: unknown;
  let error: JobError | null | undefined;
  if (stopped) {
    status = isTerminalRun(run.status) ? run.status : RunStatus.Cancelled;
    for (const [name, state] of Object.entries(steps))
      if (state.status === StepStatus.Running || state.status === StepStatus.Waiting) steps[name] = { ...state, status: StepStatus.Cancelled };
    return { status, steps, create: [], cancelJobs: unfinished, events: stepEvents(steps, run.previousSteps) };
  }
  if (run.status === RunStatus.Pending) {
    events.push({ type: 'started' });
    status = RunStatus.Running;
  }
  if (failure) {
    for (const [name, state] of Object.entries(steps)) if (state.status === StepStatus.Waiting) steps[name] = { ...state, status: StepStatus.Skipped };
    events.push(...stepEvents(steps, run.previousSteps), { type: 'failed', error: failure });
    return { status: RunStatus.Failed, steps, create: [], cancelJobs: unfinished, error: failure, events };
  }
  const done = order.every((name) => steps[name]!.status === StepStatus.Completed || (steps[name]!.status === StepStatus.Failed && byName.get(name)!.on_failure === 'continue'));
  if (done) {
    try {
      output = runOutput(def, order, { input: run.inputs, steps: results });
      status = RunStatus.Completed;
      events.push(...stepEvents(steps, run.previousSteps), { type: 'completed' });
      return { status, steps, create: [], cancelJobs: [], output, error: null, events };
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      error = { code: 'template_error', message: `output: ${err.message}` };
      events.push(...stepEvents(steps, run.previousSteps), { type: 'failed', error });
      return { status: RunStatus.Failed, steps, create: [], cancelJobs: unfinished, error, events };
    }
  }
  events.push(...stepEvents(steps, run.previousSteps));
  return { status, steps, create, cancelJobs: [], events };
}

function countFinished(jobs: Map<number, StepJobView>): number {
  let n = 0;
  for (const j of jobs.values()) if (isTerminal(j.status)) n++;
  return n;
}

/** The run's output: the definition's `output` (a reference, text with references, or an object of them), else the last step's output text. */
function runOutput(def: PipelineDefinition, order: string[], scope: TemplateScope): unknown {
  const one = (text: string) => (wholeReference(text) ? resolveReference(text, scope) : renderTemplate(text, scope));
  if (def.output === undefined) return scope.steps[order.at(-1)!]?.output_text ?? null;
  if (typeof def.output === 'string') return one(def.output);
  return Object.fromEntries(Object.entries(def.output).map(([k, v]) => [k, one(v)]));
}

/** Steps whose status differs from what was recorded: started, completed, failed. */
function stepEvents(steps: Record<string, RunStepState>, previous: Record<string, RunStepState> | undefined): RunEvent[] {
  const events: RunEvent[] = [];
  for (const [step, state] of Object.entries(steps)) {
    const before = previous?.[step]?.status;
    if (before === state.status) continue;
    const wasStarted = before !== undefined && before !== StepStatus.Waiting;
    if (!wasStarted && state.job_ids.length > 0) events.push({ type: 'step_started', step });
    if (state.status === StepStatus.Completed) events.push({ type: 'step_completed', step });
    if (state.status === StepStatus.Failed) events.push({ type: 'step_failed', step, error: state.error ?? { code: 'step_failed', message: `step ${step} failed` } });
  }
  return events;
}
