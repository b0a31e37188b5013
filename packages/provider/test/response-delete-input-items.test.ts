/**
 * deleteResponse and listInputItems against the simulator over HTTP: the answers, one onRequest
 * event per call carrying the response id, and a 404 classified as `not_found`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSimServer, type ListeningSim } from '@longhaul/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProvider, ProviderError, type ProviderRequestEvent } from '../src/index.ts';

let sim: ListeningSim;
let baseURL: string;

beforeAll(async () => {
  sim = await createSimServer({ time_scale: 0.01 }).listen(0);
  baseURL = `${sim.url}/v1`;
});
afterAll(async () => {
  await sim.close();
});

function recording() {
  const events: ProviderRequestEvent[] = [];
  const provider = createProvider({ apiKey: 'sk-test', baseURL, readRetries: 0, onRequest: (e) => events.push(e) });
  return { provider, events };
}

describe('deleteResponse', () => {
  it('deletes a stored response, which is then not_found for retrieve and delete', async () => {
    const { provider, events } = recording();
    const { response } = await provider.createResponse({ model: 'gpt-5', input: 'to be deleted', metadata: { sim_duration_ms: '100000' } });

    await expect(provider.deleteResponse(response.id, { jobId: 'job_1' })).resolves.toEqual({ id: response.id, deleted: true });
    const retrieve = await provider.retrieveResponse(response.id).catch((e: unknown) => e);
    expect(retrieve).toBeInstanceOf(ProviderError);
    expect(retrieve).toMatchObject({ kind: 'not_found', status: 404 });
    const again = await provider.deleteResponse(response.id, { jobId: 'job_1' }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(ProviderError);
    expect(again).toMatchObject({ kind: 'not_found', status: 404 });

    expect(events.filter((e) => e.operation === 'delete')).toMatchObject([
      { status: 200, responseId: response.id, jobId: 'job_1', requestId: expect.stringMatching(/^req_/) },
      { status: 404, responseId: response.id, jobId: 'job_1', requestId: expect.stringMatching(/^req_/) },
    ]);
  });

  it('takes a 204 without a body as the deletion', async () => {
    const server: Server = createServer((_req, res) => res.writeHead(204).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const provider = createProvider({ apiKey: 'sk-test', baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, readRetries: 0 });
      await expect(provider.deleteResponse('resp_x')).resolves.toEqual({ id: 'resp_x', deleted: true });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('listInputItems', () => {
  it('answers one page of the response’s own input items, as the provider lists them', async () => {
    const { provider, events } = recording();
    const input = ['a', 'b', 'c'].map((text) => ({ role: 'user', content: text }));
    const { response } = await provider.createResponse({ model: 'gpt-5', input, metadata: { sim_duration_ms: '100000' } });

    const first = await provider.listInputItems(response.id, { limit: 2, order: 'asc' }, { jobId: 'job_2' });
    expect(first).toMatchObject({ object: 'list', has_more: true });
    const firstData = first['data'] as { id: string; type: string; role: string; content: { text: string }[] }[];
    expect(firstData.map((item) => [item.type, item.role, item.content[0]?.text])).toEqual([
      ['message', 'user', 'a'],
      ['message', 'user', 'b'],
    ]);
    expect(first['last_id']).toBe(firstData[1]?.id);

    const rest = await provider.listInputItems(response.id, { limit: 2, order: 'asc', after: first['last_id'] as string });
    expect(rest).toMatchObject({ has_more: false, data: [{ content: [{ text: 'c' }] }] });
    const newestFirst = await provider.listInputItems(response.id, {});
    expect((newestFirst['data'] as { id: string }[]).map((item) => item.id)).toEqual([...(rest['data'] as { id: string }[]), ...firstData.reverse()].map((item) => item.id));

    expect(events.filter((e) => e.operation === 'input_items')[0]).toMatchObject({ status: 200, responseId: response.id, jobId: 'job_2' });
  });

  it('classifies an unknown response as not_found and a bad query as rejected', async () => {
    const { provider, events } = recording();
    const missing = await provider.listInputItems('resp_missing', {}).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ProviderError);
    expect(missing).toMatchObject({ kind: 'not_found', status: 404 });
    expect(events).toMatchObject([{ operation: 'input_items', status: 404, responseId: 'resp_missing' }]);

    const { response } = await provider.createResponse({ model: 'gpt-5', input: 'x' });
    const bad = await provider.listInputItems(response.id, { limit: 1000 }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ kind: 'rejected', status: 400 });
  });
});
