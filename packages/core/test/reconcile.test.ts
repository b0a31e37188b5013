import { describe, expect, it } from 'vitest';
import { outputText, reasoningSummary, reconcileResponse } from '../src/index.ts';

const usage = { input_tokens: 10, input_tokens_details: { cached_tokens: 0 }, output_tokens: 20, output_tokens_details: { reasoning_tokens: 5 }, total_tokens: 30 };
const output = [
  { type: 'reasoning', id: 'rs_1', summary: [] },
  {
    type: 'message',
    id: 'msg_1',
    role: 'assistant',
    content: [
      { type: 'output_text', text: 'Otters ' },
      { type: 'output_text', text: 'in space.' },
    ],
  },
];

describe('reconcileResponse', () => {
  it('copies output, text and usage of a completed response', () => {
    const d = reconcileResponse({ status: 'in_progress' }, { id: 'resp_1', status: 'completed', output, usage, error: null, incomplete_details: null });
    expect(d).toEqual({
      ok: true,
      changed: true,
      patch: { status: 'completed', output, outputText: 'Otters in space.', reasoningSummary: null, usage, error: null, incompleteDetails: null },
    });
  });

  it('keeps the reason of an incomplete response and the error of a failed one', () => {
    expect(reconcileResponse({ status: 'queued' }, { id: 'r', status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } })).toMatchObject({
      patch: { status: 'incomplete', incompleteDetails: { reason: 'max_output_tokens' } },
    });
    expect(reconcileResponse({ status: 'queued' }, { id: 'r', status: 'failed', error: { code: 'server_error', message: 'boom' } })).toMatchObject({
      patch: { status: 'failed', error: { code: 'server_error', message: 'boom' } },
    });
  });

  it('refuses to touch a finished job', () => {
    expect(reconcileResponse({ status: 'completed' }, { id: 'r', status: 'failed' })).toMatchObject({ ok: false, error: { code: 'job_terminal' } });
  });

  it('keeps the reasoning summary parts apart, in order, across reasoning items', () => {
    const withSummary = [
      {
        type: 'reasoning',
        id: 'rs_1',
        summary: [
          { type: 'summary_text', text: 'First I read.' },
          { type: 'summary_text', text: 'Then I wrote.' },
        ],
      },
      { type: 'message', content: [{ type: 'output_text', text: 'Done.' }] },
      { type: 'reasoning', id: 'rs_2', summary: [{ type: 'summary_text', text: 'Checked.' }] },
    ];
    expect(reasoningSummary(withSummary)).toEqual([
      { type: 'summary_text', text: 'First I read.' },
      { type: 'summary_text', text: 'Then I wrote.' },
      { type: 'summary_text', text: 'Checked.' },
    ]);
    expect(reconcileResponse({ status: 'in_progress' }, { id: 'r', status: 'completed', output: withSummary })).toMatchObject({
      patch: { reasoningSummary: [{ text: 'First I read.' }, { text: 'Then I wrote.' }, { text: 'Checked.' }] },
    });
    expect(reasoningSummary(output)).toBeNull();
  });

  it('extracts output_text only from assistant message text parts', () => {
    expect(outputText([{ type: 'message', content: [{ type: 'refusal', refusal: 'no' }] }, { type: 'function_call' }])).toBe('');
    expect(outputText(null)).toBe('');
  });

  it('in a tool-call loop, a completed turn with calls makes the job wait for them, with the turn recorded', () => {
    const call = { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'lookup', arguments: '{}' };
    const d = reconcileResponse({ status: 'in_progress' }, { id: 'resp_1', status: 'completed', output: [call], usage }, { turn: 1, maxTurns: 10 });
    expect(d).toMatchObject({
      ok: true,
      changed: true,
      patch: {
        status: 'requires_action',
        usage,
        output: [call],
        requiredAction: { type: 'submit_tool_outputs', tool_calls: [{ call_id: 'call_1', name: 'lookup', arguments: '{}', kind: 'function' }] },
      },
    });
    expect(reconcileResponse({ status: 'in_progress' }, { id: 'resp_9', status: 'completed', output: [call], usage }, { turn: 10, maxTurns: 10 })).toMatchObject({
      patch: { status: 'incomplete', incompleteDetails: { reason: 'max_turns' } },
    });
    // A turn without calls is the result; outside a loop calls are output like any other.
    expect(reconcileResponse({ status: 'in_progress' }, { id: 'r', status: 'completed', output }, { turn: 3, maxTurns: 10 })).toMatchObject({
      patch: { status: 'completed', outputText: 'Otters in space.' },
    });
    expect(reconcileResponse({ status: 'in_progress' }, { id: 'r', status: 'completed', output: [call] })).toMatchObject({ patch: { status: 'completed' } });
    // A failed turn fails the job, loop or not.
    expect(reconcileResponse({ status: 'in_progress' }, { id: 'r', status: 'failed', error: { code: 'server_error', message: 'x' } }, { turn: 2, maxTurns: 10 })).toMatchObject({
      patch: { status: 'failed' },
    });
  });
});
