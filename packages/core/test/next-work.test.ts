import { describe, expect, it } from 'vitest';
import { COMPLETION_MODES, JOB_STATUSES, TERMINAL_STATUSES, type JobChange, type JobStatus, nextPollDelayMs, nextWorkFor } from '../src/index.ts';

const POLL = { initialMs: 1_000, factor: 2, maxMs: 30_000, safetyIntervalMs: 300_000 };
const ALL_CHANGES: JobChange[] = [
  { type: 'created' },
  { type: 'cancel_requested' },
  { type: 'submitted' },
  { type: 'submit_failed' },
  { type: 'polled', attempt: 0 },
  { type: 'streamed' },
  { type: 'stream_unavailable', attempt: 0 },
  { type: 'cancel_answered' },
  { type: 'webhook' },
  { type: 'response_lost' },
  { type: 'expired' },
  { type: 'overdue' },
  { type: 'turn_ended' },
  { type: 'tool_outputs_submitted' },
  { type: 'tool_executor_failed' },
  { type: 'attempt_failed' },
];
const job = (status: JobStatus, streamed = false) => ({ status, streamed });

describe('nextWorkFor', () => {
  it('gives a finished job nothing to do, except retiring its safety poll when a webhook finished it', () => {
    for (const status of TERMINAL_STATUSES) {
      for (const change of ALL_CHANGES) {
        for (const streamed of [false, true]) {
          expect(nextWorkFor(job(status, streamed), change, { poll: POLL })).toEqual(change.type === 'webhook' ? [{ kind: 'retire_poll' }] : []);
        }
      }
    }
  });

  it('admits a new pending job', () => {
    expect(nextWorkFor(job('pending'), { type: 'created' })).toEqual([{ kind: 'submit' }]);
    expect(nextWorkFor(job('pending', true), { type: 'created' })).toEqual([{ kind: 'submit' }]);
  });

  it('cancels a submitted job at the provider when the tenant asks (a pending one is cancelled already)', () => {
    expect(nextWorkFor(job('cancelling'), { type: 'cancel_requested' })).toEqual([{ kind: 'cancel' }]);
    expect(nextWorkFor(job('cancelled'), { type: 'cancel_requested' })).toEqual([]);
  });

  it('follows a submitted job by polls on the schedule of its completion mode, or by its stream', () => {
    for (const completionMode of COMPLETION_MODES) {
      for (const status of ['queued', 'in_progress'] as const) {
        expect(nextWorkFor(job(status), { type: 'submitted' }, { completionMode, poll: POLL })).toEqual([
          { kind: 'poll', attempt: 0, delayMs: nextPollDelayMs(completionMode, 0, POLL) },
        ]);
        expect(nextWorkFor(job(status, true), { type: 'submitted' }, { completionMode, poll: POLL })).toEqual([{ kind: 'stream', delayMs: 0 }]);
      }
    }
    expect(nextWorkFor(job('queued'), { type: 'submitted' }, { completionMode: 'poll', poll: POLL })).toEqual([{ kind: 'poll', attempt: 0, delayMs: 1_000 }]);
    expect(nextWorkFor(job('queued'), { type: 'submitted' }, { completionMode: 'webhook', poll: POLL })).toEqual([{ kind: 'poll', attempt: 0, delayMs: 300_000 }]);
  });

  it("takes the provider's poll hint for the first poll", () => {
    expect(nextWorkFor(job('queued'), { type: 'submitted', pollAfterMs: 5_000 }, { completionMode: 'hybrid', poll: POLL })).toEqual([{ kind: 'poll', attempt: 0, delayMs: 5_000 }]);
  });

  it('follows and cancels a job whose cancel raced its create', () => {
    expect(nextWorkFor(job('cancelling'), { type: 'submitted' }, { completionMode: 'poll', poll: POLL })).toEqual([
      { kind: 'poll', attempt: 0, delayMs: 1_000 },
      { kind: 'cancel' },
    ]);
    expect(nextWorkFor(job('cancelling', true), { type: 'submitted' }, { completionMode: 'poll', poll: POLL })).toEqual([{ kind: 'stream', delayMs: 0 }, { kind: 'cancel' }]);
  });

  it('polls a running job again with the next delay of the schedule', () => {
    const delays = [0, 1, 2, 3, 4, 5, 6].map((attempt) => nextWorkFor(job('in_progress'), { type: 'polled', attempt }, { completionMode: 'hybrid', poll: POLL }));
    expect(delays).toEqual([2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000].map((delayMs, i) => [{ kind: 'poll', attempt: i + 1, delayMs }]));
    expect(nextWorkFor(job('queued'), { type: 'polled', attempt: 3 }, { completionMode: 'webhook', poll: POLL })).toEqual([{ kind: 'poll', attempt: 4, delayMs: 300_000 }]);
    expect(nextWorkFor(job('cancelling'), { type: 'polled', attempt: 0, pollAfterMs: 700 }, { completionMode: 'poll', poll: POLL })).toEqual([
      { kind: 'poll', attempt: 1, delayMs: 700 },
    ]);
  });

  it('tries a stream the provider would not serve again on the poll schedule, in webhook mode too', () => {
    for (const completionMode of COMPLETION_MODES) {
      expect(nextWorkFor(job('in_progress', true), { type: 'stream_unavailable', attempt: 2 }, { completionMode, poll: POLL })).toEqual([{ kind: 'stream', delayMs: 4_000 }]);
    }
  });

  it('dispatches the work of an overdue job again at once', () => {
    expect(nextWorkFor(job('pending'), { type: 'overdue' })).toEqual([{ kind: 'submit' }]);
    expect(nextWorkFor(job('queued'), { type: 'overdue' })).toEqual([{ kind: 'poll', attempt: 0, delayMs: 0 }]);
    expect(nextWorkFor(job('in_progress', true), { type: 'overdue' })).toEqual([{ kind: 'stream', delayMs: 0 }]);
    for (const streamed of [false, true]) {
      expect(nextWorkFor(job('cancelling', streamed), { type: 'overdue' })).toEqual([{ kind: 'cancel' }, { kind: 'poll', attempt: 0, delayMs: 0 }]);
    }
  });

  it('adds nothing where the work item at hand, or one already scheduled, carries on', () => {
    for (const type of ['streamed', 'cancel_answered', 'webhook', 'submit_failed', 'response_lost', 'expired'] as const) {
      for (const status of JOB_STATUSES) expect(nextWorkFor(job(status), { type }).filter((w) => w.kind !== 'retire_poll')).toEqual([]);
    }
  });

  it('admits only pending jobs, cancels only cancelling ones, and gives a pending job nothing else', () => {
    for (const status of JOB_STATUSES) {
      for (const change of ALL_CHANGES) {
        for (const streamed of [false, true]) {
          const kinds = nextWorkFor(job(status, streamed), change, { poll: POLL }).map((w) => w.kind);
          if (status !== 'pending') expect(kinds).not.toContain('submit');
          // (A failed attempt's poll is retired too: its response is done.)
          else expect(kinds.every((k) => k === 'submit' || (change.type === 'attempt_failed' && k === 'retire_poll'))).toBe(true);
          if (status !== 'cancelling') expect(kinds).not.toContain('cancel');
        }
      }
    }
  });

  it('retires the poll of a turn that ended with calls, schedules nothing while the job waits, and admits the next turn', () => {
    expect(nextWorkFor(job('requires_action'), { type: 'turn_ended' })).toEqual([{ kind: 'retire_poll' }]);
    // The turn ended at the last turn, or a cancel won: the job is terminal.
    expect(nextWorkFor(job('incomplete'), { type: 'turn_ended' })).toEqual([]);
    expect(nextWorkFor(job('requires_action'), { type: 'overdue' })).toEqual([]);
    expect(nextWorkFor(job('pending'), { type: 'tool_outputs_submitted' })).toEqual([{ kind: 'submit' }]);
  });

  it("retires a failed attempt's poll and admits the next attempt", () => {
    expect(nextWorkFor(job('pending'), { type: 'attempt_failed' })).toEqual([{ kind: 'retire_poll' }, { kind: 'submit' }]);
    expect(nextWorkFor(job('failed'), { type: 'attempt_failed' })).toEqual([]);
  });

  it("sends a turn's tool calls to the job's tool executor when the turn ends, and again when the waiting job is overdue", () => {
    const executor = (callsPending: boolean) => ({ ...job('requires_action'), toolExecutor: { turn: 3, callsPending } });
    expect(nextWorkFor(executor(true), { type: 'turn_ended' })).toEqual([{ kind: 'retire_poll' }, { kind: 'execute_tools', turn: 3 }]);
    // Its outputs are in (the job waits for MCP approvals only): nothing for the executor.
    expect(nextWorkFor(executor(false), { type: 'turn_ended' })).toEqual([{ kind: 'retire_poll' }]);
    // Redispatched by the sweeper (its work item may be lost; keyed by job and turn, a live one is left as it is).
    expect(nextWorkFor(executor(true), { type: 'overdue' })).toEqual([{ kind: 'execute_tools', turn: 3 }]);
    expect(nextWorkFor(executor(false), { type: 'overdue' })).toEqual([]);
    // A job with an executor that is not waiting has no executor work, whatever happens.
    for (const status of JOB_STATUSES.filter((s) => s !== 'requires_action')) {
      for (const change of ALL_CHANGES) {
        const kinds = nextWorkFor({ ...job(status), toolExecutor: { turn: 1, callsPending: true } }, change, { poll: POLL }).map((w) => w.kind);
        expect(kinds).not.toContain('execute_tools');
      }
    }
    // Only these two changes dispatch it.
    for (const change of ALL_CHANGES.filter((c) => c.type !== 'turn_ended' && c.type !== 'overdue')) {
      expect(nextWorkFor(executor(true), change, { poll: POLL }).map((w) => w.kind)).not.toContain('execute_tools');
    }
    expect(nextWorkFor(job('failed'), { type: 'tool_executor_failed' })).toEqual([]);
  });
});
