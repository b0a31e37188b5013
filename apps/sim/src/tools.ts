/**
 * Deterministic tool calling (issue 15): what the simulated model does with a request's `tools`,
 * and OpenAI's checks on the tool outputs and approvals a request brings.
 *
 * Design note. A turn is one response; a loop is the turns of a chain (`previous_response_id`, a
 * conversation, or a history the client keeps in `input`) up to an answer. The loop's state is a
 * `ToolHistory` (function-call turns since the chain's last answer, the outputs received since
 * then, the MCP servers whose tool list the chain has seen), derived from the items the chain holds:
 * the previous response's history advanced by what that response actually output (a turn cut off
 * before its calls does not count), else the conversation's items, then this request's input.
 * Counting since the last answer rather than over the whole chain lets a chain that goes on with
 * another question loop again.
 *
 * Each turn, first match wins:
 * 1. `mcp_approval_response` inputs: every approved request runs (an `mcp_call` with a simulated
 *    output: no MCP server is ever contacted) and the turn answers, naming the denied ones.
 * 2. Function tools, `tool_choice` not 'none', fewer function turns than `metadata.sim_tool_turns`
 *    (default 1; "0" never calls): `function_call`s, to the first function tool or, with
 *    `sim_parallel_calls: N` and `parallel_tool_calls` not false, to the first N (cycling). The
 *    turn completes with no message, as OpenAI ends a turn that calls tools.
 * 3. An MCP tool (the first): an `mcp_approval_request` when the tool requires approval (the
 *    default), else its `mcp_call` and the answer.
 * 4. The answer.
 * An answer starts by quoting the function outputs received since the last answer ("Tool
 * results: call_…=…; …."), so a test can see that each output arrived. The first turn whose
 * context lacks an MCP server's tool list starts with its `mcp_list_tools`, as OpenAI's does.
 *
 * Invariants (OpenAI's 400s): a `function_call_output` answers a call of the previous response,
 * of a `function_call` in the input, or of the conversation; every such call has an output; an
 * `mcp_approval_response` answers an approval request found the same way.
 */
import { invalidRequest, type ApiError } from './errors.ts';
import type { Generation } from './generation.ts';
import { newCallId, newId } from './ids.ts';
import type { ParseResult } from './request.ts';
import { minimalArguments } from './tool-arguments.ts';
import { countTokens } from './usage.ts';

type Item = Record<string, unknown>;

export interface ToolHistory {
  /** Turns that called functions since the chain's last answer. */
  functionTurns: number;
  /** `call_id=output` quotes of the function outputs received since the last answer (at most MAX_QUOTED_RESULTS). */
  results: readonly string[];
  /** Quotes left out beyond MAX_QUOTED_RESULTS. */
  omittedResults: number;
  /** `server_label`s whose `mcp_list_tools` the chain holds. */
  mcpListed: readonly string[];
}

const EMPTY_TOOL_HISTORY: ToolHistory = { functionTurns: 0, results: [], omittedResults: 0, mcpListed: [] };

/** What one response does with its tools, fixed at creation. */
export interface ToolTurn {
  /** Items before the model's reasoning: the `mcp_list_tools` fetched for this turn. */
  leading: Item[];
  /** The model's tool items after its reasoning: `function_call`s, an `mcp_approval_request`, `mcp_call`s. */
  calls: Item[];
  /** Whether the turn ends with the assistant's message; false when it waits for the client. */
  answers: boolean;
  /** What the message says before the generated text: results received, MCP results, denials. */
  preamble: string | null;
}

/** The fields of a create request tools depend on (a `CreateRequest` is one). */
export interface ToolRequest {
  tools?: readonly Record<string, unknown>[] | null;
  tool_choice?: unknown;
  parallel_tool_calls?: boolean | null;
  metadata?: Readonly<Record<string, string>> | null;
}

/** The request's input, after a hosted prompt's. */
type ToolInput = string | readonly Record<string, unknown>[] | null;

/** What the chain holds before this request. */
export interface PriorTurns {
  /** The previous response's output as it stands now; null without `previous_response_id`. */
  previousOutput: readonly Item[] | null;
  /** The history the previous response was created with. */
  previousHistory: ToolHistory | null;
  /** The items of the conversation the response runs in; null without one. */
  conversationItems: readonly Item[] | null;
}

export interface ToolPlan {
  /** Null when tools play no part: the response is what it was before tools existed. */
  turn: ToolTurn | null;
  /** The history this response is created with (its input included, its own turn not). */
  history: ToolHistory;
}

