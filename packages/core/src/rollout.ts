/**
 * Gradual rollouts of a prompt version (issue 18): the definition's checks, the traffic split of
 * each step, the decision taken on live metrics, and the rollout's state machine. Pure.
 *
 * Design note: a rollout moves the jobs that name no version from the prompt's current version
 * (the baseline) to a candidate version, step by step (`steps: [5, 25, 50, 100]`: the candidate's
 * share in percent, in the prompts.ts traffic-split format). Its status changes only through
 * `rolloutTransition`:
 *
 *   running ──decided(advance)──▶ running       (the next step; its measurement starts now)
 *   running ──decided(complete)─▶ completed     (the 100% step passed: the candidate becomes current)
 *   running ──decided(rollback)─▶ rolled_back   (a guard breached: all traffic back to the baseline)
 *   running ──paused──▶ paused ──resumed──▶ running   (traffic holds while paused; the step is measured afresh)
 *   running | paused ──aborted──▶ aborted       (all traffic back to the baseline)
 *
 * Terminal states are sticky. What a running rollout does next is `rolloutDecision`'s answer,
 * computed from the state, the definition and the two versions' metrics since the step started,
 * so any worker decides the same thing; every decision carries the figures it was taken on, for
 * the caller to record with it.
 *
 * The rules a step is judged by:
 *   - Sample size: guards are judged once the candidate has `min_jobs_per_step` finished jobs in
 *     the step. The baseline it is compared with must have as many: its own jobs in the step, or,
 *     when it has fewer (the 100% step gives it none), its figures from the last step in which it
 *     had enough (`baselineReference`, kept by the transition that advanced past that step).
 *   - Early rollback (the one rule judged before the sample is complete): failures and incomplete
 *     jobs only ever add up, so when the candidate's count of either, divided by
 *     `min_jobs_per_step`, already exceeds the baseline's rate by more than the guard allows, a
 *     sample of that size cannot pass either, and the rollout rolls back at once: a broken candidate at 50%
 *     of the traffic is not left to fail a whole sample. Its breaches say `early: true`.
 *   - Comparisons: a figure equal to its limit passes (within 1e-9: 5/100 − 2/100 is not above 0.03).
 *     Failure (incomplete) rate increase = candidate rate − baseline rate, as a fraction (0.02 is two
 *     points). Cost ratio = candidate mean cost per job / baseline mean cost per job; when the
 *     baseline's mean is 0 the ratio is 1 if the candidate's is 0 too, and unbounded (recorded as
 *     null, always a breach) otherwise. The validator pass rate (only with
 *     `min_validator_pass_rate`) is the candidate's own, over its jobs whose output was validated,
 *     judged once `min_jobs_per_step` of them were.
 */
import { assertNever } from './job-state.ts';
import type { PromptTrafficSplit } from './prompts.ts';

export const RolloutStatus = {
  Running: 'running',
  Paused: 'paused',
  Completed: 'completed',
  RolledBack: 'rolled_back',
  Aborted: 'aborted',
} as const;
export type RolloutStatus = (typeof RolloutStatus)[keyof typeof RolloutStatus];
export const ROLLOUT_STATUSES = Object.values(RolloutStatus) as [RolloutStatus, ...RolloutStatus[]];
export const TERMINAL_ROLLOUT_STATUSES: readonly RolloutStatus[] = [RolloutStatus.Completed, RolloutStatus.RolledBack, RolloutStatus.Aborted];

export function isTerminalRollout(status: RolloutStatus): boolean {
  return TERMINAL_ROLLOUT_STATUSES.includes(status);
}

/** The limits a step's candidate metrics are held to, against the baseline's. Rates are fractions in [0, 1]. */
export interface RolloutGuard {
  /** Candidate failure rate − baseline failure rate: 0.02 allows two points more. */
  max_failure_rate_increase: number;
  /** Candidate incomplete rate − baseline incomplete rate. */
  max_incomplete_rate_increase: number;
  /** Candidate mean cost per job / baseline mean cost per job: 1.2 allows 20% more. */
  max_cost_ratio: number;
  /** The candidate's share of validated outputs that passed `validate` (its own, not relative). */
  min_validator_pass_rate?: number;
}

