/**
 * What work follows a job's state change: the next work item, decided here once for every caller.
 *
 * Design note: `transition()` (job-state.ts) decides a job's next *status*; `nextWorkFor()`
 * decides the *work* that follows: admitting a new job to the provider, the next poll and its
 * delay, following a response's stream, cancelling it at the provider, or nothing. Pure like
 * `transition()`: the caller says what happened (`JobChange`) and passes the schedules. The
 * caller is always @longhaul/engine's `afterJobChange` (packages/engine/src/job-effects.ts), which
 * carries the answer out, except where no state changed and a work item only reschedules itself
 * (the stream processor falling back to polling); then the processor asks here directly.
 *
 * Rules, reproduced from what each processor used to decide on its own:
 * - a terminal job has nothing left to do; when a webhook finished it, its delayed safety poll
 *   is retired (finished any other way, the job is left no poll, or one that ends at its next run);
 * - a new pending job is admitted (fair queue + a submit turn);
 * - a cancel request on a submitted job cancels it at the provider (a pending one is already
 *   `cancelled`, terminal);
 * - a submitted job is followed: by its stream when `stream: true`, else by polls on the poll
 *   schedule of the completion mode (first poll after `nextPollDelayMs(mode, 0)`, or the
 *   provider's `openai-poll-after-ms` hint); a cancel that raced the create is also carried out;
 * - a poll that found the job still running polls again (poll `attempt + 1` of the schedule:
 *   growing in `poll` mode, the safety interval in `webhook` mode);
 * - in `hybrid` mode the schedule follows the webhooks' health (`options.webhooks`): while they
 *   arrive, polls are a safety net (the first when the job's webhook is overdue, from its
 *   `expectedDurationMs`, then every safety interval); otherwise the growing schedule;
 * - a job with a completion hint (`hintedDurationMs`) has it replace the learned duration of its
 *   kind for its safety poll, and, polled as the primary means, its first poll waits about the
 *   hint and the growing schedule then starts over (schedules.ts has the exact rule);
 * - a stream the provider will no longer serve is tried again on the poll schedule, `webhook`
 *   mode included (its 5-minute safety interval would leave the stream's watchers waiting);
 * - an overdue job (its work item lost with Redis, found by the sweeper) gets its work again at
 *   once: a pending one is admitted again, a cancelling one cancelled and polled, a running one
 *   followed by its stream or polled;
 * - a turn of a tool-call loop that ended with work for the client (tool-loop.ts) retires the
 *   job's delayed poll (its response is done); the job then waits for the tenant's outputs with
 *   nothing scheduled (its deadline still holds, and an overdue waiting job has nothing to redo);
 *   once the outputs are in, the next turn is admitted like a new job;
 * - a job with a tool executor (`tool_executor`) whose turn ended with tool calls has them run
 *   there: an `execute_tools` work item for that turn, keyed by job and turn (so dispatching it
 *   again, on the turn's end or by the sweeper for an overdue job whose calls still want their
 *   outputs, is harmless); its MCP approval requests, if any, still wait for the tenant;
 * - an attempt that failed with a fallback left (fallbacks.ts) sends the job back to `pending`:
 *   its delayed poll is retired (its response is done) and the next attempt is admitted like a new job;
 * - everything else (a stream event, the provider's answer to a cancel, a webhook on a running
 *   job) adds nothing: the work item at hand, or one already scheduled, carries on.
 */
import { JobStatus, assertNever, isAtProvider, isTerminal } from './job-state.ts';
import { type CompletionMode, type PollScheduleOptions, nextPollDelayMs } from './schedules.ts';
import type { WebhookHealthState } from './webhook-health.ts';

