/** Which job changes go where no event types were chosen (the job's callback_url, endpoints without event_types). */
import { describe, expect, it } from 'vitest';
import { JOB_STATUSES, type RequiredAction, isTerminal } from '@longhaul/core';
import { isAnnouncedByDefault } from '../src/callback-outbox.ts';

const call = { call_id: 'call_1', name: 'get_weather', arguments: '{}', kind: 'function' as const };
const approval = { id: 'mcpr_1', server_label: 'wiki', name: 'ask', arguments: '{}' };
const action = (approvals: boolean): RequiredAction => ({ type: 'submit_tool_outputs', tool_calls: [call], approval_requests: approvals ? [approval] : [] });

describe('isAnnouncedByDefault', () => {
  it('announces ends, and a loop waiting for the tenant, by default', () => {
    for (const status of JOB_STATUSES) expect(isAnnouncedByDefault(status)).toBe(isTerminal(status) || status === 'requires_action');
    expect(isAnnouncedByDefault('requires_action', { toolExecutorUrl: null, requiredAction: action(false) })).toBe(true);
  });

  it('does not announce a turn its tool executor answers whole, but does one that also waits for MCP approvals', () => {
    expect(isAnnouncedByDefault('requires_action', { toolExecutorUrl: 'https://tools.example/run', requiredAction: action(false) })).toBe(false);
    expect(isAnnouncedByDefault('requires_action', { toolExecutorUrl: 'https://tools.example/run', requiredAction: action(true) })).toBe(true);
    expect(isAnnouncedByDefault('completed', { toolExecutorUrl: 'https://tools.example/run', requiredAction: null })).toBe(true);
  });
});
