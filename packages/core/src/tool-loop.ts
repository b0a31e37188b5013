/**
 * Agent runs (issue 15): the rules of a job's tool-call loop. Pure; the worker and the API carry
 * them out.
 *
 * Design note: a turn is one background response at the provider. A turn whose response ends
 * with work for the client (function or custom tool calls, MCP approval requests) makes the job
 * wait for that work, as a `required_action`; once every call has an output and every approval
 * request an answer, the next turn is a new response with `previous_response_id` (so the
 * reasoning items carry over, as OpenAI recommends) and those answers as its input. The loop ends
 * at a turn without such work (the job's result), or at the job's `max_turns`: then the job is
 * `incomplete` with reason `max_turns` rather than waiting for a turn it will not make.
 *
 * Why one required action holds every kind: a turn may both call functions and ask for an MCP
 * approval. Each answer (`POST .../tool_outputs`, `POST .../approvals`) must cover its whole kind,
 * never a part (a missing output is the caller's mistake, named in a 400), and the job moves on
 * when both kinds are answered. The answers are kept on the required action itself, so the
 * waiting state is one value the database stores with the job, whatever crashes in between.
 */

/** Turns a job may take when it does not say (`max_turns`). */
export const DEFAULT_MAX_TURNS = 10;
/** The most a job may ask for. */
export const MAX_TURNS_LIMIT = 100;
/** The largest single tool output or approval reason Longhaul passes on (UTF-8 bytes of its JSON). */
export const MAX_TOOL_OUTPUT_BYTES = 1_048_576;
/** The largest set of outputs for one turn. */
export const MAX_TOOL_OUTPUTS_TOTAL_BYTES = 8 * 1_048_576;

/** A call the client runs: a function tool's (`function_call`) or a custom tool's (`custom_tool_call`). */
export interface ToolCall {
  call_id: string;
  name: string;
  /** A function's arguments (a JSON string), or a custom tool's free-form input. */
  arguments: string;
  kind: 'function' | 'custom';
}

/** A remote MCP server's call waiting for a human's approval (`mcp_approval_request`). */
export interface ApprovalRequest {
  id: string;
  server_label: string;
  name: string;
  arguments: string;
}

/** What a tool output may be: text, or content parts as OpenAI's `function_call_output` takes them. */
export type ToolOutputValue = string | unknown[];

export interface ToolOutput {
  call_id: string;
  output: ToolOutputValue;
}

export interface Approval {
  approval_request_id: string;
  approve: boolean;
  reason?: string;
}

/**
 * What a job waits for between turns. `type` names the first kind still unanswered (the job's
 * object shows it); the answers given so far are kept beside the requests.
 */
export interface RequiredAction {
  type: 'submit_tool_outputs' | 'mcp_approval';
  tool_calls: ToolCall[];
  approval_requests: ApprovalRequest[];
  tool_outputs?: ToolOutput[];
  approvals?: Approval[];
}

/** How a turn that completed at the provider ends. */
export type TurnEnd =
  /** No work for the client: the turn's output is the job's result. */
  | { kind: 'final' }
  /** Work for the client: the job waits for it. */
  | { kind: 'requires_action'; requiredAction: RequiredAction }
  /** Work for the client, but the job has made its last turn. */
  | { kind: 'max_turns' };

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

const text = (x: unknown): string => (typeof x === 'string' ? x : '');

/** The client's work in a response's output: its tool calls and approval requests, in order. */
export function clientWork(output: readonly unknown[] | null | undefined): { toolCalls: ToolCall[]; approvalRequests: ApprovalRequest[] } {
  const toolCalls: ToolCall[] = [];
  const approvalRequests: ApprovalRequest[] = [];
  for (const item of output ?? []) {
    if (!isRecord(item)) continue;
    if ((item.type === 'function_call' || item.type === 'custom_tool_call') && typeof item.call_id === 'string') {
      const kind = item.type === 'function_call' ? 'function' : 'custom';
      toolCalls.push({ call_id: item.call_id, name: text(item.name), arguments: text(kind === 'function' ? item.arguments : item.input), kind });
    } else if (item.type === 'mcp_approval_request' && typeof item.id === 'string') {
      approvalRequests.push({ id: item.id, server_label: text(item.server_label), name: text(item.name), arguments: text(item.arguments) });
    }
  }
  return { toolCalls, approvalRequests };
}

