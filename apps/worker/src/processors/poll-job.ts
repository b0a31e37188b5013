/**
 * poll: retrieve the response and reconcile it. While it is not terminal, the same work item is
 * moved back to the delayed set for the next poll (adaptive: ~1 s growing to a cap, the delay
 * chosen by `nextWorkFor` through `afterJobChange`), so a waiting job costs one Redis entry and no
 * timer or promise in any process. In hybrid mode a poll that finishes a job tells the webhook
 * health (a response long finished, or past its expected duration, with no webhook: its webhook
 * is late or lost).
 */
import { DelayedError, UnrecoverableError, type Job as QueueJob } from 'bullmq';
import { JobStatus, isTerminal, retryDelayMs } from '@longhaul/core';
import { applyJobEvent, getJob, reconcileJob, scheduleNextCheck } from '@longhaul/db';
import { ProviderError } from '@longhaul/provider';
import { parsePayload } from '@longhaul/queue';
import { jobLogFields } from '@longhaul/runtime';
import type { WorkerContext } from '../deps.ts';

export function pollJobProcessor(deps: WorkerContext) {
  const { db, provider, clock, config, metrics, jobEffects } = deps;
  return async (work: QueueJob, token?: string): Promise<void> => {
    const { jobId, attempt } = parsePayload('poll', work.data);
    const job = await getJob(db.db, jobId);
    if (!job) throw new UnrecoverableError(`job ${jobId} does not exist`);
    if (isTerminal(job.status) || job.status === JobStatus.Pending || !job.responseId) return;
    const log = deps.logger.child(jobLogFields(job));

    let delayMs: number;
    try {
      const retrieved = await provider.retrieveResponse(job.responseId, { jobId: job.id });
      const result = await reconcileJob(db.db, job, retrieved.response, { source: 'poll', now: clock(), details: { poll: attempt + 1 }, prices: config.prices });
      if (result.ok && result.changed) log.info({ from: result.from, to: result.job.status, poll: attempt + 1 }, 'job status changed');
      // This poll, not a webhook, finished the job: hybrid mode's webhook health hears of it.
      if (result.ok && result.changed && isTerminal(result.job.status)) deps.webhookHealth?.pollFoundFinished(job, retrieved.response);
      const { again } = await jobEffects.afterJobChange(result, { type: 'polled', attempt, pollAfterMs: retrieved.pollAfterMs }, { self: 'poll' });
      metrics.poll(result.ok && !isTerminal(result.job.status) ? 'pending' : 'terminal');
      if (again?.kind !== 'poll') return;
      delayMs = again.delayMs;
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      if (err.kind === 'not_found') {
        const error = { code: 'response_not_found', message: `The provider no longer knows response ${job.responseId}.` };
        await jobEffects.afterJobChange(
          await applyJobEvent(db.db, job, { type: 'response_lost', error }, { source: 'poll', now: clock(), details: { status: err.status } }, { error }),
          { type: 'response_lost' },
        );
        metrics.poll('not_found');
        log.error({ code: error.code }, error.message);
        return;
      }
      // Rate limits and transient errors only delay the next poll; a poll never gives up (the job's deadline bounds it).
      metrics.poll('error');
      delayMs = Math.max(err.retryAfterMs ?? 0, retryDelayMs(attempt + 1, Math.random(), config.retry));
      log.warn({ code: err.code, status: err.status, delay_ms: delayMs }, 'poll failed, will retry');
    }

    const next = clock().getTime() + delayMs;
    await scheduleNextCheck(db.db, job.id, new Date(next), { poll: true });
    await work.updateData({ jobId, attempt: attempt + 1 });
    await work.moveToDelayed(next, token);
    throw new DelayedError();
  };
}
