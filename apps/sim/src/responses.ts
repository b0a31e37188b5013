/**
 * The model of one simulated response and its lazily derived state.
 *
 * Nothing advances a response: its status is a pure function of the clock. A background response
 * is `queued` until `startsAtMs`, `in_progress` until `endsAtMs`, then settles on the outcome fixed
 * at creation; `cancelledAtMs` (set by cancel while not yet terminal) overrides all of that.
 * Terminal states are therefore sticky by construction (a synchronous stream whose client hangs up
 * is cancelled the same way, see `abandonResponse`). Everything the response will say once
 * finished (text, token counts, item ids) is also fixed at creation, so reads never compute twice
 * differently.
 */
import type { Context } from './context.ts';
import type { Item } from './conversations.ts';
import type { Generation, ReasoningEffort } from './generation.ts';
import { truncateToTokens } from './generation.ts';
import { arrangeOutput, type ToolHistory, type ToolTurn } from './tools.ts';
import { countTokens, buildUsage, type ResponseUsage } from './usage.ts';

export const RESPONSE_STATUSES = ['queued', 'in_progress', 'completed', 'failed', 'cancelled', 'incomplete'] as const;
export type ResponseStatus = (typeof RESPONSE_STATUSES)[number];
export type TerminalStatus = Extract<ResponseStatus, 'completed' | 'failed' | 'cancelled' | 'incomplete'>;
export type SettledOutcome = Exclude<TerminalStatus, 'cancelled'>;

export function isTerminal(status: ResponseStatus): status is TerminalStatus {
  return status === 'completed' || status === 'failed' || status === 'cancelled' || status === 'incomplete';
}

/** Request fields echoed back on the Response object. */
export interface EchoedRequest {
  model: string;
  instructions: string | null;
  metadata: Record<string, string>;
  effort: ReasoningEffort;
  summary: 'auto' | 'concise' | 'detailed' | null;
  maxOutputTokens: number | null;
  text: Record<string, unknown>;
  tools: Record<string, unknown>[];
  toolChoice: unknown;
  temperature: number;
  topP: number;
  parallelToolCalls: boolean;
  previousResponseId: string | null;
  conversationId: string | null;
  /** The hosted prompt reference, with the version used. */
  prompt: { id: string; version: string; variables: Record<string, unknown> | null } | null;
  promptCacheKey: string | null;
  truncation: 'auto' | 'disabled';
  serviceTier: string;
  user: string | undefined;
  safetyIdentifier: string | null;
}

export interface SimResponse {
  id: string;
  background: boolean;
  /** Created with `stream: true`: only such (background) responses can be streamed again later. */
  stream: boolean;
  store: boolean;
  createdAtMs: number;
  startsAtMs: number;
  endsAtMs: number;
  outcome: SettledOutcome;
  /** The completed message is a refusal part (`generation.text` is the refusal) instead of output_text. */
  refusal: boolean;
  cancelledAtMs: number | null;
  request: EchoedRequest;
  generation: Generation;
  /** Output token budget when the outcome is `incomplete`. */
  incompleteBudget: number;
  itemIds: { reasoning: string; message: string };
  inputTokens: number;
  cachedTokens: number;
  cacheWriteTokens: number;
  /** What a follow-up (`previous_response_id`) sees first: this response's context and answer. */
  followUp: Context;
  /** The turn to append to the response's conversation when it finishes; null once done (or none). */
  conversationTurn: { conversationId: string; items: Item[]; context: Context } | null;
  /** Whether the terminal webhook event has been emitted (at most once per response). */
  terminalEventEmitted: boolean;
  /** The tool calls, approval requests and MCP results of this turn (tools.ts); null without. */
  toolTurn: ToolTurn | null;
  /** The chain's tool-loop state this response was created with. */
  toolHistory: ToolHistory;
}

export function statusAt(response: SimResponse, now: number): ResponseStatus {
  if (response.cancelledAtMs !== null) return 'cancelled';
  if (now < response.startsAtMs) return 'queued';
  if (now < response.endsAtMs) return 'in_progress';
  return response.outcome;
}

/** When the response reached (or will reach) its current terminal state. */
export function terminalAt(response: SimResponse): number {
  return response.cancelledAtMs ?? response.endsAtMs;
}

export type CancelResult = { ok: true } | { ok: false; reason: 'not_background' | 'already_terminal'; status: ResponseStatus };

/** Moves a queued or in-progress background response to `cancelled`; re-cancelling is a no-op. */
export function cancelResponse(response: SimResponse, now: number): CancelResult {
  const status = statusAt(response, now);
  if (!response.background) return { ok: false, reason: 'not_background', status };
  if (status === 'cancelled') return { ok: true };
  if (isTerminal(status)) return { ok: false, reason: 'already_terminal', status };
  response.cancelledAtMs = now;
  return { ok: true };
}

