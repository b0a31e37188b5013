/**
 * What follows every state change the worker makes: metrics, and the lifecycle event in the
 * job's event log (the SSE stream clients watch). The event log is best effort: Postgres already
 * holds the change, and a watcher of a finished job is given its final state from Postgres.
 */
import { isTerminal } from '@longhaul/core';
import { type ChangeResult, toJobObject } from '@longhaul/db';
import { observeStateChange } from '@longhaul/metrics';
import type { WorkerDeps } from './deps.ts';

export async function stateChanged(deps: WorkerDeps, result: ChangeResult): Promise<void> {
  observeStateChange(deps.metrics, result);
  if (!result.ok || !result.changed) return;
  const job = result.job;
  try {
    await deps.jobStreams.appendLifecycleEvent(job.id, `job.${job.status}`, JSON.stringify({ type: `job.${job.status}`, job: toJobObject(job) }));
    if (isTerminal(job.status)) await deps.jobStreams.expire(job.id, deps.config.streamRetentionSeconds);
  } catch (err) {
    deps.logger.warn({ err, job_id: job.id, tenant_id: job.tenantId, response_id: job.responseId, code: 'event_log_unavailable' }, 'could not append a lifecycle event to the job stream');
  }
}
