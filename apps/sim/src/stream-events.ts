/**
 * The event log of a streamed response: OpenAI's `ResponseStreamEvent` sequence, derived from the
 * response on demand and never stored.
 *
 * Every event has a clock time fixed at creation (from `createdAtMs`, `startsAtMs`, `endsAtMs` and
 * the generated output), so a live stream, a replay from the first event and a resume after any
 * cursor all see the same events under the same sequence numbers (the index in the log). The
 * output items are taken from the response as rendered at its end, so the text deltas concatenate
 * to exactly the final `output_text`.
 *
 * Order: `response.created`, `response.queued` (background only), `response.in_progress`; then
 * each output item in output order (see `arrangeOutput` in tools.ts): MCP tool lists at the start
 * (`output_item.added`, `mcp_list_tools.in_progress`, `mcp_list_tools.completed`,
 * `output_item.done`); the reasoning item (`output_item.added`, the `reasoning_summary_*` events
 * when a summary was requested, `output_item.done`) spread over the reasoning phase; the items
 * after it spread over the rest: a function call (`output_item.added` with empty arguments,
 * `function_call_arguments.delta`…, `function_call_arguments.done`, `output_item.done`), an MCP
 * call (the same with `mcp_call.in_progress`, `mcp_call_arguments.*`, `mcp_call.completed`), an
 * approval request (`output_item.added`, `output_item.done`), the message (`output_item.added`,
 * `content_part.added`, `output_text.delta`…, `output_text.done` (for a refusal part
 * `refusal.delta`…, `refusal.done`), `content_part.done`, `output_item.done`); then the terminal event `response.completed` | `response.incomplete` |
 * `response.failed` at the end time. A failed response has no output, so its log goes straight
 * from `in_progress` to `response.failed`.
 *
 * A cancelled response's log is the prefix of events due at or before `cancelledAtMs` and has no
 * terminal event: `ResponseStreamEvent` has no `response.cancelled` variant, and `failed` or
 * `incomplete` would misstate the outcome. The stream just ends; the client retrieves the response
 * to learn it was cancelled.
 */
import { renderResponse, type SimResponse } from './responses.ts';
import { argumentDeltas } from './tools.ts';

export interface LoggedEvent {
  /** Clock time (ms) at which the event happens; non-decreasing along the log. */
  at: number;
  type: string;
  /** The event's fields besides `type` and `sequence_number`, built when sent. */
  data: () => Record<string, unknown>;
}

/** Words per text delta. */
const WORDS_PER_DELTA = 3;
/** Bounds on the share of the in-progress time spent on the reasoning item. */
const MIN_REASONING_SHARE = 0.1;
const MAX_REASONING_SHARE = 0.5;

type Item = Record<string, unknown>;
type Part = { type: string; text: string; [key: string]: unknown };

export function eventLog(response: SimResponse): LoggedEvent[] {
  // The timeline the response had (or has) without a cancel; cancellation only truncates it.
  const view: SimResponse = response.cancelledAtMs === null ? response : { ...response, cancelledAtMs: null };
  const final = renderResponse(view, view.endsAtMs);
  const status = final['status'] as 'completed' | 'failed' | 'incomplete';
  const lifecycle = (at: number) => () => ({ response: renderResponse(view, at) });

  const log: LoggedEvent[] = [{ at: view.createdAtMs, type: 'response.created', data: lifecycle(view.createdAtMs) }];
  if (view.background) log.push({ at: view.createdAtMs, type: 'response.queued', data: lifecycle(view.createdAtMs) });
  log.push({ at: view.startsAtMs, type: 'response.in_progress', data: lifecycle(view.startsAtMs) });

  // Items before the reasoning (MCP tool lists) come at the start, the reasoning takes its share of
  // the in-progress time, the items after it (tool calls, the message) share the rest.
  const output = final['output'] as Item[];
  const reasoningIndex = output.findIndex((item) => item['type'] === 'reasoning');
  const before: Pending[] = [];
  const after: Pending[] = [];
  output.forEach((item, index) => {
    if (index !== reasoningIndex) (index < reasoningIndex ? before : after).push(...itemEvents(item, index));
  });
  const start = view.startsAtMs;
  const end = view.endsAtMs;
  const gen = view.generation;
  const share = after.length === 0 ? 1 : clamp(gen.reasoningTokens / Math.max(1, gen.reasoningTokens + gen.textTokens), MIN_REASONING_SHARE, MAX_REASONING_SHARE);
  const reasoningEnd = reasoningIndex === -1 ? start : start + (end - start) * share;
  spread(log, before, start, start);
  if (reasoningIndex !== -1) {
    spread(log, reasoningEvents(output[reasoningIndex] as Item, reasoningIndex), start, reasoningEnd);
  }
  spread(log, after, reasoningEnd, end);
  log.push({ at: end, type: `response.${status}`, data: () => ({ response: final }) });

  return response.cancelledAtMs === null ? log : log.slice(0, dueCount(log, response.cancelledAtMs));
}

