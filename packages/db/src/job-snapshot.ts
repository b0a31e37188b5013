/**
 * A job as a poll work item carries it, so a poll needs no read before its guarded write.
 *
 * The row without its request body: of the create parameters only what the poll path reads is
 * kept (`stream`, `conversation`, `prompt`, `reasoning.effort`, `service_tier`: the job object's
 * derived fields and the job's duration kind), and of the row only the columns set (a job that is
 * not finished has no output, usage or error yet; its completion hint, which sets the delay of
 * every poll after the first, is kept). About 400 bytes of Redis with no metadata; a
 * poll work item carries one only for a poll due soon (job-effects.ts `pollSnapshot`).
 *
 * A snapshot can be stale: the job may have moved on since it was taken. That is safe where it is
 * used: a state change is written guarded by the status it was decided on, and decided again on
 * a fresh row when the status moved (changeJobState); a poll that finds the status changed under
 * it reads the row before its next poll (poll-job.ts).
 */
import { isTerminal } from '@longhaul/core';
import type { Job } from './schema.ts';

export type JobSnapshot = Record<string, unknown>;

/** Columns a snapshot keeps when set; the rest are what a job that is not finished has (null, 0) or bookkeeping the poll path never reads. */
const KEPT = [
  'id',
  'tenantId',
  'status',
  'model',
  'metadata',
  'callbackUrl',
  'responseId',
  'submitAttempts',
  'previousJobId',
  'threadId',
  'promptId',
  'promptVersion',
  'estimatedInputTokens',
  'expectedDurationMs',
  'cacheKey',
  // Every provider call about the job's response is made with the key that created it.
  'providerKeyId',
  // A tool-call loop's turn decides how its completed response ends the turn (null: no loop, left
  // out), and its usage so far (the earlier turns', null on the first) is what the turn's adds to.
  'maxTurns',
  'turn',
  'usage',
  // A turn that ends with tool calls goes to the tenant's executor, if it has one.
  'toolExecutorUrl',
  // An attempt that fails retryably or fails validation makes the next attempt (fallbacks.ts).
  'fallbacks',
  'validation',
  'attempt',
  'attempts',
  // A step job's end advances its pipeline run.
  'runId',
  'runStep',
  'runItem',
  // A flex job that stays unavailable runs at the standard tier, or fails.
  'flexFallback',
  // An eval job is admitted at the low lane, and its end makes its eval due.
  'evalId',
] as const satisfies readonly (keyof Job)[];
const DATES = ['deadlineAt', 'createdAt', 'submittedAt', 'startedAt', 'cancelRequestedAt'] as const satisfies readonly (keyof Job)[];
/** The create parameters the poll path reads. */
const REQUEST_FIELDS = ['stream', 'conversation', 'prompt', 'service_tier'] as const;

/** What a job that is not finished has in the columns a snapshot leaves out. */
const UNFINISHED: Omit<Job, (typeof KEPT)[number] | (typeof DATES)[number] | 'request'> = {
  output: null,
  outputText: null,
  error: null,
  incompleteDetails: null,
  reasoningSummary: null,
  costUsd: null,
  finishedAt: null,
  erasedAt: null,
  erasedReason: null,
  providerDeletedAt: null,
  cachedFrom: null,
  savedUsd: null,
  serviceTier: null,
  // A batch job carries no snapshot (toJobSnapshot): whoever gets one reads its row.
  processing: 'background',
  batchId: null,
  requiredAction: null,
  nextCheckAt: null,
  polls: 0,
  updatedAt: new Date(0),
};

/** The snapshot of a job that is not finished (only its set fields, dates as epoch ms); undefined for a finished one. */
export function toJobSnapshot(job: Job): JobSnapshot | undefined {
  if (isTerminal(job.status) || job.processing === 'batch') return undefined;
  const request: Record<string, unknown> = {};
  for (const key of REQUEST_FIELDS) if (job.request[key] !== undefined) request[key] = job.request[key];
  const effort = (job.request.reasoning as { effort?: unknown } | null | undefined)?.effort;
  if (effort !== undefined) request.reasoning = { effort };
  const snapshot: JobSnapshot = { request };
  for (const key of KEPT) if (job[key] !== null) snapshot[key] = job[key];
  if (Object.keys(job.metadata).length === 0) delete snapshot.metadata;
  for (const key of DATES) if (job[key]) snapshot[key] = job[key]!.getTime();
  return snapshot;
}

/**
 * The job a snapshot describes (of job `jobId`, when given), or undefined when it is not one (an
 * item from another version: the caller reads the row).
 */
export function fromJobSnapshot(snapshot: JobSnapshot | undefined, jobId?: string): Job | undefined {
  if (
    !snapshot ||
    typeof snapshot.id !== 'string' ||
    (jobId !== undefined && snapshot.id !== jobId) ||
    typeof snapshot.status !== 'string' ||
    typeof snapshot.request !== 'object' ||
    snapshot.request === null
  )
    return undefined;
  const job: Record<string, unknown> = { ...UNFINISHED, metadata: {} };
  for (const key of KEPT) job[key] = snapshot[key] ?? job[key] ?? null;
  job.request = snapshot.request;
  for (const key of DATES) {
    const value = snapshot[key];
    if (value !== undefined && typeof value !== 'number') return undefined;
    job[key] = value === undefined ? null : new Date(value);
  }
  if (!(job.createdAt instanceof Date) || !(job.deadlineAt instanceof Date)) return undefined;
  job.updatedAt = job.createdAt;
  return job as unknown as Job;
}