/** Characters of one tool output quoted in an answer. */
const MAX_QUOTED_CHARS = 500;
const MAX_QUOTED_RESULTS = 100;
const MAX_PARALLEL_CALLS = 128;
/** Characters per `*_arguments.delta` event. */
const ARGUMENT_DELTA_CHARS = 16;
/** The tool a simulated MCP server offers when the request names none (`allowed_tools`). */
const DEFAULT_MCP_TOOL = 'simulated_tool';
const MCP_TOOL_SCHEMA = { type: 'object', properties: { query: { type: 'string' } }, required: ['query'], additionalProperties: false };

interface ToolDirectives {
  /** Function-call turns before the answer. */
  toolTurns: number;
  parallelCalls: number;
}

export function planToolTurn(request: ToolRequest, requestInput: ToolInput, prior: PriorTurns): ParseResult<ToolPlan> {
  const directives = parseToolDirectives(request.metadata ?? {});
  if (!directives.ok) return directives;
  const input = typeof requestInput === 'string' || requestInput === null ? [] : requestInput;
  const previous = prior.previousOutput ?? [];
  const conversation = prior.conversationItems ?? [];
  const problem = checkFunctionOutputs(previous, conversation, input) ?? checkApprovals(previous, conversation, input);
  if (problem !== null) return { ok: false, error: problem };

  const inherited = prior.previousOutput === null ? advanceHistory(EMPTY_TOOL_HISTORY, conversation) : advanceHistory(prior.previousHistory ?? EMPTY_TOOL_HISTORY, previous);
  const history = advanceHistory(inherited, input);
  const turn = decideTurn(request, directives.value, history, approvalsIn(input, [previous, conversation, input]));
  return { ok: true, value: { turn, history } };
}

/** The generation a turn answers with: no text while it waits for the client, else the preamble first. */
export function applyToolTurn(generation: Generation, turn: ToolTurn | null): Generation {
  if (turn === null) return generation;
  if (!turn.answers) {
    const written = turn.calls.map((call) => String(call['arguments'] ?? '')).join('');
    return { ...generation, text: '', textTokens: countTokens(written) };
  }
  if (turn.preamble === null) return generation;
  const text = `${turn.preamble}\n\n${generation.text}`;
  return { ...generation, text, textTokens: countTokens(text) };
}

/**
 * A turn's output in OpenAI's order: tool lists, reasoning, tool items, message. An incomplete
 * turn (cut off by max_output_tokens) has made no function call or approval request yet, and has
 * a message only if some text was written.
 */
export function arrangeOutput(turn: ToolTurn | null, reasoning: Item | null, message: Item | null, incomplete: boolean): Item[] {
  const own = reasoning === null ? [] : [reasoning];
  if (turn === null) return message === null ? own : [...own, message];
  const calls = !incomplete || turn.answers ? turn.calls : [];
  return [...turn.leading, ...own, ...calls, ...(turn.answers && message !== null ? [message] : [])];
}

/** Text a follow-up turn sees for the tool items of a turn (the message text is counted apart). */
export function toolContextText(turn: ToolTurn | null): string {
  return turn === null || turn.calls.length === 0 ? '' : JSON.stringify(turn.calls);
}

/** Splits a JSON arguments string into the deltas of `*_arguments.delta` events. */
export function argumentDeltas(text: string): string[] {
  const deltas: string[] = [];
  for (let i = 0; i < text.length; i += ARGUMENT_DELTA_CHARS) deltas.push(text.slice(i, i + ARGUMENT_DELTA_CHARS));
  return deltas;
}

function parseToolDirectives(metadata: Readonly<Record<string, string>>): ParseResult<ToolDirectives> {
  const turns = count(metadata, 'sim_tool_turns', 0, Number.MAX_SAFE_INTEGER, 1);
  if (!turns.ok) return turns;
  const parallel = count(metadata, 'sim_parallel_calls', 1, MAX_PARALLEL_CALLS, 1);
  if (!parallel.ok) return parallel;
  return { ok: true, value: { toolTurns: turns.value, parallelCalls: parallel.value } };
}