/**
 * How turn `turn` (1-based) of a job allowed `maxTurns` ends, from its completed response's
 * output.
 */
export function turnEnd(output: readonly unknown[] | null | undefined, turns: { turn: number; maxTurns: number }): TurnEnd {
  const { toolCalls, approvalRequests } = clientWork(output);
  if (toolCalls.length === 0 && approvalRequests.length === 0) return { kind: 'final' };
  if (turns.turn >= turns.maxTurns) return { kind: 'max_turns' };
  return { kind: 'requires_action', requiredAction: withType({ type: 'submit_tool_outputs', tool_calls: toolCalls, approval_requests: approvalRequests }) };
}

/** Every call has its output and every approval request its answer: the next turn can be made. */
export function isAnswered(action: RequiredAction): boolean {
  return (action.tool_calls.length === 0 || action.tool_outputs !== undefined) && (action.approval_requests.length === 0 || action.approvals !== undefined);
}

/** The turn's tool calls still want their outputs (a tool executor has work to do). */
export function awaitsToolOutputs(action: RequiredAction | null | undefined): boolean {
  return action !== null && action !== undefined && action.tool_calls.length > 0 && action.tool_outputs === undefined;
}

function withType(action: RequiredAction): RequiredAction {
  const toolsPending = action.tool_calls.length > 0 && action.tool_outputs === undefined;
  return { ...action, type: toolsPending || action.approval_requests.length === 0 ? 'submit_tool_outputs' : 'mcp_approval' };
}

/** A refused answer, as the API returns it: the status, a code and the parameter at fault. */
export interface AnswerProblem {
  status: 400 | 409 | 413;
  code: string;
  message: string;
  param: string | null;
}

export type AnswerResult = { ok: true; action: RequiredAction } | { ok: false; problem: AnswerProblem };

const encoder = new TextEncoder();
const bytes = (value: unknown): number => encoder.encode(JSON.stringify(value) ?? '').length;

const refuse = (status: AnswerProblem['status'], code: string, message: string, param: string | null): AnswerResult => ({
  ok: false,
  problem: { status, code, message, param },
});

/**
 * Check `outputs` (the body's `tool_outputs`, already shaped as `ToolOutput[]`) against what the
 * job waits for and keep them: one output for each call, no other, none twice, none too large.
 */
export function answerToolOutputs(action: RequiredAction, outputs: readonly ToolOutput[]): AnswerResult {
  if (action.tool_calls.length === 0) return refuse(409, 'no_tool_calls_pending', 'The job is not waiting for tool outputs (it waits for MCP approvals).', null);
  if (action.tool_outputs !== undefined) return refuse(409, 'tool_outputs_already_submitted', "This turn's tool outputs were submitted already.", null);
  const pending = new Set(action.tool_calls.map((c) => c.call_id));
  const seen = new Set<string>();
  let total = 0;
  for (const [i, out] of outputs.entries()) {
    const param = `tool_outputs[${i}]`;
    if (!pending.has(out.call_id)) return refuse(400, 'unknown_call_id', `No tool call '${out.call_id}' is waiting for an output in this turn.`, `${param}.call_id`);
    if (seen.has(out.call_id)) return refuse(400, 'duplicate_call_id', `Tool call '${out.call_id}' has more than one output.`, `${param}.call_id`);
    seen.add(out.call_id);
    const size = bytes(out.output);
    if (size > MAX_TOOL_OUTPUT_BYTES)
      return refuse(413, 'tool_output_too_large', `The output of '${out.call_id}' is ${size} bytes; the most is ${MAX_TOOL_OUTPUT_BYTES}.`, `${param}.output`);
    total += size;
  }
  if (total > MAX_TOOL_OUTPUTS_TOTAL_BYTES)
    return refuse(413, 'tool_outputs_too_large', `The outputs add up to ${total} bytes; the most is ${MAX_TOOL_OUTPUTS_TOTAL_BYTES}.`, 'tool_outputs');
  const missing = action.tool_calls.find((c) => !seen.has(c.call_id));
  if (missing) return refuse(400, 'missing_tool_output', `Tool call '${missing.call_id}' (${missing.name}) has no output; every call of the turn needs one.`, 'tool_outputs');
  const byCall = new Map(outputs.map((o) => [o.call_id, o]));
  // Kept in the order of the calls, so the next turn's input is the same whatever order they came in.
  return { ok: true, action: withType({ ...action, tool_outputs: action.tool_calls.map((c) => byCall.get(c.call_id)!) }) };
}