/** `POST /v1/prompts/{id}/rollout`'s body, as the API receives it. */
export interface RolloutDefinition {
  candidate_version: number;
  /** The candidate's share of traffic at each step, in percent: strictly increasing integers ending at 100. */
  steps: number[];
  /** Finished candidate jobs a step needs before it is judged (and as many baseline jobs to compare with). */
  min_jobs_per_step: number;
  guard: RolloutGuard;
}

/** What the definition check needs of the prompt (its row, @longhaul/db `Prompt`). */
export interface RolloutPromptView {
  currentVersion: number;
  latestVersion: number;
}

export interface RolloutProblem {
  message: string;
  /** Where, within the body: `steps[2]`, `guard.max_cost_ratio`. */
  param: string;
  code: 'invalid_value' | 'prompt_version_not_found' | 'rollout_candidate_is_current';
}

/**
 * A version's jobs in the current step: those created since `stepStartedAt` that have finished,
 * without the ones their client cancelled (not the version's doing). `failed` is expected to
 * count expired jobs too.
 */
export interface VersionMetrics {
  jobs: number;
  failed: number;
  incomplete: number;
  /** The jobs' summed cost. */
  costUsd: number;
  /** Jobs whose output was checked by a `validate`, and how many of them passed. */
  validatorChecked?: number;
  validatorPassed?: number;
}

export interface RolloutState {
  status: RolloutStatus;
  /** Index into the definition's `steps`. */
  stepIndex: number;
  /** When the step's measurement began: its start, or the last resume. */
  stepStartedAt: Date;
  candidateVersion: number;
  baselineVersion: number;
  /** The baseline's metrics in the last passed step where it had `min_jobs_per_step` jobs (see the design note). */
  baselineReference: VersionMetrics | null;
}

/** A version's metrics with the figures derived from them (null: no jobs to divide by). */
export interface VersionFigures extends VersionMetrics {
  version: number;
  failureRate: number | null;
  incompleteRate: number | null;
  meanCostUsd: number | null;
  validatorPassRate: number | null;
}

/** What a decision was taken on. */
export interface RolloutFigures {
  stepIndex: number;
  /** The candidate's share of traffic in the step, in percent. */
  percent: number;
  /** How long the step had been measured when the decision was taken. */
  stepSeconds: number;
  minJobsPerStep: number;
  candidate: VersionFigures;
  /** The baseline's jobs in this step. */
  baseline: VersionFigures;
  /** The baseline figures the guards were judged against: this step's, an earlier step's, or none yet. */
  comparedWith: 'step' | 'reference' | null;
  /** The earlier step's baseline figures, when `comparedWith` is `reference`. */
  reference: VersionFigures | null;
  failureRateIncrease: number | null;
  incompleteRateIncrease: number | null;
  /** Null when there is nothing to compare, or when it is unbounded (the baseline's mean cost is 0, the candidate's is not). */
  costRatio: number | null;
}

export interface RolloutBreach {
  guard: keyof RolloutGuard;
  limit: number;
  /** The figure held to the limit: a rate increase, a cost ratio (null: unbounded), a pass rate. */
  measured: number | null;
  /** The candidate's rate, mean cost or pass rate (for an early breach: its count over `min_jobs_per_step`). */
  candidate: number;
  /** The baseline's (null for the pass rate, which is not compared). */
  baseline: number | null;
  /** Judged before the candidate had `min_jobs_per_step` jobs (the early rule). */
  early: boolean;
}

export type RolloutWaitReason = 'paused' | 'finished' | 'too_few_jobs' | 'too_few_baseline_jobs' | 'too_few_validator_results';

export type RolloutDecision =
  | { kind: 'wait'; reason: RolloutWaitReason; message: string; figures: RolloutFigures }
  | { kind: 'advance'; toStep: number; figures: RolloutFigures }
  | { kind: 'complete'; figures: RolloutFigures }
  | { kind: 'rollback'; breaches: RolloutBreach[]; figures: RolloutFigures };

const EPSILON = 1e-9;
const RATE_GUARDS = ['max_failure_rate_increase', 'max_incomplete_rate_increase', 'min_validator_pass_rate'] as const;

