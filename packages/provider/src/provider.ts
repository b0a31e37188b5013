/**
 * The provider adapter, pointed at OpenAI or any compatible server (the simulator by default).
 * Create, retrieve and cancel answer the Response plus the hints Longhaul schedules by; they go
 * through the lighter HTTP path of http.ts (the SDK cost more CPU than the call). The streaming
 * variants, files and conversations use the official `openai` SDK. Failures are thrown as
 * classified ProviderErrors either way.
 *
 * Keys (keyring.ts): a create is made with an active key of the keyring and answers the key's id,
 * which the caller records with what it created; every call about an existing object is made
 * with the key whose id the caller passes (`CallContext.keyId`). A 401 takes the key out of
 * rotation; a create is then made again with the next key (the provider refused it, so nothing
 * was created), and fails with `no_provider_key` when no key is left. One client (and keep-alive
 * agent) per key, rebuilt when the keyring gives that id another key.
 */
import OpenAI, { toFile } from 'openai';
import type { ProviderResponse } from '@longhaul/core';
import { GEN_AI, SpanKind, genAiOperation, genAiRequestAttributes, genAiResponseAttributes, tracingEnabled, withSpan } from '@longhaul/telemetry';
import { ProviderError, toProviderError } from './errors.ts';
import { createResponsesHttp, type HttpAnswer, type ResponsesHttp, withOutputText } from './http.ts';
import { createKeyring, type Keyring, type ProviderKey } from './keyring.ts';

export interface ProviderOptions {
  /** One key (its id is `default`). Give this or `keyring`. */
  apiKey?: string;
  /** Several keys, rotated (keyring.ts). */
  keyring?: Keyring;
  /** Default: the SDK's (https://api.openai.com/v1); a key's own `baseURL` wins. */
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
  | 'conversation_items'
  | 'file_content'
  | 'batch_create'
  | 'batch_retrieve'
  | 'batch_cancel'
  | 'batch_list';

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
/** A Batch API batch, as the provider describes it (the fields Longhaul reads; the rest kept). */
export interface ProviderBatch {
  id: string;
  object: 'batch';
  status: 'validating' | 'in_progress' | 'finalizing' | 'completed' | 'failed' | 'expired' | 'cancelling' | 'cancelled';
  input_file_id: string;
  output_file_id?: string | null;
  error_file_id?: string | null;
  request_counts?: { total: number; completed: number; failed: number } | null;
  errors?: { data?: { code?: string; message?: string; line?: number | null }[] } | null;
  metadata?: Record<string, string> | null;
  created_at: number;
  [key: string]: unknown;
}

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
  /** The id of the key the request was made with. */
  keyId: string;
  /** When the request started. */
  at: Date;
}

/** Who a call is for (handed to `onRequest`), and with which key. */
export interface CallContext {
  jobId?: string;
  /**
   * On a call about an existing object: the id of the key it was created with (the
   * `provider_key_id` of its job, file or conversation; null: `default`, or the only key). On a
   * create: the key to use if it still can (the key of objects the request refers to), else
   * the next active one.
   */
  keyId?: string | null;
  /** The object's key is not known (a webhook for a response no job has recorded yet): each usable key is tried until one knows it. */
  anyKey?: boolean;
}

/** Codes of the ProviderErrors about keys (kind `rejected`, status null). */
export const NO_PROVIDER_KEY = 'no_provider_key';
export const PROVIDER_KEY_MISSING = 'provider_key_missing';
/** The same, but kind `transient`: an id this process has not read yet (keyring.ts `resolve`). */
export const PROVIDER_KEY_UNKNOWN = 'provider_key_unknown';

/** A provider Response object (the fields Longhaul reads, and everything else). */
export type ProviderResponseObject = ProviderResponse & Record<string, unknown>;

