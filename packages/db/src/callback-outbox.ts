/**
 * The callback outbox vocabulary. changeJobState writes, in the same statement as the state
 * change, the event for it and one delivery per interested destination, so a crash can never
 * leave a state change without its event (or the reverse). `pg_notify` (delivered only on
 * commit) tells listening workers to dispatch the deliveries; the sweeper dispatches any
 * notification that was missed.
 */
import { type JobStatus, JobStatus as Status, isTerminal } from '@longhaul/core';
import type { Job } from './schema.ts';

export const CALLBACK_NOTIFY_CHANNEL = 'longhaul_callbacks';

/** Job statuses that produce an event (`job.<status>`); pending and cancelling do not. */
const ANNOUNCED: readonly JobStatus[] = [
  Status.Queued,
  Status.InProgress,
  Status.RequiresAction,
  Status.Completed,
  Status.Failed,
  Status.Cancelled,
  Status.Incomplete,
  Status.Expired,
];

export const CALLBACK_EVENT_TYPES = ANNOUNCED.map((s) => `job.${s}`);
export const TERMINAL_EVENT_TYPES = ANNOUNCED.filter(isTerminal).map((s) => `job.${s}`);

/**
 * Whether a job's change to this status goes where no event types were chosen (an endpoint
 * without `event_types`, the job's own `callback_url`): its end, and a tool-call loop waiting for
 * the tenant's answers, which it must hear of to answer. Not a loop whose tool executor does all
 * the turn's work (`job`: the job as changed; a turn that also asks for MCP approvals waits for the
 * tenant, and is announced): there is nothing for the tenant to do, and an endpoint that chose
 * `job.requires_action` still hears of it.
 */
export function isAnnouncedByDefault(status: JobStatus, job?: Pick<Job, 'toolExecutorUrl' | 'requiredAction'>): boolean {
  if (status === Status.RequiresAction) return !job?.toolExecutorUrl || (job.requiredAction?.approval_requests.length ?? 0) > 0;
  return isTerminal(status);
}

/** Whether a job status is announced to callbacks at all (pending and cancelling are not). */
export function isAnnounced(status: JobStatus): boolean {
  return ANNOUNCED.includes(status);
}
