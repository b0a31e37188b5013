/**
 * The provider adapter, pointed at OpenAI or any compatible server (the simulator by default).
 * Create, retrieve and cancel answer the Response plus the hints Longhaul schedules by; they go
 * through the lighter HTTP path of http.ts (the SDK cost more CPU than the call). The streaming
 * variants, files and conversations use the official `openai` SDK. Failures are thrown as
 * classified ProviderErrors either way.
 */
import OpenAI, { toFile } from 'openai';
import type { ProviderResponse } from '@longhaul/core';
import { toProviderError } from './errors.ts';
import { createResponsesHttp, type HttpAnswer, withOutputText } from './http.ts';

export interface ProviderOptions {
  apiKey: string;
  /** Default: the SDK's (https://api.openai.com/v1). */
  baseURL?: string;
  /** Per-request timeout (each attempt; for create, retrieve and cancel it covers reading the answer too). Default 60 000 ms. */
  timeoutMs?: number;
  /** Retries of retrieve and cancel (safe to repeat), on the SDK's conditions and delays. Create is never retried. Default 2. */
  readRetries?: number;
  /** Injectable clock, for parsing Retry-After dates. */
  clock?: () => Date;
  /**
   * Called after every provider operation, successful or not (metrics, the job timeline). Must
   * not throw. One call per operation: the retries of a read count as one.
   */
  onRequest?: (event: ProviderRequestEvent) => void;
}

export type ProviderOperation =
  | 'create'
  | 'retrieve'
  | 'cancel'
  | 'stream'
  | 'delete'
  | 'input_items'
  | 'file_create'
  | 'file_retrieve'
  | 'file_delete'
  | 'conversation_create'
  | 'conversation_retrieve'
  | 'conversation_update'
  | 'conversation_delete'
  | 'conversation_items';

/** A provider File object (`file-…`). */
export interface ProviderFile {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  [key: string]: unknown;
}

/** A provider Conversation object (`conv_…`). */
export interface ProviderConversation {
  id: string;
  object: 'conversation';
  created_at: number;
  metadata: Record<string, string> | null;
  [key: string]: unknown;
}

/** What to upload: the bytes and the name the provider records. */
export interface FileUpload {
  data: Uint8Array;
  filename: string;
  /** MIME type; default application/octet-stream. */
  contentType?: string;
}

export interface ProviderRequestEvent {
  operation: ProviderOperation;
  /** The HTTP status, or `timeout` / `network_error` when there was no answer. */
  status: number | 'timeout' | 'network_error';
  durationMs: number;
  /** The provider's request id (`x-request-id`), when it answered. */
  requestId: string | null;
  /** The response created, retrieved or cancelled (null when a create failed). */
  responseId: string | null;
  /** From the caller's context. */
  jobId: string | null;
  /** When the request started. */
  at: Date;
}

/** Who a call is for; handed to `onRequest`. */
export interface CallContext {
  jobId?: string;
}

/** A provider Response object (the fields Longhaul reads, and everything else). */
export type ProviderResponseObject = ProviderResponse & Record<string, unknown>;

export interface ProviderResult {
  response: ProviderResponseObject;
  /** From the `openai-poll-after-ms` header, when the provider sends one. */
  pollAfterMs?: number;
  requestId: string | null;
}

/** One event of a provider response stream (`sequence_number`, `type`, and the variant's fields). */
export interface ProviderStreamEvent {
  type: string;
  sequence_number: number;
  response?: ProviderResponseObject;
  [key: string]: unknown;
}

/** An open provider event stream. Iterate it; `abort()` closes the connection early. */
export interface ProviderEventStream extends AsyncIterable<ProviderStreamEvent> {
  abort(): void;
}

