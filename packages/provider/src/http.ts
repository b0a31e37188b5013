/**
 * A lighter HTTP path for the three hot Responses calls: create (non-streamed), retrieve and
 * cancel. Everything else (streams, files, conversations) stays on the official SDK.
 *
 * Why: in a V8 profile of the worker (`npm run bench -- --only e2e --jobs 1000 --cpu-prof`) the
 * SDK's `makeRequest` was 12.2 % of the worker's busy time, about 1.27 ms of CPU per job for one
 * create and one retrieve (undici fetch, building the headers each time, its debug-log
 * formatting, parsing); `--only ops` priced a retrieve through the SDK at ~650 µs of CPU and a
 * create at ~1 070 µs, against ~200 µs and ~300 µs through this module (node:http or node:https
 * with a keep-alive agent, one per provider).
 *
 * What it does, as the SDK did for these calls:
 * - the SDK builds the request headers, once: Authorization: Bearer, OpenAI-Organization and
 *   OpenAI-Project when the client has them, User-Agent `OpenAI/JS <version>`, Accept, the
 *   X-Stainless-* headers (X-Stainless-Retry-Count per attempt) and OPENAI_CUSTOM_HEADERS; the
 *   base URL is the client's (https://api.openai.com/v1 by default);
 * - retries, for the callers that allow them (reads), exactly on the SDK's conditions
 *   (x-should-retry, 408, 409, 429, 5xx, connection errors, timeouts) and after the SDK's delays
 *   (retry-after-ms, Retry-After seconds or date, else 0.5 s doubling to 8 s with jitter);
 * - fails with the SDK's own error classes (`APIError.generate`, `APIConnectionError`,
 *   `APIConnectionTimeoutError`), so `toProviderError` classifies them as before;
 * - adds `output_text` to a Response object as the SDK's create and retrieve do (not cancel).
 *
 * What it does not do: stream, upload, follow redirects (a 3xx is an error), use a proxy
 * or a custom fetch, refresh workload-identity tokens. One difference is deliberate: the
 * per-attempt timeout covers reading the body too, where the SDK's stopped at the headers.
 */
import http from 'node:http';
import https from 'node:https';
import { urlToHttpOptions } from 'node:url';
import { APIConnectionError, APIConnectionTimeoutError, APIError, type OpenAI } from 'openai';

export interface HttpAnswer {
  /** The parsed JSON body. */
  data: unknown;
  status: number;
  /** A response header (lowercase name), repeated values joined with `, `; null when absent. */
  header(name: string): string | null;
  /** `x-request-id`. */
  requestId: string | null;
}

export interface JsonRequest {
  method: 'GET' | 'POST';
  /** Below the base URL, e.g. `/responses/resp_1/cancel`. */
  path: string;
  body?: unknown;
  /** Attempts after the first on a retryable failure; 0 for anything not safe to repeat. */
  retries: number;
}

export interface ResponsesHttp {
  send(request: JsonRequest): Promise<HttpAnswer>;
}

/** Idle keep-alive sockets close after this long (undici's default), or before a shorter server hint. */
const IDLE_SOCKET_MS = 4_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createResponsesHttp(client: OpenAI, options: { timeoutMs: number }): ResponsesHttp {
  const base = new URL(client.baseURL);
  const { protocol, hostname, port, auth } = urlToHttpOptions(base);
  const target = { protocol, hostname, port, auth };
  const basePath = base.pathname.replace(/\/$/, '');
  const transport = base.protocol === 'https:' ? https : http;
  const agent = new transport.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS });
  let sdkHeaders: Promise<Record<string, string>> | undefined;
  const headersFor = () => (sdkHeaders ??= client.buildRequest({ method: 'get', path: '/responses' }).then(({ req }) => Object.fromEntries(req.headers as Headers)));

  function attempt(method: string, path: string, headers: Record<string, string>, body: string | undefined): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(err);
      };
      const req = transport.request({ ...target, path: basePath + path, method, headers, agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('error', fail);
        res.on('close', () => {
          if (!res.complete) fail(new Error('The connection closed before the whole answer arrived.'));
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          try {
            resolve(answer(res, text));
          } catch (err) {
            reject(err);
          }
        });
      });
      const timer = setTimeout(() => fail(new APIConnectionTimeoutError()), options.timeoutMs);
      req.on('error', (err) => fail(isTimeoutLike(err) ? new APIConnectionTimeoutError() : new APIConnectionError({ cause: err })));
      req.end(body);
    });
  }

  return {
    async send({ method, path, body, retries }) {
      const common = await headersFor();
      const payload = body === undefined ? undefined : JSON.stringify(body);
      // As fetch does: a POST without a body says so (content-length: 0) rather than going chunked.
      const bodyHeaders: Record<string, string> =
        payload !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : method === 'POST' ? { 'content-length': '0' } : {};
      for (let done = 0; ; done++) {
        try {
          return await attempt(method, path, { ...common, ...bodyHeaders, 'x-stainless-retry-count': String(done) }, payload);
        } catch (err) {
          if (done >= retries || !isRetryable(err)) throw err;
          await sleep(retryDelayMs(err instanceof APIError ? err.headers : undefined, done));
        }
      }
    },
  };
}

