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
}

export interface ProviderResult {
  response: ProviderResponse & Record<string, unknown>;
  /** From the `openai-poll-after-ms` header, when the provider sends one. */
  pollAfterMs?: number;
  requestId: string | null;
}

export interface Provider {
  /** Create a background response. `params` are the Responses create parameters. */
  createResponse(params: Record<string, unknown>): Promise<ProviderResult>;
  retrieveResponse(responseId: string): Promise<ProviderResult>;
  cancelResponse(responseId: string): Promise<ProviderResult>;
}

export function createProvider(options: ProviderOptions): Provider {
  const clock = options.clock ?? (() => new Date());
  const client = new OpenAI({
    apiKey: options.apiKey,
    baseURL: options.baseURL,
    timeout: options.timeoutMs ?? 60_000,
    maxRetries: options.readRetries ?? 2,
  });

  async function call(run: () => Promise<{ data: unknown; response: Response; request_id: string | null }>): Promise<ProviderResult> {
    try {
      const { data, response, request_id } = await run();
      const hint = Number(response.headers.get('openai-poll-after-ms'));
      return {
        response: data as ProviderResult['response'],
        pollAfterMs: response.headers.has('openai-poll-after-ms') && Number.isFinite(hint) ? hint : undefined,
        requestId: request_id,
      };
    } catch (err) {
      throw toProviderError(err, clock());
    }
  }

  return {
    createResponse: (params) =>
      // A retried POST can start a second billed response: never let the SDK retry a create;
      // the submit queue's own retry policy decides.
      call(() => client.responses.create({ ...params, background: true, store: true } as never, { maxRetries: 0 }).withResponse()),
    retrieveResponse: (id) => call(() => client.responses.retrieve(id).withResponse()),
    cancelResponse: (id) => call(() => client.responses.cancel(id).withResponse()),
  };
}
