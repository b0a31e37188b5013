import { describe, expect, it } from 'vitest';
import {
  type RolloutDecision,
  type RolloutDefinition,
  type RolloutState,
  type VersionMetrics,
  checkPromptTraffic,
  checkRolloutDefinition,
  choosePromptVersion,
  isTerminalRollout,
  rolloutDecision,
  rolloutRouting,
  rolloutTransition,
  startRollout,
} from '../src/index.ts';

const T0 = new Date('2026-12-07T10:00:00Z');
const later = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const prompt = { currentVersion: 2, latestVersion: 3 };

const definition = (extra: Partial<RolloutDefinition> = {}): RolloutDefinition => ({
  candidate_version: 3,
  steps: [5, 25, 50, 100],
  min_jobs_per_step: 100,
  guard: { max_failure_rate_increase: 0.02, max_incomplete_rate_increase: 0.01, max_cost_ratio: 1.2 },
  ...extra,
});

const metrics = (jobs: number, extra: Partial<VersionMetrics> = {}): VersionMetrics => ({ jobs, failed: 0, incomplete: 0, costUsd: jobs * 0.01, ...extra });

function apply(state: RolloutState, decision: RolloutDecision, now: Date): RolloutState {
  const result = rolloutTransition(state, { type: 'decided', decision }, now);
  if (!result.ok) throw new Error(`refused: ${result.error.code}`);
  return result.next;
}

describe('checkRolloutDefinition', () => {
  it('accepts a well-formed definition', () => {
    expect(checkRolloutDefinition(definition(), prompt)).toBeNull();
    expect(checkRolloutDefinition(definition({ steps: [50, 100], guard: { ...definition().guard, min_validator_pass_rate: 0.9 } }), prompt)).toBeNull();
  });

  it.each([
    [{ candidate_version: 4 }, 'candidate_version', 'prompt_version_not_found'],
    [{ candidate_version: 0 }, 'candidate_version', 'prompt_version_not_found'],
    [{ candidate_version: 2.5 }, 'candidate_version', 'prompt_version_not_found'],
    [{ candidate_version: 2 }, 'candidate_version', 'rollout_candidate_is_current'],
    [{ steps: [] }, 'steps', 'invalid_value'],
    [{ steps: [100] }, 'steps', 'invalid_value'],
    [{ steps: [0, 100] }, 'steps[0]', 'invalid_value'],
    [{ steps: [5, 12.5, 100] }, 'steps[1]', 'invalid_value'],
    [{ steps: [5, 50, 50, 100] }, 'steps[2]', 'invalid_value'],
    [{ steps: [5, 50, 25, 100] }, 'steps[2]', 'invalid_value'],
    [{ steps: [5, 50, 101] }, 'steps[2]', 'invalid_value'],
    [{ steps: [5, 50] }, 'steps[1]', 'invalid_value'],
    [{ min_jobs_per_step: 0 }, 'min_jobs_per_step', 'invalid_value'],
    [{ min_jobs_per_step: 10.5 }, 'min_jobs_per_step', 'invalid_value'],
    [{ guard: { max_failure_rate_increase: -0.01, max_incomplete_rate_increase: 0, max_cost_ratio: 1 } }, 'guard.max_failure_rate_increase', 'invalid_value'],
    [{ guard: { max_failure_rate_increase: 5, max_incomplete_rate_increase: 0, max_cost_ratio: 1 } }, 'guard.max_failure_rate_increase', 'invalid_value'],
    [{ guard: { max_failure_rate_increase: 0, max_incomplete_rate_increase: Number.NaN, max_cost_ratio: 1 } }, 'guard.max_incomplete_rate_increase', 'invalid_value'],
    [{ guard: { max_failure_rate_increase: 0, max_incomplete_rate_increase: 0, max_cost_ratio: -1 } }, 'guard.max_cost_ratio', 'invalid_value'],
    [
      { guard: { max_failure_rate_increase: 0, max_incomplete_rate_increase: 0, max_cost_ratio: 1, min_validator_pass_rate: 95 } },
      'guard.min_validator_pass_rate',
      'invalid_value',
    ],
  ] as [Partial<RolloutDefinition>, string, string][])('refuses %j, naming %s', (extra, param, code) => {
    const problem = checkRolloutDefinition(definition(extra), prompt);
    expect(problem).toMatchObject({ param, code });
    expect(problem!.message.length).toBeGreaterThan(0);
  });

  it('allows a cost ratio above 1 and a zero increase (no worse than the baseline at all)', () => {
    expect(checkRolloutDefinition(definition({ guard: { max_failure_rate_increase: 0, max_incomplete_rate_increase: 0, max_cost_ratio: 3 } }), prompt)).toBeNull();
  });
});

