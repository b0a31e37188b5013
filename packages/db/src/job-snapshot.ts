/**
 * A job as a poll work item carries it, so a poll needs no read before its guarded write.
 *
 * The row without its request body: of the create parameters only what the poll path reads is
 * kept (`stream`, `conversation`, `prompt`, `reasoning.effort`, `service_tier`: the job object's
 * derived fields and the job's duration kind). Only a job that is not finished is carried (its
 * output, usage and error are still null), so a snapshot is a few hundred bytes of Redis.
 *
 * A snapshot can be stale: the job may have moved on since it was taken. That is safe where it is
 * used: a state change is written guarded by the status it was decided on, and decided again on
 * a fresh row when the status moved (changeJobState); a poll that finds the status changed under
 * it reads the row before its next poll (poll-job.ts).
 */
import { isTerminal } from '@longhaul/core';
import type { Job } from './schema.ts';

export type JobSnapshot = Record<string, unknown>;

const DATE_FIELDS = ['nextCheckAt', 'deadlineAt', 'createdAt', 'updatedAt', 'submittedAt', 'startedAt', 'cancelRequestedAt', 'finishedAt'] as const;
/** The create parameters the poll path reads. */
const REQUEST_FIELDS = ['stream', 'conversation', 'prompt', 'service_tier'] as const;

/** The snapshot of a job that is not finished; undefined for a finished one (its poll is over). */
export function toJobSnapshot(job: Job): JobSnapshot | undefined {
  if (isTerminal(job.status)) return undefined;
  const request: Record<string, unknown> = {};
  for (const key of REQUEST_FIELDS) if (job.request[key] !== undefined) request[key] = job.request[key];
  const effort = (job.request.reasoning as { effort?: unknown } | null | undefined)?.effort;
  if (effort !== undefined) request.reasoning = { effort };
  const snapshot: JobSnapshot = { ...job, request };
  for (const key of DATE_FIELDS) snapshot[key] = job[key]?.getTime() ?? null;
  return snapshot;
}

/** The job a snapshot describes, or undefined when it is not one (an item from another version: the poll reads the row). */
export function fromJobSnapshot(snapshot: JobSnapshot | undefined, jobId: string): Job | undefined {
  if (!snapshot || snapshot.id !== jobId || typeof snapshot.status !== 'string' || typeof snapshot.request !== 'object' || snapshot.request === null) return undefined;
  const job = { ...snapshot } as Record<string, unknown>;
  for (const key of DATE_FIELDS) {
    const value = snapshot[key];
    if (value !== null && typeof value !== 'number') return undefined;
    job[key] = value === null ? null : new Date(value);
  }
  return job as unknown as Job;
}