/** The first problem of a definition for this prompt (beyond its shape, which the API's schema checks), or null. */
export function checkRolloutDefinition(def: RolloutDefinition, prompt: RolloutPromptView): RolloutProblem | null {
  const invalid = (param: string, message: string): RolloutProblem => ({ param, message, code: 'invalid_value' });
  const candidate = def.candidate_version;
  if (!Number.isInteger(candidate) || candidate < 1 || candidate > prompt.latestVersion) {
    return {
      param: 'candidate_version',
      message: `Version ${candidate} does not exist (this prompt has versions 1 to ${prompt.latestVersion}).`,
      code: 'prompt_version_not_found',
    };
  }
  if (candidate === prompt.currentVersion) {
    return { param: 'candidate_version', message: `Version ${candidate} is already the current version: roll out another one.`, code: 'rollout_candidate_is_current' };
  }
  if (!Array.isArray(def.steps) || def.steps.length === 0) return invalid('steps', 'A rollout needs at least one step.');
  for (const [i, step] of def.steps.entries()) {
    if (!Number.isInteger(step) || step < 1 || step > 100) return invalid(`steps[${i}]`, `A step is a whole percentage from 1 to 100, not ${step}.`);
    if (i > 0 && step <= def.steps[i - 1]!) return invalid(`steps[${i}]`, `Steps increase strictly: ${step} follows ${def.steps[i - 1]}.`);
  }
  if (def.steps.at(-1) !== 100) return invalid(`steps[${def.steps.length - 1}]`, 'The last step is 100: a rollout ends with all traffic on the candidate.');
  // At 100% the baseline gets no jobs; without an earlier step there is nothing to compare with.
  if (def.steps.length === 1)
    return invalid('steps', 'A rollout needs a step below 100 to compare the candidate with the current version (set current_version to switch at once).');
  if (!Number.isInteger(def.min_jobs_per_step) || def.min_jobs_per_step < 1) {
    return invalid('min_jobs_per_step', `min_jobs_per_step is a whole number of at least 1, not ${def.min_jobs_per_step}.`);
  }
  for (const name of ['max_failure_rate_increase', 'max_incomplete_rate_increase', 'max_cost_ratio', 'min_validator_pass_rate'] as const) {
    const value = def.guard[name];
    if (value === undefined && name === 'min_validator_pass_rate') continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return invalid(`guard.${name}`, `guard.${name} is a number of at least 0, not ${value}.`);
    // A rate written in percent (5 for 5%) would be a guard that can never trip.
    if ((RATE_GUARDS as readonly string[]).includes(name) && value > 1) {
      return invalid(`guard.${name}`, `guard.${name} is a fraction from 0 to 1 (0.05 is 5 points), not ${value}.`);
    }
  }
  return null;
}

/** A running rollout's first state: step 0, the prompt's current version as the baseline. */
export function startRollout(def: RolloutDefinition, prompt: RolloutPromptView, now: Date): RolloutState {
  return {
    status: RolloutStatus.Running,
    stepIndex: 0,
    stepStartedAt: now,
    candidateVersion: def.candidate_version,
    baselineVersion: prompt.currentVersion,
    baselineReference: null,
  };
}

/**
 * How the prompt routes jobs that name no version, as its `current_version` and `traffic` take
 * it: while the rollout runs (or is paused) the baseline stays current and the split gives the
 * candidate the step's share; once it completed the candidate is current, once it rolled back or
 * was aborted the baseline is, and the split is removed either way.
 */
export function rolloutRouting(state: RolloutState, def: RolloutDefinition): { currentVersion: number; traffic: PromptTrafficSplit[] | null } {
  switch (state.status) {
    case RolloutStatus.Running:
    case RolloutStatus.Paused: {
      const percent = def.steps[state.stepIndex]!;
      return {
        currentVersion: state.baselineVersion,
        traffic: [
          { version: state.baselineVersion, weight: 100 - percent },
          { version: state.candidateVersion, weight: percent },
        ],
      };
    }
    case RolloutStatus.Completed:
      return { currentVersion: state.candidateVersion, traffic: null };
    case RolloutStatus.RolledBack:
    case RolloutStatus.Aborted:
      return { currentVersion: state.baselineVersion, traffic: null };
    default:
      return assertNever(state.status);
  }
}

const ratio = (part: number, whole: number): number | null => (whole > 0 ? part / whole : null);

