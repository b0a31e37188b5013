/**
 * The job state machine.
 *
 * Design note: a job's status only ever changes through `transition()`. It is pure (no IO, no
 * clock: `now` is passed in) so every rule can be unit-tested, and the database layer calls it
 * inside the same transaction that writes the new row and its event (see @longhaul/db
 * `applyJobEvent`). Terminal states are sticky: once a job is completed, failed, cancelled,
 * incomplete or expired, no event moves it again, so late polls, duplicate webhooks and
 * out-of-order deliveries are harmless.
 *
 *   pending ──submit──▶ queued ──▶ in_progress ──▶ completed | failed | cancelled | incomplete
 *      │                  │              │
 *      │ cancel           └── cancel ────┴──▶ cancelling ──(provider result)──▶ terminal
 *      ▼
 *   cancelled (locally, never reached the provider)
 *
 *   any non-terminal ──deadline──▶ expired
 *
 *   pending ──cache_hit──▶ completed (an identical request's result: response-cache.ts)
 *
 *   Tool-call loops (tool-loop.ts): a turn that ends with work for the client
 *   queued | in_progress ──turn_ended──▶ requires_action ──tool_outputs_submitted──▶ pending
 *   (the next turn, a new response) ... or, at the job's last turn, ──turn_ended──▶ incomplete;
 *   requires_action ──cancel──▶ cancelled (nothing runs at the provider while it waits)
 *   requires_action ──tool_executor_failed──▶ failed
 *
 *   Fallbacks (fallbacks.ts): an attempt that failed in a way the next one may fix
 *   queued | in_progress | pending (its submission failed) ──attempt_failed(retry)──▶ pending
 *   (attempt n + 1, a new response) ... out of fallbacks, an output its `validate` rejects
 *   ──attempt_failed(no retry)──▶ failed; cancelling ──attempt_failed──▶ cancelled (never retried)
 *
 * The work that follows a change (the next poll, following a stream, cancelling at the provider)
 * is decided beside this, by `nextWorkFor()` in next-work.ts.
 */

export const JobStatus = {
  Pending: 'pending',
  Queued: 'queued',
  InProgress: 'in_progress',
  /** Between two turns of a tool-call loop: waiting for tool outputs or approvals (tool-loop.ts). */
  RequiresAction: 'requires_action',
  Cancelling: 'cancelling',
  Completed: 'completed',
  Failed: 'failed',
  Cancelled: 'cancelled',
  Incomplete: 'incomplete',
  Expired: 'expired',
} as const;
export type JobStatus = (typeof JobStatus)[keyof typeof JobStatus];

/** Every status, in lifecycle order. The Postgres enum is built from this list. */
export const JOB_STATUSES = Object.values(JobStatus) as [JobStatus, ...JobStatus[]];

export const TERMINAL_STATUSES: readonly JobStatus[] = [JobStatus.Completed, JobStatus.Failed, JobStatus.Cancelled, JobStatus.Incomplete, JobStatus.Expired];

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** Statuses in which a response exists (or may exist) at the provider. */
export function isAtProvider(status: JobStatus): boolean {
  return status === JobStatus.Queued || status === JobStatus.InProgress || status === JobStatus.Cancelling;
}

/** Who caused a state change; recorded on every job event. */
export const EventSource = {
  Api: 'api',
  Submit: 'submit',
  Poll: 'poll',
  Webhook: 'webhook',
  Sweeper: 'sweeper',
  Cancel: 'cancel',
  /** A response-cache hit answered the job (response-cache.ts). */
  Cache: 'cache',
  /** A tenant's tool executor answered a turn's tool calls (tool-loop.ts). */
  ToolExecutor: 'tool_executor',
  /** A pipeline run created the job as one of its steps, or cancelled it (pipeline.ts). */
  Run: 'run',
  /** A Batch API batch answered the job, or ended without answering it (batch.ts). */
  Batch: 'batch',
  /** An evaluation created the job to answer or grade one of its items, or cancelled it (eval-run.ts). */
  Eval: 'eval',
} as const;
export type EventSource = (typeof EventSource)[keyof typeof EventSource];
export const EVENT_SOURCES = Object.values(EventSource) as [EventSource, ...EventSource[]];