describe('rolloutRouting', () => {
  it('gives the candidate each step share while running or paused, in a split the prompts accept', () => {
    const def = definition();
    let state = startRollout(def, prompt, T0);
    for (const [stepIndex, percent] of def.steps.entries()) {
      state = { ...state, stepIndex };
      for (const status of ['running', 'paused'] as const) {
        const routing = rolloutRouting({ ...state, status }, def);
        expect(routing).toEqual({
          currentVersion: 2,
          traffic: [
            { version: 2, weight: 100 - percent },
            { version: 3, weight: percent },
          ],
        });
        expect(checkPromptTraffic(routing.traffic!, prompt.latestVersion).ok).toBe(true);
        // The baseline's weight comes first: the lowest draw runs the baseline (unless it has none), the highest the candidate.
        expect(choosePromptVersion(routing.traffic!, 0.999)).toBe(3);
        if (percent < 100) expect(choosePromptVersion(routing.traffic!, 0)).toBe(2);
      }
    }
  });

  it('hands the prompt to the candidate once completed, back to the baseline after a rollback or abort', () => {
    const state = { ...startRollout(definition(), prompt, T0), stepIndex: 3 };
    expect(rolloutRouting({ ...state, status: 'completed' }, definition())).toEqual({ currentVersion: 3, traffic: null });
    expect(rolloutRouting({ ...state, status: 'rolled_back' }, definition())).toEqual({ currentVersion: 2, traffic: null });
    expect(rolloutRouting({ ...state, status: 'aborted' }, definition())).toEqual({ currentVersion: 2, traffic: null });
  });
});