function figuresOf(version: number, m: VersionMetrics): VersionFigures {
  return {
    version,
    ...m,
    failureRate: ratio(m.failed, m.jobs),
    incompleteRate: ratio(m.incomplete, m.jobs),
    meanCostUsd: ratio(m.costUsd, m.jobs),
    validatorPassRate: ratio(m.validatorPassed ?? 0, m.validatorChecked ?? 0),
  };
}

const difference = (a: number | null, b: number | null): number | null => (a === null || b === null ? null : a - b);

/** Candidate mean / baseline mean, with the zero-baseline rule of the design note (undefined: unbounded). */
function costRatioOf(candidate: number | null, baseline: number | null): number | null | undefined {
  if (candidate === null || baseline === null) return null;
  if (baseline > 0) return candidate / baseline;
  return candidate > 0 ? undefined : 1;
}

/** What to do with the rollout now (see the design note for the rules). */
export function rolloutDecision(state: RolloutState, def: RolloutDefinition, metrics: { baseline: VersionMetrics; candidate: VersionMetrics }, now: Date): RolloutDecision {
  const min = def.min_jobs_per_step;
  const candidate = figuresOf(state.candidateVersion, metrics.candidate);
  const baseline = figuresOf(state.baselineVersion, metrics.baseline);
  const reference = metrics.baseline.jobs < min && state.baselineReference ? figuresOf(state.baselineVersion, state.baselineReference) : null;
  const compared = metrics.baseline.jobs >= min ? baseline : reference;
  const cost = costRatioOf(candidate.meanCostUsd, compared?.meanCostUsd ?? null);
  const figures: RolloutFigures = {
    stepIndex: state.stepIndex,
    percent: def.steps[state.stepIndex]!,
    stepSeconds: Math.max(0, Math.floor((now.getTime() - state.stepStartedAt.getTime()) / 1000)),
    minJobsPerStep: min,
    candidate,
    baseline,
    comparedWith: compared === null ? null : compared === baseline ? 'step' : 'reference',
    reference,
    failureRateIncrease: difference(candidate.failureRate, compared?.failureRate ?? null),
    incompleteRateIncrease: difference(candidate.incompleteRate, compared?.incompleteRate ?? null),
    costRatio: cost ?? null,
  };
  const wait = (reason: RolloutWaitReason, message: string): RolloutDecision => ({ kind: 'wait', reason, message, figures });

  if (state.status === RolloutStatus.Paused) return wait('paused', 'The rollout is paused.');
  if (isTerminalRollout(state.status)) return wait('finished', `The rollout is ${state.status}.`);

  const guard = def.guard;
  const rateBreaches = (early: boolean): RolloutBreach[] => {
    if (compared === null) return [];
    const breaches: RolloutBreach[] = [];
    const rates = [
      { name: 'max_failure_rate_increase' as const, count: candidate.failed, baselineRate: compared.failureRate! },
      { name: 'max_incomplete_rate_increase' as const, count: candidate.incomplete, baselineRate: compared.incompleteRate! },
    ];
    for (const { name, count, baselineRate } of rates) {
      // Before the sample is complete, the rate it will have is at least count / min.
      const rate = count / (early ? min : candidate.jobs);
      const increase = rate - baselineRate;
      if (increase > guard[name] + EPSILON) breaches.push({ guard: name, limit: guard[name], measured: increase, candidate: rate, baseline: baselineRate, early });
    }
    return breaches;
  };

  if (candidate.jobs < min) {
    const early = rateBreaches(true);
    if (early.length > 0) return { kind: 'rollback', breaches: early, figures };
    return wait('too_few_jobs', `The candidate has ${candidate.jobs} of the ${min} jobs a step needs.`);
  }
  if (compared === null) return wait('too_few_baseline_jobs', `The current version has ${baseline.jobs} of the ${min} jobs to compare with.`);

  const breaches = rateBreaches(false);
  if (cost === undefined || (cost !== null && cost > guard.max_cost_ratio + EPSILON)) {
    breaches.push({
      guard: 'max_cost_ratio',
      limit: guard.max_cost_ratio,
      measured: cost ?? null,
      candidate: candidate.meanCostUsd!,
      baseline: compared.meanCostUsd,
      early: false,
    });
  }
  const minPass = guard.min_validator_pass_rate;
  const checked = candidate.validatorChecked ?? 0;
  if (minPass !== undefined && checked >= min && candidate.validatorPassRate! < minPass - EPSILON) {
    breaches.push({
      guard: 'min_validator_pass_rate',
      limit: minPass,
      measured: candidate.validatorPassRate,
      candidate: candidate.validatorPassRate!,
      baseline: null,
      early: false,
    });
  }
  if (breaches.length > 0) return { kind: 'rollback', breaches, figures };
  if (minPass !== undefined && checked < min) return wait('too_few_validator_results', `${checked} of the candidate's jobs were validated; the pass rate is judged on ${min}.`);
  if (state.stepIndex === def.steps.length - 1) return { kind: 'complete', figures };
  return { kind: 'advance', toStep: state.stepIndex + 1, figures };
}

