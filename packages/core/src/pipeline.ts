/**
 * Pipelines (issue 16): the vocabulary of a pipeline definition and of its runs. Pure.
 *
 * Design note: a pipeline version is an immutable JSON definition of steps; a run executes one
 * version against its inputs. Each step is a job template; its text may refer to the run's
 * inputs and to earlier steps' results with `{{…}}` references (pipeline-template.ts), and a
 * step with `for_each` fans out into one job per element of an array. A run's state lives in
 * Postgres (the run's row and its steps' jobs, each job tagged with its run, step and item), and
 * changes only through `runTransition` (pipeline-run.ts), in the transaction that records it;
 * what a run does next (start steps, finish) is decided by `planRun`, from the definition and its
 * jobs' outcomes, so a worker that dies anywhere leaves a run any other worker can advance.
 */

export const RunStatus = {
  Pending: 'pending',
  Running: 'running',
  Completed: 'completed',
  Failed: 'failed',
  Cancelled: 'cancelled',
} as const;
export type RunStatus = (typeof RunStatus)[keyof typeof RunStatus];
export const RUN_STATUSES = Object.values(RunStatus) as [RunStatus, ...RunStatus[]];
export const TERMINAL_RUN_STATUSES: readonly RunStatus[] = [RunStatus.Completed, RunStatus.Failed, RunStatus.Cancelled];

/** A step's status within a run. `waiting`: its dependencies have not all finished yet. */
export const StepStatus = {
  Waiting: 'waiting',
  Running: 'running',
  Completed: 'completed',
  Failed: 'failed',
  /** Not run: the run failed or was cancelled first, or a dependency failed (with `on_failure: continue` upstream, dependents still run). */
  Skipped: 'skipped',
  Cancelled: 'cancelled',
} as const;
export type StepStatus = (typeof StepStatus)[keyof typeof StepStatus];

/**
 * One step of a definition: a job template. String fields may hold `{{…}}` references;
 * `input` may also be an array of input items whose text parts hold them.
 */
export interface StepDefinition {
  /** Unique within the pipeline: `[a-z][a-z0-9_]{0,63}`. */
  name: string;
  model?: string;
  instructions?: string;
  input?: string | unknown[];
  reasoning?: Record<string, unknown>;
  text?: Record<string, unknown>;
  tools?: unknown[];
  max_output_tokens?: number;
  /** A Longhaul prompt (`prm_…`), optionally a version, with variables (values may hold references). */
  prompt?: { id: string; version?: number; variables?: Record<string, string> };
  /** Steps that must finish first (references to other steps add their own dependencies too). */
  depends_on?: string[];
  /** `{{steps.<name>.output.<field>}}` naming an array: one job per element, `{{item}}` inside. */
  for_each?: string;
  /** The most jobs of a fan-out running at once (default 4). */
  concurrency?: number;
  /** `fail` (default): the step's failure fails the run; `continue`: the run goes on, the step's output is null. */
  on_failure?: 'fail' | 'continue';
  /** Fallbacks and validation for the step's jobs (fallbacks.ts). */
  fallbacks?: unknown[];
  validate?: Record<string, unknown>;
  metadata?: Record<string, string>;
}

export interface PipelineDefinition {
  steps: StepDefinition[];
  /** What the run returns: a reference (`{{steps.compile.output_text}}`) or an object of them. */
  output?: string | Record<string, string>;
  /** JSON Schema of the run's inputs (optional): runs with other inputs are a 400. */
  inputs_schema?: Record<string, unknown>;
}

export function isTerminalRun(status: RunStatus): boolean {
  return TERMINAL_RUN_STATUSES.includes(status);
}

/** A step's state within a run, as the run shows it (recomputed by every advance: pipeline-run.ts). */
export interface RunStepState {
  status: StepStatus;
  /** Its jobs, in element order. */
  job_ids: string[];
  /** For a fan-out: how many elements, and how many of them have finished. */
  items?: number;
  finished?: number;
  error?: { code: string; message: string } | null;
}

/** A fan-out's default concurrency, and the most a step may ask for / elements it may have. */
export const DEFAULT_FOR_EACH_CONCURRENCY = 4;
export const MAX_FOR_EACH_CONCURRENCY = 100;
export const MAX_FOR_EACH_ITEMS = 1000;
export const MAX_PIPELINE_STEPS = 50;
