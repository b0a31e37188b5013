/**
 * Evaluation runs (issue 18): an eval's and its results' states, what a tick of the runner does
 * next, and the summary `GET /v1/evals/{id}` shows. Pure.
 *
 * Design note: an eval runs every dataset item against every version of a prompt, `repeats`
 * times: one *result* per (version, item, repeat), each answered by one Longhaul job (at the low
 * admission lane, so production traffic goes first) and graded by every grader. Its status
 * changes only through `evalTransition`:
 *
 *   running ──finished──▶ completed      (every result done or in error)
 *   running ──cancelled─▶ cancelled      (its unfinished jobs are cancelled; results stay as they are)
 *   running ──failed────▶ failed         (it cannot go on: its prompt or dataset is gone)
 *
 * A result moves pending → running (its job created) → grading (model graders' jobs created,
 * only when it has model graders) → done, or to error when its job did not complete (the job's
 * error kept; every grade 0 and failed, so a version that fails is not flattered by leaving its
 * failures out). `planEvalTick` decides what a tick does with the results as they stand: which
 * pending ones start (oldest items first, the versions interleaved so a cancelled eval still
 * compares like with like, never more than `concurrency` jobs in flight) and whether the eval
 * is finished. The runner (@longhaul/engine eval-runner.ts) does the IO.
 */
import { compareVersions, mean, passRateInterval, percentile, type VersionComparison } from './eval-stats.ts';
import type { Grade, GraderDefinition } from './graders.ts';
import { assertNever } from './job-state.ts';

export const EvalStatus = {
  Running: 'running',
  Completed: 'completed',
  Cancelled: 'cancelled',
  Failed: 'failed',
} as const;
export type EvalStatus = (typeof EvalStatus)[keyof typeof EvalStatus];
export const EVAL_STATUSES = Object.values(EvalStatus) as [EvalStatus, ...EvalStatus[]];
export const TERMINAL_EVAL_STATUSES: readonly EvalStatus[] = [EvalStatus.Completed, EvalStatus.Cancelled, EvalStatus.Failed];

export function isTerminalEval(status: EvalStatus): boolean {
  return TERMINAL_EVAL_STATUSES.includes(status);
}

export const EvalResultStatus = {
  Pending: 'pending',
  Running: 'running',
  Grading: 'grading',
  Done: 'done',
  Error: 'error',
} as const;
export type EvalResultStatus = (typeof EvalResultStatus)[keyof typeof EvalResultStatus];

export function isFinishedResult(status: EvalResultStatus): boolean {
  return status === EvalResultStatus.Done || status === EvalResultStatus.Error;
}

export type EvalEvent = { type: 'finished' } | { type: 'cancelled' } | { type: 'failed' };

export type EvalTransitionResult = { ok: true; next: EvalStatus; changed: boolean } | { ok: false; error: { code: 'eval_finished'; message: string } };

/** The eval's next status (the diagram in the design note); terminal statuses are sticky. */
export function evalTransition(status: EvalStatus, event: EvalEvent): EvalTransitionResult {
  if (isTerminalEval(status)) {
    // A repeated cancel is harmless; nothing else moves a finished eval.
    if (event.type === 'cancelled' && status === EvalStatus.Cancelled) return { ok: true, next: status, changed: false };
    return { ok: false, error: { code: 'eval_finished', message: `The eval is already ${status}.` } };
  }
  switch (event.type) {
    case 'finished':
      return { ok: true, next: EvalStatus.Completed, changed: true };
    case 'cancelled':
      return { ok: true, next: EvalStatus.Cancelled, changed: true };
    case 'failed':
      return { ok: true, next: EvalStatus.Failed, changed: true };
    default:
      return assertNever(event);
  }
}

/** A result's key: which version answered which item, which time. */
export interface EvalResultKey {
  version: number;
  itemIndex: number;
  repeat: number;
}

/** What a tick needs of a result. */
export interface EvalResultView extends EvalResultKey {
  status: EvalResultStatus;
}

export interface EvalTickPlan {
  /** Pending results to start now, in order. */
  start: EvalResultKey[];
  /** Every result is done or in error: the eval is finished. */
  finished: boolean;
}

/**
 * What a tick starts: pending results, oldest item first and the versions interleaved, up to
 * `concurrency` results in flight (running or grading) in all.
 */
export function planEvalTick(results: readonly EvalResultView[], concurrency: number): EvalTickPlan {
  let inFlight = 0;
  const pending: EvalResultView[] = [];
  for (const r of results) {
    if (r.status === EvalResultStatus.Running || r.status === EvalResultStatus.Grading) inFlight += 1;
    else if (r.status === EvalResultStatus.Pending) pending.push(r);
  }
  if (inFlight === 0 && pending.length === 0) return { start: [], finished: true };
  pending.sort((x, y) => x.itemIndex - y.itemIndex || x.repeat - y.repeat || x.version - y.version);
  const room = Math.max(0, concurrency - inFlight);
  return { start: pending.slice(0, room).map(({ version, itemIndex, repeat }) => ({ version, itemIndex, repeat })), finished: false };
}

/** The grade every grader gives a result whose job did not complete. */
export function failedGrades(graders: readonly GraderDefinition[], reason: string): Grade[] {
  return graders.map(() => ({ score: 0, pass: false, detail: reason }));
}

