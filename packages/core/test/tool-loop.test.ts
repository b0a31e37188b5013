import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_TURNS,
  MAX_TOOL_OUTPUT_BYTES,
  type RequiredAction,
  addUsage,
  answerApprovals,
  answerToolOutputs,
  awaitsToolOutputs,
  clientWork,
  isAnswered,
  nextTurnInput,
  nextTurnRequest,
  runsToolLoop,
  turnEnd,
} from '../src/index.ts';

const reasoning = { type: 'reasoning', id: 'rs_1', summary: [] };
const weather = { type: 'function_call', id: 'fc_1', call_id: 'call_w', name: 'get_weather', arguments: '{"city":"Oslo"}', status: 'completed' };
const stock = { type: 'function_call', id: 'fc_2', call_id: 'call_s', name: 'get_stock', arguments: '{"ticker":"ACME"}', status: 'completed' };
const grep = { type: 'custom_tool_call', id: 'ctc_1', call_id: 'call_g', name: 'grep', input: 'otters' };
const approval = { type: 'mcp_approval_request', id: 'mcpr_1', server_label: 'deepwiki', name: 'ask_question', arguments: '{"q":"x"}' };
const message = { type: 'message', id: 'msg_1', role: 'assistant', content: [{ type: 'output_text', text: 'Done.' }] };

const waiting = (output: unknown[], turn = 1): RequiredAction => {
  const end = turnEnd(output, { turn, maxTurns: DEFAULT_MAX_TURNS });
  if (end.kind !== 'requires_action') throw new Error(`expected requires_action, got ${end.kind}`);
  return end.requiredAction;
};

describe('turnEnd', () => {
  it('is final for a turn without calls or approval requests', () => {
    expect(turnEnd([reasoning, message], { turn: 1, maxTurns: 10 })).toEqual({ kind: 'final' });
    expect(turnEnd(null, { turn: 3, maxTurns: 10 })).toEqual({ kind: 'final' });
  });

  it('waits for every call of the turn, in order, parallel calls together', () => {
    expect(waiting([reasoning, weather, stock, grep])).toEqual({
      type: 'submit_tool_outputs',
      tool_calls: [
        { call_id: 'call_w', name: 'get_weather', arguments: '{"city":"Oslo"}', kind: 'function' },
        { call_id: 'call_s', name: 'get_stock', arguments: '{"ticker":"ACME"}', kind: 'function' },
        { call_id: 'call_g', name: 'grep', arguments: 'otters', kind: 'custom' },
      ],
      approval_requests: [],
    });
  });

  it('waits for an MCP approval as mcp_approval', () => {
    expect(waiting([approval])).toEqual({
      type: 'mcp_approval',
      tool_calls: [],
      approval_requests: [{ id: 'mcpr_1', server_label: 'deepwiki', name: 'ask_question', arguments: '{"q":"x"}' }],
    });
  });

  it('ends at max_turns instead of waiting for a turn the job will not make', () => {
    expect(turnEnd([weather], { turn: 10, maxTurns: 10 })).toEqual({ kind: 'max_turns' });
    expect(turnEnd([weather], { turn: 9, maxTurns: 10 }).kind).toBe('requires_action');
    // A last turn without calls is the job's result, not cut short.
    expect(turnEnd([message], { turn: 10, maxTurns: 10 })).toEqual({ kind: 'final' });
  });

  it('ignores items that are not the client’s work, and malformed ones', () => {
    expect(clientWork([{ type: 'web_search_call', id: 'ws_1' }, { type: 'function_call' }, 'junk', null, message])).toEqual({ toolCalls: [], approvalRequests: [] });
  });
});

