/**
 * Tenant isolation of the routes test/api-contract.test.ts does not walk: a job's event stream,
 * the delivery log and its replay, and every /v1/webhook-endpoints/{id} route. Tenant B, naming
 * tenant A's ids, gets the same 404 as for an id that does not exist, sees none of A's objects in
 * its lists, and A's objects are unchanged afterwards (A's own calls still work on them, and
 * A's endpoint still signs with A's secret alone).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { createAddressPolicy } from '@longhaul/callbacks';
import { createTenant } from '@longhaul/db';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';
import { readSse } from './sse.ts';

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let stack: Stack;
let receiver: Receiver;
let healthy = false;
let asB: (method: string, path: string, body?: unknown, headers?: Record<string, string>) => ReturnType<Stack['api']>;
let bKey: string;
/** Tenant A's objects. */
let endpoint: { id: string; secret: string };
let finishedJob: { id: string };
let runningJob: { id: string };
let delivery: { id: string };

beforeAll(async () => {
  // One attempt per delivery: A's delivery is a dead letter at once (retryable by A).
  stack = await startStack({
    worker: {
      callbacks: { concurrency: 5, schedule: { scheduleMs: [0], jitter: 0 }, timeoutMs: 2_000, disableAfterMs: 86_400_000, policy: createAddressPolicy(['127.0.0.0/8']) },
    },
  });
  receiver = await startReceiver(() => (healthy ? 200 : 500));
  const b = await createTenant(stack.db.db, 'tenant b');
  bKey = b.apiKey;
  asB = (method, path, body, headers = {}) => stack.api(method, path, body, { authorization: `Bearer ${b.apiKey}`, ...headers });

  endpoint = (await stack.api('POST', '/v1/webhook-endpoints', { url: receiver.url, description: 'tenant A', event_types: ['job.completed'] })).body;
  finishedJob = (await stack.api('POST', '/v1/jobs', jobBody({}, 0))).body;
  await stack.waitForJob(finishedJob.id, isTerminalJob);
  delivery = await until('A delivery failed', async () => {
    const r = await stack.api('GET', `/v1/deliveries?job_id=${finishedJob.id}`);
    return r.body.data[0]?.status === 'failed' ? r.body.data[0] : null;
  });
  // About 12 s at the stack's time scale: still running while B tries its stream.
  runningJob = (await stack.api('POST', '/v1/jobs', jobBody({}, 1_200_000))).body;
  await stack.waitForJob(runningJob.id, (j) => j.status === 'queued' || j.status === 'in_progress');
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
});

/** The 404 an unknown id gets: the API's error shape, `not_found_error`, naming the id. */
function expectNotFound(res: Awaited<ReturnType<Stack['api']>>, what: string): void {
  expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(404);
  expect(res.body.error, what).toMatchObject({ type: 'not_found_error', param: 'id' });
}

describe("another tenant's job stream", () => {
  it('is a 404 for a running and a finished job, with or without a cursor; the owner still watches it', async () => {
    const headers = { authorization: `Bearer ${bKey}` };
    for (const id of [runningJob.id, finishedJob.id]) {
      for (const extra of [{}, { 'last-event-id': '-1.1' }] as Record<string, string>[]) {
        const res = await readSse(`${stack.apiUrl}/v1/jobs/${id}/stream`, { headers: { ...headers, ...extra }, timeoutMs: 5_000 });
        expect(res.status, `${id} ${JSON.stringify(extra)}`).toBe(404);
        expect(res.events).toEqual([]);
        expect(JSON.parse(res.body!).error).toMatchObject({ type: 'not_found_error', param: 'id' });
      }
    }
    const own = await readSse(`${stack.apiUrl}/v1/jobs/${runningJob.id}/stream`, { headers: { authorization: `Bearer ${stack.apiKey}` }, maxEvents: 1 });
    expect(own.status).toBe(200);
    // Its first event is the job's state when the owner joined (a job nobody watched keeps no events).
    expect(own.events[0]!.event).toMatch(/^job\.(queued|in_progress)$/);
  });
});