/** How many events at the head of the log are due at `time`. */
export function dueCount(log: readonly LoggedEvent[], time: number): number {
  let count = 0;
  while (count < log.length && (log[count] as LoggedEvent).at <= time) count++;
  return count;
}

/** The wire form of the log's event at index `sequenceNumber`. */
export function eventPayload(event: LoggedEvent, sequenceNumber: number): Record<string, unknown> {
  return { type: event.type, sequence_number: sequenceNumber, ...event.data() };
}

/** Splits text into deltas of a few words whose concatenation is exactly `text`. */
export function textDeltas(text: string, wordsPerDelta = WORDS_PER_DELTA): string[] {
  const words = text.match(/\s*\S+\s*/g);
  if (words === null) return text.length > 0 ? [text] : [];
  const deltas: string[] = [];
  for (let i = 0; i < words.length; i += wordsPerDelta) deltas.push(words.slice(i, i + wordsPerDelta).join(''));
  return deltas;
}

type Pending = Omit<LoggedEvent, 'at'>;

function reasoningEvents(item: Item, outputIndex: number): Pending[] {
  const itemId = item['id'] as string;
  const summary = item['summary'] as Part[];
  const at = { item_id: itemId, output_index: outputIndex };
  const events: Pending[] = [{ type: 'response.output_item.added', data: () => ({ output_index: outputIndex, item: { ...item, summary: [] } }) }];
  summary.forEach((part, summaryIndex) => {
    const base = { ...at, summary_index: summaryIndex };
    events.push({
      type: 'response.reasoning_summary_part.added',
      data: () => ({ ...base, part: { type: 'summary_text', text: '' } }),
    });
    for (const delta of textDeltas(part.text)) {
      events.push({ type: 'response.reasoning_summary_text.delta', data: () => ({ ...base, delta }) });
    }
    events.push({ type: 'response.reasoning_summary_text.done', data: () => ({ ...base, text: part.text }) });
    events.push({ type: 'response.reasoning_summary_part.done', data: () => ({ ...base, part }) });
  });
  events.push({ type: 'response.output_item.done', data: () => ({ output_index: outputIndex, item }) });
  return events;
}

function messageEvents(item: Item, outputIndex: number): Pending[] {
  const itemId = item['id'] as string;
  const content = item['content'] as Part[];
  const events: Pending[] = [
    {
      type: 'response.output_item.added',
      data: () => ({ output_index: outputIndex, item: { ...item, status: 'in_progress', content: [] } }),
    },
  ];
  content.forEach((part, contentIndex) => {
    const base = { item_id: itemId, output_index: outputIndex, content_index: contentIndex };
    if (part.type === 'refusal') {
      const refusal = String(part['refusal']);
      events.push({ type: 'response.content_part.added', data: () => ({ ...base, part: { ...part, refusal: '' } }) });
      for (const delta of textDeltas(refusal)) events.push({ type: 'response.refusal.delta', data: () => ({ ...base, delta }) });
      events.push({ type: 'response.refusal.done', data: () => ({ ...base, refusal }) });
      events.push({ type: 'response.content_part.done', data: () => ({ ...base, part }) });
      return;
    }
    events.push({ type: 'response.content_part.added', data: () => ({ ...base, part: { ...part, text: '' } }) });
    for (const delta of textDeltas(part.text)) {
      events.push({ type: 'response.output_text.delta', data: () => ({ ...base, delta, logprobs: [] }) });
    }
    events.push({ type: 'response.output_text.done', data: () => ({ ...base, text: part.text, logprobs: [] }) });
    events.push({ type: 'response.content_part.done', data: () => ({ ...base, part }) });
  });
  events.push({ type: 'response.output_item.done', data: () => ({ output_index: outputIndex, item }) });
  return events;
}