export interface ProviderResult {
  response: ProviderResponseObject;
  /** From the `openai-poll-after-ms` header, when the provider sends one. */
  pollAfterMs?: number;
  requestId: string | null;
  /** The id of the key the call was made with: on a create, what to record with the object. */
  keyId: string;
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
  /** The id of the key the stream was opened with: on a create, what to record with the response. */
  keyId: string;
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
  /** Upload a file through the Files API (`purpose` is `user_data` for model inputs); record `keyId` with it. */
  createFile(upload: FileUpload, purpose: string, context?: CallContext): Promise<{ file: ProviderFile; keyId: string }>;
  retrieveFile(fileId: string, context?: CallContext): Promise<ProviderFile>;
  deleteFile(fileId: string, context?: CallContext): Promise<{ id: string; deleted: boolean }>;
  /** Create a conversation (its `items` seed it; `metadata` is the provider's); record `keyId` with it. */
  createConversation(params: { items?: unknown[]; metadata?: Record<string, string> }, context?: CallContext): Promise<{ conversation: ProviderConversation; keyId: string }>;
  retrieveConversation(conversationId: string, context?: CallContext): Promise<ProviderConversation>;
  /** Replace a conversation's metadata (the provider's update). */
  updateConversation(conversationId: string, params: { metadata: Record<string, string> | null }, context?: CallContext): Promise<ProviderConversation>;
  deleteConversation(conversationId: string, context?: CallContext): Promise<{ id: string; deleted: boolean }>;
  /** One page of a conversation's items (the provider's list object: `data`, `first_id`, `last_id`, `has_more`). */
  listConversationItems(conversationId: string, query: { limit?: number; after?: string; order?: 'asc' | 'desc' }, context?: CallContext): Promise<Record<string, unknown>>;
  /** A file's content (a batch's output or error file: JSONL), as text. */
  fileContent(fileId: string, context?: CallContext): Promise<string>;
  /** Create a Batch API batch over an uploaded input file (with the file's key, `context.keyId`). Never retried: a retry could start a second batch. */
  createBatch(
    params: { input_file_id: string; endpoint: '/v1/responses'; completion_window: '24h'; metadata?: Record<string, string> },
    context?: CallContext,
  ): Promise<ProviderBatch>;
  retrieveBatch(batchId: string, context?: CallContext): Promise<ProviderBatch>;
  cancelBatch(batchId: string, context?: CallContext): Promise<ProviderBatch>;
  /** One page of the key's batches, newest first (the provider's list object). */
  listBatches(query: { limit?: number; after?: string }, context?: CallContext): Promise<{ data: ProviderBatch[]; has_more: boolean; last_id?: string | null }>;
}

/** A stream stays open as long as the response runs; the idle timeout is the SDK's per-read one. */
const STREAM_TIMEOUT_MS = 10 * 60_000;

