/**
 * poll: retrieve the response and reconcile it. While it is not terminal, the same work item is
 * moved back to the delayed set for the next poll (adaptive: ~1 s growing to a cap, the delay
 * chosen by `nextWorkFor` through `afterJobChange`), so a waiting job costs one Redis entry and no
 * timer or promise in any process. In hybrid mode a poll that finishes a job tells the webhook
 * health (a response long finished, or past its expected duration, with no webhook: its webhook
 * is late or lost).
 *
 * While polls are how outcomes are found (`pollsArePrimary`) and the next is due within a minute,
 * the work item carries the job as it last knew it (a snapshot without the request body), so a poll reads nothing from Postgres
 * before its guarded write; its one statement per pending poll (the next check) also tells it
 * whether the job is still active and its status unchanged. A safety-net poll behind arriving
 * webhooks reads the job first: its webhook has most likely finished it, and a read is cheaper
 * than a provider call.
 */
import { DelayedError, UnrecoverableError, type Job as QueueJob } from 'bullmq';
import { JobStatus, isTerminal, retryDelayMs } from '@longhaul/core';
import { type Job, applyJobEvent, fromJobSnapshot, getJob, reconcileJob, scheduleNextCheck } from '@longhaul/db';
import { ProviderError } from '@longhaul/provider';
import { parsePayload } from '@longhaul/queue';
import { jobLogFields } from '@longhaul/runtime';
import { setJobAttributes } from '@longhaul/telemetry';
import type { WorkerContext } from '../deps.ts';
import { failForMissingKey } from '../provider-key-missing.ts';

export function pollJobProcessor(deps: WorkerContext) {
  const { db, provider, clock, config, metrics, jobEffects } = deps;
  return async (work: QueueJob, token?: string): Promise<void> => {
    const { jobId, attempt, job: carried, traceparent } = parsePayload('poll', work.data);
    // The job as this work item last knew it (no read before the guarded write), else its row.
    const job = fromJobSnapshot(carried, jobId) ?? (await getJob(db.db, jobId));
    if (!job) throw new UnrecoverableError(`job ${jobId} does not exist`);
    setJobAttributes(job);
    if (isTerminal(job.status) || job.status === JobStatus.Pending || !job.responseId) return;
    const log = deps.logger.child(jobLogFields(job));

    let delayMs: number;
    /** The job as it stands after this poll, carried by the next one. */
    let known: Job = job;
    try {
      const retrieved = await provider.retrieveResponse(job.responseId, { jobId: job.id, keyId: job.providerKeyId });
      const result = await reconcileJob(db.db, job, retrieved.response, { source: 'poll', now: clock(), details: { poll: attempt + 1 }, prices: config.prices });
      if (result.ok && result.changed) log.info({ from: result.from, to: result.job.status, poll: attempt + 1 }, 'job status changed');
      // This poll, not a webhook, finished the job: hybrid mode's webhook health hears of it.
      if (result.ok && result.changed && isTerminal(result.job.status)) deps.webhookHealth?.pollFoundFinished(job, retrieved.response);
      const { again } = await jobEffects.afterJobChange(result, { type: 'polled', attempt, pollAfterMs: retrieved.pollAfterMs }, { self: 'poll' });
      metrics.poll(result.ok && !isTerminal(result.job.status) ? 'pending' : 'terminal');
      if (again?.kind !== 'poll') return;
      if (result.ok) known = result.job;
      delayMs = again.delayMs;
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      if (await failForMissingKey(deps, job, err, 'poll')) return void metrics.poll('error');
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
    const status = await scheduleNextCheck(db.db, job.id, new Date(next), { poll: true });
    // Finished meanwhile (by a webhook, a cancel, the sweeper): nothing left to poll.
    if (status === null) return;
    // A status that moved under this poll: the next one reads the row.
    await work.updateData({ jobId, attempt: attempt + 1, job: status === known.status ? jobEffects.pollSnapshot(known, delayMs) : undefined, traceparent });
    await work.moveToDelayed(next, token);
    throw new DelayedError();
  };
}