/** One piece of work for a job. Work items are keyed by job id, so dispatching one twice is harmless. */
export type WorkItem =
  /** Admit the job into its tenant's fair queue and add a submit turn for it. */
  | { kind: 'submit' }
  /** Retrieve the response after `delayMs`; `attempt` is the poll's number in the poll schedule (0-based). */
  | { kind: 'poll'; attempt: number; delayMs: number }
  /** Follow the response's event stream, after `delayMs`. */
  | { kind: 'stream'; delayMs: number }
  /** Ask the provider to cancel the response. */
  | { kind: 'cancel' }
  /** Remove the job's delayed poll: the job finished by other means and the poll has nothing left to do. */
  | { kind: 'retire_poll' }
  /** Send turn `turn`'s tool calls to the job's tool executor and record its outputs. */
  | { kind: 'execute_tools'; turn: number };

/** What just happened to a job, as far as the work that follows is concerned. */
export type JobChange =
  /** The API accepted a new job. */
  | { type: 'created' }
  /** An identical request's result answered the job (response caching). */
  | { type: 'cache_hit' }
  /** The job waited for an identical job that did not complete: it runs itself now. */
  | { type: 'cache_released' }
  /** The tenant asked to cancel (the API). */
  | { type: 'cancel_requested' }
  /** The provider accepted the create; `pollAfterMs` is its poll hint, if it sent one. */
  | { type: 'submitted'; pollAfterMs?: number }
  /** Submission failed for good. */
  | { type: 'submit_failed' }
  /** Poll number `attempt` (0-based) retrieved the response. */
  | { type: 'polled'; attempt: number; pollAfterMs?: number }
  /** The job's stream carried a new state of the response. */
  | { type: 'streamed' }
  /** The provider refused to stream the response and a retrieve found it unfinished; `attempt` counts the stream work item's runs. */
  | { type: 'stream_unavailable'; attempt: number; pollAfterMs?: number }
  /** The provider answered a cancel (or, refusing it, the retrieve that followed). */
  | { type: 'cancel_answered' }
  /** An OpenAI webhook's response was applied. */
  | { type: 'webhook' }
  /** The provider no longer knows the response. */
  | { type: 'response_lost' }
  /** The job passed its deadline (the sweeper). */
  | { type: 'expired' }
  /** The sweeper found the job's next check overdue: its work item may be lost. */
  | { type: 'overdue' }
  /** A turn of the job's tool-call loop ended with work for the client (tool calls, approval requests). */
  | { type: 'turn_ended' }
  /** The turn's tool outputs (and approvals) are in: the next turn is to be created. */
  | { type: 'tool_outputs_submitted' }
  /** The job's tool executor kept failing: the job failed. */
  | { type: 'tool_executor_failed' }
  /** An attempt failed (fallbacks.ts): with a fallback left the job is pending again, for its next attempt. */
  | { type: 'attempt_failed' }
  /** A batch job's line was applied (batch.ts): it is finished. */
  | { type: 'batch_line' };

export interface NextWorkOptions {
  /** How completion is detected. Default `hybrid` (the worker's default). */
  completionMode?: CompletionMode;
  /** The poll schedule (defaults: schedules.ts). */
  poll?: PollScheduleOptions;
  /**
   * Hybrid mode: the webhooks' health as last learned (the worker's webhook-health tracker).
   * `healthy`: polls are a safety net; `unknown`, `degraded` or absent: adaptive polling.
   */
  webhooks?: WebhookHealthState;
}

/** The job as far as its next work is concerned. */
export interface WorkSubject {
  status: JobStatus;
  /** A `stream: true` job: followed by its stream rather than polled. */
  streamed: boolean;
  /** How long a job of its kind is expected to take at the provider (expected-duration.ts); absent: not known. */
  expectedDurationMs?: number;
  /**
   * The job's own completion hint (schedules.ts `completionHintMs`); absent: none given. Given for
   * every change, not only `submitted`: the polls after the first follow a schedule shifted by it.
   */
  hintedDurationMs?: number;
  /**
   * The job's tool executor, when it has one (`tool_executor`): its current turn, and whether that
   * turn's tool calls still want their outputs. Absent: the tenant answers the calls itself.
   */
  toolExecutor?: { turn: number; callsPending: boolean };
  /** A batch job (`processing: "batch"`): its batch sends it (batch.ts), never a submit of its own. */
  batched?: boolean;
}

