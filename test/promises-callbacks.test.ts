/**
 * What the README promises about callback delivery, measured from the receivers' own logs (what
 * arrived, when) and the API's delivery log:
 * - redirects are not followed: a 3xx is a failed attempt and its Location is never requested;
 * - an attempt that gets no answer within the timeout is recorded as timed out and retried;
 * - a 429/503 `Retry-After` is waited at least, end to end;
 * - a deleted or disabled endpoint's deliveries waiting for a retry are cancelled and nothing more
 *   is sent to it (test/delivery-race.test.ts covers an attempt in flight at that moment);
 * - callback and endpoint signing secrets never appear in a log line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { createAddressPolicy } from '@longhaul/callbacks';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { startReceiver } from './receiver.ts';

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const loopback = createAddressPolicy(['127.0.0.0/8']);
const TIMEOUT_MS = 500;

async function createEndpoint(stack: Stack, url: string, extra: Record<string, unknown> = {}) {
  const res = await stack.api('POST', '/v1/webhook-endpoints', { url, ...extra });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; secret: string };
}

/** Run a job to its end and return its delivery to `endpointId` once the delivery is no longer pending. */
async function deliveryOf(stack: Stack, endpointId: string, settled: (d: any) => boolean = (d) => d.status !== 'pending') {
  const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
  await stack.waitForJob(job.id, isTerminalJob);
  const listed = await until('the delivery settled', async () => {
    const r = await stack.api('GET', `/v1/deliveries?endpoint_id=${endpointId}&job_id=${job.id}`);
    return r.body.data[0] && settled(r.body.data[0]) ? r.body.data[0] : null;
  });
  return (await stack.api('GET', `/v1/deliveries/${listed.id}`)).body;
}

