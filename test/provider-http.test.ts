/**
 * The provider's own HTTP path for create, retrieve and cancel (packages/provider/src/http.ts)
 * behaves as the SDK path did:
 * - against the simulator over HTTP: the same Response objects the SDK returns (output_text
 *   included), the request id, the create parameters sent, not_found / rejected / rate_limited /
 *   transient classification of the simulator's answers, a create sent once, reads retried;
 * - against a stand-in server on 127.0.0.1: every error path classified exactly as the SDK's
 *   error (compared field by field with `toProviderError` of what the SDK threw for the same
 *   answer), one onRequest event per operation (`timeout`, `network_error` included), the
 *   per-request timeout, the SDK's headers, the SDK's retry rule;
 * - an https base URL is spoken to over TLS.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import OpenAI from 'openai';
import { VERSION } from 'openai/version';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createProvider, ProviderError, type ProviderOptions, type ProviderRequestEvent, toProviderError } from '@longhaul/provider';
import { createSimServer, type ListeningSim } from '@longhaul/sim';

const KEY = 'sk-test-http';

function recording(options: Omit<ProviderOptions, 'apiKey' | 'onRequest'>) {
  const events: ProviderRequestEvent[] = [];
  const provider = createProvider({ apiKey: KEY, readRetries: 0, ...options, onRequest: (e) => events.push(e) });
  return { provider, events };
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

const classified = (e: ProviderError) => ({ kind: e.kind, status: e.status, code: e.code, message: e.message, retryAfterMs: e.retryAfterMs, requestId: e.requestId });

describe('against the simulator', () => {
  let sim: ListeningSim;
  let sdk: OpenAI;
  let baseURL: string;
  const simApi = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${sim.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return res.json() as Promise<any>;
  };
  const arrivals = async (method: string, pathStart: string) =>
    ((await simApi('GET', '/sim/request-log')).data as { method: string; path: string }[]).filter((a) => a.method === method && a.path.startsWith(pathStart)).length;

  beforeAll(async () => {
    sim = await createSimServer({ time_scale: 0.01 }).listen(0);
    baseURL = `${sim.url}/v1`;
    sdk = new OpenAI({ apiKey: KEY, baseURL, maxRetries: 0 });
  });
  afterEach(async () => {
    await simApi('POST', '/sim/reset');
  });
  afterAll(async () => {
    await sim?.close();
  });

  it('creates, retrieves and cancels: the objects the SDK returns, the request id, one event each', async () => {
    const { provider, events } = recording({ baseURL });
    const created = await provider.createResponse({ model: 'o3', input: 'Say hi.', metadata: { sim_duration_ms: '0' } }, { jobId: 'job_a' });
    expect(created.response).toMatchObject({ object: 'response', model: 'o3', background: true });
    expect(created.requestId).toMatch(/^req_/);
    expect(created.pollAfterMs).toBeUndefined();
    // The create carried background and store, as the SDK path sent them.
    expect(await simApi('GET', `/sim/requests/${created.response.id}`)).toMatchObject({ model: 'o3', input: 'Say hi.', background: true, store: true });

    let retrieved = await provider.retrieveResponse(created.response.id, { jobId: 'job_a' });
    while (retrieved.response.status !== 'completed') {
      await new Promise((r) => setTimeout(r, 20));
      retrieved = await provider.retrieveResponse(created.response.id, { jobId: 'job_a' });
    }
    expect(retrieved.response).toEqual(await sdk.responses.retrieve(created.response.id));
    expect(retrieved.response.output_text).toEqual(expect.any(String));

    const running = await provider.createResponse({ model: 'o3', input: 'Think long.', metadata: { sim_duration_ms: '600000' } });
    const cancelled = await provider.cancelResponse(running.response.id, { jobId: 'job_b' });
    expect(cancelled.response).toMatchObject({ id: running.response.id, status: 'cancelled' });
    expect(cancelled.response).toEqual(await sdk.responses.retrieve(running.response.id));

    expect(events[0]).toMatchObject({ operation: 'create', status: 200, requestId: created.requestId, responseId: created.response.id, jobId: 'job_a' });
    expect(events.at(-1)).toMatchObject({ operation: 'cancel', status: 200, requestId: cancelled.requestId, responseId: running.response.id, jobId: 'job_b' });
    expect(events.filter((e) => e.operation === 'retrieve').every((e) => e.status === 200 && e.responseId === created.response.id)).toBe(true);
  });

  it('classifies what the simulator refuses as the SDK path did: not_found, rejected', async () => {
    const { provider, events } = recording({ baseURL });
    const missing = await rejection(provider.retrieveResponse('resp_missing'));
    const viaSdk = toProviderError(await sdk.responses.retrieve('resp_missing').catch((e: unknown) => e), new Date());
    expect(missing).toMatchObject({ kind: 'not_found', status: 404 });
    expect({ ...classified(missing), requestId: null }).toEqual({ ...classified(viaSdk), requestId: null });
    expect(missing.requestId).toMatch(/^req_/);

    const invalid = await rejection(provider.createResponse({ model: 'o3', input: 'x', reasoning: { effort: 'extreme' } }));
    const invalidViaSdk = toProviderError(
      await sdk.responses.create({ model: 'o3', input: 'x', reasoning: { effort: 'extreme' as never }, background: true }).catch((e: unknown) => e),
      new Date(),
    );
    expect(invalid).toMatchObject({ kind: 'rejected', status: 400 });
    expect({ ...classified(invalid), requestId: null }).toEqual({ ...classified(invalidViaSdk), requestId: null });
    expect(events).toMatchObject([
      { operation: 'retrieve', status: 404, requestId: missing.requestId, responseId: 'resp_missing' },
      { operation: 'create', status: 400, requestId: invalid.requestId, responseId: null },
    ]);
  });

  it('a rate-limited create is rate_limited with its Retry-After, and is sent once whatever readRetries says', async () => {
    await simApi('POST', '/sim/config', { rate_limit_rate: 1, retry_after_s: 2, fault_endpoints: ['create'] });
    const { provider, events } = recording({ baseURL, readRetries: 3 });
    const err = await rejection(provider.createResponse({ model: 'o3', input: 'x' }));
    expect(err).toMatchObject({ kind: 'rate_limited', status: 429, retryAfterMs: 2_000 });
    expect(await arrivals('POST', '/v1/responses')).toBe(1);
    expect(events).toMatchObject([{ operation: 'create', status: 429 }]);
  });

  it('a failing retrieve is retried readRetries times, reported once, transient in the end', async () => {
    const created = await sdk.responses.create({ model: 'o3', input: 'x', background: true, metadata: { sim_duration_ms: '0' } });
    await simApi('POST', '/sim/config', { error_rate: 1, fault_endpoints: ['retrieve'] });
    const { provider, events } = recording({ baseURL, readRetries: 1 });
    const err = await rejection(provider.retrieveResponse(created.id));
    expect(err).toMatchObject({ kind: 'transient', status: 500 });
    expect(await arrivals('GET', `/v1/responses/${created.id}`)).toBe(2);
    expect(events).toMatchObject([{ operation: 'retrieve', status: 500, responseId: created.id }]);
  });

  it('a simulator slower than timeoutMs is a timeout', async () => {
    await simApi('POST', '/sim/config', { latency_ms: 2_000, fault_endpoints: ['retrieve'] });
    const { provider, events } = recording({ baseURL, timeoutMs: 150 });
    const err = await rejection(provider.retrieveResponse('resp_slow'));
    expect(err).toMatchObject({ kind: 'transient', status: null, code: 'provider_timeout' });
    expect(events).toMatchObject([{ operation: 'retrieve', status: 'timeout', requestId: null }]);
    expect(events[0]!.durationMs).toBeGreaterThanOrEqual(140);
    expect(events[0]!.durationMs).toBeLessThan(1_500);
  });
});

describe('against a stand-in server', () => {
  type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;
  let server: Server;
  let baseURL: string;
  let handler: Handler;
  const seen: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[] = [];

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': `req_${status}`, ...headers });
    res.end(JSON.stringify(body));
  };
  const apiError = (message: string, type: string, code: string | null) => ({ error: { message, type, param: null, code } });
  const responseObject = (id: string, status = 'in_progress') => ({
    id,
    object: 'response',
    status,
    output: [{ type: 'message', id: 'msg_1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Hi', annotations: [] }] }],
  });

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => {
        body += c;
      });
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        handler(req, res, body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterEach(() => {
    seen.length = 0;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  /** The same answer through the SDK and through the provider: the same ProviderError. */
  async function bothWays(answer: Handler) {
    handler = answer;
    const viaSdk = toProviderError(await new OpenAI({ apiKey: KEY, baseURL, maxRetries: 0 }).responses.retrieve('resp_x').catch((e: unknown) => e), new Date());
    const { provider, events } = recording({ baseURL });
    const ours = await rejection(provider.retrieveResponse('resp_x', { jobId: 'job_1' }));
    expect(classified(ours)).toEqual(classified(viaSdk));
    return { ours, events };
  }

  it('429 with Retry-After: rate_limited, retryAfterMs from the header, the request id, one 429 event', async () => {
    const { ours, events } = await bothWays((_req, res) => json(res, 429, apiError('Slow down.', 'requests', 'rate_limit_exceeded'), { 'retry-after': '3' }));
    expect(ours).toMatchObject({ kind: 'rate_limited', status: 429, code: 'rate_limit_exceeded', retryAfterMs: 3_000, requestId: 'req_429', message: '429 Slow down.' });
    expect(events).toMatchObject([{ operation: 'retrieve', status: 429, requestId: 'req_429', responseId: 'resp_x', jobId: 'job_1' }]);
  });

  it('429 with retry-after-ms: rate_limited, retryAfterMs from it', async () => {
    const { ours } = await bothWays((_req, res) => json(res, 429, apiError('Slow down.', 'tokens', null), { 'retry-after-ms': '1500', 'retry-after': '9' }));
    expect(ours).toMatchObject({ kind: 'rate_limited', code: 'http_429', retryAfterMs: 1_500 });
  });

  it('500 and 503: transient', async () => {
    const { ours, events } = await bothWays((_req, res) => json(res, 500, apiError('The server had an error.', 'server_error', null)));
    expect(ours).toMatchObject({ kind: 'transient', status: 500, code: 'http_500' });
    expect(events).toMatchObject([{ status: 500 }]);
    const { ours: plain } = await bothWays((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('upstream overloaded');
    });
    expect(plain).toMatchObject({ kind: 'transient', status: 503, message: '503 upstream overloaded' });
  });

  it('404: not_found; 400 and 401: rejected', async () => {
    const { ours: missing } = await bothWays((_req, res) => json(res, 404, apiError('No response found.', 'invalid_request_error', null)));
    expect(missing).toMatchObject({ kind: 'not_found', status: 404 });
    const { ours: invalid } = await bothWays((_req, res) => json(res, 400, apiError('Bad input.', 'invalid_request_error', 'invalid_prompt')));
    expect(invalid).toMatchObject({ kind: 'rejected', status: 400, code: 'invalid_prompt' });
    const { ours: denied } = await bothWays((_req, res) => json(res, 401, apiError('Bad key.', 'invalid_request_error', 'invalid_api_key')));
    expect(denied).toMatchObject({ kind: 'rejected', status: 401, code: 'invalid_api_key' });
  });

  it('a server that never answers, or stops halfway through the body: a timeout after timeoutMs', async () => {
    for (const hang of [() => {}, (_req: IncomingMessage, res: ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).write('{"id":')]) {
      handler = hang;
      const { provider, events } = recording({ baseURL, timeoutMs: 200 });
      const err = await rejection(provider.createResponse({ model: 'o3', input: 'x' }, { jobId: 'job_t' }));
      expect(err).toMatchObject({ kind: 'transient', status: null, code: 'provider_timeout', message: 'Request timed out.' });
      expect(events).toMatchObject([{ operation: 'create', status: 'timeout', requestId: null, responseId: null, jobId: 'job_t' }]);
      expect(events[0]!.durationMs).toBeGreaterThanOrEqual(190);
      expect(events[0]!.durationMs).toBeLessThan(2_000);
    }
  });

  it('a refused connection: transient provider_unreachable, a network_error event', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const { provider, events } = recording({ baseURL: `http://127.0.0.1:${port}/v1` });
    const err = await rejection(provider.cancelResponse('resp_x', { jobId: 'job_n' }));
    expect(err).toMatchObject({ kind: 'transient', status: null, code: 'provider_unreachable', message: 'Connection error.' });
    expect(events).toMatchObject([{ operation: 'cancel', status: 'network_error', requestId: null, responseId: 'resp_x', jobId: 'job_n' }]);
  });

  it("sends the SDK's headers and body, and reads the poll hint", async () => {
    handler = (req, res) => json(res, 200, responseObject('resp_h'), req.method === 'GET' ? { 'openai-poll-after-ms': '1500' } : {});
    const previous = { org: process.env.OPENAI_ORG_ID, project: process.env.OPENAI_PROJECT_ID };
    process.env.OPENAI_ORG_ID = 'org-test';
    process.env.OPENAI_PROJECT_ID = 'proj_test';
    try {
      const sdk = new OpenAI({ apiKey: KEY, baseURL, maxRetries: 0 });
      await sdk.responses.create({ model: 'o3', input: 'x', background: true, store: true });
      await sdk.responses.retrieve('resp_h');
      await sdk.responses.cancel('resp_h');
      const { provider } = recording({ baseURL });
      const created = await provider.createResponse({ model: 'o3', input: 'x' });
      const retrieved = await provider.retrieveResponse('resp_h');
      const cancelled = await provider.cancelResponse('resp_h');
      expect(created.pollAfterMs).toBeUndefined();
      expect(retrieved.pollAfterMs).toBe(1_500);
      // As the SDK: create and retrieve add output_text, cancel does not.
      expect(created.response.output_text).toBe('Hi');
      expect(retrieved.response.output_text).toBe('Hi');
      expect(cancelled.response).not.toHaveProperty('output_text');
    } finally {
      for (const [name, value] of [
        ['OPENAI_ORG_ID', previous.org],
        ['OPENAI_PROJECT_ID', previous.project],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    // fetch's own headers (accept-encoding, sec-fetch-mode…) aside, the requests are the SDK's.
    const compared = [
      'authorization',
      'user-agent',
      'accept',
      'content-type',
      'content-length',
      'openai-organization',
      'openai-project',
      'x-stainless-retry-count',
      'x-stainless-lang',
    ];
    const pick = (h: IncomingHttpHeaders) => Object.fromEntries(compared.filter((n) => h[n] !== undefined).map((n) => [n, h[n]]));
    const [sdkCreate, sdkRetrieve, sdkCancel, create, retrieve, cancel] = seen;
    expect(pick(create!.headers)).toMatchObject({
      authorization: `Bearer ${KEY}`,
      'user-agent': `OpenAI/JS ${VERSION}`,
      'content-type': 'application/json',
      'openai-organization': 'org-test',
      'openai-project': 'proj_test',
    });
    expect([create, retrieve, cancel].map((r) => ({ method: r!.method, url: r!.url, headers: pick(r!.headers), body: r!.body && JSON.parse(r!.body) }))).toEqual(
      [sdkCreate, sdkRetrieve, sdkCancel].map((r) => ({ method: r!.method, url: r!.url, headers: pick(r!.headers), body: r!.body && JSON.parse(r!.body) })),
    );
    expect(cancel!.headers['transfer-encoding']).toBeUndefined();
  });

  it('retries reads on the SDK rule, never a create; one event per operation', async () => {
    let failures = 0;
    handler = (_req, res) => {
      if (failures-- > 0) json(res, 503, apiError('Busy.', 'server_error', null), { 'retry-after-ms': '10' });
      else json(res, 200, responseObject('resp_r'));
    };
    const { provider, events } = recording({ baseURL, readRetries: 2 });
    failures = 2;
    await expect(provider.retrieveResponse('resp_r')).resolves.toMatchObject({ response: { id: 'resp_r' } });
    expect(seen.map((r) => r.headers['x-stainless-retry-count'])).toEqual(['0', '1', '2']);
    failures = 1;
    await expect(provider.cancelResponse('resp_r')).resolves.toMatchObject({ response: { id: 'resp_r' } });
    failures = 1;
    await expect(provider.createResponse({ model: 'o3', input: 'x' })).rejects.toMatchObject({ kind: 'transient', status: 503 });
    expect(seen.map((r) => `${r.method} ${r.url}`)).toEqual([
      ...Array(3).fill('GET /v1/responses/resp_r'),
      ...Array(2).fill('POST /v1/responses/resp_r/cancel'),
      'POST /v1/responses',
    ]);
    expect(events.map((e) => `${e.operation} ${e.status}`)).toEqual(['retrieve 200', 'cancel 200', 'create 503']);

    // The server's x-should-retry: false wins over the status; a 400 is never retried.
    seen.length = 0;
    handler = (_req, res) => json(res, 500, apiError('No.', 'server_error', null), { 'x-should-retry': 'false' });
    await expect(provider.retrieveResponse('resp_r')).rejects.toMatchObject({ kind: 'transient' });
    handler = (_req, res) => json(res, 400, apiError('Bad.', 'invalid_request_error', null));
    await expect(provider.retrieveResponse('resp_r')).rejects.toMatchObject({ kind: 'rejected' });
    expect(seen).toHaveLength(2);
  });

  it('a timed-out read is retried too', async () => {
    let hangs = 1;
    handler = (_req, res) => {
      if (hangs-- <= 0) json(res, 200, responseObject('resp_t'));
    };
    const { provider, events } = recording({ baseURL, readRetries: 1, timeoutMs: 100 });
    await expect(provider.retrieveResponse('resp_t')).resolves.toMatchObject({ response: { id: 'resp_t' } });
    expect(seen).toHaveLength(2);
    expect(events).toMatchObject([{ operation: 'retrieve', status: 200 }]);
  });
});

describe('over https', () => {
  it('an https base URL (as the default https://api.openai.com/v1) is spoken to over TLS', async () => {
    // A plain TCP listener records the first bytes it is sent: a TLS ClientHello, not an HTTP request line.
    let first: Buffer | undefined;
    const server = createNetServer((socket) =>
      socket.once('data', (data) => {
        first = data;
        socket.destroy();
      }),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { provider, events } = recording({ baseURL: `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1` });
    try {
      await expect(provider.retrieveResponse('resp_tls')).rejects.toMatchObject({ kind: 'transient', code: 'provider_unreachable' });
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
    // Record type 22 (handshake), protocol major version 3, handshake type 1 (ClientHello).
    expect([first?.[0], first?.[1], first?.[5]]).toEqual([0x16, 0x03, 0x01]);
    expect(events).toMatchObject([{ operation: 'retrieve', status: 'network_error' }]);
  });
});