export type RolloutEvent = { type: 'decided'; decision: RolloutDecision } | { type: 'paused' } | { type: 'resumed' } | { type: 'aborted' };

export type RolloutTransitionResult =
  | { ok: true; next: RolloutState; changed: boolean }
  | { ok: false; error: { code: 'rollout_finished' | 'rollout_not_running' | 'rollout_not_paused' | 'stale_decision'; message: string } };

/** The rollout's next state given an event (the diagram in the design note); `now` starts a step's measurement. */
export function rolloutTransition(state: RolloutState, event: RolloutEvent, now: Date): RolloutTransitionResult {
  const from = state.status;
  const ok = (next: RolloutState): RolloutTransitionResult => ({ ok: true, next, changed: next !== state });
  const refuse = (code: 'rollout_finished' | 'rollout_not_running' | 'rollout_not_paused' | 'stale_decision', message: string): RolloutTransitionResult => ({
    ok: false,
    error: { code, message },
  });
  if (isTerminalRollout(from)) {
    // A repeated abort is harmless; nothing else moves a finished rollout.
    if (event.type === 'aborted' && from === RolloutStatus.Aborted) return ok(state);
    return refuse('rollout_finished', `The rollout is already ${from}.`);
  }
  switch (event.type) {
    case 'paused':
      return ok(from === RolloutStatus.Paused ? state : { ...state, status: RolloutStatus.Paused });
    case 'resumed':
      if (from !== RolloutStatus.Paused) return refuse('rollout_not_paused', `Only a paused rollout resumes; this one is ${from}.`);
      // Whatever happened while paused (often the reason for pausing) is not judged: the step is measured afresh.
      return ok({ ...state, status: RolloutStatus.Running, stepStartedAt: now });
    case 'aborted':
      return ok({ ...state, status: RolloutStatus.Aborted });
    case 'decided': {
      const decision = event.decision;
      if (decision.kind === 'wait') return ok(state);
      if (from !== RolloutStatus.Running) return refuse('rollout_not_running', `The rollout is ${from}: decisions apply to a running rollout only.`);
      // Taken on another step's figures (another worker applied a decision first): not applied.
      if (decision.figures.stepIndex !== state.stepIndex) {
        return refuse('stale_decision', `The decision was taken at step ${decision.figures.stepIndex}; the rollout is at step ${state.stepIndex}.`);
      }
      switch (decision.kind) {
        case 'advance': {
          const { figures } = decision;
          const baselineReference = figures.comparedWith === 'step' ? baselineMetrics(figures.baseline) : state.baselineReference;
          return ok({ ...state, stepIndex: decision.toStep, stepStartedAt: now, baselineReference });
        }
        case 'complete':
          return ok({ ...state, status: RolloutStatus.Completed });
        case 'rollback':
          return ok({ ...state, status: RolloutStatus.RolledBack });
        default:
          return assertNever(decision);
      }
    }
    default:
      return assertNever(event);
  }
}

/** The raw metrics of a version's figures (what the state keeps). */
function baselineMetrics(f: VersionFigures): VersionMetrics {
  const m: VersionMetrics = { jobs: f.jobs, failed: f.failed, incomplete: f.incomplete, costUsd: f.costUsd };
  if (f.validatorChecked !== undefined) m.validatorChecked = f.validatorChecked;
  if (f.validatorPassed !== undefined) m.validatorPassed = f.validatorPassed;
  return m;
}