export interface Provider {
  /** Create a background response. `params` are the Responses create parameters. */
  createResponse(params: Record<string, unknown>, context?: CallContext): Promise<ProviderResult>;
  /** Create a background response with `stream: true`; its events arrive on the stream. */
  createResponseStream(params: Record<string, unknown>, context?: CallContext): Promise<ProviderEventStream>;
  /** Resume a streamed background response's events after `startingAfter` (all from the first when null). */
  streamResponse(responseId: string, startingAfter: number | null, context?: CallContext): Promise<ProviderEventStream>;
  retrieveResponse(responseId: string, context?: CallContext): Promise<ProviderResult>;
  cancelResponse(responseId: string, context?: CallContext): Promise<ProviderResult>;
  /** Delete a stored response; afterwards every call on it, a second delete included, fails with `not_found`. */
  deleteResponse(responseId: string, context?: CallContext): Promise<{ id: string; deleted: boolean }>;
  /** One page of the response's own input items (the provider's list object: `data`, `first_id`, `last_id`, `has_more`). */
  listInputItems(responseId: string, query: { limit?: number; after?: string; order?: 'asc' | 'desc' }, context?: CallContext): Promise<Record<string, unknown>>;
  /** Upload a file through the Files API (`purpose` is `user_data` for model inputs). */
  createFile(upload: FileUpload, purpose: string, context?: CallContext): Promise<ProviderFile>;
  retrieveFile(fileId: string, context?: CallContext): Promise<ProviderFile>;
  deleteFile(fileId: string, context?: CallContext): Promise<{ id: string; deleted: boolean }>;
  /** Create a conversation (its `items` seed it; `metadata` is the provider's). */
  createConversation(params: { items?: unknown[]; metadata?: Record<string, string> }, context?: CallContext): Promise<ProviderConversation>;
  retrieveConversation(conversationId: string, context?: CallContext): Promise<ProviderConversation>;
  /** Replace a conversation's metadata (the provider's update). */
  updateConversation(conversationId: string, params: { metadata: Record<string, string> | null }, context?: CallContext): Promise<ProviderConversation>;
  deleteConversation(conversationId: string, context?: CallContext): Promise<{ id: string; deleted: boolean }>;
  /** One page of a conversation's items (the provider's list object: `data`, `first_id`, `last_id`, `has_more`). */
  listConversationItems(conversationId: string, query: { limit?: number; after?: string; order?: 'asc' | 'desc' }, context?: CallContext): Promise<Record<string, unknown>>;
}

/** A stream stays open as long as the response runs; the idle timeout is the SDK's per-read one. */
const STREAM_TIMEOUT_MS = 10 * 60_000;