/**
 * A synchronous (non-background) streamed response whose client went away before it finished is
 * cancelled, as OpenAI does ("to cancel a synchronous response, terminate the connection").
 */
export function abandonResponse(response: SimResponse, now: number): void {
  if (response.background || isTerminal(statusAt(response, now))) return;
  response.cancelledAtMs = now;
}

interface RenderedOutput {
  output: Record<string, unknown>[];
  outputText: string;
  usage: ResponseUsage | undefined;
}

/** The OpenAI Response object as of `now`. */
export function renderResponse(response: SimResponse, now: number): Record<string, unknown> {
  const status = statusAt(response, now);
  const { output, outputText, usage } = renderOutput(response, status);
  const req = response.request;
  const body: Record<string, unknown> = {
    id: response.id,
    object: 'response',
    created_at: Math.floor(response.createdAtMs / 1000),
    status,
    background: response.background,
    completed_at: status === 'completed' ? Math.floor(response.endsAtMs / 1000) : null,
    error: status === 'failed' ? { code: 'server_error', message: 'The model failed to generate a response. (simulated failure)' } : null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: req.instructions,
    max_output_tokens: req.maxOutputTokens,
    max_tool_calls: null,
    model: req.model,
    output,
    output_text: outputText,
    parallel_tool_calls: req.parallelToolCalls,
    previous_response_id: req.previousResponseId,
    conversation: req.conversationId === null ? null : { id: req.conversationId },
    prompt: req.prompt,
    prompt_cache_key: req.promptCacheKey,
    reasoning: NON_REASONING_MODEL.test(req.model) ? { effort: null, summary: null } : { effort: req.effort, summary: req.summary },
    safety_identifier: req.safetyIdentifier,
    service_tier: req.serviceTier,
    store: response.store,
    temperature: req.temperature,
    text: req.text,
    tool_choice: req.toolChoice,
    tools: req.tools,
    top_logprobs: 0,
    top_p: req.topP,
    truncation: req.truncation,
    metadata: req.metadata,
  };
  // The spec's ResponseUsage is not nullable: omit it until there is something to report.
  if (usage !== undefined) body['usage'] = usage;
  if (req.user !== undefined) body['user'] = req.user;
  return body;
}

/**
 * Models that do not reason (the GPT-4 and GPT-3.5 families): no reasoning item, no reasoning
 * tokens, as OpenAI answers for them (the guide's manual-history example copies every output item
 * of gpt-4o-mini back into the next input; a reasoning item there would be one OpenAI never sent).
 */
const NON_REASONING_MODEL = /^(gpt-4|gpt-3\.5|chatgpt-4o)/;

function renderOutput(response: SimResponse, status: ResponseStatus): RenderedOutput {
  const gen = response.generation;
  const reasons = !NON_REASONING_MODEL.test(response.request.model);
  switch (status) {
    case 'queued':
    case 'in_progress':
    case 'failed':
    case 'cancelled':
      return { output: [], outputText: '', usage: undefined };
    case 'completed':
      return {
        output: arrangeOutput(response.toolTurn, reasons ? reasoningItem(response) : null, messageItem(response, gen.text, 'completed'), false),
        outputText: response.refusal ? '' : gen.text,
        usage: usageFor(response, reasons ? gen.reasoningTokens : 0, gen.textTokens),
      };
    case 'incomplete': {
      const reasoningTokens = reasons ? Math.min(gen.reasoningTokens, response.incompleteBudget) : 0;
      const text = truncateToTokens(gen.text, response.incompleteBudget - reasoningTokens);
      const message = text.length > 0 ? messageItem(response, text, 'incomplete') : null;
      const output = arrangeOutput(response.toolTurn, reasons ? reasoningItem(response) : null, message, true);
      return { output, outputText: text, usage: usageFor(response, reasoningTokens, countTokens(text)) };
    }
    default:
      return assertNever(status);
  }
}

function reasoningItem(response: SimResponse): Record<string, unknown> {
  return {
    type: 'reasoning',
    id: response.itemIds.reasoning,
    summary: response.generation.summary.map((text) => ({ type: 'summary_text', text })),
  };
}

function messageItem(response: SimResponse, text: string, status: 'completed' | 'incomplete'): Record<string, unknown> {
  return {
    type: 'message',
    id: response.itemIds.message,
    status,
    role: 'assistant',
    content: [response.refusal && status === 'completed' ? { type: 'refusal', refusal: text } : { type: 'output_text', text, annotations: [], logprobs: [] }],
  };
}

function usageFor(response: SimResponse, reasoningTokens: number, textTokens: number): ResponseUsage {
  return buildUsage({
    inputTokens: response.inputTokens,
    cachedTokens: response.cachedTokens,
    cacheWriteTokens: response.cacheWriteTokens,
    reasoningTokens,
    textTokens,
  });
}

export function assertNever(value: never): never {
  throw new Error(`unexpected value: ${String(value)}`);
}