/** A 2xx answer, or throws the SDK's error for any other status. */
function answer(res: http.IncomingMessage, text: string): HttpAnswer {
  const status = res.statusCode ?? 0;
  const header = (name: string) => {
    const value = res.headers[name];
    return value === undefined ? null : Array.isArray(value) ? value.join(', ') : value;
  };
  if (status < 200 || status > 299) {
    const json = safeJson(text);
    const headers = new Headers();
    for (let i = 0; i < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
    throw APIError.generate(status, json as object | undefined, json === undefined ? text : undefined, headers);
  }
  const data: unknown = status === 204 ? null : JSON.parse(text);
  return { data, status, header, requestId: header('x-request-id') };
}

/** The SDK's rule: any connection failure or timeout; else the server's x-should-retry, else 408, 409, 429 and 5xx. */
function isRetryable(err: unknown): boolean {
  if (err instanceof APIConnectionError) return true;
  if (!(err instanceof APIError) || err.status === undefined) return false;
  const told = err.headers?.get('x-should-retry');
  if (told === 'true') return true;
  if (told === 'false') return false;
  return err.status === 408 || err.status === 409 || err.status === 429 || err.status >= 500;
}

/**
 * The SDK's delay: what the server asked for (retry-after-ms, else Retry-After in seconds or as a
 * date; no cap, as in the SDK), else 0.5 s doubling to 8 s, less up to 25 % jitter. An unreadable
 * date falls back to the backoff (the SDK would wait NaN ms, i.e. not at all).
 */
function retryDelayMs(headers: Headers | undefined, done: number): number {
  let asked: number | undefined;
  const ms = Number.parseFloat(headers?.get('retry-after-ms') ?? '');
  if (!Number.isNaN(ms)) asked = ms;
  const after = headers?.get('retry-after');
  if (after && !asked) {
    const seconds = Number.parseFloat(after);
    asked = Number.isNaN(seconds) ? Date.parse(after) - Date.now() : seconds * 1000;
  }
  if (asked !== undefined && !Number.isNaN(asked)) return asked;
  return Math.min(0.5 * 2 ** done, 8) * (1 - Math.random() * 0.25) * 1000;
}

/** As the SDK tells a timeout from another connection failure (e.g. `connect ETIMEDOUT`). */
function isTimeoutLike(err: Error): boolean {
  return /timed? ?out/i.test(String(err) + ('cause' in err ? String(err.cause) : ''));
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** As the SDK's `addOutputText`: the concatenated `output_text` parts of a Response's messages. */
export function withOutputText(data: unknown): unknown {
  const rsp = data as { object?: unknown; output?: unknown; output_text?: string } | null;
  if (!rsp || typeof rsp !== 'object' || rsp.object !== 'response' || !Array.isArray(rsp.output)) return data;
  const texts: string[] = [];
  for (const item of rsp.output as { type?: string; content?: { type?: string; text?: string }[] }[]) {
    if (item?.type !== 'message' || !Array.isArray(item.content)) continue;
    for (const part of item.content) if (part?.type === 'output_text') texts.push(part.text ?? '');
  }
  rsp.output_text = texts.join('');
  return data;
}