describe('rolloutDecision', () => {
  it('advances through every step with healthy metrics and completes after the 100% step', () => {
    const def = definition();
    let state = startRollout(def, prompt, T0);
    const kinds: string[] = [];
    for (const [i, percent] of def.steps.entries()) {
      const now = later(600 * (i + 1));
      const candidate = metrics(120, { failed: 2, incomplete: 1 });
      // The baseline gets the rest of the traffic: none at all at 100%.
      const baselineJobs = Math.round((120 * (100 - percent)) / percent);
      const baseline = metrics(baselineJobs, { failed: Math.round(baselineJobs * 0.01), incomplete: Math.round(baselineJobs * 0.01) });
      const decision = rolloutDecision(state, def, { baseline, candidate }, now);
      kinds.push(decision.kind);
      expect(decision.figures).toMatchObject({ stepIndex: i, percent, stepSeconds: 600, minJobsPerStep: 100 });
      expect(decision.figures.comparedWith).toBe(percent === 100 ? 'reference' : 'step');
      state = apply(state, decision, now);
      if (decision.kind === 'advance') {
        expect(decision.toStep).toBe(i + 1);
        expect(state).toMatchObject({ status: 'running', stepIndex: i + 1, stepStartedAt: now });
      }
    }
    expect(kinds).toEqual(['advance', 'advance', 'advance', 'complete']);
    expect(state.status).toBe('completed');
    expect(isTerminalRollout(state.status)).toBe(true);
  });

  it('judges the 100% step against the baseline of the last step where it had enough jobs', () => {
    const def = definition();
    let state = { ...startRollout(def, prompt, T0), stepIndex: 2 };
    const at50 = rolloutDecision(state, def, { baseline: metrics(110, { failed: 11 }), candidate: metrics(100, { failed: 12 }) }, later(60));
    expect(at50.kind).toBe('advance');
    state = apply(state, at50, later(60));
    expect(state.baselineReference).toEqual(metrics(110, { failed: 11 }));
    // At 100%: 13% failures against the reference's 10% breaches a 2-point guard.
    const at100 = rolloutDecision(state, def, { baseline: metrics(3), candidate: metrics(100, { failed: 13 }) }, later(120));
    expect(at100.kind).toBe('rollback');
    expect(at100.figures.comparedWith).toBe('reference');
    expect(at100.figures.reference).toMatchObject({ jobs: 110, failureRate: 0.1 });
    expect(at100.figures.baseline).toMatchObject({ jobs: 3 });
    if (at100.kind === 'rollback')
      expect(at100.breaches).toEqual([{ guard: 'max_failure_rate_increase', limit: 0.02, measured: expect.closeTo(0.03, 9), candidate: 0.13, baseline: 0.1, early: false }]);
  });

  it('rolls back on the failure rate increase, with the figures', () => {
    const d = rolloutDecision(startRollout(definition(), prompt, T0), definition(), { baseline: metrics(2000, { failed: 20 }), candidate: metrics(100, { failed: 4 }) }, later(60));
    expect(d.kind).toBe('rollback');
    if (d.kind !== 'rollback') return;
    expect(d.breaches).toEqual([{ guard: 'max_failure_rate_increase', limit: 0.02, measured: expect.closeTo(0.03, 9), candidate: 0.04, baseline: 0.01, early: false }]);
    expect(d.figures.failureRateIncrease).toBeCloseTo(0.03, 9);
    expect(d.figures.candidate).toMatchObject({ version: 3, jobs: 100, failed: 4, failureRate: 0.04 });
    expect(d.figures.baseline).toMatchObject({ version: 2, jobs: 2000, failed: 20, failureRate: 0.01 });
  });

  it('rolls back on the incomplete rate increase', () => {
    const d = rolloutDecision(startRollout(definition(), prompt, T0), definition(), { baseline: metrics(1000), candidate: metrics(200, { incomplete: 3 }) }, later(60));
    expect(d.kind).toBe('rollback');
    if (d.kind === 'rollback') expect(d.breaches).toEqual([{ guard: 'max_incomplete_rate_increase', limit: 0.01, measured: 0.015, candidate: 0.015, baseline: 0, early: false }]);
  });

  it('rolls back on the cost ratio of mean costs', () => {
    const d = rolloutDecision(
      startRollout(definition(), prompt, T0),
      definition(),
      { baseline: metrics(1000, { costUsd: 10 }), candidate: metrics(100, { costUsd: 1.5 }) },
      later(60),
    );
    expect(d.kind).toBe('rollback');
    expect(d.figures.costRatio).toBeCloseTo(1.5, 9);
    if (d.kind === 'rollback')
      expect(d.breaches).toEqual([{ guard: 'max_cost_ratio', limit: 1.2, measured: expect.closeTo(1.5, 9), candidate: 0.015, baseline: 0.01, early: false }]);
  });

  it('rolls back on a validator pass rate below the minimum, and waits until enough outputs were validated', () => {
    const def = definition({ guard: { ...definition().guard, min_validator_pass_rate: 0.95 } });
    const state = startRollout(def, prompt, T0);
    const baseline = metrics(1000, { validatorChecked: 1000, validatorPassed: 990 });
    const failing = rolloutDecision(state, def, { baseline, candidate: metrics(120, { validatorChecked: 110, validatorPassed: 99 }) }, later(60));
    expect(failing.kind).toBe('rollback');
    if (failing.kind === 'rollback')
      expect(failing.breaches).toEqual([{ guard: 'min_validator_pass_rate', limit: 0.95, measured: 0.9, candidate: 0.9, baseline: null, early: false }]);
    const few = rolloutDecision(state, def, { baseline, candidate: metrics(120, { validatorChecked: 99, validatorPassed: 99 }) }, later(60));
    expect(few).toMatchObject({ kind: 'wait', reason: 'too_few_validator_results' });
    const passing = rolloutDecision(state, def, { baseline, candidate: metrics(120, { validatorChecked: 100, validatorPassed: 95 }) }, later(60));
    expect(passing.kind).toBe('advance');
  });

  it('reports every breached guard at once', () => {
    const d = rolloutDecision(
      startRollout(definition(), prompt, T0),
      definition(),
      { baseline: metrics(1000), candidate: metrics(100, { failed: 10, incomplete: 10, costUsd: 5 }) },
      later(60),
    );
    expect(d.kind === 'rollback' && d.breaches.map((b) => b.guard)).toEqual(['max_failure_rate_increase', 'max_incomplete_rate_increase', 'max_cost_ratio']);
  });

  it('lets a figure equal to its limit pass despite floating point', () => {
    // 5/100 - 2/100 is 0.030000000000000002 in floating point.
    expect(5 / 100 - 2 / 100).toBeGreaterThan(0.03);
    const def = definition({ guard: { max_failure_rate_increase: 0.03, max_incomplete_rate_increase: 0, max_cost_ratio: 1 } });
    const d = rolloutDecision(startRollout(def, prompt, T0), def, { baseline: metrics(100, { failed: 2 }), candidate: metrics(100, { failed: 5 }) }, later(60));
    expect(d.kind).toBe('advance');
  });

  it('compares costs with a free baseline: equal when both are free, unbounded (a breach) otherwise', () => {
    const def = definition();
    const state = startRollout(def, prompt, T0);
    const free = rolloutDecision(state, def, { baseline: metrics(1000, { costUsd: 0 }), candidate: metrics(100, { costUsd: 0 }) }, later(60));
    expect(free.kind).toBe('advance');
    expect(free.figures.costRatio).toBe(1);
    const paid = rolloutDecision(state, def, { baseline: metrics(1000, { costUsd: 0 }), candidate: metrics(100, { costUsd: 0.5 }) }, later(60));
    expect(paid.kind).toBe('rollback');
    expect(paid.figures.costRatio).toBeNull();
    if (paid.kind === 'rollback') expect(paid.breaches).toEqual([{ guard: 'max_cost_ratio', limit: 1.2, measured: null, candidate: 0.005, baseline: 0, early: false }]);
  });

  it('waits below min_jobs_per_step even when the figures so far look bad (cost) or good', () => {
    const def = definition();
    const state = startRollout(def, prompt, T0);
    const costly = rolloutDecision(state, def, { baseline: metrics(2000), candidate: metrics(99, { costUsd: 50 }) }, later(60));
    expect(costly).toMatchObject({ kind: 'wait', reason: 'too_few_jobs' });
    expect(costly.figures.candidate.jobs).toBe(99);
    const healthy = rolloutDecision(state, def, { baseline: metrics(2000), candidate: metrics(99) }, later(60));
    expect(healthy).toMatchObject({ kind: 'wait', reason: 'too_few_jobs' });
    expect(rolloutDecision(state, def, { baseline: metrics(0), candidate: metrics(0) }, later(60))).toMatchObject({ kind: 'wait', reason: 'too_few_jobs' });
  });

  it('rolls back early when failures already doom the minimum sample', () => {
    const def = definition();
    const state = startRollout(def, prompt, T0);
    const baseline = metrics(2000, { failed: 20 });
    // 3 failures of 100 would be 3%, one point over the 1% baseline: within the 2-point guard.
    expect(rolloutDecision(state, def, { baseline, candidate: metrics(10, { failed: 3 }) }, later(60))).toMatchObject({ kind: 'wait', reason: 'too_few_jobs' });
    const d = rolloutDecision(state, def, { baseline, candidate: metrics(10, { failed: 4 }) }, later(60));
    expect(d.kind).toBe('rollback');
    if (d.kind === 'rollback')
      expect(d.breaches).toEqual([{ guard: 'max_failure_rate_increase', limit: 0.02, measured: expect.closeTo(0.03, 9), candidate: 0.04, baseline: 0.01, early: true }]);
  });

  it('waits for enough baseline jobs to compare with when no earlier step has them', () => {
    const def = definition({ steps: [80, 100] });
    const state = startRollout(def, prompt, T0);
    const d = rolloutDecision(state, def, { baseline: metrics(30), candidate: metrics(120) }, later(60));
    expect(d).toMatchObject({ kind: 'wait', reason: 'too_few_baseline_jobs' });
    expect(d.figures.comparedWith).toBeNull();
    expect(d.figures.failureRateIncrease).toBeNull();
    expect(rolloutDecision(state, def, { baseline: metrics(100), candidate: metrics(400) }, later(300)).kind).toBe('advance');
  });

  it('decides nothing for a paused or finished rollout, still with the figures', () => {
    const def = definition();
    const state = startRollout(def, prompt, T0);
    const bad = { baseline: metrics(1000), candidate: metrics(100, { failed: 50 }) };
    const paused = rolloutDecision({ ...state, status: 'paused' }, def, bad, later(60));
    expect(paused).toMatchObject({ kind: 'wait', reason: 'paused' });
    expect(paused.figures.failureRateIncrease).toBeCloseTo(0.5, 9);
    for (const status of ['completed', 'rolled_back', 'aborted'] as const)
      expect(rolloutDecision({ ...state, status }, def, bad, later(60))).toMatchObject({ kind: 'wait', reason: 'finished' });
  });

  it('never reports negative step time when the clock is behind the step start', () => {
    const d = rolloutDecision(startRollout(definition(), prompt, T0), definition(), { baseline: metrics(0), candidate: metrics(0) }, later(-5));
    expect(d.figures.stepSeconds).toBe(0);
  });
});

