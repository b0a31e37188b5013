import { describe, expect, it } from 'vitest';
import { JOB_STATUSES, JobStatus, TERMINAL_STATUSES, type JobEvent, type ProviderStatus, isTerminal, transition } from '../src/index.ts';

const PROVIDER_STATUSES: ProviderStatus[] = ['queued', 'in_progress', 'completed', 'failed', 'cancelled', 'incomplete'];
const ALL_EVENTS: JobEvent[] = [
  ...PROVIDER_STATUSES.map((s) => ({ type: 'submitted', responseId: 'resp_1', responseStatus: s }) as const),
  ...PROVIDER_STATUSES.map((s) => ({ type: 'observed', responseStatus: s }) as const),
  { type: 'cancel_requested' },
  { type: 'submit_failed', error: { code: 'invalid_request', message: 'bad' } },
  { type: 'response_lost', error: { code: 'response_not_found', message: 'gone' } },
  { type: 'expired' },
  { type: 'cache_hit' },
  { type: 'turn_ended', lastTurn: false },
  { type: 'turn_ended', lastTurn: true },
  { type: 'tool_outputs_submitted' },
  { type: 'tool_executor_failed', error: { code: 'tool_executor_failed', message: 'HTTP 500' } },
  { type: 'attempt_failed', retry: true, error: { code: 'context_length_exceeded', message: 'too long' } },
  { type: 'attempt_failed', retry: false, error: { code: 'validation_failed', message: 'too short' } },
];