export function createProvider(options: ProviderOptions): Provider {
  const clock = options.clock ?? (() => new Date());
  const readRetries = options.readRetries ?? 2;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const keyring = options.keyring ?? (options.apiKey ? createKeyring({ apiKey: options.apiKey }) : undefined);
  if (!keyring) throw new Error('createProvider: give apiKey or keyring');

  /** One SDK client and HTTP path per key id, rebuilt when the id gets another key. */
  interface KeyClient {
    key: ProviderKey;
    client: OpenAI;
    responses: ResponsesHttp;
  }
  const clients = new Map<string, { material: string; kc: KeyClient }>();
  const clientFor = (key: ProviderKey): KeyClient => {
    const baseURL = key.baseURL ?? options.baseURL;
    const material = JSON.stringify([key.apiKey, baseURL, key.organization, key.project]);
    const cached = clients.get(key.id);
    if (cached?.material === material) return cached.kc;
    const client = new OpenAI({ apiKey: key.apiKey, baseURL, organization: key.organization, project: key.project, timeout: timeoutMs, maxRetries: readRetries });
    const kc = { key, client, responses: createResponsesHttp(client, { timeoutMs }) };
    clients.set(key.id, { material, kc });
    return kc;
  };

  const report = (event: ProviderRequestEvent) => {
    try {
      options.onRequest?.(event);
    } catch {
      // Observability must never break a provider call.
    }
  };

  const isUnauthorized = (err: unknown): err is ProviderError => err instanceof ProviderError && err.status === 401;

  /** A call about an existing object, with the key it was created with (or, `anyKey`, with each usable key until one knows it). */
  async function existing<T>(operation: ProviderOperation, context: CallContext | undefined, run: (kc: KeyClient) => Promise<T>): Promise<T> {
    if (context?.anyKey) return anyKey(operation, run);
    const key = keyring!.forObject(context?.keyId) ?? (await keyring!.resolve(context?.keyId));
    if (key === 'removed') {
      throw new ProviderError(`The provider key '${context?.keyId || 'default'}' this was created with is no longer configured; add it back (OPENAI_API_KEYS_FILE) to reach it.`, {
        kind: 'rejected',
        status: null,
        code: PROVIDER_KEY_MISSING,
      });
    }
    if (key === 'unknown') {
      // Created by a process that has read a newer keys file than this one: this one will too.
      throw new ProviderError(`The provider key '${context?.keyId || 'default'}' is not in this process's keys file yet.`, {
        kind: 'transient',
        status: null,
        code: PROVIDER_KEY_UNKNOWN,
      });
    }
    try {
      return await run(clientFor(key));
    } catch (err) {
      if (isUnauthorized(err)) keyring!.reject(key, { operation, requestId: err.requestId });
      throw err;
    }
  }

  async function anyKey<T>(operation: ProviderOperation, run: (kc: KeyClient) => Promise<T>): Promise<T> {
    let notFound: unknown;
    for (const key of keyring!.usable()) {
      try {
        return await run(clientFor(key));
      } catch (err) {
        if (isUnauthorized(err)) keyring!.reject(key, { operation, requestId: err.requestId });
        else if (err instanceof ProviderError && err.kind === 'not_found') notFound = err;
        else throw err;
      }
    }
    throw notFound ?? noKeyLeft();
  }

  /** A create, with the preferred or next active key; a 401 moves on to the next key. */
  async function created<T>(operation: ProviderOperation, context: CallContext | undefined, run: (kc: KeyClient) => Promise<T>): Promise<T> {
    // The key of what the request refers to may be in a keys file this process has not read yet.
    if (context?.keyId && !keyring!.forObject(context.keyId)) await keyring!.resolve(context.keyId);
    const tried = new Set<string>();
    for (;;) {
      const key = keyring!.forCreate(tried, context?.keyId);
      if (!key) throw noKeyLeft();
      try {
        return await run(clientFor(key));
      } catch (err) {
        if (!isUnauthorized(err)) throw err;
        keyring!.reject(key, { operation, requestId: err.requestId });
        tried.add(key.id);
      }
    }
  }

  async function call(
    operation: ProviderOperation,
    kc: KeyClient,
    target: { responseId: string | null; context?: CallContext; request?: Record<string, unknown> },
    run: (http: ResponsesHttp) => Promise<HttpAnswer>,
  ): Promise<ProviderResult> {
    if (!tracingEnabled()) return untracedCall(operation, kc, target, run);
    // A GenAI client span (@longhaul/telemetry gen-ai.ts): `chat {model}` for a create, `retrieve {model}` / `cancel {model}` after.
    const requested = genAiRequestAttributes(operation, target.request);
    const model = requested[GEN_AI.requestModel];
    const name = `${genAiOperation(operation)}${typeof model === 'string' ? ` ${model}` : ''}`;
    const attributes = {
      ...requested,
      ...(target.responseId ? { [GEN_AI.responseId]: target.responseId } : {}),
      ...(target.context?.jobId ? { 'longhaul.job_id': target.context.jobId } : {}),
    };
    return withSpan(name, { kind: SpanKind.CLIENT, attributes }, async (span) => {
      const result = await untracedCall(operation, kc, target, run);
      const response = result.response as Parameters<typeof genAiResponseAttributes>[0];
      if (span) {
        span.setAttributes(genAiResponseAttributes(response));
        if (typeof response?.model === 'string' && model === undefined) {
          span.setAttribute(GEN_AI.requestModel, response.model);
          span.updateName(`${genAiOperation(operation)} ${response.model}`);
        }
        if (result.requestId) span.setAttribute('longhaul.provider.request_id', result.requestId);
      }
      return result;
    });
  }

  async function untracedCall(
    operation: ProviderOperation,
    kc: KeyClient,
    target: { responseId: string | null; context?: CallContext },
    run: (http: ResponsesHttp) => Promise<HttpAnswer>,
  ): Promise<ProviderResult> {
    const at = clock();
    const started = performance.now();
    const jobId = target.context?.jobId ?? null;
    const keyId = kc.key.id;
    try {
      const { data, status, header, requestId } = await run(kc.responses);
      const hint = header('openai-poll-after-ms');
      const result: ProviderResult = {
        response: data as ProviderResult['response'],
        pollAfterMs: hint !== null && Number.isFinite(Number(hint)) ? Number(hint) : undefined,
        requestId,
        keyId,
      };
      report({
        operation,
        status,
        durationMs: performance.now() - started,
        requestId,
        responseId: result.response.id ?? target.responseId,
        jobId,
        keyId,
        at,
      });
      return result;
    } catch (err) {
      const error = toProviderError(err, clock());
      const status = error.status ?? (error.code === 'provider_timeout' ? 'timeout' : 'network_error');
      report({ operation, status, durationMs: performance.now() - started, requestId: error.requestId, responseId: target.responseId, jobId, keyId, at });
      throw error;
    }
  }

  /** Open a stream; errors while opening are classified, errors while reading are too. */
  async function openStream(
    operation: ProviderOperation,
    kc: KeyClient,
    responseId: string | null,
    context: CallContext | undefined,
    run: (client: OpenAI) => Promise<{ data: AsyncIterable<unknown> & { controller: AbortController }; response: Response; request_id: string | null }>,
  ): Promise<ProviderEventStream> {
    const at = clock();
    const started = performance.now();
    const jobId = context?.jobId ?? null;
    const keyId = kc.key.id;
    let opened: Awaited<ReturnType<typeof run>>;
    try {
      opened = await run(kc.client);
    } catch (err) {
      const error = toProviderError(err, clock());
      report({
        operation,
        status: error.status ?? (error.code === 'provider_timeout' ? 'timeout' : 'network_error'),
        durationMs: performance.now() - started,
        requestId: error.requestId,
        responseId,
        jobId,
        keyId,
        at,
      });
      throw error;
    }
    report({ operation, status: opened.response.status, durationMs: performance.now() - started, requestId: opened.request_id, responseId, jobId, keyId, at });
    const source = opened.data;
    return {
      keyId,
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
    kc: KeyClient,
    context: CallContext | undefined,
    run: (client: OpenAI) => Promise<{ data: unknown; response: Response; request_id: string | null }>,
    responseId: string | null = null,
  ): Promise<T> {
    const at = clock();
    const started = performance.now();
    const jobId = context?.jobId ?? null;
    const keyId = kc.key.id;
    try {
      const { data, response, request_id } = await run(kc.client);
      report({ operation, status: response.status, durationMs: performance.now() - started, requestId: request_id, responseId, jobId, keyId, at });
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
        keyId,
        at,
      });
      throw error;
    }
  }

  /** A resource call about an existing object. */
  const onObject = <T>(
    operation: ProviderOperation,
    context: CallContext | undefined,
    run: (client: OpenAI) => Promise<{ data: unknown; response: Response; request_id: string | null }>,
    responseId: string | null = null,
  ) => existing(operation, context, (kc) => resource<T>(operation, kc, context, run, responseId));

  return {
    createFile: async (upload, purpose, context) => {
      const file = await toFile(upload.data, upload.filename, { type: upload.contentType ?? 'application/octet-stream' });
      // An upload is not idempotent either: a retried POST could store the file twice.
      return created('file_create', context, async (kc) => ({
        file: await resource<ProviderFile>('file_create', kc, context, (client) => client.files.create({ file, purpose: purpose as never }, { maxRetries: 0 }).withResponse()),
        keyId: kc.key.id,
      }));
    },
    retrieveFile: (id, context) => onObject('file_retrieve', context, (client) => client.files.retrieve(id).withResponse()),
    deleteFile: (id, context) => onObject('file_delete', context, (client) => client.files.delete(id).withResponse()),
    createConversation: (params, context) =>
      created('conversation_create', context, async (kc) => ({
        conversation: await resource<ProviderConversation>('conversation_create', kc, context, (client) =>
          client.conversations.create(params as never, { maxRetries: 0 }).withResponse(),
        ),
        keyId: kc.key.id,
      })),
    fileContent: async (id, context) => {
      const body = await onObject<Response>('file_content', context, (client) => client.files.content(id).withResponse());
      return body.text();
    },
    createBatch: (params, context) =>
      existing('batch_create', context, (kc) => resource<ProviderBatch>('batch_create', kc, context, (client) => client.batches.create(params, { maxRetries: 0 }).withResponse())),
    retrieveBatch: (id, context) => onObject('batch_retrieve', context, (client) => client.batches.retrieve(id).withResponse()),
    cancelBatch: (id, context) => onObject('batch_cancel', context, (client) => client.batches.cancel(id).withResponse()),
    // One page only: the raw list, not the SDK's auto-paginating page.
    listBatches: (query, context) => onObject('batch_list', context, (client) => client.get('/batches', { query }).withResponse() as never),
    retrieveConversation: (id, context) => onObject('conversation_retrieve', context, (client) => client.conversations.retrieve(id).withResponse()),
    updateConversation: (id, params, context) => onObject('conversation_update', context, (client) => client.conversations.update(id, params).withResponse()),
    deleteConversation: (id, context) => onObject('conversation_delete', context, (client) => client.conversations.delete(id).withResponse()),
    // One page only (the SDK's page object would fetch further pages on iteration): the raw list.
    listConversationItems: (id, query, context) =>
      onObject('conversation_items', context, (client) => client.get(`/conversations/${encodeURIComponent(id)}/items`, { query }).withResponse() as never),
    createResponseStream: (params, context) =>
      created('create', context, (kc) =>
        openStream(
          'create',
          kc,
          null,
          context,
          (client) =>
            client.responses.create({ ...params, background: true, store: true, stream: true } as never, { maxRetries: 0, timeout: STREAM_TIMEOUT_MS }).withResponse() as never,
        ),
      ),
    streamResponse: (id, startingAfter, context) =>
      existing('stream', context, (kc) =>
        openStream(
          'stream',
          kc,
          id,
          context,
          (client) =>
            client.responses
              .retrieve(id, { stream: true, ...(startingAfter === null ? {} : { starting_after: startingAfter }) }, { timeout: STREAM_TIMEOUT_MS })
              .withResponse() as never,
        ),
      ),
    createResponse: (params, context) =>
      // A retried POST can start a second billed response: a create is never retried here (a
      // 401 excepted: nothing was created); the submit queue's own retry policy decides.
      created('create', context, (kc) =>
        call('create', kc, { responseId: null, context, request: params }, async (http) => {
          const answer = await http.send({ method: 'POST', path: '/responses', body: { ...params, background: true, store: true }, retries: 0 });
          return { ...answer, data: withOutputText(answer.data) };
        }),
      ),
    retrieveResponse: (id, context) =>
      existing('retrieve', context, (kc) =>
        call('retrieve', kc, { responseId: id, context }, async (http) => {
          const answer = await http.send({ method: 'GET', path: `/responses/${encodeURIComponent(id)}`, retries: readRetries });
          return { ...answer, data: withOutputText(answer.data) };
        }),
      ),
    deleteResponse: async (id, context) => {
      const answer = await onObject<unknown>('delete', context, (client) => client.responses.delete(id).withResponse(), id);
      // OpenAI answers `{ id, object, deleted }` (the SDK types it void); a compatible server may
      // answer 204 without a body. A 2xx is the deletion either way.
      const body = typeof answer === 'object' && answer !== null ? (answer as { id?: unknown; deleted?: unknown }) : {};
      return { id: typeof body.id === 'string' ? body.id : id, deleted: typeof body.deleted === 'boolean' ? body.deleted : true };
    },
    // One page only, as for conversation items: the raw list, not the SDK's auto-paginating page.
    listInputItems: (id, query, context) =>
      onObject('input_items', context, (client) => client.get(`/responses/${encodeURIComponent(id)}/input_items`, { query }).withResponse() as never, id),
    // As in the SDK, a cancel's Response gets no output_text.
    cancelResponse: (id, context) =>
      existing('cancel', context, (kc) =>
        call('cancel', kc, { responseId: id, context }, (http) => http.send({ method: 'POST', path: `/responses/${encodeURIComponent(id)}/cancel`, retries: readRetries })),
      ),
  };
}

/** Every key is retired or rejected (or none is configured): nothing new can be created. */
function noKeyLeft(): ProviderError {
  return new ProviderError('No provider key is left to call the provider with: every configured key is retired or was rejected (401) by the provider.', {
    kind: 'rejected',
    status: null,
    code: NO_PROVIDER_KEY,
  });
}