/** The statuses a provider (OpenAI Responses API) reports for a response. */
export type ProviderStatus = 'queued' | 'in_progress' | 'completed' | 'failed' | 'cancelled' | 'incomplete';

export interface JobError {
  code: string;
  message: string;
}

/** What happened to a job. Every state change is one of these. */
export type JobEvent =
  /** The provider accepted the create; `responseStatus` is what it answered. */
  | { type: 'submitted'; responseId: string; responseStatus: ProviderStatus }
  /** A retrieve (poll, webhook, cancel answer) reported this status. */
  | { type: 'observed'; responseStatus: ProviderStatus }
  /** The tenant asked to cancel. */
  | { type: 'cancel_requested' }
  /** Submission failed for good (a 4xx from the provider, or retries exhausted). */
  | { type: 'submit_failed'; error: JobError }
  /** The provider no longer knows the response (404 on retrieve): it cannot finish. */
  | { type: 'response_lost'; error: JobError }
  /** The job passed its deadline without finishing. */
  | { type: 'expired' }
  /** An identical request's completed result answers the job (response-cache.ts): it never reaches the provider. */
  | { type: 'cache_hit' }
  /**
   * The current turn's response completed with work for the client (tool calls, approval
   * requests); `lastTurn`: the job may make no further turn (its `max_turns`).
   */
  | { type: 'turn_ended'; lastTurn: boolean }
  /** Every call of the turn has its output and every approval request its answer: the next turn is to be created. */
  | { type: 'tool_outputs_submitted' }
  /** The tenant's tool executor kept failing: the loop cannot go on. */
  | { type: 'tool_executor_failed'; error: JobError }
  /**
   * An attempt ended in a way another may fix (fallbacks.ts): `retry` when the job has a fallback
   * left (back to `pending` for the next attempt), else the job fails with `error` (an output its
   * `validate` rejected: the other outcomes end with the provider's own report).
   */
  | { type: 'attempt_failed'; retry: boolean; error: JobError }
  /**
   * A batch job's line came back (batch.ts): the job, `pending` while its batch runs at the
   * provider, ends with the line's response (`responseStatus`, always a final one).
   */
  | { type: 'batch_line'; responseStatus: ProviderStatus };

export type TransitionError = { code: 'job_terminal'; message: string } | { code: 'illegal_transition'; message: string };

export type TransitionResult = { ok: true; status: JobStatus; changed: boolean } | { ok: false; error: TransitionError };