describe('transition', () => {
  it('submits a pending job into the provider status', () => {
    expect(transition({ status: 'pending' }, { type: 'submitted', responseId: 'r', responseStatus: 'queued' })).toEqual({ ok: true, status: 'queued', changed: true });
  });

  it('keeps every terminal state sticky against every event', () => {
    for (const status of TERMINAL_STATUSES) {
      for (const event of ALL_EVENTS) {
        const result = transition({ status }, event);
        if (result.ok) {
          // The only accepted event on a terminal job is re-cancelling a cancelled one, which changes nothing.
          expect(status).toBe('cancelled');
          expect(event.type).toBe('cancel_requested');
          expect(result).toEqual({ ok: true, status: 'cancelled', changed: false });
        } else {
          expect(result.error.code).toBe('job_terminal');
        }
      }
    }
  });

  it('answers only a pending job from the cache', () => {
    expect(transition({ status: 'pending' }, { type: 'cache_hit' })).toEqual({ ok: true, status: 'completed', changed: true });
    for (const status of ['queued', 'in_progress', 'cancelling'] as const) {
      expect(transition({ status }, { type: 'cache_hit' })).toMatchObject({ ok: false, error: { code: 'illegal_transition' } });
    }
  });

  it('never moves a job backwards on a stale observation', () => {
    expect(transition({ status: 'in_progress' }, { type: 'observed', responseStatus: 'queued' })).toEqual({ ok: true, status: 'in_progress', changed: false });
    expect(transition({ status: 'queued' }, { type: 'observed', responseStatus: 'in_progress' })).toEqual({ ok: true, status: 'in_progress', changed: true });
  });

  it('cancels a pending job locally and a submitted one through cancelling', () => {
    expect(transition({ status: 'pending' }, { type: 'cancel_requested' })).toMatchObject({ status: 'cancelled', changed: true });
    expect(transition({ status: 'queued' }, { type: 'cancel_requested' })).toMatchObject({ status: 'cancelling', changed: true });
    expect(transition({ status: 'in_progress' }, { type: 'cancel_requested' })).toMatchObject({ status: 'cancelling' });
    expect(transition({ status: 'cancelling' }, { type: 'cancel_requested' })).toMatchObject({ status: 'cancelling', changed: false });
  });

  it('lets a completion win the race with a cancel', () => {
    expect(transition({ status: 'cancelling' }, { type: 'observed', responseStatus: 'completed' })).toMatchObject({ status: 'completed', changed: true });
    expect(transition({ status: 'cancelling' }, { type: 'observed', responseStatus: 'in_progress' })).toMatchObject({ status: 'cancelling', changed: false });
    expect(transition({ status: 'cancelling' }, { type: 'observed', responseStatus: 'cancelled' })).toMatchObject({ status: 'cancelled', changed: true });
  });

  it('refuses observations of a job that was never submitted', () => {
    expect(transition({ status: 'pending' }, { type: 'observed', responseStatus: 'completed' })).toMatchObject({ ok: false, error: { code: 'illegal_transition' } });
  });

  it('fails a job whose response the provider lost', () => {
    expect(transition({ status: 'in_progress' }, { type: 'response_lost', error: { code: 'x', message: 'y' } })).toMatchObject({ status: 'failed', changed: true });
    expect(transition({ status: 'pending' }, { type: 'response_lost', error: { code: 'x', message: 'y' } })).toMatchObject({ ok: false });
  });

  it('fails only pending submissions and expires any active job', () => {
    expect(transition({ status: 'pending' }, { type: 'submit_failed', error: { code: 'x', message: 'y' } })).toMatchObject({ status: 'failed' });
    expect(transition({ status: 'queued' }, { type: 'submit_failed', error: { code: 'x', message: 'y' } })).toMatchObject({ ok: false });
    for (const status of JOB_STATUSES.filter((s) => !isTerminal(s))) {
      expect(transition({ status }, { type: 'expired' })).toMatchObject({ ok: true, status: JobStatus.Expired });
    }
  });

  it('runs a tool-call loop: a turn with calls waits for them, their outputs make the next turn, the last turn ends incomplete', () => {
    for (const from of ['queued', 'in_progress'] as const) {
      expect(transition({ status: from }, { type: 'turn_ended', lastTurn: false })).toEqual({ ok: true, status: 'requires_action', changed: true });
      expect(transition({ status: from }, { type: 'turn_ended', lastTurn: true })).toEqual({ ok: true, status: 'incomplete', changed: true });
    }
    expect(transition({ status: 'requires_action' }, { type: 'tool_outputs_submitted' })).toEqual({ ok: true, status: 'pending', changed: true });
    // The next turn is submitted as a new job's first one is.
    expect(transition({ status: 'pending' }, { type: 'submitted', responseId: 'resp_2', responseStatus: 'queued' })).toMatchObject({ status: 'queued' });
    expect(transition({ status: 'requires_action' }, { type: 'tool_executor_failed', error: { code: 'tool_executor_failed', message: 'x' } })).toMatchObject({ status: 'failed' });
  });

  it('keeps a waiting job waiting whatever a late report of its ended turn says, and cancels it locally', () => {
    for (const responseStatus of PROVIDER_STATUSES) {
      expect(transition({ status: 'requires_action' }, { type: 'observed', responseStatus })).toEqual({ ok: true, status: 'requires_action', changed: false });
    }
    expect(transition({ status: 'requires_action' }, { type: 'cancel_requested' })).toEqual({ ok: true, status: 'cancelled', changed: true });
    expect(transition({ status: 'requires_action' }, { type: 'expired' })).toMatchObject({ status: 'expired' });
    expect(transition({ status: 'requires_action' }, { type: 'response_lost', error: { code: 'x', message: 'y' } })).toMatchObject({
      ok: false,
      error: { code: 'illegal_transition' },
    });
    // A cancel that raced the turn's end: no next turn follows.
    expect(transition({ status: 'cancelling' }, { type: 'turn_ended', lastTurn: false })).toEqual({ ok: true, status: 'cancelled', changed: true });
  });

  it('refuses loop events where the loop is not at that step', () => {
    for (const status of ['pending', 'queued', 'in_progress', 'cancelling'] as const) {
      expect(transition({ status }, { type: 'tool_outputs_submitted' })).toMatchObject({ ok: false, error: { code: 'illegal_transition' } });
      expect(transition({ status }, { type: 'tool_executor_failed', error: { code: 'x', message: 'y' } })).toMatchObject({ ok: false });
    }
    for (const status of ['pending', 'requires_action'] as const) expect(transition({ status }, { type: 'turn_ended', lastTurn: false })).toMatchObject({ ok: false });
  });

  it('sends a job whose attempt failed back to pending for its next attempt, or fails it', () => {
    const error = { code: 'server_error', message: 'boom' };
    for (const status of ['pending', 'queued', 'in_progress'] as const) {
      // Pending → pending (a submission that failed for good) is a change: the next attempt.
      expect(transition({ status }, { type: 'attempt_failed', retry: true, error })).toEqual({ ok: true, status: 'pending', changed: true });
      expect(transition({ status }, { type: 'attempt_failed', retry: false, error })).toEqual({ ok: true, status: 'failed', changed: true });
    }
    // A cancelling job never retries.
    expect(transition({ status: 'cancelling' }, { type: 'attempt_failed', retry: true, error })).toEqual({ ok: true, status: 'cancelled', changed: true });
    expect(transition({ status: 'requires_action' }, { type: 'attempt_failed', retry: true, error })).toMatchObject({ ok: false, error: { code: 'illegal_transition' } });
    for (const status of TERMINAL_STATUSES)
      expect(transition({ status }, { type: 'attempt_failed', retry: true, error })).toMatchObject({ ok: false, error: { code: 'job_terminal' } });
  });
});