function count(metadata: Readonly<Record<string, string>>, key: string, min: number, max: number, fallback: number): ParseResult<number> {
  const raw = metadata[key];
  if (raw === undefined) return { ok: true, value: fallback };
  const value = /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer from ${min} to ${max}`;
    return { ok: false, error: invalidRequest(`Invalid 'metadata.${key}': expected ${range}, got '${raw}'.`, `metadata.${key}`, 'invalid_value') };
  }
  return { ok: true, value };
}

function decideTurn(request: ToolRequest, directives: ToolDirectives, history: ToolHistory, approvals: Approval[]): ToolTurn | null {
  const tools = request.tools ?? [];
  const mcpTools = tools.filter(isMcpTool);
  const leading = mcpTools.filter((tool) => !history.mcpListed.includes(tool.server_label)).map(listTools);
  const choice = request.tool_choice;
  const forcedMcp = isObject(choice) && choice['type'] === 'mcp';
  const calling = choice !== 'none' && directives.toolTurns > 0;
  const results = quoteResults(history);

  if (approvals.length > 0) {
    const calls = approvals.filter((a) => a.approve).map((a) => mcpCall(a.request, a.request['id'] as string));
    const denials = approvals.filter((a) => !a.approve).map(describeDenial);
    return { leading, calls, answers: true, preamble: joinText([results, ...calls.map(describeMcpResult), ...denials]) };
  }
  const functions = chosenFunctions(tools, choice);
  if (calling && !forcedMcp && functions.length > 0 && history.functionTurns < directives.toolTurns) {
    const n = request.parallel_tool_calls === false ? 1 : directives.parallelCalls;
    const calls = Array.from({ length: n }, (_, i) => functionCall(functions[i % functions.length] as FunctionTool));
    return { leading, calls, answers: false, preamble: null };
  }
  const mcp = forcedMcp ? (mcpTools.find((tool) => tool.server_label === (choice as Item)['server_label']) ?? mcpTools[0]) : mcpTools[0];
  if (calling && mcp !== undefined) {
    const name = mcpToolNames(mcp)[0] as string;
    const args = minimalArguments(MCP_TOOL_SCHEMA);
    if (requiresApproval(mcp, name)) {
      const approval = { type: 'mcp_approval_request', id: newId('mcpr'), server_label: mcp.server_label, name, arguments: args };
      return { leading, calls: [approval], answers: false, preamble: null };
    }
    const call = mcpCall({ server_label: mcp.server_label, name, arguments: args }, null);
    return { leading, calls: [call], answers: true, preamble: joinText([results, describeMcpResult(call)]) };
  }
  if (leading.length === 0 && results === null) return null;
  return { leading, calls: [], answers: true, preamble: results };
}

/** Advances a history over items in chain order (a response's output, a conversation, an input). */
function advanceHistory(history: ToolHistory, items: readonly Item[]): ToolHistory {
  let functionTurns = history.functionTurns;
  let results = [...history.results];
  let omittedResults = history.omittedResults;
  const listed = new Set(history.mcpListed);
  let inCalls = false;
  for (const item of items) {
    const type = item['type'] ?? 'message';
    if (type === 'function_call') {
      if (!inCalls) functionTurns++;
      inCalls = true;
      continue;
    }
    // Reasoning between calls of one turn does not split it.
    if (type === 'reasoning') continue;
    inCalls = false;
    if (type === 'message' && item['role'] === 'assistant') {
      functionTurns = 0;
      results = [];
      omittedResults = 0;
    } else if (type === 'function_call_output') {
      if (results.length < MAX_QUOTED_RESULTS) results.push(`${String(item['call_id'])}=${quote(item['output'])}`);
      else omittedResults++;
    } else if (type === 'mcp_list_tools' && typeof item['server_label'] === 'string') {
      listed.add(item['server_label']);
    }
  }
  return { functionTurns, results, omittedResults, mcpListed: [...listed] };
}

function checkFunctionOutputs(previous: readonly Item[], conversation: readonly Item[], input: readonly Item[]): ApiError | null {
  const calls = [...callIds(previous), ...callIds(conversation), ...callIds(input)];
  const issued = new Set(calls);
  const answered = new Set([...outputIds(conversation), ...outputIds(input)]);
  for (const item of input) {
    if (item['type'] !== 'function_call_output') continue;
    const callId = item['call_id'];
    if (typeof callId !== 'string' || !issued.has(callId)) {
      return invalidRequest(`No tool call found for function call output with call_id ${String(callId)}.`, 'input');
    }
  }
  const unanswered = calls.find((id) => !answered.has(id));
  return unanswered === undefined ? null : invalidRequest(`No tool output found for function call ${unanswered}.`, 'input');
}

function checkApprovals(previous: readonly Item[], conversation: readonly Item[], input: readonly Item[]): ApiError | null {
  const requests = approvalRequests([previous, conversation, input]);
  for (const item of input) {
    if (item['type'] !== 'mcp_approval_response') continue;
    const id = item['approval_request_id'];
    if (typeof id !== 'string' || !requests.has(id)) {
      return invalidRequest(`No MCP approval request found for mcp_approval_response with approval_request_id ${String(id)}.`, 'input');
    }
  }
  return null;
}

interface Approval {
  request: Item;
  approve: boolean;
  reason: string | null;
}

function approvalsIn(input: readonly Item[], sources: readonly (readonly Item[])[]): Approval[] {
  const requests = approvalRequests(sources);
  return input
    .filter((item) => item['type'] === 'mcp_approval_response')
    .map((item) => ({
      request: requests.get(item['approval_request_id'] as string) as Item,
      approve: item['approve'] === true,
      reason: typeof item['reason'] === 'string' ? item['reason'] : null,
    }));
}

function approvalRequests(sources: readonly (readonly Item[])[]): Map<string, Item> {
  const requests = new Map<string, Item>();
  for (const items of sources) {
    for (const item of items) if (item['type'] === 'mcp_approval_request' && typeof item['id'] === 'string') requests.set(item['id'], item);
  }
  return requests;
}

function callIds(items: readonly Item[]): string[] {
  return items.filter((item) => item['type'] === 'function_call' && typeof item['call_id'] === 'string').map((item) => item['call_id'] as string);
}

function outputIds(items: readonly Item[]): string[] {
  return items.filter((item) => item['type'] === 'function_call_output' && typeof item['call_id'] === 'string').map((item) => item['call_id'] as string);
}

interface FunctionTool extends Item {
  type: 'function';
  name: string;
}

interface McpTool extends Item {
  type: 'mcp';
  server_label: string;
}

function isFunctionTool(tool: Item): tool is FunctionTool {
  return tool['type'] === 'function' && typeof tool['name'] === 'string';
}

function isMcpTool(tool: Item): tool is McpTool {
  return tool['type'] === 'mcp' && typeof tool['server_label'] === 'string';
}

/** The function tools the model may call: the one `tool_choice` names, else all of them. */
function chosenFunctions(tools: readonly Item[], choice: unknown): FunctionTool[] {
  const functions = tools.filter(isFunctionTool);
  if (!isObject(choice) || choice['type'] !== 'function') return functions;
  const named = functions.filter((tool) => tool.name === choice['name']);
  return named.length > 0 ? named : functions;
}

function functionCall(tool: FunctionTool): Item {
  return { type: 'function_call', id: newId('fc'), call_id: newCallId(), name: tool.name, arguments: minimalArguments(tool['parameters']), status: 'completed' };
}

/** The simulated server's tools: those `allowed_tools` names, else one. */
function mcpToolNames(tool: McpTool): string[] {
  const allowed = tool['allowed_tools'];
  const names = Array.isArray(allowed) ? allowed : isObject(allowed) ? allowed['tool_names'] : null;
  const strings = Array.isArray(names) ? names.filter((name): name is string => typeof name === 'string' && name !== '') : [];
  return strings.length > 0 ? strings : [DEFAULT_MCP_TOOL];
}

function listTools(tool: McpTool): Item {
  const tools = mcpToolNames(tool).map((name) => ({
    name,
    description: 'A simulated MCP tool (the simulator contacts no MCP server).',
    input_schema: MCP_TOOL_SCHEMA,
    annotations: null,
  }));
  return { type: 'mcp_list_tools', id: newId('mcpl'), server_label: tool.server_label, tools, error: null };
}

/** `require_approval`: 'always' (the default), 'never', or `{always, never}` filters by tool name. */
function requiresApproval(tool: McpTool, name: string): boolean {
  const policy = tool['require_approval'];
  if (policy === 'never') return false;
  if (!isObject(policy)) return true;
  const names = (filter: unknown): unknown[] => (isObject(filter) && Array.isArray(filter['tool_names']) ? filter['tool_names'] : []);
  if (names(policy['always']).includes(name)) return true;
  return !names(policy['never']).includes(name);
}

function mcpCall(request: Item, approvalRequestId: string | null): Item {
  const name = String(request['name']);
  const serverLabel = String(request['server_label']);
  return {
    type: 'mcp_call',
    id: newId('mcp'),
    server_label: serverLabel,
    name,
    arguments: String(request['arguments']),
    output: `Simulated result of ${name} on ${serverLabel}.`,
    error: null,
    status: 'completed',
    approval_request_id: approvalRequestId,
  };
}

function describeMcpResult(call: Item): string {
  return `MCP ${String(call['server_label'])}.${String(call['name'])} returned: ${String(call['output'])}`;
}

function describeDenial(approval: Approval): string {
  const { request, reason } = approval;
  return `MCP ${String(request['server_label'])}.${String(request['name'])} was denied${reason === null ? '' : ` (${reason})`}.`;
}

function quoteResults(history: ToolHistory): string | null {
  if (history.results.length === 0) return null;
  const more = history.omittedResults > 0 ? `; and ${history.omittedResults} more` : '';
  return `Tool results: ${history.results.join('; ')}${more}.`;
}

/** A tool output as quoted: text as is (cut at MAX_QUOTED_CHARS), content parts by their text. */
function quote(output: unknown): string {
  const text = Array.isArray(output)
    ? output.map((part) => (isObject(part) && part['type'] === 'input_text' ? String(part['text']) : `[${isObject(part) ? String(part['type']) : 'part'}]`)).join(' ')
    : String(output);
  return text.length > MAX_QUOTED_CHARS ? `${text.slice(0, MAX_QUOTED_CHARS)}…` : text;
}

function joinText(parts: (string | null)[]): string | null {
  const present = parts.filter((part): part is string => part !== null);
  return present.length === 0 ? null : present.join(' ');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
