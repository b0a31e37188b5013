/**
 * Conversations (`conv_…`): durable item lists a response can run in. A response created with
 * `conversation` sees the conversation's items first, and its input and output items are appended
 * once it finishes (completed or incomplete), as OpenAI does. Kept in memory, oldest forgotten
 * beyond a bound. Items are stored in their output shape (ids, `type`, content part lists).
 */
import { concatContexts, type Context } from './context.ts';
import { ApiError } from './errors.ts';
import { newId } from './ids.ts';

const MAX_CONVERSATIONS = 100_000;
const LIST_DEFAULT_LIMIT = 20;
const LIST_MAX_LIMIT = 100;

export type Item = Record<string, unknown>;

export interface Conversation {
  id: string;
  createdAtMs: number;
  metadata: Record<string, string>;
  items: Item[];
  /** What a response in this conversation sees before its own input. */
  context: Context;
}

export interface ListQuery {
  limit?: unknown;
  order?: unknown;
  after?: unknown;
}

export class ConversationStore {
  #conversations = new Map<string, Conversation>();

  create(items: Item[], context: Context, metadata: Record<string, string>, now: number): Conversation {
    const conversation: Conversation = { id: newId('conv'), createdAtMs: now, metadata, items, context };
    this.#conversations.set(conversation.id, conversation);
    if (this.#conversations.size > MAX_CONVERSATIONS) {
      const oldest = this.#conversations.keys().next().value;
      if (oldest !== undefined) this.#conversations.delete(oldest);
    }
    return conversation;
  }

  find(id: string): Conversation | undefined {
    return this.#conversations.get(id);
  }

  get(id: string, param: string | null = null): Conversation {
    const conversation = this.#conversations.get(id);
    if (conversation === undefined) throw conversationNotFound(id, param);
    return conversation;
  }

  delete(id: string): void {
    this.get(id);
    this.#conversations.delete(id);
  }

  /** Appends a finished turn (no-op when the conversation was deleted meanwhile). */
  append(id: string, items: Item[], context: Context): void {
    const conversation = this.#conversations.get(id);
    if (conversation === undefined) return;
    conversation.items.push(...items);
    conversation.context = concatContexts(conversation.context, context);
  }

  clear(): void {
    this.#conversations.clear();
  }
}

export function conversationNotFound(id: string, param: string | null): ApiError {
  return new ApiError({
    status: 404,
    type: 'invalid_request_error',
    message: `Conversation with id '${id}' not found.`,
    param,
    code: 'conversation_not_found',
  });
}

export function renderConversation(conversation: Conversation): Record<string, unknown> {
  return {
    id: conversation.id,
    object: 'conversation',
    created_at: Math.floor(conversation.createdAtMs / 1000),
    metadata: conversation.metadata,
  };
}

/** `GET /v1/conversations/{id}/items`: newest first by default, `after` an item id. */
export function listItems(conversation: Conversation, query: ListQuery): Record<string, unknown> {
  const limit = listLimit(query.limit);
  const order = query.order === undefined ? 'desc' : query.order;
  if (order !== 'asc' && order !== 'desc') {
    throw listParamError(`Invalid value: '${String(order)}'. Supported values are: 'asc' and 'desc'.`, 'order', 'invalid_value');
  }
  const ordered = order === 'asc' ? conversation.items : [...conversation.items].reverse();
  let start = 0;
  if (typeof query.after === 'string' && query.after !== '') {
    const at = ordered.findIndex((item) => item['id'] === query.after);
    if (at < 0) throw listParamError(`Item with id '${query.after}' not found in conversation.`, 'after', 'invalid_value');
    start = at + 1;
  }
  return page(ordered, start, limit);
}

export function listLimit(value: unknown, max = LIST_MAX_LIMIT, fallback = LIST_DEFAULT_LIMIT): number {
  if (value === undefined || value === '') return fallback;
  const parsed = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(parsed) || parsed < 1 || parsed > max) {
    throw listParamError(`Invalid 'limit': expected an integer between 1 and ${max}, got '${String(value)}'.`, 'limit', 'invalid_value');
  }
  return parsed;
}

function listParamError(message: string, param: string, code: string): ApiError {
  return new ApiError({ status: 400, type: 'invalid_request_error', message, param, code });
}

/**
 * Input items in their stored (output) shape: a string becomes one user message, an easy message
 * `{role, content: 'text'}` a `message` item with an `input_text` part, and every item gets an id.
 */
export function normalizeInput(input: string | readonly unknown[] | null): Item[] {
  if (input === null) return [];
  if (typeof input === 'string') return [messageItem('user', [{ type: 'input_text', text: input }])];
  return input.map((raw) => {
    const item = raw as Item;
    const type = item['type'] ?? 'message';
    if (type !== 'message') return { ...item, id: item['id'] ?? newId('item') };
    const content = item['content'];
    const parts = typeof content === 'string' ? [{ type: role(item) === 'assistant' ? 'output_text' : 'input_text', text: content }] : content;
    return { ...messageItem(role(item), parts as unknown[]), ...(item['id'] === undefined ? {} : { id: item['id'] }) };
  });
}

function role(item: Item): string {
  return typeof item['role'] === 'string' ? item['role'] : 'user';
}

function messageItem(roleName: string, content: unknown[]): Item {
  return { type: 'message', id: newId('msg'), status: 'completed', role: roleName, content };
}

/** One page of `ordered` items from `start`, as OpenAI's list objects have it. */
export function page(ordered: Item[], start: number, limit: number): Record<string, unknown> {
  const data = ordered.slice(start, start + limit);
  return {
    object: 'list',
    data,
    first_id: (data[0]?.['id'] as string | undefined) ?? null,
    last_id: (data.at(-1)?.['id'] as string | undefined) ?? null,
    has_more: start + limit < ordered.length,
  };
}
