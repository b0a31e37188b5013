/**
 * cancel: ask the provider to cancel the response, then reconcile what it answers. If the
 * response finished first, the provider refuses and the retrieved final state wins the race.
 */
import { UnrecoverableError, type Job as QueueJob } from 'bullmq';
import { JobStatus } from '@longhaul/core';
import { applyJobEvent, getJob, reconcileJob } from '@longhaul/db';
import { ProviderError, type ProviderResult } from '@longhaul/provider';
import { parsePayload } from '@longhaul/queue';
import { jobLogFields } from '@longhaul/runtime';
import { setJobAttributes } from '@longhaul/telemetry';
import type { WorkerContext } from '../deps.ts';
import { failForMissingKey } from '../provider-key-missing.ts';

export function cancelJobProcessor(deps: WorkerContext) {
  const { db, provider, clock, config, jobEffects } = deps;
  return async (work: QueueJob): Promise<void> => {
    const { jobId } = parsePayload('cancel', work.data);
    const job = await getJob(db.db, jobId);
    if (!job) throw new UnrecoverableError(`job ${jobId} does not exist`);
    setJobAttributes(job);
    if (job.status !== JobStatus.Cancelling || !job.responseId) return;
    const log = deps.logger.child(jobLogFields(job));

    let answer: ProviderResult;
    try {
      answer = await provider.cancelResponse(job.responseId, { jobId: job.id, keyId: job.providerKeyId });
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      if (await failForMissingKey(deps, job, err, 'cancel')) return;
      if (err.kind === 'not_found') {
        const error = { code: 'response_not_found', message: `The provider no longer knows response ${job.responseId}.` };
        await jobEffects.afterJobChange(await applyJobEvent(db.db, job, { type: 'response_lost', error }, { source: 'cancel', now: clock() }, { error }), {
          type: 'response_lost',
        });
        return;
      }
      if (err.kind !== 'rejected') throw err; // rate limit / transient: BullMQ retries with backoff
      // The provider refused (typically: already finished). Its final state decides.
      log.info({ code: err.code }, 'provider refused the cancel; reconciling its final state');
      answer = await provider.retrieveResponse(job.responseId, { jobId: job.id, keyId: job.providerKeyId });
    }
    const result = await reconcileJob(db.db, job, answer.response, { source: 'cancel', now: clock(), prices: config.prices });
    await jobEffects.afterJobChange(result, { type: 'cancel_answered' });
    if (result.ok && result.changed) log.info({ from: result.from, to: result.job.status }, 'job status changed');
  };
}
