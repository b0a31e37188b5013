/**
 * A job whose response was created with a provider key that is no longer configured cannot be
 * reached: no other key may see it. Rather than retrying until its deadline, the job fails at once
 * with `provider_key_missing` (its response may still run at the provider: putting the key back
 * in OPENAI_API_KEYS_FILE reaches it again, for the jobs not yet failed).
 */
import type { EventSource } from '@longhaul/core';
import { applyJobEvent, type Job } from '@longhaul/db';
import { PROVIDER_KEY_MISSING, ProviderError } from '@longhaul/provider';
import { jobLogFields } from '@longhaul/runtime';
import type { WorkerContext } from './deps.ts';

/** True when `err` was a missing key and the job is now failed for it; false for any other error (the caller handles it). */
export async function failForMissingKey(deps: WorkerContext, job: Job, err: unknown, source: EventSource): Promise<boolean> {
  if (!(err instanceof ProviderError) || err.code !== PROVIDER_KEY_MISSING) return false;
  const error = { code: err.code, message: err.message };
  const result = await applyJobEvent(deps.db.db, job, { type: 'response_lost', error }, { source, now: deps.clock(), details: { provider_key_id: job.providerKeyId } }, { error });
  await deps.jobEffects.afterJobChange(result, { type: 'response_lost' });
  deps.logger
    .child(jobLogFields(job))
    .error({ code: error.code, provider_key_id: job.providerKeyId, response_id: job.responseId }, 'the provider key of the job is no longer configured: job failed');
  return true;
}
