import { describe, expect, it } from 'vitest';
import { ACTIVE_STATUSES, JOB_STATUSES, TERMINAL_PROVIDER_STATUSES, TERMINAL_RESPONSE_EVENT_TYPES, isTerminal, isTerminalProviderStatus, transition } from '../src/index.ts';

describe('shared vocabulary', () => {
  it('active job statuses are exactly the non-terminal ones', () => {
    expect(ACTIVE_STATUSES).toEqual(['pending', 'queued', 'in_progress', 'requires_action', 'cancelling']);
    expect([...ACTIVE_STATUSES, ...JOB_STATUSES.filter(isTerminal)].sort()).toEqual([...JOB_STATUSES].sort());
  });

  it('a terminal provider status finishes an active job, a live one does not', () => {
    for (const status of ['queued', 'in_progress', ...TERMINAL_PROVIDER_STATUSES] as const) {
      const r = transition({ status: 'in_progress' }, { type: 'observed', responseStatus: status });
      expect(r.ok && isTerminal(r.status)).toBe(isTerminalProviderStatus(status));
    }
    expect(isTerminalProviderStatus(undefined)).toBe(false);
    expect(isTerminalProviderStatus('expired')).toBe(false);
  });

  it('terminal provider events are response.<terminal status>', () => {
    expect(TERMINAL_RESPONSE_EVENT_TYPES).toEqual(['response.completed', 'response.failed', 'response.cancelled', 'response.incomplete']);
  });
});
