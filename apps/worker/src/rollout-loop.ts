/**
 * The rollout loop: every `tickMs` it looks at the rollouts that are due (@longhaul/engine
 * rollout-check.ts), each of which comes due again `checkMs` after its last look. Each look
 * locks its rollout with SKIP LOCKED, so any number of workers share the loop.
 */
import { findDueRollouts } from '@longhaul/db';
import { checkRollout } from '@longhaul/engine';
import type { RolloutLoopConfig, WorkerContext } from './deps.ts';
import { type Ticker, startTicker } from './ticker.ts';

export const DEFAULT_ROLLOUT_LOOP: RolloutLoopConfig = { tickMs: 1_000, checkMs: 5_000, rolloutsPerTick: 20 };

/** `tick()`: look at every due rollout now (tests); how many were looked at. */
export type RolloutLoop = Ticker<number>;

export function startRolloutLoop(ctx: WorkerContext, config: RolloutLoopConfig = DEFAULT_ROLLOUT_LOOP): RolloutLoop {
  const deps = { db: ctx.db.db, logger: ctx.logger, clock: ctx.clock, checkMs: config.checkMs };
  const once = async (): Promise<number> => {
    let looked = 0;
    for (const id of await findDueRollouts(deps.db, deps.clock(), config.rolloutsPerTick)) {
      try {
        if (await checkRollout(deps, id)) looked += 1;
      } catch (err) {
        ctx.logger.warn({ err, rollout_id: id, code: 'rollout_check_failed' }, 'rollout check failed; it is looked at again on the next tick');
      }
    }
    return looked;
  };
  return startTicker(once, config.tickMs, (err) => ctx.logger.warn({ err, code: 'rollout_loop_failed' }, 'rollout loop tick failed'));
}