describe('rolloutTransition', () => {
  const def = definition();
  const running = startRollout(def, prompt, T0);
  const healthy = { baseline: metrics(2000), candidate: metrics(100) };

  it('starts running at step 0 with the current version as the baseline', () => {
    expect(running).toEqual({ status: 'running', stepIndex: 0, stepStartedAt: T0, candidateVersion: 3, baselineVersion: 2, baselineReference: null });
  });

  it('pauses a running rollout, pauses again harmlessly, and resumes it with the step measured afresh', () => {
    const paused = rolloutTransition(running, { type: 'paused' }, later(10));
    expect(paused).toMatchObject({ ok: true, changed: true, next: { status: 'paused', stepStartedAt: T0 } });
    const pausedState = (paused as { next: RolloutState }).next;
    expect(rolloutTransition(pausedState, { type: 'paused' }, later(20))).toMatchObject({ ok: true, changed: false });
    const resumed = rolloutTransition(pausedState, { type: 'resumed' }, later(30));
    expect(resumed).toEqual({ ok: true, changed: true, next: { ...running, status: 'running', stepStartedAt: later(30) } });
  });

  it('refuses to resume a rollout that is not paused', () => {
    expect(rolloutTransition(running, { type: 'resumed' }, later(10))).toMatchObject({ ok: false, error: { code: 'rollout_not_paused' } });
  });

  it('aborts a running or paused rollout; a repeated abort changes nothing', () => {
    const aborted = rolloutTransition(running, { type: 'aborted' }, later(10));
    expect(aborted).toMatchObject({ ok: true, changed: true, next: { status: 'aborted' } });
    expect(rolloutTransition({ ...running, status: 'paused' }, { type: 'aborted' }, later(10))).toMatchObject({ ok: true, next: { status: 'aborted' } });
    expect(rolloutTransition((aborted as { next: RolloutState }).next, { type: 'aborted' }, later(20))).toMatchObject({ ok: true, changed: false });
  });

  it('keeps terminal states sticky', () => {
    const decision = rolloutDecision(running, def, healthy, later(60));
    for (const status of ['completed', 'rolled_back', 'aborted'] as const) {
      const finished = { ...running, status };
      for (const event of [{ type: 'paused' }, { type: 'resumed' }, { type: 'decided', decision }] as const) {
        expect(rolloutTransition(finished, event, later(60))).toMatchObject({ ok: false, error: { code: 'rollout_finished' } });
      }
    }
    for (const status of ['completed', 'rolled_back'] as const) {
      expect(rolloutTransition({ ...running, status }, { type: 'aborted' }, later(60))).toMatchObject({ ok: false, error: { code: 'rollout_finished' } });
    }
  });

  it('applies a rollback decision and refuses decisions for a paused rollout', () => {
    const rollback = rolloutDecision(running, def, { baseline: metrics(2000), candidate: metrics(100, { failed: 30 }) }, later(60));
    expect(rolloutTransition(running, { type: 'decided', decision: rollback }, later(60))).toMatchObject({ ok: true, changed: true, next: { status: 'rolled_back' } });
    expect(rolloutTransition({ ...running, status: 'paused' }, { type: 'decided', decision: rollback }, later(60))).toMatchObject({
      ok: false,
      error: { code: 'rollout_not_running' },
    });
  });

  it('treats a wait as no change', () => {
    const wait = rolloutDecision(running, def, { baseline: metrics(2000), candidate: metrics(5) }, later(60));
    expect(wait.kind).toBe('wait');
    expect(rolloutTransition(running, { type: 'decided', decision: wait }, later(60))).toEqual({ ok: true, changed: false, next: running });
  });

  it('refuses a decision taken on an earlier step (another worker applied one first)', () => {
    const advance = rolloutDecision(running, def, healthy, later(60));
    const next = apply(running, advance, later(60));
    expect(rolloutTransition(next, { type: 'decided', decision: advance }, later(61))).toMatchObject({ ok: false, error: { code: 'stale_decision' } });
  });

  it('keeps the earlier baseline reference when a step was judged against it', () => {
    const def2 = definition({ steps: [50, 90, 100] });
    let state = startRollout(def2, prompt, T0);
    state = apply(state, rolloutDecision(state, def2, { baseline: metrics(150), candidate: metrics(150) }, later(60)), later(60));
    expect(state.baselineReference).toEqual(metrics(150));
    const at90 = rolloutDecision(state, def2, { baseline: metrics(12), candidate: metrics(108) }, later(120));
    expect(at90).toMatchObject({ kind: 'advance', figures: { comparedWith: 'reference' } });
    state = apply(state, at90, later(120));
    expect(state.baselineReference).toEqual(metrics(150));
  });
});