function itemEvents(item: Item, outputIndex: number): Pending[] {
  switch (item['type']) {
    case 'message':
      return messageEvents(item, outputIndex);
    case 'function_call':
      return functionCallEvents(item, outputIndex);
    case 'mcp_call':
      return mcpCallEvents(item, outputIndex);
    case 'mcp_list_tools':
      return mcpListToolsEvents(item, outputIndex);
    default:
      // An mcp_approval_request arrives whole.
      return [
        { type: 'response.output_item.added', data: () => ({ output_index: outputIndex, item }) },
        { type: 'response.output_item.done', data: () => ({ output_index: outputIndex, item }) },
      ];
  }
}

/** The arguments stream in deltas onto an item added with empty arguments (the SDK appends them). */
function functionCallEvents(item: Item, outputIndex: number): Pending[] {
  const at = { item_id: item['id'] as string, output_index: outputIndex };
  const args = item['arguments'] as string;
  return [
    { type: 'response.output_item.added', data: () => ({ output_index: outputIndex, item: { ...item, arguments: '', status: 'in_progress' } }) },
    ...argumentDeltas(args).map((delta): Pending => ({ type: 'response.function_call_arguments.delta', data: () => ({ ...at, delta }) })),
    { type: 'response.function_call_arguments.done', data: () => ({ ...at, name: item['name'], arguments: args }) },
    { type: 'response.output_item.done', data: () => ({ output_index: outputIndex, item }) },
  ];
}

function mcpCallEvents(item: Item, outputIndex: number): Pending[] {
  const at = { item_id: item['id'] as string, output_index: outputIndex };
  const args = item['arguments'] as string;
  return [
    { type: 'response.output_item.added', data: () => ({ output_index: outputIndex, item: { ...item, arguments: '', output: null, status: 'in_progress' } }) },
    { type: 'response.mcp_call.in_progress', data: () => at },
    ...argumentDeltas(args).map((delta): Pending => ({ type: 'response.mcp_call_arguments.delta', data: () => ({ ...at, delta }) })),
    { type: 'response.mcp_call_arguments.done', data: () => ({ ...at, arguments: args }) },
    { type: 'response.mcp_call.completed', data: () => at },
    { type: 'response.output_item.done', data: () => ({ output_index: outputIndex, item }) },
  ];
}

function mcpListToolsEvents(item: Item, outputIndex: number): Pending[] {
  const at = { item_id: item['id'] as string, output_index: outputIndex };
  return [
    { type: 'response.output_item.added', data: () => ({ output_index: outputIndex, item: { ...item, tools: [] } }) },
    { type: 'response.mcp_list_tools.in_progress', data: () => at },
    { type: 'response.mcp_list_tools.completed', data: () => at },
    { type: 'response.output_item.done', data: () => ({ output_index: outputIndex, item }) },
  ];
}

/** Appends `events` evenly spaced from `from` (the first) to `to` (the last). */
function spread(log: LoggedEvent[], events: Pending[], from: number, to: number): void {
  const gaps = Math.max(1, events.length - 1);
  events.forEach((event, i) => {
    log.push({ ...event, at: i === gaps ? to : from + ((to - from) * i) / gaps });
  });
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
