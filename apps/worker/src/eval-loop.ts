/**
 * The evaluation loop: every `tickMs` it ticks the evals that are due (@longhaul/engine
 * eval-runner.ts), a few at a time. An eval is due when it was created, when one of its jobs
 * ended (writeDecision marks it in the job's own statement), and on its safety-net check; the
 * runner locks each eval with SKIP LOCKED, so any number of workers share the loop.
 */
import { EVAL_CHECK_MS, type EvalTickReport, tickEval } from '@longhaul/engine';
import { findDueEvals } from '@longhaul/db';
import type { EvalLoopConfig, WorkerContext } from './deps.ts';
import { type Ticker, startTicker } from './ticker.ts';

const DEFAULT_JOB_DEADLINE_MS = 6 * 3_600_000;

export const DEFAULT_EVAL_LOOP: EvalLoopConfig = { tickMs: 200, evalsPerTick: 10 };

/** `tick()`: tick every due eval now (tests); resolves with what each tick did. */
export type EvalLoop = Ticker<EvalTickReport[]>;

export function startEvalLoop(ctx: WorkerContext, config: EvalLoopConfig = DEFAULT_EVAL_LOOP): EvalLoop {
  const deps = { db: ctx.db.db, jobEffects: ctx.jobEffects, logger: ctx.logger, clock: ctx.clock, jobDeadlineMs: ctx.config.jobDeadlineMs ?? DEFAULT_JOB_DEADLINE_MS };
  const once = async (): Promise<EvalTickReport[]> => {
    const reports: EvalTickReport[] = [];
    for (const id of await findDueEvals(deps.db, deps.clock(), config.evalsPerTick)) {
      try {
        const report = await tickEval(deps, id);
        if (report) reports.push(report);
      } catch (err) {
        // One eval failing its tick (a bad row, Postgres away) does not hold up the others; it is due again after its check.
        ctx.logger.warn({ err, eval_id: id, code: 'eval_tick_failed' }, `eval tick failed; retried within ${EVAL_CHECK_MS / 1000} s`);
      }
    }
    return reports;
  };
  return startTicker(once, config.tickMs, (err) => ctx.logger.warn({ err, code: 'eval_loop_failed' }, 'eval loop tick failed'));
}
