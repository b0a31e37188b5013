/**
 * One look at a rollout, run by the worker's rollout loop for every rollout that is due: with the
 * rollout's row locked (skip locked: another worker is looking already), its two versions' live
 * metrics in the current step are measured (@longhaul/db rollouts.ts `rolloutMetrics`), the core
 * decides (@longhaul/core rollout.ts `rolloutDecision`: wait, advance, complete, roll back), and
 * the decision is applied in the same transaction (`applyRolloutEvent`: the rollout, the prompt's
 * traffic split and the prompt event with the figures). A wait only records its figures, which
 * the admin page shows; either way the next look is `checkMs` later. Nothing here leaves Postgres, so a crash loses at most a look.
 */
import { type RolloutDecision, rolloutDecision } from '@longhaul/core';
import { type Database, applyRolloutEvent, recordRolloutLook, rolloutMetrics, rolloutState, withLockedRollout } from '@longhaul/db';
import type { Logger } from '@longhaul/runtime';

export interface RolloutCheckDeps {
  db: Database;
  logger: Logger;
  clock: () => Date;
  /** How long after a look a rollout is looked at again (ROLLOUT_CHECK_SECONDS). */
  checkMs: number;
}

/** Look at a rollout now; null when it does not exist or another worker holds it. */
export async function checkRollout(deps: RolloutCheckDeps, rolloutId: string): Promise<RolloutDecision | null> {
  const now = deps.clock();
  const outcome = await withLockedRollout(deps.db, rolloutId, async (tx, row) => {
    const metrics = await rolloutMetrics(tx, row);
    const decision = rolloutDecision(rolloutState(row), row.definition, metrics, now);
    if (decision.kind === 'wait') {
      if (decision.reason === 'finished') return { row, decision };
      await recordRolloutLook(tx, row, decision.figures, now, deps.checkMs);
      return { row, decision };
    }
    const applied = await applyRolloutEvent(tx, row, { type: 'decided', decision }, now, { nextCheckMs: deps.checkMs });
    if (!applied.ok) throw new Error(`rollout ${row.id}: ${applied.code}: ${applied.message}`);
    return { row: applied.rollout, decision };
  });
  if (!outcome) return null;
  const { row, decision } = outcome;
  if (decision.kind !== 'wait') {
    const log = deps.logger.child({ rollout_id: row.id, prompt_id: row.promptId, tenant_id: row.tenantId });
    const f = decision.figures;
    const fields = {
      decision: decision.kind,
      step: f.stepIndex,
      percent: f.percent,
      candidate_jobs: f.candidate.jobs,
      baseline_jobs: f.baseline.jobs,
      failure_rate_increase: f.failureRateIncrease,
      incomplete_rate_increase: f.incompleteRateIncrease,
      cost_ratio: f.costRatio,
    };
    if (decision.kind === 'rollback') log.warn({ ...fields, breaches: decision.breaches, code: 'rollout_rolled_back' }, 'rollout rolled back: a guard breached');
    else log.info({ ...fields, code: `rollout_${decision.kind}` }, `rollout ${decision.kind === 'advance' ? 'advanced' : 'completed'}`);
  }
  return decision;
}
