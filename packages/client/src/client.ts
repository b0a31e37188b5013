/**
 * `createClient({ baseUrl, apiKey })`: Longhaul's API as typed calls (openapi-fetch over the
 * types generated from the API's OpenAPI document, src/schema.ts), plus the helpers every client otherwise writes itself: waiting for a
 * job (its event stream, polling when the stream is unavailable), following its stream with
 * resumption, and verifying callbacks. Every failure the API answers is thrown as a typed
 * LonghaulError; only fetch and web streams are used, so it runs in browsers and Node alike.
 */
import createFetchClient from 'openapi-fetch';
import type {
  CallbackEvent,
  Job,
  JobCreateParams,
  JobEventList,
  JobList,
  JobListParams,
  Prompt,
  PromptCreateParams,
  PromptList,
  PromptListParams,
  PromptVersionList,
  PromptVersionListParams,
  UsageParams,
  UsageReport,
  paths,
} from './api-types.ts';
import { type HeadersLike, verifyCallback } from './callbacks.ts';
import { apiErrorFrom, connectionErrorFrom } from './errors.ts';
import { type StreamEvent, type StreamOptions, followStream } from './stream.ts';
import { type WaitOptions, waitForJob } from './wait.ts';

export interface ClientOptions {
  /** Where Longhaul's API is, e.g. `http://localhost:3000` (without `/v1`). */
  baseUrl: string;
  /** A tenant API key (`lh_sk_…`), sent as `Authorization: Bearer`. */
  apiKey: string;
  /** The fetch to use (default: the global one). */
  fetch?: typeof globalThis.fetch;
}

export interface CreateJobOptions {
  /** Sent as `Idempotency-Key`: a retried create answers the first one's job. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The body of a successful answer; an unsuccessful one is thrown as its typed error. */
async function unwrap<T>(call: Promise<Answer<T>>): Promise<T> {
  const { data, error, response } = await call.catch((err: unknown) => {
    throw connectionErrorFrom(err);
  });
  if (!response.ok) throw apiErrorFrom(response, error);
  return data as T;
}

export function createClient(options: ClientOptions) {
  const userFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const http = createFetchClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    headers: { authorization: `Bearer ${options.apiKey}` },
    fetch: (request) => userFetch(request),
  });

  const openStream = (id: string) => async (cursor: string | undefined, signal: AbortSignal | undefined) => {
    const { response } = await http.GET('/v1/jobs/{id}/stream', {
      params: { path: { id } },
      headers: { accept: 'text/event-stream', ...(cursor === undefined ? {} : { 'last-event-id': cursor }) },
      parseAs: 'stream',
      signal,
    });
    return response;
  };

  const jobs = {
    create: (params: JobCreateParams, opts: CreateJobOptions = {}): Promise<Job> =>
      unwrap(http.POST('/v1/jobs', { body: params, headers: opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {}, signal: opts.signal })),
    get: (id: string, opts: { signal?: AbortSignal } = {}): Promise<Job> => unwrap(http.GET('/v1/jobs/{id}', { params: { path: { id } }, signal: opts.signal })),
    list: (params: JobListParams = {}): Promise<JobList> => unwrap(http.GET('/v1/jobs', { params: { query: params } })),
    cancel: (id: string): Promise<Job> => unwrap(http.POST('/v1/jobs/{id}/cancel', { params: { path: { id } } })),
    /** Every state change of the job, oldest first (GET /v1/jobs/{id}/events). */
    events: (id: string): Promise<JobEventList> => unwrap(http.GET('/v1/jobs/{id}/events', { params: { path: { id } } })),
    /** The job's live event stream, resuming after dropped connections; ends after its terminal event. */
    stream: (id: string, opts: StreamOptions = {}): AsyncGenerator<StreamEvent> => followStream(openStream(id), opts),
    /** The job once it is terminal: follows its stream, polling GET /v1/jobs/{id} when the stream is unavailable or lost. */
    wait: (id: string, opts: WaitOptions = {}): Promise<Job> => waitForJob({ stream: (o) => followStream(openStream(id), o), get: (o) => jobs.get(id, o) }, opts),
  };

  const prompts = {
    create: (params: PromptCreateParams): Promise<Prompt> => unwrap(http.POST('/v1/prompts', { body: params })),
    list: (params: PromptListParams = {}): Promise<PromptList> => unwrap(http.GET('/v1/prompts', { params: { query: params } })),
    get: (id: string): Promise<Prompt> => unwrap(http.GET('/v1/prompts/{id}', { params: { path: { id } } })),
    versions: (id: string, params: PromptVersionListParams = {}): Promise<PromptVersionList> =>
      unwrap(http.GET('/v1/prompts/{id}/versions', { params: { path: { id }, query: params } })),
  };

  const usage = {
    get: (params: UsageParams = {}): Promise<UsageReport> => unwrap(http.GET('/v1/usage', { params: { query: params } })),
  };

  const callbacks = {
    /** The callback's event if `rawBody` is signed by `secret` (or one of several) and fresh; throws CallbackVerificationError otherwise. */
    verify: (rawBody: string | Uint8Array, headers: HeadersLike, secret: string | readonly string[]): CallbackEvent => verifyCallback(rawBody, headers, secret),
  };

  return { jobs, prompts, usage, callbacks };
}

export type LonghaulClient = ReturnType<typeof createClient>;
