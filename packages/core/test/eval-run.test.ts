import { describe, expect, it } from 'vitest';
import { type EvalResultFigures, type EvalResultView, EvalStatus, evalTransition, failedGrades, planEvalTick, resultScore, seedOf, summarizeEval } from '../src/index.ts';

describe('evalTransition', () => {
  it('finishes, cancels and fails a running eval; terminal statuses are sticky', () => {
    expect(evalTransition(EvalStatus.Running, { type: 'finished' })).toEqual({ ok: true, next: 'completed', changed: true });
    expect(evalTransition(EvalStatus.Running, { type: 'cancelled' })).toEqual({ ok: true, next: 'cancelled', changed: true });
    expect(evalTransition(EvalStatus.Running, { type: 'failed' })).toEqual({ ok: true, next: 'failed', changed: true });
    expect(evalTransition(EvalStatus.Cancelled, { type: 'cancelled' })).toEqual({ ok: true, next: 'cancelled', changed: false });
    for (const from of [EvalStatus.Completed, EvalStatus.Failed]) {
      expect(evalTransition(from, { type: 'cancelled' })).toMatchObject({ ok: false, error: { code: 'eval_finished' } });
    }
    expect(evalTransition(EvalStatus.Cancelled, { type: 'finished' })).toMatchObject({ ok: false });
  });
});

describe('planEvalTick', () => {
  const view = (version: number, itemIndex: number, status: EvalResultView['status'], repeat = 0): EvalResultView => ({ version, itemIndex, repeat, status });

  it('starts the oldest items first with the versions interleaved, up to the concurrency cap', () => {
    const results = [view(2, 1, 'pending'), view(1, 1, 'pending'), view(2, 0, 'pending'), view(1, 0, 'pending'), view(1, 2, 'pending')];
    expect(planEvalTick(results, 3)).toEqual({
      start: [
        { version: 1, itemIndex: 0, repeat: 0 },
        { version: 2, itemIndex: 0, repeat: 0 },
        { version: 1, itemIndex: 1, repeat: 0 },
      ],
      finished: false,
    });
  });

  it('counts running and grading results against the cap', () => {
    const results = [view(1, 0, 'running'), view(2, 0, 'grading'), view(1, 1, 'pending'), view(2, 1, 'pending')];
    expect(planEvalTick(results, 3).start).toEqual([{ version: 1, itemIndex: 1, repeat: 0 }]);
    expect(planEvalTick(results, 2).start).toEqual([]);
  });

  it('is finished when every result is done or in error, not before', () => {
    expect(planEvalTick([view(1, 0, 'done'), view(2, 0, 'error')], 4)).toEqual({ start: [], finished: true });
    expect(planEvalTick([view(1, 0, 'done'), view(2, 0, 'running')], 4)).toEqual({ start: [], finished: false });
  });
});

describe('summarizeEval', () => {
  const grade = (score: number, threshold = 0.5) => ({ score, pass: score >= threshold });
  const result = (version: number, itemIndex: number, scores: number[] | null, extra: Partial<EvalResultFigures> = {}): EvalResultFigures => ({
    version,
    itemIndex,
    repeat: 0,
    status: scores === null ? 'error' : 'done',
    grades: scores === null ? failedGrades([{ type: 'exact' }, { type: 'contains' }], 'job failed') : scores.map((s) => grade(s)),
    costUsd: 0.01,
    latencyMs: 1000 + itemIndex,
    inputTokens: 10,
    outputTokens: 5,
    ...extra,
  });

  it('gives per-version grader means, pass rates with intervals, costs, latencies and the score distribution', () => {
    const graders = [{ type: 'exact' as const }, { type: 'contains' as const }];
    const results = [result(1, 0, [1, 1]), result(1, 1, [0, 1]), result(1, 2, null), result(2, 0, [1, 1]), result(2, 1, [1, 1]), result(2, 2, [1, 0])];
    const summary = summarizeEval([1, 2], graders, results, seedOf('eval_x'));
    const [v1, v2] = summary.versions;
    expect(v1).toMatchObject({ version: 1, results: 3, finished: 3, errors: 1, meanScore: 0.5 });
    expect(v1!.graders.map((g) => g.meanScore)).toEqual([1 / 3, 2 / 3]);
    expect(v1!.passRate.rate).toBeCloseTo(1 / 3);
    expect(v1!.passRate.low!).toBeLessThan(1 / 3);
    expect(v1!.passRate.high!).toBeGreaterThan(1 / 3);
    expect(v1!.costUsd.total).toBeCloseTo(0.03);
    // Latency is measured on completed answers only: the failed job's is not an answer's.
    expect(v1!.latencyMs).toEqual({ p50: 1000, p95: 1001, p99: 1001 });
    expect(v1!.histogram).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
    expect(v2!.passRate.rate).toBeCloseTo(2 / 3);
    expect(summary.comparisons).toHaveLength(1);
    expect(summary.comparisons[0]).toMatchObject({ a: 1, b: 2, comparison: { n: 3, wins: 2, losses: 0, ties: 1 } });
  });

  it('finds a clear winner significant, with a repeatable interval', () => {
    const graders = [{ type: 'exact' as const }];
    const results: EvalResultFigures[] = [];
    for (let i = 0; i < 60; i++) {
      results.push(result(1, i, [i % 3 === 0 ? 1 : 0]));
      results.push(result(3, i, [1]));
    }
    const summary = summarizeEval([1, 3], graders, results, 7);
    expect(summary.comparisons[0]!.comparison).toMatchObject({ wins: 40, losses: 0, significant: true });
    // The same seed gives the same interval on every read.
    expect(summarizeEval([1, 3], graders, results, 7).comparisons[0]!.comparison.interval).toEqual(summary.comparisons[0]!.comparison.interval);
  });

  it('leaves ungraded results out of the scores', () => {
    expect(resultScore([grade(1), null])).toBeNull();
    const summary = summarizeEval([1], [{ type: 'exact' }], [result(1, 0, [1], { status: 'grading', grades: [null] })], 1);
    expect(summary.versions[0]).toMatchObject({ finished: 0, meanScore: null, passRate: { rate: null } });
  });
});