describe('delivery attempts', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Three attempts, 10 ms apart unless the receiver asks for more; a short attempt timeout.
    stack = await startStack({
      worker: { callbacks: { concurrency: 10, schedule: { scheduleMs: [0, 10, 10], jitter: 0 }, timeoutMs: TIMEOUT_MS, disableAfterMs: 86_400_000, policy: loopback } },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it.each([301, 302, 303, 307, 308])('a %i redirect is a failed attempt; its Location is never requested', async (status) => {
    const target = await startReceiver();
    const redirecting = await startReceiver(() => ({ status, headers: { location: target.url } }));
    try {
      const ep = await createEndpoint(stack, redirecting.url);
      const delivery = await deliveryOf(stack, ep.id);
      expect(delivery).toMatchObject({ status: 'failed', attempts: 3, last_status_code: status });
      expect(delivery.attempt_log).toEqual([1, 2, 3].map((attempt) => expect.objectContaining({ attempt, status_code: status, error: `redirect refused (status ${status})` })));
      // The tenant is not told where it pointed.
      expect(JSON.stringify(delivery)).not.toContain(target.url);
      expect(redirecting.received).toHaveLength(3);
      expect(target.received).toHaveLength(0);
      expect(target.connections).toBe(0);
      await stack.api('DELETE', `/v1/webhook-endpoints/${ep.id}`);
    } finally {
      await redirecting.close();
      await target.close();
    }
  });

  it('an attempt with no answer within the timeout is recorded as timed out, then retried', async () => {
    let calls = 0;
    const rx = await startReceiver(() => (calls++ === 0 ? 'hang' : 200));
    try {
      const ep = await createEndpoint(stack, rx.url);
      const delivery = await deliveryOf(stack, ep.id);
      expect(delivery).toMatchObject({ status: 'succeeded', attempts: 2 });
      const [first, second] = delivery.attempt_log;
      expect(first).toMatchObject({ attempt: 1, status_code: null, error: `no answer within ${TIMEOUT_MS} ms`, next_attempt_at: expect.any(Number) });
      expect(first.latency_ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
      expect(second).toMatchObject({ attempt: 2, status_code: 200, error: null });
      // The receiver saw the retry only once the first attempt had been given up.
      expect(rx.received).toHaveLength(2);
      expect(rx.received[1]!.at - rx.received[0]!.at).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
      expect(rx.received[1]!.headers['webhook-id']).toBe(rx.received[0]!.headers['webhook-id']);
      await stack.api('DELETE', `/v1/webhook-endpoints/${ep.id}`);
    } finally {
      await rx.close();
    }
  });

  it.each([
    ['429', 429, (): string => '2', 2_000],
    ['503', 503, (): string => '2', 2_000],
    // An HTTP date 3 s ahead (whole seconds): at least 2 s from now.
    ['503 with an HTTP date', 503, (): string => new Date(Date.now() + 3_000).toUTCString(), 2_000],
  ] as const)('%s Retry-After is waited at least before the next attempt', async (_name, status, retryAfter, atLeastMs) => {
    // Each message's first attempt is refused (answered per webhook-id, not per request, so the
    // answer cannot depend on what else reaches the receiver).
    const seen = new Set<string>();
    const rx = await startReceiver((req) => {
      const id = String(req.headers['webhook-id']);
      if (seen.has(id)) return 200;
      seen.add(id);
      return { status, headers: { 'retry-after': retryAfter() } };
    });
    try {
      const ep = await createEndpoint(stack, rx.url);
      const delivery = await deliveryOf(stack, ep.id);
      const log = JSON.stringify({ delivery, received: rx.received.map((r) => ({ id: r.headers['webhook-id'], at: r.at })) });
      expect(delivery, log).toMatchObject({ status: 'succeeded', attempts: 2 });
      expect(delivery.attempt_log[0]).toMatchObject({ status_code: status, next_attempt_at: expect.any(Number) });
      // Measured by the receiver: without Retry-After the schedule would retry after 10 ms.
      expect(rx.received, log).toHaveLength(2);
      expect(rx.received[1]!.headers['webhook-id']).toBe(rx.received[0]!.headers['webhook-id']);
      expect(rx.received[1]!.at - rx.received[0]!.at).toBeGreaterThanOrEqual(atLeastMs);
      await stack.api('DELETE', `/v1/webhook-endpoints/${ep.id}`);
    } finally {
      await rx.close();
    }
  });
});

describe('an endpoint removed while its delivery waits for a retry', () => {
  let stack: Stack;
  beforeAll(async () => {
    // The retry comes 1.5 s after the first failed attempt: time to remove the endpoint in between.
    stack = await startStack({
      worker: { callbacks: { concurrency: 10, schedule: { scheduleMs: [0, 1_500, 1_500], jitter: 0 }, timeoutMs: 5_000, disableAfterMs: 86_400_000, policy: loopback } },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it.each(['delete', 'disable'] as const)('%s: the waiting delivery is cancelled and the endpoint receives nothing more', async (removal) => {
    // Both endpoints fail their first attempt; the control endpoint, left alone, shows when the retry was due.
    const removed = await startReceiver(() => 500);
    let controlCalls = 0;
    const control = await startReceiver(() => (controlCalls++ === 0 ? 500 : 200));
    try {
      const gone = await createEndpoint(stack, removed.url);
      const kept = await createEndpoint(stack, control.url);
      const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
      const waiting = await until('both deliveries waiting for their retry', async () => {
        const r = await stack.api('GET', `/v1/deliveries?job_id=${job.id}`);
        const ds = r.body.data as any[];
        return ds.length === 2 && ds.every((d) => d.status === 'pending' && d.attempts === 1) ? ds : null;
      });
      const deliveryId = waiting.find((d) => d.endpoint_id === gone.id).id;
      expect(waiting.find((d) => d.endpoint_id === gone.id).next_attempt_at).not.toBeNull();

      const res =
        removal === 'delete' ? await stack.api('DELETE', `/v1/webhook-endpoints/${gone.id}`) : await stack.api('PATCH', `/v1/webhook-endpoints/${gone.id}`, { enabled: false });
      expect(res.status).toBe(200);
      const cancelled = (await stack.api('GET', `/v1/deliveries/${deliveryId}`)).body;
      expect(cancelled).toMatchObject({ status: 'cancelled', next_attempt_at: null, last_error: removal === 'delete' ? 'endpoint deleted' : 'endpoint disabled' });

      // The retry time passes: the control endpoint gets its retry, and the removed one's
      // scheduled work item has run (or is gone) without sending anything.
      await until('the control retry and the cancelled delivery processed', async () => {
        if (control.received.length < 2) return false;
        const state = await stack.queues.get('deliver').getJobState(deliveryId);
        return !['delayed', 'waiting', 'active', 'prioritized'].includes(state);
      });
      expect(removed.received).toHaveLength(1);
      const after = (await stack.api('GET', `/v1/deliveries/${deliveryId}`)).body;
      expect(after).toMatchObject({ status: 'cancelled', attempts: 1, next_attempt_at: null });
      expect(after.attempt_log).toHaveLength(1);
      expect((await stack.api('GET', `/v1/deliveries?job_id=${job.id}&status=succeeded`)).body.data.map((d: any) => d.endpoint_id)).toEqual([kept.id]);
      await stack.api('DELETE', `/v1/webhook-endpoints/${kept.id}`);
      if (removal === 'disable') await stack.api('DELETE', `/v1/webhook-endpoints/${gone.id}`);
    } finally {
      await removed.close();
      await control.close();
    }
  });
});

describe('secrets in the logs', () => {
  let stack: Stack;
  const lines: string[] = [];
  beforeAll(async () => {
    stack = await startStack({
      logLevel: 'trace',
      logDestination: { write: (chunk: string) => void lines.push(...chunk.split('\n').filter(Boolean)) },
      worker: { callbacks: { concurrency: 10, schedule: { scheduleMs: [0, 10, 10], jitter: 0 }, timeoutMs: TIMEOUT_MS, disableAfterMs: 86_400_000, policy: loopback } },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('never contain a callback or endpoint signing secret, through creation, rotation, signing, retries, redirects and replays', async () => {
    const secrets: string[] = [];
    // A receiver that fails once then accepts, and one that redirects.
    let flakyCalls = 0;
    const flaky = await startReceiver(() => (flakyCalls++ === 0 ? 500 : 200));
    const redirecting = await startReceiver(() => ({ status: 302, headers: { location: 'http://127.0.0.1:9/elsewhere' } }));
    const own = await startReceiver();
    try {
      const ep = await createEndpoint(stack, flaky.url, { description: 'flaky' });
      secrets.push(ep.secret);
      const rotated = await stack.api('POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`, { overlap_seconds: 3600 });
      expect(rotated.status).toBe(200);
      secrets.push(rotated.body.secret);
      const redirect = await createEndpoint(stack, redirecting.url);
      secrets.push(redirect.secret);
      const { body: callbackSecret } = await stack.api('GET', '/v1/callback-secret');
      secrets.push(callbackSecret.secret);

      // One job: the flaky endpoint fails then succeeds (signed with both secrets), the redirecting
      // one fails three times, the job's own callback_url is signed with the tenant's secret.
      const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({ callback_url: own.url }, 0));
      await stack.waitForJob(job.id, isTerminalJob);
      const deliveries = await until('every delivery settled', async () => {
        const r = await stack.api('GET', `/v1/deliveries?job_id=${job.id}`);
        return r.body.data.length === 3 && r.body.data.every((d: any) => d.status !== 'pending') ? r.body.data : null;
      });
      const dead = deliveries.find((d: any) => d.endpoint_id === redirect.id);
      expect(dead.status).toBe('failed');
      // A replay over the API, a recovery, another rotation, an update and a deletion.
      expect((await stack.api('POST', `/v1/deliveries/${dead.id}/retry`)).status).toBe(202);
      expect((await stack.api('POST', `/v1/webhook-endpoints/${redirect.id}/recover`, { since: 0 })).status).toBe(202);
      const again = await stack.api('POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`, { overlap_seconds: 0 });
      secrets.push(again.body.secret);
      expect((await stack.api('PATCH', `/v1/webhook-endpoints/${ep.id}`, { description: 'renamed' })).status).toBe(200);
      await until('the replayed delivery failed again', async () => {
        const d = (await stack.api('GET', `/v1/deliveries/${dead.id}`)).body;
        return d.status === 'failed' && d.attempt_log.length >= 6 ? d : null;
      });
      expect((await stack.api('DELETE', `/v1/webhook-endpoints/${redirect.id}`)).status).toBe(200);
      // Every receiver verifies what it got.
      expect(() => new Webhook(ep.secret).verify(flaky.received[1]!.body, flaky.received[1]!.headers as Record<string, string>)).not.toThrow();
      expect(() => new Webhook(callbackSecret.secret).verify(own.received[0]!.body, own.received[0]!.headers as Record<string, string>)).not.toThrow();

      // The request line of the last call is the last thing written about this test.
      await until('the last request logged', async () =>
        lines.some((l) => l.includes('request completed') && l.includes(`/v1/webhook-endpoints/${redirect.id}`) && l.includes('DELETE')),
      );
      const all = lines.join('\n');
      // The paths that matter ran with logging on.
      for (const msg of ['webhook endpoint created', 'callback delivered', 'callback attempt failed, will retry', 'callback delivery failed for good']) {
        expect(all, msg).toContain(msg);
      }
      expect(secrets).toHaveLength(5);
      expect(all).not.toContain('whsec_');
      for (const secret of secrets) {
        expect(all.includes(secret)).toBe(false);
        expect(all.includes(secret.slice('whsec_'.length)), 'the key bytes of a secret appear in the logs').toBe(false);
      }
    } finally {
      await flaky.close();
      await redirecting.close();
      await own.close();
    }
  });
});
