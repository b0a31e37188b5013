/**
 * Response ids of the OpenAI-compatible surface. Every Longhaul job is a response there, with an
 * id of its own that exists from the moment the job is accepted (before the provider has created
 * anything): `resp_lh_<the job id's suffix>`, so `job_Ab3…` is `resp_lh_Ab3…`. The mapping is
 * pure: no table, no lookup to tell which job an id names.
 *
 * Wherever the surface takes a response id (retrieve, cancel, delete, input items,
 * `previous_response_id`) it also takes the job id itself and the provider's own response id
 * (`resp_…` as OpenAI minted it, shown as the job's `response_id` and in OpenAI's webhooks), each
 * scoped to the tenant: another tenant's id is not found.
 */
import { ID_PREFIX } from '@longhaul/core';
import { findJobByResponseId, getJobForTenant, type Database, type Job } from '@longhaul/db';

const JOB_PREFIX = `${ID_PREFIX.job}_`;
export const RESPONSE_ID_PREFIX = 'resp_lh_';
const SUFFIX = /^[0-9A-Za-z]{8,64}$/;

/** The response id of a job. */
export function responseIdOf(jobId: string): string {
  return jobId.startsWith(JOB_PREFIX) ? `${RESPONSE_ID_PREFIX}${jobId.slice(JOB_PREFIX.length)}` : jobId;
}

/** The job a Longhaul response id (or a job id) names, or null when `id` is neither. */
export function jobIdOfResponseId(id: string): string | null {
  const suffix = id.startsWith(RESPONSE_ID_PREFIX) ? id.slice(RESPONSE_ID_PREFIX.length) : id.startsWith(JOB_PREFIX) ? id.slice(JOB_PREFIX.length) : null;
  return suffix !== null && SUFFIX.test(suffix) ? `${JOB_PREFIX}${suffix}` : null;
}

/** The tenant's job a response id names (Longhaul's, a job id, or the provider's), or null. */
export async function findResponseJob(db: Database, tenantId: string, id: string): Promise<Job | null> {
  const jobId = jobIdOfResponseId(id);
  if (jobId) return getJobForTenant(db, tenantId, jobId);
  if (!/^[\w-]{1,256}$/.test(id)) return null;
  const job = await findJobByResponseId(db, id);
  return job && job.tenantId === tenantId ? job : null;
}