describe('answering', () => {
  it('keeps a whole set of outputs in the order of the calls and builds the next turn from it', () => {
    const action = waiting([weather, stock, grep]);
    const answered = answerToolOutputs(action, [
      { call_id: 'call_g', output: 'line 3' },
      { call_id: 'call_w', output: '12°C' },
      { call_id: 'call_s', output: [{ type: 'input_text', text: '41.2' }] },
    ]);
    expect(answered.ok).toBe(true);
    if (!answered.ok) return;
    expect(isAnswered(answered.action)).toBe(true);
    expect(nextTurnInput(answered.action)).toEqual([
      { type: 'function_call_output', call_id: 'call_w', output: '12°C' },
      { type: 'function_call_output', call_id: 'call_s', output: [{ type: 'input_text', text: '41.2' }] },
      { type: 'custom_tool_call_output', call_id: 'call_g', output: 'line 3' },
    ]);
  });

  it('names what is wrong with a set of outputs', () => {
    const action = waiting([weather, stock]);
    expect(answerToolOutputs(action, [{ call_id: 'call_x', output: '' }])).toEqual({
      ok: false,
      problem: { status: 400, code: 'unknown_call_id', message: "No tool call 'call_x' is waiting for an output in this turn.", param: 'tool_outputs[0].call_id' },
    });
    expect(
      answerToolOutputs(action, [
        { call_id: 'call_w', output: 'a' },
        { call_id: 'call_w', output: 'b' },
      ]),
    ).toMatchObject({ ok: false, problem: { status: 400, code: 'duplicate_call_id', param: 'tool_outputs[1].call_id' } });
    expect(answerToolOutputs(action, [{ call_id: 'call_w', output: 'a' }])).toMatchObject({
      ok: false,
      problem: { status: 400, code: 'missing_tool_output', message: expect.stringContaining("'call_s' (get_stock)"), param: 'tool_outputs' },
    });
    expect(answerToolOutputs(action, [{ call_id: 'call_w', output: 'x'.repeat(MAX_TOOL_OUTPUT_BYTES) }])).toMatchObject({
      ok: false,
      problem: { status: 413, code: 'tool_output_too_large', param: 'tool_outputs[0].output' },
    });
    // A multi-byte character counts as its UTF-8 bytes.
    expect(answerToolOutputs(action, [{ call_id: 'call_w', output: 'é'.repeat(MAX_TOOL_OUTPUT_BYTES / 2) }])).toMatchObject({ ok: false, problem: { status: 413 } });
  });

  it('refuses outputs the job is not waiting for, and a second set', () => {
    expect(answerToolOutputs(waiting([approval]), [])).toMatchObject({ ok: false, problem: { status: 409, code: 'no_tool_calls_pending' } });
    const answered = answerToolOutputs(waiting([weather]), [{ call_id: 'call_w', output: 'sunny' }]);
    if (!answered.ok) throw new Error('expected ok');
    expect(answerToolOutputs(answered.action, [{ call_id: 'call_w', output: 'again' }])).toMatchObject({
      ok: false,
      problem: { status: 409, code: 'tool_outputs_already_submitted' },
    });
  });

  it('answers approvals, and a turn with both kinds moves on only when both are answered', () => {
    const action = waiting([weather, approval]);
    expect(action.type).toBe('submit_tool_outputs');
    const outputs = answerToolOutputs(action, [{ call_id: 'call_w', output: 'sunny' }]);
    if (!outputs.ok) throw new Error('expected ok');
    expect(isAnswered(outputs.action)).toBe(false);
    expect(outputs.action.type).toBe('mcp_approval');
    expect(answerApprovals(outputs.action, [{ approval_request_id: 'mcpr_2', approve: true }])).toMatchObject({
      ok: false,
      problem: { status: 400, code: 'unknown_approval_request_id', param: 'approvals[0].approval_request_id' },
    });
    expect(answerApprovals(outputs.action, [])).toMatchObject({ ok: false, problem: { status: 400, code: 'missing_approval' } });
    const both = answerApprovals(outputs.action, [{ approval_request_id: 'mcpr_1', approve: false, reason: 'not on a Friday' }]);
    if (!both.ok) throw new Error('expected ok');
    expect(isAnswered(both.action)).toBe(true);
    expect(nextTurnInput(both.action)).toEqual([
      { type: 'function_call_output', call_id: 'call_w', output: 'sunny' },
      { type: 'mcp_approval_response', approval_request_id: 'mcpr_1', approve: false, reason: 'not on a Friday' },
    ]);
    expect(answerApprovals(both.action, [{ approval_request_id: 'mcpr_1', approve: true }])).toMatchObject({
      ok: false,
      problem: { status: 409, code: 'approvals_already_submitted' },
    });
    expect(answerApprovals(waiting([weather]), [])).toMatchObject({ ok: false, problem: { status: 409, code: 'no_approvals_pending' } });
  });
});

