/**
 * Callback fan-out end to end: jobs run through the simulator; their events are delivered to real
 * HTTP receivers on loopback, signed with Standard Webhooks, with retries, dead letters, replay
 * and endpoint disabling.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { createAddressPolicy } from '@longhaul/callbacks';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';
import { exited, spawnWorker } from './worker-process.ts';

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function createEndpoint(stack: Stack, body: Record<string, unknown>) {
  const res = await stack.api('POST', '/v1/webhook-endpoints', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  expect(res.body.secret).toMatch(/^whsec_/);
  return res.body;
}

describe('delivery to a healthy receiver', () => {
  let stack: Stack;
  let receiver: Receiver;
  beforeAll(async () => {
    stack = await startStack();
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await stack?.stop();
    await receiver?.close();
  });

  it('delivers every terminal event of 200 jobs, verifiable, duplicates only with the same webhook-id', async () => {
    const endpoint = await createEndpoint(stack, { url: receiver.url, description: 'all terminal events' });
    const ids: string[] = [];
    for (let i = 0; i < 200; i += 25) {
      const batch = await Promise.all(
        Array.from({ length: 25 }, (_, k) =>
          stack.api('POST', '/v1/jobs', jobBody({ input: `cb ${i + k}`, ...(k % 10 === 0 ? { metadata: { sim_duration_ms: '100', sim_outcome: 'failed' } } : {}) }, 100)),
        ),
      );
      ids.push(...batch.map((r) => r.body.id));
    }
    const done = await stack.waitForAll(ids, isTerminalJob, 45_000);
    const wh = new Webhook(endpoint.secret);
    const byJob = await until('200 callbacks', async () => {
      const m = new Map<string, any[]>();
      for (const r of receiver.received) {
        const event = wh.verify(r.body, r.headers as Record<string, string>) as any;
        expect(r.headers['webhook-id']).toBe(event.id);
        m.set(event.data.id, [...(m.get(event.data.id) ?? []), event]);
      }
      return m.size === 200 ? m : null;
    });
    for (const job of done) {
      const events = byJob.get(job.id)!;
      expect(new Set(events.map((e) => e.id)).size).toBe(1); // duplicates share a webhook-id
      expect(events[0]).toMatchObject({ type: `job.${job.status}`, data: { id: job.id, status: job.status, object: 'job' } });
      expect(events[0].sequence).toBeGreaterThanOrEqual(1);
    }
    expect(done.filter((j) => j.status === 'failed')).toHaveLength(24); // k = 0, 10, 20 of each batch of 25
    const deliveries = await stack.api('GET', '/v1/deliveries?status=succeeded&limit=100');
    expect(deliveries.body.data).toHaveLength(100);
    expect(deliveries.body.has_more).toBe(true);
  });

  it("signs callbacks to a job's own callback_url with the tenant's callback secret", async () => {
    const own = await startReceiver();
    try {
      const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({ callback_url: own.url }, 0));
      await stack.waitForJob(job.id, isTerminalJob);
      const { body: secret } = await stack.api('GET', '/v1/callback-secret');
      const received = await until('job callback', async () => own.received[0]);
      const event = new Webhook(secret.secret).verify(received.body, received.headers as Record<string, string>) as any;
      expect(event).toMatchObject({ type: 'job.completed', data: { id: job.id, output_text: expect.any(String) } });
    } finally {
      await own.close();
    }
  });

  it('sends lifecycle events in sequence to an endpoint that asks, and thin payloads when chosen', async () => {
    const lifecycle = await startReceiver();
    try {
      for (const e of (await stack.api('GET', '/v1/webhook-endpoints')).body.data) await stack.api('DELETE', `/v1/webhook-endpoints/${e.id}`);
      const ep = await createEndpoint(stack, { url: lifecycle.url, event_types: ['job.queued', 'job.in_progress', 'job.completed'], thin_payload: true });
      const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 30_000));
      await stack.waitForJob(job.id, isTerminalJob);
      const events = await until('3 lifecycle events', async () =>
        lifecycle.received.length >= 3 ? lifecycle.received.map((r) => new Webhook(ep.secret).verify(r.body, r.headers as Record<string, string>) as any) : null,
      );
      const ordered = [...events].sort((a, b) => a.sequence - b.sequence);
      expect(ordered.map((e) => e.type)).toEqual(['job.queued', 'job.in_progress', 'job.completed']);
      expect(ordered.map((e) => e.sequence)).toEqual([1, 2, 3]);
      for (const e of ordered) expect(e.data).toEqual({ id: job.id });
    } finally {
      await lifecycle.close();
    }
  });

  it('signs with both secrets during a rotation', async () => {
    const rx = await startReceiver();
    try {
      const ep = await createEndpoint(stack, { url: rx.url });
      const rotated = await stack.api('POST', `/v1/webhook-endpoints/${ep.id}/rotate-secret`, { overlap_seconds: 3600 });
      expect(rotated.body.secret).toMatch(/^whsec_/);
      expect(rotated.body.secret).not.toBe(ep.secret);
      const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
      await stack.waitForJob(job.id, isTerminalJob);
      const r = await until('rotated delivery', async () => rx.received[0]);
      expect(String(r.headers['webhook-signature']).split(' ')).toHaveLength(2);
      for (const secret of [ep.secret, rotated.body.secret]) expect(() => new Webhook(secret).verify(r.body, r.headers as Record<string, string>)).not.toThrow();
      const listed = await stack.api('GET', `/v1/webhook-endpoints/${ep.id}`);
      expect(listed.body.secret).toBeUndefined();
    } finally {
      await rx.close();
    }
  });
});

describe('failing receivers', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Schedule scaled so retries take ms: 0, 5 ms, 300 ms, then 1.8 s ... (time scale 0.001).
    stack = await startStack({
      worker: {
        callbacks: { concurrency: 20, schedule: { timeScale: 0.001, jitter: 0 }, timeoutMs: 1_000, disableAfterMs: 86_400_000, policy: createAddressPolicy(['127.0.0.0/8']) },
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('retries a receiver answering 500 on schedule and delivers after it recovers', async () => {
    let healthy = false;
    const rx = await startReceiver(() => (healthy ? 200 : 500));
    try {
      await createEndpoint(stack, { url: rx.url });
      const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
      await stack.waitForJob(job.id, isTerminalJob);
      await until('3 failed attempts', async () => rx.received.length >= 3);
      healthy = true;
      const list = await until('delivered', async () => {
        const r = await stack.api('GET', `/v1/deliveries?job_id=${job.id}`);
        return r.body.data[0]?.status === 'succeeded' ? r.body.data : null;
      });
      const detail = await stack.api('GET', `/v1/deliveries/${list[0].id}`);
      const log = detail.body.attempt_log;
      expect(log.length).toBeGreaterThanOrEqual(4);
      expect(log.slice(0, -1).every((a: any) => a.status_code === 500 && a.next_attempt_at !== null)).toBe(true);
      expect(log.at(-1)).toMatchObject({ status_code: 200, error: null, next_attempt_at: null });
      expect(log.map((a: any) => a.attempt)).toEqual(log.map((_: unknown, i: number) => i + 1));
      // Gaps between attempts follow the (scaled) schedule: 5 ms, 300 ms, 1800 ms, ...
      const gaps = rx.received.slice(1, 4).map((r, i) => r.at - rx.received[i]!.at);
      expect(gaps[1]).toBeGreaterThanOrEqual(250);
      expect(gaps[2]).toBeGreaterThanOrEqual(1_500);
      expect(new Set(rx.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
    } finally {
      await rx.close();
    }
  });

  it('disables an endpoint that answers 410 and delivers nothing more to it', async () => {
    const rx = await startReceiver(() => 410);
    try {
      const ep = await createEndpoint(stack, { url: rx.url });
      const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
      await stack.waitForJob(job.id, isTerminalJob);
      const disabled = await until('endpoint disabled', async () => {
        const r = await stack.api('GET', `/v1/webhook-endpoints/${ep.id}`);
        return r.body.enabled === false ? r.body : null;
      });
      expect(disabled.disabled_reason).toMatch(/410/);
      const events = await stack.db.pool.query('select type from callback_events where endpoint_id = $1', [ep.id]);
      expect(events.rows).toEqual([{ type: 'webhook_endpoint.disabled' }]);
      const count = rx.received.length;
      // A healthy endpoint beside it: once every delivery of job2's event (to either endpoint) is
      // final, the worker has handled job2's callbacks and nothing more can reach the 410 one.
      const control = await startReceiver();
      const controlEp = await createEndpoint(stack, { url: control.url });
      try {
        const { body: job2 } = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
        await stack.waitForJob(job2.id, isTerminalJob);
        const ours = new Set([ep.id, controlEp.id]);
        const job2Deliveries = await until('job2 deliveries final', async () => {
          const list = (await stack.api('GET', `/v1/deliveries?job_id=${job2.id}&limit=100`)).body.data.filter((d: any) => ours.has(d.endpoint_id));
          return list.length > 0 && list.every((d: any) => d.status !== 'pending') ? list : null;
        });
        expect(job2Deliveries.filter((d: any) => d.endpoint_id === controlEp.id).map((d: any) => d.status)).toEqual(['succeeded']);
        expect(job2Deliveries.filter((d: any) => d.endpoint_id === ep.id && d.attempts > 0)).toEqual([]);
        expect(control.received).toHaveLength(1);
        expect(rx.received.length).toBe(count);
      } finally {
        await stack.api('DELETE', `/v1/webhook-endpoints/${controlEp.id}`);
        await control.close();
      }
      await stack.api('DELETE', `/v1/webhook-endpoints/${ep.id}`);
    } finally {
      await rx.close();
    }
  });

  it('lists dead letters and re-sends them by delivery and by endpoint recovery', async () => {
    let healthy = false;
    const rx = await startReceiver(() => (healthy ? 204 : 503));
    const short = await startStack({
      worker: {
        callbacks: { concurrency: 5, schedule: { scheduleMs: [0, 10, 10], jitter: 0 }, timeoutMs: 1_000, disableAfterMs: 86_400_000, policy: createAddressPolicy(['127.0.0.0/8']) },
      },
    });
    try {
      const ep = await createEndpoint(short, { url: rx.url });
      const before = Math.floor(Date.now() / 1000) - 1;
      const jobs = await Promise.all([0, 1].map(() => short.api('POST', '/v1/jobs', jobBody({}, 0)).then((r) => r.body)));
      await short.waitForAll(
        jobs.map((j) => j.id),
        isTerminalJob,
      );
      const dead = await until('2 dead letters', async () => {
        const r = await short.api('GET', '/v1/deliveries?status=failed');
        return r.body.data.length === 2 ? r.body.data : null;
      });
      expect(dead.every((d: any) => d.attempts === 3 && d.last_status_code === 503)).toBe(true);
      healthy = true;
      const retried = await short.api('POST', `/v1/deliveries/${dead[0].id}/retry`);
      expect(retried.status).toBe(202);
      await until('retried delivery succeeded', async () => (await short.api('GET', `/v1/deliveries/${dead[0].id}`)).body.status === 'succeeded');
      const notRetryable = await short.api('POST', `/v1/deliveries/${dead[0].id}/retry`);
      expect(notRetryable.status).toBe(400);
      const recovered = await short.api('POST', `/v1/webhook-endpoints/${ep.id}/recover`, { since: before });
      expect(recovered.body.deliveries).toBe(1);
      await until('all delivered', async () => (await short.api('GET', '/v1/deliveries?status=succeeded')).body.data.length === 2);
    } finally {
      await short.stop();
      await rx.close();
    }
  });

  it('disables an endpoint that keeps failing for the configured period', async () => {
    const rx = await startReceiver(() => 500);
    const strict = await startStack({
      worker: {
        callbacks: {
          concurrency: 5,
          schedule: { scheduleMs: [0, 100, 100, 100, 100, 100, 100], jitter: 0 },
          timeoutMs: 1_000,
          disableAfterMs: 250,
          policy: createAddressPolicy(['127.0.0.0/8']),
        },
      },
    });
    try {
      const ep = await createEndpoint(strict, { url: rx.url });
      const { body: job } = await strict.api('POST', '/v1/jobs', jobBody({}, 0));
      await strict.waitForJob(job.id, isTerminalJob);
      const disabled = await until('disabled', async () => {
        const r = await strict.api('GET', `/v1/webhook-endpoints/${ep.id}`);
        return r.body.enabled === false ? r.body : null;
      });
      expect(disabled.disabled_reason).toMatch(/failing continuously/);
      const d = (await strict.api('GET', `/v1/deliveries?endpoint_id=${ep.id}`)).body.data[0];
      expect(d.status).toBe('failed');
    } finally {
      await strict.stop();
      await rx.close();
    }
  });
});

describe('SSRF guard', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Production policy everywhere: nothing on loopback or private ranges is allowed.
    stack = await startStack({
      api: { callbackPolicy: createAddressPolicy() },
      worker: { callbacks: { concurrency: 5, schedule: { timeScale: 0.001 }, timeoutMs: 1_000, disableAfterMs: 86_400_000, policy: createAddressPolicy() } },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it.each([
    'http://127.0.0.1/',
    'http://localhost/',
    'http://2130706433/',
    'http://[::ffff:127.0.0.1]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://10.1.2.3/',
    'file:///etc/passwd',
    'ftp://example.com/',
  ])('refuses %s at registration and at submission with a clear 400', async (url) => {
    const ep = await stack.api('POST', '/v1/webhook-endpoints', { url });
    expect(ep.status).toBe(400);
    expect(ep.body.error).toMatchObject({ code: 'url_not_allowed', param: 'url' });
    const job = await stack.api('POST', '/v1/jobs', jobBody({ callback_url: url }));
    expect(job.status).toBe(400);
    expect(job.body.error.param).toBe('callback_url');
  });

  it('refuses at delivery time too, without opening a connection', async () => {
    const rx = await startReceiver();
    try {
      // An endpoint registered under an older, looser policy now points at a refused address.
      await stack.db.pool.query("insert into webhook_endpoints (id, tenant_id, url, secrets) values ('we_legacy0000000000001', $1, $2, $3)", [
        stack.tenantId,
        rx.url,
        JSON.stringify([{ secret: `whsec_${Buffer.alloc(24, 1).toString('base64')}`, createdAt: new Date().toISOString(), expiresAt: null }]),
      ]);
      const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
      await stack.waitForJob(job.id, isTerminalJob);
      const d = await until('blocked delivery failed', async () => {
        const r = await stack.api('GET', `/v1/deliveries?job_id=${job.id}`);
        return r.body.data[0]?.status === 'failed' ? r.body.data[0] : null;
      });
      expect(d.last_error).toMatch(/not a public address/);
      expect(rx.connections).toBe(0);
    } finally {
      await rx.close();
    }
  });
});

describe('worker killed mid-delivery', () => {
  let stack: Stack;
  const children: import('node:child_process').ChildProcess[] = [];
  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    await stack?.stop();
  });

  it('still delivers the event (at least once) after a new worker starts', async () => {
    // The receiver holds the first request open: the worker dies while waiting for the answer.
    const rx = await startReceiver((r) => (rx.received.indexOf(r) === 0 ? 'hang' : 200));
    try {
      const ep = await createEndpoint(stack, { url: rx.url });
      const first = spawnWorker(stack, stack.redisUrl);
      children.push(first);
      const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
      await until('first delivery attempt in flight', async () => rx.received.length === 1, 30_000);
      first.kill('SIGKILL');
      await exited(first);
      const restartedAt = Date.now();
      const second = spawnWorker(stack, stack.redisUrl);
      children.push(second);
      await until('delivered after restart', async () => rx.received.length >= 2, 30_000);
      // The redelivery came from the new worker: the old one was dead before it started.
      expect(rx.received[1]!.at).toBeGreaterThanOrEqual(restartedAt);
      const wh = new Webhook(ep.secret);
      const events = rx.received.map((r) => wh.verify(r.body, r.headers as Record<string, string>) as any);
      expect(events.every((e) => e.data.id === job.id && e.type === 'job.completed')).toBe(true);
      expect(new Set(rx.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
      await until('delivery recorded as succeeded', async () => (await stack.api('GET', `/v1/deliveries?job_id=${job.id}`)).body.data[0]?.status === 'succeeded');
      second.kill('SIGTERM');
      await exited(second);
    } finally {
      await rx.close();
    }
  });
});