const SUBMIT: WorkItem = { kind: 'submit' };
const CANCEL: WorkItem = { kind: 'cancel' };
const RETIRE_POLL: WorkItem = { kind: 'retire_poll' };
const NOTHING: readonly WorkItem[] = [];

/** The executor's work for a waiting job: its turn's tool calls, when it has an executor and they want their outputs. */
function executorWork(job: WorkSubject): readonly WorkItem[] {
  return job.toolExecutor?.callsPending ? [{ kind: 'execute_tools', turn: job.toolExecutor.turn }] : NOTHING;
}

/**
 * The work that follows `change` for a job now in `job.status`, in the order it is dispatched.
 * Empty: nothing follows (the job is finished, or the work item at hand carries on).
 */
export function nextWorkFor(job: WorkSubject, change: JobChange, options: NextWorkOptions = {}): readonly WorkItem[] {
  const mode = options.completionMode ?? 'hybrid';
  const context = { webhooks: options.webhooks, expectedDurationMs: job.expectedDurationMs, hintedDurationMs: job.hintedDurationMs };
  const poll = (attempt: number, pollAfterMs?: number): WorkItem => ({ kind: 'poll', attempt, delayMs: nextPollDelayMs(mode, attempt, options.poll, pollAfterMs, context) });

  if (isTerminal(job.status)) return change.type === 'webhook' ? [RETIRE_POLL] : NOTHING;
  // A batch job waits for its batch, whose own worker loop sends it and reads its line.
  if (job.batched) return NOTHING;
  switch (change.type) {
    case 'created':
    case 'cache_released':
      return job.status === JobStatus.Pending ? [SUBMIT] : NOTHING;
    case 'cancel_requested':
      return job.status === JobStatus.Cancelling ? [CANCEL] : NOTHING;
    case 'submitted': {
      if (!isAtProvider(job.status)) return NOTHING;
      const follow: WorkItem = job.streamed ? { kind: 'stream', delayMs: 0 } : poll(0, change.pollAfterMs);
      return job.status === JobStatus.Cancelling ? [follow, CANCEL] : [follow];
    }
    case 'polled':
      return isAtProvider(job.status) ? [poll(change.attempt + 1, change.pollAfterMs)] : NOTHING;
    case 'stream_unavailable':
      if (!isAtProvider(job.status)) return NOTHING;
      return [{ kind: 'stream', delayMs: nextPollDelayMs(mode === 'webhook' ? 'poll' : mode, change.attempt, options.poll, change.pollAfterMs) }];
    case 'turn_ended':
      return job.status === JobStatus.RequiresAction ? [RETIRE_POLL, ...executorWork(job)] : NOTHING;
    case 'tool_outputs_submitted':
      return job.status === JobStatus.Pending ? [SUBMIT] : NOTHING;
    case 'attempt_failed':
      return job.status === JobStatus.Pending ? [RETIRE_POLL, SUBMIT] : NOTHING;
    case 'overdue':
      if (job.status === JobStatus.Pending) return [SUBMIT];
      if (job.status === JobStatus.RequiresAction) return executorWork(job);
      if (job.status === JobStatus.Cancelling) return [CANCEL, { kind: 'poll', attempt: 0, delayMs: 0 }];
      return [job.streamed ? { kind: 'stream', delayMs: 0 } : { kind: 'poll', attempt: 0, delayMs: 0 }];
    case 'cache_hit':
    case 'streamed':
    case 'cancel_answered':
    case 'webhook':
    case 'submit_failed':
    case 'response_lost':
    case 'expired':
    case 'tool_executor_failed':
    case 'batch_line':
      return NOTHING;
    default:
      return assertNever(change);
  }
}
