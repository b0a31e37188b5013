/**
 * runs: advance a pipeline run (@longhaul/engine run-advance.ts): plan it from its steps' jobs,
 * create the step jobs that may start, finish it, cancel what an early end leaves running.
 * Retried on failure like every work item; an advance is idempotent, so a retry after a crash
 * creates nothing twice.
 */
import { UnrecoverableError, type Job as QueueJob } from 'bullmq';
import { advanceRun } from '@longhaul/engine';
import { parsePayload } from '@longhaul/queue';
import type { WorkerContext } from '../deps.ts';

const DEFAULT_JOB_DEADLINE_MS = 6 * 3600_000;

export function advanceRunProcessor(deps: WorkerContext) {
  const runDeps = { db: deps.db.db, jobEffects: deps.jobEffects, logger: deps.logger, clock: deps.clock, jobDeadlineMs: deps.config.jobDeadlineMs ?? DEFAULT_JOB_DEADLINE_MS };
  return async (work: QueueJob): Promise<void> => {
    const { runId } = parsePayload('runs', work.data);
    const advanced = await advanceRun(runDeps, runId);
    if (!advanced) throw new UnrecoverableError(`run ${runId} does not exist`);
  };
}
