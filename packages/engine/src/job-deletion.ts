/**
 * Deleting a job: what `DELETE /v1/jobs/{id}` and `DELETE /v1/responses/{id}` share with the
 * sweeper's retries and a tenant's offboarding.
 *
 * Design note: the erase commits first (@longhaul/db job-erasure.ts), then the job's stored
 * response is deleted at the provider, at once. If that call fails (network, 5xx, 429) the job
 * stays in `jobs_provider_delete_idx` and the sweeper tries again with backoff
 * (@longhaul/db response-deletion.ts), so a provider outage never undoes nor blocks a deletion;
 * a 404 means the provider no longer has it, which is what was asked. `deleteStoredResponse` and
 * `deleteStoredObject` are the only places a deletion calls the provider: they are handed the
 * row's provider key id along with the ids.
 */
import type { Database, Job, PendingProviderDelete, StoredObject } from '@longhaul/db';
import { eraseJobContent, markProviderDeleted } from '@longhaul/db';
import { type Provider, ProviderError } from '@longhaul/provider';
import type { JobStreams } from '@longhaul/queue';
import { type Logger, jobLogFields } from '@longhaul/runtime';

export interface JobDeletionDeps {
  db: Database;
  /** Absent (an API without a provider): the erase stands and the sweeper makes the provider call. */
  provider?: Provider;
  logger: Logger;
  clock: () => Date;
  /** The finished job's live event stream (provider events of a `stream: true` job) is dropped with its content. */
  jobStreams?: JobStreams;
}

/** What the provider said: `deleted`, `gone` (404: deleted already, or past its retention), or `failed` (retried later). */
export type ProviderDeleteOutcome = 'deleted' | 'gone' | 'failed';

/** The response of a job whose deletion at the provider is pending. */
export type StoredResponse = Pick<PendingProviderDelete, 'id' | 'tenantId' | 'responseId' | 'providerKeyId'>;

/**
 * Erase a finished job of the tenant at its request (reason `request`) and delete its stored
 * response at the provider. The tombstone, or null when the tenant has no such finished job.
 */
export async function deleteJob(deps: JobDeletionDeps, tenantId: string, jobId: string): Promise<Job | null> {
  const job = await eraseJobContent(deps.db, tenantId, jobId, deps.clock(), 'request');
  if (!job) return null;
  const log = deps.logger.child(jobLogFields(job));
  await deps.jobStreams
    ?.clear(job.id)
    .catch((err: unknown) => log.warn({ err, code: 'job_stream_clear_failed' }, 'could not drop the erased job event stream; it expires by itself'));
  let provider: ProviderDeleteOutcome | 'none' | 'done' = job.responseId === null ? 'none' : 'done';
  if (job.responseId !== null && job.providerDeletedAt === null) {
    provider = await deleteStoredResponse(deps, { id: job.id, tenantId: job.tenantId, responseId: job.responseId, providerKeyId: job.providerKeyId }, log);
  }
  log.info({ reason: 'request', provider_delete: provider }, 'job content erased');
  return job;
}

/** Delete an erased job's stored response at the provider and record it; a failure is logged and left for the sweeper's retry. */
export async function deleteStoredResponse(deps: Omit<JobDeletionDeps, 'jobStreams'>, job: StoredResponse, log: Logger): Promise<ProviderDeleteOutcome> {
  if (!deps.provider) return 'failed';
  const outcome = await providerOutcome(() => deps.provider!.deleteResponse(job.responseId, { jobId: job.id, keyId: job.providerKeyId }));
  if (outcome.kind === 'failed') {
    log.warn({ err: outcome.error, code: 'provider_delete_failed', status: outcome.status }, 'could not delete the stored response at the provider; retried later');
    return 'failed';
  }
  await markProviderDeleted(deps.db, job.id, deps.clock());
  return outcome.kind;
}

/**
 * Delete a tenant's file or conversation at the provider (the caller records it); a failure is
 * logged and left for the next sweep.
 */
export async function deleteStoredObject(deps: Pick<JobDeletionDeps, 'provider'>, object: StoredObject, log: Logger): Promise<ProviderDeleteOutcome> {
  const provider = deps.provider;
  if (!provider) return 'failed';
  const outcome = await providerOutcome(() => {
    const context = { keyId: object.providerKeyId };
    return object.kind === 'file' ? provider.deleteFile(object.id, context) : provider.deleteConversation(object.id, context);
  });
  if (outcome.kind === 'failed') {
    log.warn(
      { err: outcome.error, code: `provider_${object.kind}_delete_failed`, [`${object.kind}_id`]: object.id, status: outcome.status },
      `could not delete the ${object.kind} at the provider; retried later`,
    );
  }
  return outcome.kind;
}

type Outcome = { kind: 'deleted' | 'gone' } | { kind: 'failed'; error: unknown; status: number | null };

async function providerOutcome(call: () => Promise<unknown>): Promise<Outcome> {
  try {
    await call();
    return { kind: 'deleted' };
  } catch (error) {
    if (error instanceof ProviderError && error.kind === 'not_found') return { kind: 'gone' };
    return { kind: 'failed', error, status: error instanceof ProviderError ? error.status : null };
  }
}
