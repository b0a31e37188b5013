/**
 * A stored response's input items (`GET /v1/responses/{id}/input_items`), in OpenAI's item shape.
 *
 * Only the response's own `input` is listed: items a `previous_response_id` chain or a
 * conversation brought in are not, as at OpenAI. Creating a response only keeps a reference to
 * the `input` it was given (no work on the create path); the first listing turns it into items
 * with ids and caches them, so every later page and listing shows the same ids. Entries follow
 * their response: the simulator forgets one when it deletes or evicts the response.
 */
import { listLimit, page, type Item } from './conversations.ts';
import { invalidRequest } from './errors.ts';
import { newId } from './ids.ts';

/** What a create request's `input` may be (after zod parsing). */
export type RawInput = string | readonly Record<string, unknown>[] | null;

export interface InputItemsQuery {
  limit?: unknown;
  order?: unknown;
  after?: unknown;
  /** `include=a&include=b`; the official SDKs send `include[]=a`. */
  include?: unknown;
  'include[]'?: unknown;
}

/** OpenAI's `IncludeEnum`: anything else in `include` is a 400. */
const INCLUDABLE = new Set([
  'file_search_call.results',
  'web_search_call.results',
  'web_search_call.action.sources',
  'message.input_image.image_url',
  'computer_call_output.output.image_url',
  'code_interpreter_call.outputs',
  'reasoning.encrypted_content',
  'message.output_text.logprobs',
]);

/** Without this in `include`, input images are listed without their URL. */
const INCLUDE_IMAGE_URLS = 'message.input_image.image_url';

interface Entry {
  input: RawInput;
  /** Null until first listed. */
  items: Item[] | null;
}

export class InputItemStore {
  #entries = new Map<string, Entry>();

  remember(responseId: string, input: RawInput): void {
    this.#entries.set(responseId, { input, items: null });
  }

  forget(responseId: string): void {
    this.#entries.delete(responseId);
  }

  clear(): void {
    this.#entries.clear();
  }

  /** One page of the items; the caller has checked that the response exists. */
  list(responseId: string, query: InputItemsQuery): Record<string, unknown> {
    const limit = listLimit(query.limit);
    const order = query.order ?? 'desc';
    if (order !== 'asc' && order !== 'desc') {
      throw invalidRequest(`Invalid value: '${String(order)}'. Supported values are: 'asc' and 'desc'.`, 'order', 'invalid_value');
    }
    const imageUrls = includes(query).has(INCLUDE_IMAGE_URLS);
    const entry = this.#entries.get(responseId);
    if (entry === undefined) return page([], 0, limit);
    entry.items ??= toInputItems(entry.input);
    const items = imageUrls ? entry.items : entry.items.map(withoutImageUrls);
    const ordered = order === 'asc' ? items : [...items].reverse();
    let start = 0;
    if (typeof query.after === 'string' && query.after !== '') {
      start = ordered.findIndex((item) => item['id'] === query.after) + 1;
      if (start === 0) throw invalidRequest(`Item with id '${query.after}' not found in the input of response '${responseId}'.`, 'after', 'invalid_value');
    }
    return page(ordered, start, limit);
  }
}

function includes(query: InputItemsQuery): Set<string> {
  const values = [query.include, query['include[]']].flatMap((value) => (value === undefined ? [] : Array.isArray(value) ? value : [value]));
  for (const value of values) {
    if (typeof value !== 'string' || !INCLUDABLE.has(value)) {
      throw invalidRequest(`Invalid value: '${String(value)}'. Supported values are: ${[...INCLUDABLE].map((v) => `'${v}'`).join(', ')}.`, 'include', 'invalid_value');
    }
  }
  return new Set(values as string[]);
}

/**
 * The request's input as OpenAI lists it: a string is one user message with an `input_text`
 * part; an easy message `{role, content}` becomes a `message` item with a `msg_…` id and
 * `status: 'completed'`, its string content one `input_text` part (`output_text` for the
 * assistant, with the empty `annotations` and `logprobs` an output part always has); image parts
 * carry `file_id` and `image_url` (null when not given); other items keep their type and fields
 * and get an id (and a status for tool calls and their outputs) when they came without.
 */
export function toInputItems(input: RawInput): Item[] {
  if (input === null) return [];
  if (typeof input === 'string') return [message('user', [{ type: 'input_text', text: input }], undefined)];
  return input.map((item) => {
    const type = item['type'] ?? 'message';
    if (type === 'message') return messageItem(item);
    const normalized: Item = { ...item, id: item['id'] ?? newId('item') };
    if (typeof type === 'string' && /_call(_output)?$/.test(type) && item['status'] === undefined) normalized['status'] = 'completed';
    return normalized;
  });
}

function messageItem(item: Record<string, unknown>): Item {
  const role = typeof item['role'] === 'string' ? item['role'] : 'user';
  const content = item['content'];
  const parts = typeof content === 'string' ? [{ type: role === 'assistant' ? 'output_text' : 'input_text', text: content }] : Array.isArray(content) ? content : [];
  const normalized = message(role, parts.map(contentPart), item['id']);
  if (typeof item['status'] === 'string') normalized['status'] = item['status'];
  return normalized;
}

function message(role: string, content: unknown[], id: unknown): Item {
  return { type: 'message', id: typeof id === 'string' ? id : newId('msg'), status: 'completed', role, content };
}

function contentPart(part: unknown): unknown {
  if (typeof part !== 'object' || part === null) return part;
  const record = part as Record<string, unknown>;
  if (record['type'] === 'output_text') return { annotations: [], logprobs: [], ...record };
  // `detail` is required on input (checked against the spec), but validation can be turned off.
  if (record['type'] === 'input_image') return { ...record, detail: record['detail'] ?? 'auto', file_id: record['file_id'] ?? null, image_url: record['image_url'] ?? null };
  return part;
}

function withoutImageUrls(item: Item): Item {
  const content = item['content'];
  if (item['type'] !== 'message' || !Array.isArray(content) || !content.some(isImageWithUrl)) return item;
  return { ...item, content: content.map((part) => (isImageWithUrl(part) ? { ...part, image_url: null } : part)) };
}

function isImageWithUrl(part: unknown): part is Record<string, unknown> {
  return typeof part === 'object' && part !== null && (part as Record<string, unknown>)['type'] === 'input_image' && (part as Record<string, unknown>)['image_url'] !== null;
}