/** Check and keep the answers to the turn's MCP approval requests, as `answerToolOutputs` does outputs. */
export function answerApprovals(action: RequiredAction, approvals: readonly Approval[]): AnswerResult {
  if (action.approval_requests.length === 0) return refuse(409, 'no_approvals_pending', 'The job is not waiting for MCP approvals.', null);
  if (action.approvals !== undefined) return refuse(409, 'approvals_already_submitted', "This turn's approvals were submitted already.", null);
  const pending = new Set(action.approval_requests.map((r) => r.id));
  const seen = new Set<string>();
  for (const [i, a] of approvals.entries()) {
    const param = `approvals[${i}]`;
    if (!pending.has(a.approval_request_id)) {
      return refuse(400, 'unknown_approval_request_id', `No approval request '${a.approval_request_id}' is waiting in this turn.`, `${param}.approval_request_id`);
    }
    if (seen.has(a.approval_request_id))
      return refuse(400, 'duplicate_approval_request_id', `Approval request '${a.approval_request_id}' is answered more than once.`, `${param}.approval_request_id`);
    seen.add(a.approval_request_id);
    if (a.reason !== undefined && bytes(a.reason) > MAX_TOOL_OUTPUT_BYTES) return refuse(413, 'approval_reason_too_large', 'The reason is too large.', `${param}.reason`);
  }
  const missing = action.approval_requests.find((r) => !seen.has(r.id));
  if (missing)
    return refuse(
      400,
      'missing_approval',
      `Approval request '${missing.id}' (${missing.server_label}.${missing.name}) has no answer; every request of the turn needs one.`,
      'approvals',
    );
  const byId = new Map(approvals.map((a) => [a.approval_request_id, a]));
  return { ok: true, action: withType({ ...action, approvals: action.approval_requests.map((r) => byId.get(r.id)!) }) };
}

/** The next turn's input items: each output and each approval answer, as the Responses API takes them. Only for an answered action. */
export function nextTurnInput(action: RequiredAction): Record<string, unknown>[] {
  const kindOf = new Map(action.tool_calls.map((c) => [c.call_id, c.kind]));
  const outputs = (action.tool_outputs ?? []).map((o) => ({
    type: kindOf.get(o.call_id) === 'custom' ? 'custom_tool_call_output' : 'function_call_output',
    call_id: o.call_id,
    output: o.output,
  }));
  const approvals = (action.approvals ?? []).map((a) => ({
    type: 'mcp_approval_response',
    approval_request_id: a.approval_request_id,
    approve: a.approve,
    ...(a.reason === undefined ? {} : { reason: a.reason }),
  }));
  return [...outputs, ...approvals];
}

/**
 * The create parameters of the next turn: the job's own (model, instructions, tools, reasoning:
 * a response does not inherit them) with the answers as input, after the previous turn's
 * response (`previous_response_id`, so its reasoning items carry over), or, in a conversation,
 * appended to it (the provider takes one or the other).
 */
export function nextTurnRequest(request: Record<string, unknown>, previousResponseId: string, action: RequiredAction): Record<string, unknown> {
  const { input: _first, previous_response_id: _previous, ...rest } = request;
  const input = nextTurnInput(action);
  return rest.conversation !== undefined ? { ...rest, input } : { ...rest, previous_response_id: previousResponseId, input };
}

/**
 * Whether a job with these tools runs a tool-call loop: it has a tool the client runs (a function
 * or custom tool) or an MCP server whose calls may need approval (`require_approval` other than
 * `never`: OpenAI asks for approval by default).
 */
export function runsToolLoop(tools: unknown): boolean {
  if (!Array.isArray(tools)) return false;
  return tools.some((tool) => {
    if (!isRecord(tool)) return false;
    if (tool.type === 'function' || tool.type === 'custom') return true;
    return tool.type === 'mcp' && tool.require_approval !== 'never';
  });
}
