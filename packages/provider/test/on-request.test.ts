import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProviderRequestEvent, ProviderError, createProvider } from '../src/index.ts';

let server: Server;
let baseURL: string;

beforeAll(async () => {
  // A stand-in answering a retrieve with 200, anything else with 404.
  server = createServer((req, res) => {
    const ok = req.method === 'GET' && req.url === '/v1/responses/resp_ok';
    res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json', 'x-request-id': 'req_test_1' });
    res.end(
      JSON.stringify(
        ok ? { id: 'resp_ok', object: 'response', status: 'in_progress', output: [] } : { error: { message: 'No response found', type: 'invalid_request_error', code: null } },
      ),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

describe('onRequest', () => {
  it('reports every operation with its status, latency, request id and job', async () => {
    const events: ProviderRequestEvent[] = [];
    const provider = createProvider({ apiKey: 'sk-test', baseURL, readRetries: 0, onRequest: (e) => events.push(e) });
    await provider.retrieveResponse('resp_ok', { jobId: 'job_1' });
    await expect(provider.cancelResponse('resp_missing', { jobId: 'job_2' })).rejects.toBeInstanceOf(ProviderError);
    expect(events).toMatchObject([
      { operation: 'retrieve', status: 200, requestId: 'req_test_1', responseId: 'resp_ok', jobId: 'job_1' },
      { operation: 'cancel', status: 404, requestId: 'req_test_1', responseId: 'resp_missing', jobId: 'job_2' },
    ]);
    for (const e of events) {
      expect(e.durationMs).toBeGreaterThanOrEqual(0);
      expect(e.at).toBeInstanceOf(Date);
    }
  });

  it('reports an unanswered request as network_error, and a throwing hook never breaks the call', async () => {
    const events: ProviderRequestEvent[] = [];
    const dead = createProvider({ apiKey: 'sk-test', baseURL: 'http://127.0.0.1:9/v1', readRetries: 0, onRequest: (e) => events.push(e) });
    await expect(dead.retrieveResponse('resp_x')).rejects.toMatchObject({ kind: 'transient' });
    expect(events).toMatchObject([{ operation: 'retrieve', status: 'network_error', requestId: null, jobId: null }]);

    const throwing = createProvider({
      apiKey: 'sk-test',
      baseURL,
      readRetries: 0,
      onRequest: () => {
        throw new Error('boom');
      },
    });
    await expect(throwing.retrieveResponse('resp_ok')).resolves.toMatchObject({ response: { id: 'resp_ok' } });
  });
});