/** A finished result, as the summary reads it. */
export interface EvalResultFigures extends EvalResultKey {
  status: EvalResultStatus;
  /** One grade per grader (by index); null until graded. */
  grades: (Grade | null)[] | null;
  costUsd: number | null;
  latencyMs: number | null;
  inputTokens: number | null;
  outputTokens: number | null;
}

export interface GraderSummary {
  index: number;
  type: GraderDefinition['type'];
  meanScore: number | null;
  passRate: { rate: number | null; low: number | null; high: number | null };
}

export interface VersionSummary {
  version: number;
  results: number;
  finished: number;
  errors: number;
  graders: GraderSummary[];
  /** The share of finished results every grader passed, with its 95% Wilson interval. */
  passRate: { rate: number | null; low: number | null; high: number | null };
  /** The mean over finished results of their mean grader score. */
  meanScore: number | null;
  costUsd: { total: number; mean: number | null };
  latencyMs: { p50: number | null; p95: number | null; p99: number | null };
  tokens: { input: number; output: number };
  /** How many finished results scored each tenth of [0, 1] (the last bucket holds 1.0): the distribution the admin chart draws. */
  histogram: number[];
}

export interface EvalComparison {
  /** The baseline (the first version listed) and the version compared with it. */
  a: number;
  b: number;
  /** Compared on items both versions finished, each item's score the mean over its repeats. */
  comparison: VersionComparison;
}

export interface EvalSummary {
  versions: VersionSummary[];
  comparisons: EvalComparison[];
}

const HISTOGRAM_BUCKETS = 10;

/** A result's score: the mean of its graders' scores. */
export function resultScore(grades: readonly (Grade | null)[] | null): number | null {
  if (!grades || grades.length === 0 || grades.some((g) => g === null)) return null;
  return mean(grades.map((g) => g!.score));
}

function isGraded(r: EvalResultFigures): r is EvalResultFigures & { grades: Grade[] } {
  return isFinishedResult(r.status) && resultScore(r.grades) !== null;
}

/**
 * Per version: mean score and pass rate per grader, the overall pass rate with its interval,
 * cost, latency percentiles, tokens and the score distribution; and every later version compared
 * with the first, item by item (`seed` makes the bootstrap repeatable: the eval's id hashed).
 */
export function summarizeEval(versions: readonly number[], graders: readonly GraderDefinition[], results: readonly EvalResultFigures[], seed: number): EvalSummary {
  const byVersion = new Map<number, EvalResultFigures[]>(versions.map((v) => [v, []]));
  for (const r of results) byVersion.get(r.version)?.push(r);
  const summaries = versions.map((version) => summarizeVersion(version, graders, byVersion.get(version) ?? []));
  const itemScores = new Map(versions.map((v) => [v, meanScorePerItem(byVersion.get(v) ?? [])]));
  const [first, ...rest] = versions;
  const comparisons = rest.map((b) => {
    const scoresA = itemScores.get(first!)!;
    const scoresB = itemScores.get(b)!;
    const pairs: { a: number; b: number }[] = [];
    for (const [item, a] of scoresA) {
      const other = scoresB.get(item);
      if (other !== undefined) pairs.push({ a, b: other });
    }
    return { a: first!, b, comparison: compareVersions(pairs, { seed }) };
  });
  return { versions: summaries, comparisons };
}

function summarizeVersion(version: number, graders: readonly GraderDefinition[], results: readonly EvalResultFigures[]): VersionSummary {
  const graded = results.filter(isGraded);
  const finished = results.filter((r) => isFinishedResult(r.status));
  const costs = finished.map((r) => r.costUsd ?? 0);
  const latencies = finished.filter((r) => r.status === EvalResultStatus.Done && r.latencyMs !== null).map((r) => r.latencyMs!);
  const histogram = new Array<number>(HISTOGRAM_BUCKETS).fill(0);
  for (const r of graded) histogram[Math.min(HISTOGRAM_BUCKETS - 1, Math.floor(resultScore(r.grades)! * HISTOGRAM_BUCKETS))]! += 1;
  const total = costs.reduce((s, c) => s + c, 0);
  return {
    version,
    results: results.length,
    finished: finished.length,
    errors: results.filter((r) => r.status === EvalResultStatus.Error).length,
    graders: graders.map((g, index) => ({
      index,
      type: g.type,
      meanScore: mean(graded.map((r) => r.grades[index]!.score)),
      passRate: passRateInterval(graded.filter((r) => r.grades[index]!.pass).length, graded.length),
    })),
    passRate: passRateInterval(graded.filter((r) => r.grades.every((g) => g?.pass)).length, graded.length),
    meanScore: mean(graded.map((r) => resultScore(r.grades)!)),
    costUsd: { total, mean: mean(costs) },
    latencyMs: { p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95), p99: percentile(latencies, 0.99) },
    tokens: { input: sum(finished.map((r) => r.inputTokens ?? 0)), output: sum(finished.map((r) => r.outputTokens ?? 0)) },
    histogram,
  };
}

/** Each item's score under one version: the mean over its graded repeats. */
function meanScorePerItem(results: readonly EvalResultFigures[]): Map<number, number> {
  const scores = new Map<number, number[]>();
  for (const r of results) {
    if (!isGraded(r)) continue;
    const list = scores.get(r.itemIndex) ?? [];
    list.push(resultScore(r.grades)!);
    scores.set(r.itemIndex, list);
  }
  return new Map([...scores].map(([item, list]) => [item, mean(list)!]));
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

/** A 32-bit seed from an id (FNV-1a), so an eval's bootstrap interval is the same on every read. */
export function seedOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
