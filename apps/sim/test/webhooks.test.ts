import type { IncomingHttpHeaders } from 'node:http';
import OpenAI from 'openai';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { pollUntilTerminal, sleep, startReceiver, startSim, type TestSim, type WebhookReceiver } from './helpers.ts';
import { refedTimeouts } from './timers.ts';

const SECRET = `whsec_${Buffer.from('longhaul-simulator-test-secret-32b').toString('base64')}`;

let sim: TestSim;
let receiver: WebhookReceiver;
let baselineTimers: number;

beforeEach(async () => {
  baselineTimers = refedTimeouts();
  receiver = await startReceiver();
  // 0.001: 5 s retry → 5 ms, 30 s → 30 ms; a 10 s job takes 10 ms.
  sim = await startSim({ time_scale: 0.001, webhook_urls: [receiver.url], webhook_secret: SECRET });
});
afterEach(async () => {
  await sim.close();
  await receiver.close();
  expect(refedTimeouts()).toBeLessThanOrEqual(baselineTimers);
});

function signatureHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  return {
    'webhook-id': String(headers['webhook-id']),
    'webhook-timestamp': String(headers['webhook-timestamp']),
    'webhook-signature': String(headers['webhook-signature']),
  };
}

function verifies(body: string, headers: IncomingHttpHeaders): boolean {
  try {
    new Webhook(SECRET).verify(body, signatureHeaders(headers));
    return true;
  } catch {
    return false;
  }
}

async function createBackground(metadata: Record<string, string> = {}): Promise<string> {
  const created = await sim.client.responses.create({
    model: 'gpt-5',
    input: 'webhook me',
    background: true,
    metadata: { sim_duration_ms: '10000', ...metadata },
  });
  return created.id;
}