export function assertNever(x: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(x)}`);
}

function providerToJobStatus(status: ProviderStatus): JobStatus {
  switch (status) {
    case 'queued':
      return JobStatus.Queued;
    case 'in_progress':
      return JobStatus.InProgress;
    case 'completed':
      return JobStatus.Completed;
    case 'failed':
      return JobStatus.Failed;
    case 'cancelled':
      return JobStatus.Cancelled;
    case 'incomplete':
      return JobStatus.Incomplete;
    default:
      return assertNever(status);
  }
}

const STATUS_RANK: Record<JobStatus, number> = {
  pending: 0,
  queued: 1,
  in_progress: 2,
  requires_action: 3,
  cancelling: 3,
  completed: 4,
  failed: 4,
  cancelled: 4,
  incomplete: 4,
  expired: 4,
};

const ok = (status: JobStatus, from: JobStatus): TransitionResult => ({ ok: true, status, changed: status !== from });
const refuse = (code: TransitionError['code'], message: string): TransitionResult => ({
  ok: false,
  error: { code, message },
});

/**
 * Decide the next status of a job given an event. Pure: returns the decision, never throws for
 * an expected refusal. `changed: false` means the event is accepted but moves nothing (e.g. a
 * duplicate observation, or a `queued` report arriving after `in_progress`).
 */
export function transition(job: { status: JobStatus }, event: JobEvent): TransitionResult {
  const from = job.status;
  if (isTerminal(from)) {
    // Cancelling an already-cancelled job is answered with the job as it is.
    if (event.type === 'cancel_requested' && from === JobStatus.Cancelled) return ok(from, from);
    return refuse('job_terminal', `job is already ${from}`);
  }

  switch (event.type) {
    case 'submitted': {
      if (from === JobStatus.Pending) return ok(providerToJobStatus(event.responseStatus), from);
      // A cancel that raced the create: keep `cancelling`, the worker cancels at the provider.
      if (from === JobStatus.Cancelling) return ok(from, from);
      return refuse('illegal_transition', `cannot submit a job that is ${from}`);
    }
    case 'observed': {
      const observed = providerToJobStatus(event.responseStatus);
      if (from === JobStatus.Pending) {
        return refuse('illegal_transition', 'a pending job has no response to observe');
      }
      // A late report of the turn that ended: the job waits for its tool outputs whatever it says.
      if (from === JobStatus.RequiresAction) return ok(from, from);
      if (isTerminal(observed)) return ok(observed, from);
      // Non-terminal reports never move a job backwards, and never undo a cancel request.
      if (from === JobStatus.Cancelling) return ok(from, from);
      return ok(STATUS_RANK[observed] > STATUS_RANK[from] ? observed : from, from);
    }
    case 'batch_line': {
      const answered = providerToJobStatus(event.responseStatus);
      if (from !== JobStatus.Pending) return refuse('illegal_transition', `a ${from} job is not waiting for a batch`);
      if (!isTerminal(answered)) return refuse('illegal_transition', `a batch line cannot leave a job ${answered}`);
      return ok(answered, from);
    }
    case 'cancel_requested': {
      if (from === JobStatus.Pending || from === JobStatus.RequiresAction) return ok(JobStatus.Cancelled, from);
      return ok(JobStatus.Cancelling, from);
    }
    case 'submit_failed': {
      if (from === JobStatus.Pending) return ok(JobStatus.Failed, from);
      return refuse('illegal_transition', `cannot fail submission of a job that is ${from}`);
    }
    case 'response_lost': {
      if (isAtProvider(from)) return ok(JobStatus.Failed, from);
      return refuse('illegal_transition', `a ${from} job has no response to lose`);
    }
    case 'expired':
      return ok(JobStatus.Expired, from);
    case 'cache_hit': {
      if (from === JobStatus.Pending) return ok(JobStatus.Completed, from);
      return refuse('illegal_transition', `a ${from} job is already at the provider; it cannot be answered from the cache`);
    }
    case 'turn_ended': {
      if (from === JobStatus.Queued || from === JobStatus.InProgress) return ok(event.lastTurn ? JobStatus.Incomplete : JobStatus.RequiresAction, from);
      // A cancel that raced the turn's end: nothing runs at the provider any more, and no next turn follows.
      if (from === JobStatus.Cancelling) return ok(JobStatus.Cancelled, from);
      return refuse('illegal_transition', `a ${from} job has no turn running to end`);
    }
    case 'tool_outputs_submitted': {
      if (from === JobStatus.RequiresAction) return ok(JobStatus.Pending, from);
      return refuse('illegal_transition', `a ${from} job is not waiting for tool outputs`);
    }
    case 'tool_executor_failed': {
      if (from === JobStatus.RequiresAction) return ok(JobStatus.Failed, from);
      return refuse('illegal_transition', `a ${from} job is not waiting for its tool executor`);
    }
    case 'attempt_failed': {
      // A cancel request wins: the attempt has ended and no other starts.
      if (from === JobStatus.Cancelling) return ok(JobStatus.Cancelled, from);
      if (from === JobStatus.Pending || from === JobStatus.Queued || from === JobStatus.InProgress) {
        // Pending → pending is a change too: a new attempt, recorded as its own event.
        return event.retry ? { ok: true, status: JobStatus.Pending, changed: true } : ok(JobStatus.Failed, from);
      }
      return refuse('illegal_transition', `a ${from} job has no attempt running to fail`);
    }
    default:
      return assertNever(event);
  }
}
