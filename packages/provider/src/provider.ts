/**
 * The provider adapter: the official `openai` SDK, pointed at OpenAI or any compatible server
 * (the simulator by default). Three operations — create, retrieve, cancel — each answering the
 * Response plus the hints Longhaul schedules by, or throwing a classified ProviderError.
 */
import OpenAI from 'openai';
import type { ProviderResponse } from '@longhaul/core';
import { toProviderError } from './errors.ts';

export interface ProviderOptions {
  apiKey: string;
  /** Default: the SDK's (https://api.openai.com/v1). */
  baseURL?: string;
  /** Per-request timeout. Default 60 000 ms. */
  timeoutMs?: number;
  /** SDK retries for retrieve and cancel (safe to repeat). Create is never retried by the SDK. Default 2. */
  readRetries?: number;
  /** Injectable clock, for parsing Retry-After dates. */
  clock?: () => Date;
  /**
   * Called after every provider operation, successful or not (metrics, the job timeline). Must
   * not throw. One call per operation: the SDK's own retries of a read count as one.
   */
  onRequest?: (event: ProviderRequestEvent) => void;
}

export type ProviderOperation = 'create' | 'retrieve' | 'cancel';

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

export interface ProviderResult {
  response: ProviderResponse & Record<string, unknown>;
  /** From the `openai-poll-after-ms` header, when the provider sends one. */
  pollAfterMs?: number;
  requestId: string | null;
}

export interface Provider {
  /** Create a background response. `params` are the Responses create parameters. */
  createResponse(params: Record<string, unknown>, context?: CallContext): Promise<ProviderResult>;
  retrieveResponse(responseId: string, context?: CallContext): Promise<ProviderResult>;
  cancelResponse(responseId: string, context?: CallContext): Promise<ProviderResult>;
}

export function createProvider(options: ProviderOptions): Provider {
  const clock = options.clock ?? (() => new Date());
  const client = new OpenAI({
    apiKey: options.apiKey,
    baseURL: options.baseURL,
    timeout: options.timeoutMs ?? 60_000,
    maxRetries: options.readRetries ?? 2,
  });

  const report = (event: ProviderRequestEvent) => {
    try {
      options.onRequest?.(event);
    } catch {
      // Observability must never break a provider call.
    }
  };

  async function call(
    operation: ProviderOperation,
    target: { responseId: string | null; context?: CallContext },
    run: () => Promise<{ data: unknown; response: Response; request_id: string | null }>,
  ): Promise<ProviderResult> {
    const at = clock();
    const started = performance.now();
    const jobId = target.context?.jobId ?? null;
    try {
      const { data, response, request_id } = await run();
      const hint = Number(response.headers.get('openai-poll-after-ms'));
      const result: ProviderResult = {
        response: data as ProviderResult['response'],
        pollAfterMs: response.headers.has('openai-poll-after-ms') && Number.isFinite(hint) ? hint : undefined,
        requestId: request_id,
      };
      report({ operation, status: response.status, durationMs: performance.now() - started, requestId: request_id, responseId: result.response.id ?? target.responseId, jobId, at });
      return result;
    } catch (err) {
      const error = toProviderError(err, clock());
      const status = error.status ?? (error.code === 'provider_timeout' ? 'timeout' : 'network_error');
      report({ operation, status, durationMs: performance.now() - started, requestId: error.requestId, responseId: target.responseId, jobId, at });
      throw error;
    }
  }

  return {
    createResponse: (params, context) =>
      // A retried POST can start a second billed response: never let the SDK retry a create;
      // the submit queue's own retry policy decides.
      call('create', { responseId: null, context }, () => client.responses.create({ ...params, background: true, store: true } as never, { maxRetries: 0 }).withResponse()),
    retrieveResponse: (id, context) => call('retrieve', { responseId: id, context }, () => client.responses.retrieve(id).withResponse()),
    cancelResponse: (id, context) => call('cancel', { responseId: id, context }, () => client.responses.cancel(id).withResponse()),
  };
}