export function createProvider(options: ProviderOptions): Provider {
  const clock = options.clock ?? (() => new Date());
  const readRetries = options.readRetries ?? 2;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const client = new OpenAI({ apiKey: options.apiKey, baseURL: options.baseURL, timeout: timeoutMs, maxRetries: readRetries });
  const responses = createResponsesHttp(client, { timeoutMs });

  const report = (event: ProviderRequestEvent) => {
    try {
      options.onRequest?.(event);
    } catch {
      // Observability must never break a provider call.
    }
  };

  async function call(operation: ProviderOperation, target: { responseId: string | null; context?: CallContext }, run: () => Promise<HttpAnswer>): Promise<ProviderResult> {
    const at = clock();
    const started = performance.now();
    const jobId = target.context?.jobId ?? null;
    try {
      const { data, status, header, requestId } = await run();
      const hint = header('openai-poll-after-ms');
      const result: ProviderResult = {
        response: data as ProviderResult['response'],
        pollAfterMs: hint !== null && Number.isFinite(Number(hint)) ? Number(hint) : undefined,
        requestId,
      };
      report({
        operation,
        status,
        durationMs: performance.now() - started,
        requestId,
        responseId: result.response.id ?? target.responseId,
        jobId,
        at,
      });
      return result;
    } catch (err) {
      const error = toProviderError(err, clock());
      const status = error.status ?? (error.code === 'provider_timeout' ? 'timeout' : 'network_error');
      report({ operation, status, durationMs: performance.now() - started, requestId: error.requestId, responseId: target.responseId, jobId, at });
      throw error;
    }
  }

  /** Open a stream; errors while opening are classified, errors while reading are too. */
  async function openStream(
    operation: ProviderOperation,
    responseId: string | null,
    context: CallContext | undefined,
    run: () => Promise<{ data: AsyncIterable<unknown> & { controller: AbortController }; response: Response; request_id: string | null }>,
  ): Promise<ProviderEventStream> {
    const at = clock();
    const started = performance.now();
    const jobId = context?.jobId ?? null;
    let opened: Awaited<ReturnType<typeof run>>;
    try {
      opened = await run();
    } catch (err) {
      const error = toProviderError(err, clock());
      report({
        operation,
        status: error.status ?? (error.code === 'provider_timeout' ? 'timeout' : 'network_error'),
        durationMs: performance.now() - started,
        requestId: error.requestId,
        responseId,
        jobId,
        at,
      });
      throw error;
    }
    report({ operation, status: opened.response.status, durationMs: performance.now() - started, requestId: opened.request_id, responseId, jobId, at });
    const source = opened.data;
    return {
      abort: () => source.controller.abort(),
      async *[Symbol.asyncIterator]() {
        try {
          for await (const event of source) yield event as ProviderStreamEvent;
        } catch (err) {
          if (source.controller.signal.aborted) return;
          throw toProviderError(err, clock());
        }
      },
    };
  }

  /**
   * Calls answered with something other than a Response (files, conversations, a response's
   * deletion or input items): the same error classification and reporting.
   */
  async function resource<T>(
    operation: ProviderOperation,
    context: CallContext | undefined,
    run: () => Promise<{ data: unknown; response: Response; request_id: string | null }>,
    responseId: string | null = null,
  ): Promise<T> {
    const at = clock();
    const started = performance.now();
    const jobId = context?.jobId ?? null;
    try {
      const { data, response, request_id } = await run();
      report({ operation, status: response.status, durationMs: performance.now() - started, requestId: request_id, responseId, jobId, at });
      return data as T;
    } catch (err) {
      const error = toProviderError(err, clock());
      report({
        operation,
        status: error.status ?? (error.code === 'provider_timeout' ? 'timeout' : 'network_error'),
        durationMs: performance.now() - started,
        requestId: error.requestId,
        responseId,
        jobId,
        at,
      });
      throw error;
    }
  }

  return {
    createFile: async (upload, purpose, context) => {
      const file = await toFile(upload.data, upload.filename, { type: upload.contentType ?? 'application/octet-stream' });
      // An upload is not idempotent either: a retried POST could store the file twice.
      return resource('file_create', context, () => client.files.create({ file, purpose: purpose as never }, { maxRetries: 0 }).withResponse());
    },
    retrieveFile: (id, context) => resource('file_retrieve', context, () => client.files.retrieve(id).withResponse()),
    deleteFile: (id, context) => resource('file_delete', context, () => client.files.delete(id).withResponse()),
    createConversation: (params, context) => resource('conversation_create', context, () => client.conversations.create(params as never, { maxRetries: 0 }).withResponse()),
    retrieveConversation: (id, context) => resource('conversation_retrieve', context, () => client.conversations.retrieve(id).withResponse()),
    updateConversation: (id, params, context) => resource('conversation_update', context, () => client.conversations.update(id, params as never).withResponse()),
    deleteConversation: (id, context) => resource('conversation_delete', context, () => client.conversations.delete(id).withResponse()),
    // One page only (the SDK's page object would fetch further pages on iteration): the raw list.
    listConversationItems: (id, query, context) =>
      resource('conversation_items', context, () => client.get(`/conversations/${encodeURIComponent(id)}/items`, { query }).withResponse() as never),
    createResponseStream: (params, context) =>
      openStream(
        'create',
        null,
        context,
        () => client.responses.create({ ...params, background: true, store: true, stream: true } as never, { maxRetries: 0, timeout: STREAM_TIMEOUT_MS }).withResponse() as never,
      ),
    streamResponse: (id, startingAfter, context) =>
      openStream(
        'stream',
        id,
        context,
        () =>
          client.responses
            .retrieve(id, { stream: true, ...(startingAfter === null ? {} : { starting_after: startingAfter }) }, { timeout: STREAM_TIMEOUT_MS })
            .withResponse() as never,
      ),
    createResponse: (params, context) =>
      // A retried POST can start a second billed response: a create is never retried here;
      // the submit queue's own retry policy decides.
      call('create', { responseId: null, context }, async () => {
        const answer = await responses.send({ method: 'POST', path: '/responses', body: { ...params, background: true, store: true }, retries: 0 });
        return { ...answer, data: withOutputText(answer.data) };
      }),
    retrieveResponse: (id, context) =>
      call('retrieve', { responseId: id, context }, async () => {
        const answer = await responses.send({ method: 'GET', path: `/responses/${encodeURIComponent(id)}`, retries: readRetries });
        return { ...answer, data: withOutputText(answer.data) };
      }),
    deleteResponse: async (id, context) => {
      const answer = await resource<unknown>('delete', context, () => client.responses.delete(id).withResponse(), id);
      // OpenAI answers `{ id, object, deleted }` (the SDK types it void); a compatible server may
      // answer 204 without a body. A 2xx is the deletion either way.
      const body = typeof answer === 'object' && answer !== null ? (answer as { id?: unknown; deleted?: unknown }) : {};
      return { id: typeof body.id === 'string' ? body.id : id, deleted: typeof body.deleted === 'boolean' ? body.deleted : true };
    },
    // One page only, as for conversation items: the raw list, not the SDK's auto-paginating page.
    listInputItems: (id, query, context) =>
      resource('input_items', context, () => client.get(`/responses/${encodeURIComponent(id)}/input_items`, { query }).withResponse() as never, id),
    // As in the SDK, a cancel's Response gets no output_text.
    cancelResponse: (id, context) =>
      call('cancel', { responseId: id, context }, () => responses.send({ method: 'POST', path: `/responses/${encodeURIComponent(id)}/cancel`, retries: readRetries })),
  };
}