describe('webhook delivery', () => {
  test('one signed delivery per terminal response, verifiable by standardwebhooks and the OpenAI SDK', async () => {
    const completed = await createBackground();
    const failed = await createBackground({ sim_outcome: 'failed' });
    const incomplete = await createBackground({ sim_outcome: 'incomplete' });
    const cancelled = await createBackground({ sim_duration_ms: '1000000' });
    await sim.client.responses.cancel(cancelled);
    await sim.client.responses.cancel(cancelled);
    await sim.client.responses.create({ model: 'gpt-5', input: 'not background' });

    await receiver.waitFor((received) => received.length >= 4);
    await sleep(50);
    expect(receiver.received).toHaveLength(4);

    const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${sim.url}/v1`, maxRetries: 0 });
    const events = new Map<string, string>();
    for (const delivery of receiver.received) {
      expect(delivery.headers['content-type']).toBe('application/json');
      expect(delivery.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
      expect(new Webhook(SECRET).verify(delivery.body, signatureHeaders(delivery.headers))).toBeTruthy();
      const event = await client.webhooks.unwrap(delivery.body, signatureHeaders(delivery.headers), SECRET);
      expect(event).toMatchObject({ object: 'event', id: expect.stringMatching(/^evt_[0-9a-f]{32}$/) });
      expect(delivery.headers['webhook-id']).toBe(event.id);
      expect(Number.isInteger(event.created_at)).toBe(true);
      events.set((event.data as { id: string }).id, event.type);
    }
    expect(Object.fromEntries(events)).toEqual({
      [completed]: 'response.completed',
      [failed]: 'response.failed',
      [incomplete]: 'response.incomplete',
      [cancelled]: 'response.cancelled',
    });
    const stats = await sim.sim('/stats');
    expect(stats.webhooks).toMatchObject({ sent: 4, delivered: 4, failed_attempts: 0, dropped: 0 });
  });

  test('retries after 500s with the same webhook-id until delivered', async () => {
    let attempts = 0;
    receiver.respondWith = () => (++attempts <= 2 ? 500 : 204);
    await createBackground();
    await receiver.waitFor((received) => received.some((delivery) => delivery.status === 204));
    expect(receiver.received.map((delivery) => delivery.status)).toEqual([500, 500, 204]);
    expect(new Set(receiver.received.map((delivery) => delivery.headers['webhook-id'])).size).toBe(1);
    expect(receiver.received.every((delivery) => verifies(delivery.body, delivery.headers))).toBe(true);
    expect((await sim.sim('/stats')).webhooks).toMatchObject({ sent: 3, delivered: 1, failed_attempts: 2 });
  });

  test('retries after network errors, then gives up after the scaled 72 h window', async () => {
    await sim.sim('/config', { webhook_urls: ['http://127.0.0.1:9/unreachable'], time_scale: 0.000001 });
    const id = await createBackground();
    await pollUntilTerminal(sim, id);
    const deadline = Date.now() + 5000;
    let stats = await sim.sim('/stats');
    while (stats.webhooks.exhausted === 0 && Date.now() < deadline) {
      await sleep(20);
      stats = await sim.sim('/stats');
    }
    expect(stats.webhooks.exhausted).toBe(1);
    // The window is wall-clock time, so how many attempts fit in it depends on machine load.
    expect(stats.webhooks.failed_attempts).toBeGreaterThanOrEqual(2);
    expect(stats.webhooks.failed_attempts).toBe(stats.webhooks.sent);
    expect(stats.webhooks.delivered).toBe(0);
  });

  test('webhook_delay_ms holds the first attempt (scaled)', async () => {
    await sim.sim('/config', { webhook_delay_ms: 150_000 });
    // Taken before the create: the simulator's delay runs from when it made the response, which a
    // loaded machine may answer well after (a reference taken after the create came back was late).
    const beforeCreate = Date.now();
    const id = await createBackground();
    await pollUntilTerminal(sim, id);
    await receiver.waitFor((received) => received.length === 1);
    expect(Date.now() - beforeCreate).toBeGreaterThanOrEqual(140);
  });
});

describe('webhook faults', () => {
  test('drop: never sent', async () => {
    await sim.sim('/config', { webhook_drop_rate: 1 });
    const id = await createBackground();
    await pollUntilTerminal(sim, id);
    await sleep(60);
    expect(receiver.received).toHaveLength(0);
    expect((await sim.sim('/stats')).webhooks).toMatchObject({ dropped: 1, sent: 0 });
  });

  test('duplicate: the same event arrives 2–3 times with one webhook-id', async () => {
    await sim.sim('/config', { webhook_duplicate_rate: 1 });
    await createBackground();
    await receiver.waitFor((received) => received.length >= 2);
    await sleep(60);
    const count = receiver.received.length;
    expect(count === 2 || count === 3).toBe(true);
    expect(new Set(receiver.received.map((delivery) => delivery.headers['webhook-id'])).size).toBe(1);
    expect(new Set(receiver.received.map((delivery) => delivery.body)).size).toBe(1);
    expect(receiver.received.every((delivery) => verifies(delivery.body, delivery.headers))).toBe(true);
    expect((await sim.sim('/stats')).webhooks).toMatchObject({ duplicated: count - 1, sent: count });
  });

  test('bad signature: fails verification; the retry after the fault is lifted verifies', async () => {
    receiver.respondWith = ({ body, headers }) => (verifies(body, headers) ? 200 : 400);
    await sim.sim('/config', { webhook_bad_signature_rate: 1 });
    await createBackground();
    await receiver.waitFor((received) => received.length >= 1);
    expect(receiver.received[0]?.status).toBe(400);
    await sim.sim('/config', { webhook_bad_signature_rate: 0 });
    await receiver.waitFor((received) => received.some((delivery) => delivery.status === 200));
    const stats = (await sim.sim('/stats')).webhooks;
    expect(stats.bad_signature).toBeGreaterThanOrEqual(1);
    expect(stats.delivered).toBe(1);
  });

  test('reorder: a batch is held for the window and every event still arrives once', async () => {
    await sim.sim('/config', { webhook_reorder: true, webhook_reorder_window_ms: 80, seed: 7 });
    const started = Date.now();
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push(await createBackground());
    await receiver.waitFor((received) => received.length === 6);
    // The first response ends after 10 ms and its delivery waits for the 80 ms window.
    expect(Date.now() - started).toBeGreaterThanOrEqual(85);
    const delivered = receiver.received.map((delivery) => JSON.parse(delivery.body).data.id as string);
    expect([...delivered].sort()).toEqual([...ids].sort());
  });
});