describe('nextTurnRequest', () => {
  it('sends the job’s own parameters again with the answers as input, after the previous turn', () => {
    const answered = answerToolOutputs(waiting([weather]), [{ call_id: 'call_w', output: 'sunny' }]);
    if (!answered.ok) throw new Error('expected ok');
    const request = { model: 'o3', input: 'Plan my day.', instructions: 'Be brief.', tools: [{ type: 'function', name: 'get_weather' }], reasoning: { effort: 'high' } };
    expect(nextTurnRequest(request, 'resp_1', answered.action)).toEqual({
      model: 'o3',
      instructions: 'Be brief.',
      tools: [{ type: 'function', name: 'get_weather' }],
      reasoning: { effort: 'high' },
      previous_response_id: 'resp_1',
      input: [{ type: 'function_call_output', call_id: 'call_w', output: 'sunny' }],
    });
    // A job that continued another response follows its own previous turn from the second on.
    expect(nextTurnRequest({ ...request, previous_response_id: 'resp_0' }, 'resp_1', answered.action).previous_response_id).toBe('resp_1');
    // In a conversation the answers are appended to it: no previous_response_id.
    const inConversation = nextTurnRequest({ ...request, conversation: 'conv_1' }, 'resp_1', answered.action);
    expect(inConversation).toMatchObject({ conversation: 'conv_1', input: [{ type: 'function_call_output' }] });
    expect(inConversation).not.toHaveProperty('previous_response_id');
  });
});

describe('runsToolLoop', () => {
  it('runs a loop for tools the client runs and MCP calls that need approval', () => {
    expect(runsToolLoop([{ type: 'function', name: 'f' }])).toBe(true);
    expect(runsToolLoop([{ type: 'web_search' }, { type: 'custom', name: 'grep' }])).toBe(true);
    expect(runsToolLoop([{ type: 'mcp', server_label: 'x' }])).toBe(true);
    expect(runsToolLoop([{ type: 'mcp', server_label: 'x', require_approval: { never: { tool_names: ['a'] } } }])).toBe(true);
    expect(runsToolLoop([{ type: 'mcp', server_label: 'x', require_approval: 'never' }])).toBe(false);
    expect(runsToolLoop([{ type: 'web_search' }, { type: 'file_search' }])).toBe(false);
    expect(runsToolLoop(undefined)).toBe(false);
  });
});

describe('addUsage', () => {
  const usage = (i: number, c: number, o: number, r: number) => ({
    input_tokens: i,
    input_tokens_details: { cached_tokens: c },
    output_tokens: o,
    output_tokens_details: { reasoning_tokens: r },
    total_tokens: i + o,
  });

  it('sums every count over turns; a turn without usage counts as nothing', () => {
    expect(addUsage(usage(100, 20, 50, 30), usage(300, 200, 10, 5))).toEqual(usage(400, 220, 60, 35));
    expect(addUsage(null, usage(1, 0, 2, 1))).toEqual(usage(1, 0, 2, 1));
    expect(addUsage(usage(1, 0, 2, 1), undefined)).toEqual(usage(1, 0, 2, 1));
    expect(addUsage(null, null)).toBeNull();
  });
});

describe('awaitsToolOutputs', () => {
  it("is true while a turn's tool calls want their outputs (work for a tool executor), false once they are in or when the turn only asks for approvals", () => {
    expect(awaitsToolOutputs(waiting([weather, stock]))).toBe(true);
    const both = waiting([weather, approval]);
    expect(awaitsToolOutputs(both)).toBe(true);
    const answered = answerToolOutputs(both, [{ call_id: 'call_w', output: 'sunny' }]);
    if (!answered.ok) throw new Error('expected ok');
    expect(awaitsToolOutputs(answered.action)).toBe(false);
    expect(awaitsToolOutputs(waiting([approval]))).toBe(false);
    expect(awaitsToolOutputs(null)).toBe(false);
  });
});