describe("another tenant's deliveries", () => {
  it('are not listed, not readable and not retryable; the delivery is unchanged', async () => {
    for (const query of ['', '?status=failed', `?job_id=${finishedJob.id}`, `?endpoint_id=${endpoint.id}`]) {
      const res = await asB('GET', `/v1/deliveries${query}`);
      expect(res.status, query).toBe(200);
      expect(res.body.data, query).toEqual([]);
    }
    expectNotFound(await asB('GET', `/v1/deliveries/${delivery.id}`), 'GET delivery');
    expectNotFound(await asB('POST', `/v1/deliveries/${delivery.id}/retry`), 'retry delivery');

    const after = (await stack.api('GET', `/v1/deliveries/${delivery.id}`)).body;
    expect(after).toMatchObject({ id: delivery.id, status: 'failed', attempts: 1, next_attempt_at: null });
    expect(after.attempt_log).toHaveLength(1);
    expect(receiver.received).toHaveLength(1);
  });
});

describe("another tenant's webhook endpoint", () => {
  it('is not listed and every route on its id is a 404; the endpoint, its secret and its deliveries are unchanged', async () => {
    const before = (await stack.api('GET', `/v1/webhook-endpoints/${endpoint.id}`)).body;
    expect((await asB('GET', '/v1/webhook-endpoints')).body.data).toEqual([]);
    const b = await startReceiver();
    try {
      const routes: Array<[string, string, unknown]> = [
        ['GET', '', undefined],
        ['PATCH', '', { url: b.url, enabled: false, description: 'hijacked', event_types: ['job.failed'], thin_payload: true }],
        ['POST', '/rotate-secret', { overlap_seconds: 0 }],
        ['POST', '/recover', { since: 0 }],
        ['DELETE', '', undefined],
      ];
      for (const [method, suffix, body] of routes) {
        const res = await asB(method, `/v1/webhook-endpoints/${endpoint.id}${suffix}`, body);
        expectNotFound(res, `${method} ${suffix}`);
        expect(JSON.stringify(res.body), `${method} ${suffix}`).not.toContain('whsec_');
      }
      // Unchanged for A: same fields, same updated_at, still enabled and live.
      expect((await stack.api('GET', `/v1/webhook-endpoints/${endpoint.id}`)).body).toEqual(before);
      expect((await stack.api('GET', '/v1/webhook-endpoints')).body.data.map((e: any) => e.id)).toEqual([endpoint.id]);
      // B's recover queued nothing: A's dead letter is still as it was.
      expect((await stack.api('GET', `/v1/deliveries/${delivery.id}`)).body).toMatchObject({ status: 'failed', attempts: 1 });

      // A's own replay goes to A's URL, signed with A's secret alone (B's rotation did not happen).
      healthy = true;
      expect((await stack.api('POST', `/v1/deliveries/${delivery.id}/retry`)).status).toBe(202);
      await until('the replay delivered', async () => (await stack.api('GET', `/v1/deliveries/${delivery.id}`)).body.status === 'succeeded');
      const replayed = receiver.received[1]!;
      expect(String(replayed.headers['webhook-signature']).split(' ')).toHaveLength(1);
      const event = new Webhook(endpoint.secret).verify(replayed.body, replayed.headers as Record<string, string>) as any;
      expect(event).toMatchObject({ type: 'job.completed', data: { id: finishedJob.id, status: 'completed' } });
      expect(b.received).toHaveLength(0);
    } finally {
      await b.close();
    }
  });

  it("B's own callback secret is not A's", async () => {
    const a = (await stack.api('GET', '/v1/callback-secret')).body.secret;
    const b = (await asB('GET', '/v1/callback-secret')).body.secret;
    expect(a).toMatch(/^whsec_/);
    expect(b).toMatch(/^whsec_/);
    expect(b).not.toBe(a);
  });
});
