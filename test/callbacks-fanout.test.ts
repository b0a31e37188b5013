/**
 * One event fanned out to many endpoints at once, as the deliver processor batches it (the reads
 * and the answers of concurrent deliveries share statements, an event's body is serialized once):
 * every endpoint still receives every event once, signed with its own secret, in its own payload
 * form (thin or full), and every delivery is recorded as its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';

const ENDPOINTS = 8;
const JOBS = 30;

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('fan-out of each event to many endpoints', () => {
  let stack: Stack;
  let receivers: Receiver[] = [];
  beforeAll(async () => {
    stack = await startStack();
    receivers = await Promise.all(Array.from({ length: ENDPOINTS + 1 }, () => startReceiver()));
  });
  afterAll(async () => {
    await stack?.stop();
    await Promise.all(receivers.map((r) => r.close()));
  });

  it('delivers every event to every endpoint once, each signed with its own secret and in its own form', async () => {
    const endpoints = [];
    for (let i = 0; i < ENDPOINTS; i++) {
      // One endpoint is named by host name: its connections go through the SSRF lookup hook (and its cache).
      const url = i === 0 ? receivers[i]!.url.replace('127.0.0.1', 'localhost') : receivers[i]!.url;
      const res = await stack.api('POST', '/v1/webhook-endpoints', { url, thin_payload: i % 2 === 1 });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      endpoints.push(res.body);
    }
    const own = receivers[ENDPOINTS]!;
    const submitted = await Promise.all(Array.from({ length: JOBS }, (_, k) => stack.api('POST', '/v1/jobs', jobBody({ input: `fan-out ${k}`, callback_url: own.url }, 50))));
    const jobs = await stack.waitForAll(
      submitted.map((r) => r.body.id),
      isTerminalJob,
      45_000,
    );
    await until('every delivery', async () => receivers.every((r) => new Set(r.received.map((x) => x.headers['webhook-id'])).size >= JOBS));

    const { body: tenantSecret } = await stack.api('GET', '/v1/callback-secret');
    const eventIds = new Set<string>();
    for (const [i, receiver] of receivers.entries()) {
      const secret = i < ENDPOINTS ? endpoints[i].secret : tenantSecret.secret;
      const thin = i < ENDPOINTS && i % 2 === 1;
      const others = [...endpoints.filter((_, k) => k !== i).map((e) => e.secret), ...(i < ENDPOINTS ? [tenantSecret.secret] : [])];
      const byJob = new Map<string, Record<string, any>>();
      for (const r of receiver.received) {
        const headers = r.headers as Record<string, string>;
        const event = new Webhook(secret).verify(r.body, headers) as Record<string, any>;
        // Signed for this destination only.
        for (const other of others) expect(() => new Webhook(other).verify(r.body, headers)).toThrow();
        expect(headers['webhook-id']).toBe(event.id);
        byJob.set(event.data.id, event);
      }
      expect(byJob.size).toBe(JOBS);
      for (const job of jobs) {
        const event = byJob.get(job.id)!;
        expect(event.type).toBe(`job.${job.status}`);
        if (thin) expect(event.data).toEqual({ id: job.id });
        else expect(event.data).toMatchObject({ id: job.id, object: 'job', status: job.status });
        eventIds.add(`${i} ${event.id}`);
      }
    }
    expect(eventIds.size).toBe((ENDPOINTS + 1) * JOBS);

    // Each delivery is recorded as its own: one succeeded attempt each.
    for (const endpoint of endpoints) {
      const listed = await stack.api('GET', `/v1/deliveries?endpoint_id=${endpoint.id}&limit=100`);
      expect(listed.body.data).toHaveLength(JOBS);
      for (const d of listed.body.data) expect(d).toMatchObject({ status: 'succeeded', attempts: 1, last_status_code: 200 });
    }
    const one = (await stack.api('GET', `/v1/deliveries?endpoint_id=${endpoints[0].id}&limit=1`)).body.data[0];
    const detail = await stack.api('GET', `/v1/deliveries/${one.id}`);
    expect(detail.body.attempt_log).toEqual([expect.objectContaining({ attempt: 1, status_code: 200, next_attempt_at: null })]);
  });
});
