/**
 * A delivery cancelled while its attempt is in flight stays cancelled. The receiver holds the
 * request open; meanwhile the tenant deletes (or disables) the endpoint through the API; then the
 * receiver answers. Whatever it answers, the late attempt is logged but can neither revive the
 * delivery (200) nor schedule a retry (500).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAddressPolicy } from '@longhaul/callbacks';
import { type Stack, jobBody, startStack } from './harness.ts';
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

describe('an endpoint removed while an attempt is in flight', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Scaled schedule: a failed first attempt would be retried 5 ms later. The attempt timeout is
    // far longer than the receiver holds the request.
    stack = await startStack({
      worker: {
        callbacks: { concurrency: 10, schedule: { timeScale: 0.001, jitter: 0 }, timeoutMs: 30_000, disableAfterMs: 86_400_000, policy: createAddressPolicy(['127.0.0.0/8']) },
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it.each([
    { removal: 'delete', answer: 200 },
    { removal: 'delete', answer: 500 },
    { removal: 'disable', answer: 200 },
    { removal: 'disable', answer: 500 },
  ] as const)('$removal, then the receiver answers $answer: the delivery stays cancelled and is not retried', async ({ removal, answer }) => {
    let release!: (status: number) => void;
    const held = new Promise<number>((resolve) => (release = resolve));
    // The first request is held until released; anything after it (a retry) is answered at once.
    const rx = await startReceiver((r) => (rx.received.indexOf(r) === 0 ? held : 200));
    try {
      const created = await stack.api('POST', '/v1/webhook-endpoints', { url: rx.url });
      expect(created.status).toBe(201);
      const endpointId = created.body.id;
      const job = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
      expect(job.status).toBe(202);
      await until('the first attempt in flight', async () => rx.received.length === 1);

      const listed = await stack.api('GET', `/v1/deliveries?endpoint_id=${endpointId}`);
      expect(listed.body.data).toHaveLength(1);
      const deliveryId = listed.body.data[0].id;
      expect(listed.body.data[0]).toMatchObject({ status: 'pending', attempts: 0 });

      const removed =
        removal === 'delete'
          ? await stack.api('DELETE', `/v1/webhook-endpoints/${endpointId}`)
          : await stack.api('PATCH', `/v1/webhook-endpoints/${endpointId}`, { enabled: false });
      expect(removed.status).toBe(200);
      const cancelled = await stack.api('GET', `/v1/deliveries/${deliveryId}`);
      expect(cancelled.body).toMatchObject({ status: 'cancelled', next_attempt_at: null, last_error: removal === 'delete' ? 'endpoint deleted' : 'endpoint disabled' });

      release(answer);
      const after = await until('the in-flight attempt logged', async () => {
        const r = await stack.api('GET', `/v1/deliveries/${deliveryId}`);
        return r.body.attempt_log.length > 0 ? r.body : null;
      });
      expect(after).toMatchObject({ status: 'cancelled', next_attempt_at: null, finished_at: cancelled.body.finished_at, last_error: cancelled.body.last_error });
      expect(after.attempt_log).toEqual([expect.objectContaining({ attempt: 1, status_code: answer, next_attempt_at: null })]);

      // Not retried afterwards: a retry would have been due 5 ms after the failed attempt.
      await new Promise((r) => setTimeout(r, 500));
      expect(rx.received).toHaveLength(1);
      const later = await stack.api('GET', `/v1/deliveries/${deliveryId}`);
      expect(later.body).toMatchObject({ status: 'cancelled', next_attempt_at: null });
      expect(later.body.attempt_log).toHaveLength(1);
      const pending = await stack.api('GET', `/v1/deliveries?status=pending&endpoint_id=${endpointId}`);
      expect(pending.body.data).toEqual([]);
    } finally {
      release(200);
      await rx.close();
    }
  });
});
