/**
 * Deeply nested JSON is refused where it is read, before it is parsed: a job body, any other JSON
 * body of the API and a correctly signed OpenAI webhook nested past 64 levels are a 400 in the
 * API's error shape naming where, with a short answer and short log lines whatever the keys, and
 * the API goes on answering.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '@longhaul/webhooks';
import { type Stack, jobBody, startStack } from './harness.ts';

let stack: Stack;
const lines: string[] = [];

beforeAll(async () => {
  stack = await startStack({
    startWorker: false,
    webhooks: true,
    logLevel: 'trace',
    logDestination: { write: (chunk: string) => void lines.push(...chunk.split('\n').filter(Boolean)) },
  });
});
afterAll(async () => {
  await stack?.stop();
});

const arrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const objects = (depth: number, key = 'a') => `${`{"${key}":`.repeat(depth)}1${'}'.repeat(depth)}`;
/** A job body whose `field` is the raw JSON `nested`. */
const jobWith = (field: string, nested: string) => JSON.stringify(jobBody({ [field]: 'NESTED' })).replace('"NESTED"', nested);

type Answer = Awaited<ReturnType<Stack['api']>>;

function expectTooDeep(res: Answer, param: RegExp | string | null): void {
  expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(400);
  expect(Object.keys(res.body.error).sort()).toEqual(['code', 'message', 'param', 'request_id', 'type']);
  expect(res.body.error.type).toBe('invalid_request_error');
  if (param instanceof RegExp) expect(res.body.error.param).toMatch(param);
  else expect(res.body.error.param).toBe(param);
  expect(res.body.error.message).toMatch(/nested deeper than 64 levels/);
}

async function postWebhook(payload: string, webhookId: string): Promise<Answer> {
  const res = await fetch(`${stack.apiUrl}/webhooks/openai`, {
    method: 'POST',
    headers: { ...signWebhook({ secrets: [stack.webhookSecret], webhookId, payload, now: new Date() }), 'content-type': 'application/json' },
    body: payload,
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

describe('API bodies', () => {
  it('a job with `tools` nested 20,000 levels is a 400 naming where', async () => {
    const res = await stack.api('POST', '/v1/jobs', jobWith('tools', arrays(20_000)));
    expectTooDeep(res, /^tools(\[0\]){63}$/);
    expect(res.body.error.code).toBe('nesting_too_deep');
  });

  it('a job with `metadata` nested 20,000 levels is a 400 naming where', async () => {
    const res = await stack.api('POST', '/v1/jobs', jobWith('metadata', objects(20_000)));
    expectTooDeep(res, /^metadata(\.a){63}$/);
    expect(res.body.error.code).toBe('nesting_too_deep');
  });

  it('64 levels are accepted as far as nesting goes; 65 are not', async () => {
    // The body object is level 1, so `tools` holds 63 more.
    const ok = await stack.api('POST', '/v1/jobs', jobWith('tools', arrays(63)));
    expect(ok.body.error?.message ?? '').not.toMatch(/nested/);
    const deep = await stack.api('POST', '/v1/jobs', jobWith('tools', arrays(64)));
    expectTooDeep(deep, /^tools(\[0\]){63}$/);
  });

  it('a megabyte of brackets is refused quickly', async () => {
    const started = performance.now();
    const res = await stack.api('POST', '/v1/jobs', jobWith('tools', arrays(400_000)));
    expectTooDeep(res, /^tools(\[0\]){63}$/);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('keys are named as they are, escapes decoded, and long ones cut short in the answer', async () => {
    const escaped = await stack.api('POST', '/v1/jobs', jobWith('metadata', objects(100, 'k\\u00e9y')));
    expectTooDeep(escaped, /^metadata(\.kéy){63}$/);
    const longKey = 'k'.repeat(10_000);
    const res = await stack.api('POST', '/v1/jobs', jobWith('metadata', objects(80, longKey)));
    expectTooDeep(res, /^metadata\.k+…/);
    expect(JSON.stringify(res.body).length).toBeLessThan(4_096);
  });

  it('a body no route reads is refused as well', async () => {
    const created = await stack.api('POST', '/v1/jobs', jobBody());
    expect(created.status).toBe(202);
    const res = await stack.api('POST', `/v1/jobs/${created.body.id}/cancel`, `{"reason":${arrays(20_000)}}`);
    expectTooDeep(res, /^reason(\[0\]){63}$/);
    const top = await stack.api('POST', '/v1/webhook-endpoints', arrays(1_000));
    expectTooDeep(top, /^(\[0\]){64}$/);
  });
});

describe('the OpenAI webhook receiver', () => {
  it('a correctly signed webhook nested 5,000 levels is a 400 naming where', async () => {
    const payload = `{"id":"evt_deep","object":"event","type":"response.completed","created_at":1,"data":{"id":"resp_deep","x":${arrays(5_000)}}}`;
    const res = await postWebhook(payload, 'wh_deep');
    expectTooDeep(res, /^data\.x(\[0\]){62}$/);
    expect(res.body.error.code).toBe('invalid_webhook_payload');
    const { rows } = await stack.db.pool.query<{ n: number }>('select count(*)::int n from webhook_inbox');
    expect(rows[0]!.n).toBe(0);
  });

  it('a deep webhook with long keys writes short log lines', async () => {
    const from = lines.length;
    const key = 'k'.repeat(3_000);
    const payload = `{"id":"evt_keys","object":"event","type":"response.completed","data":{"id":"resp_keys","x":${objects(70, key)}}}`;
    const res = await postWebhook(payload, 'wh_keys');
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body).length).toBeLessThan(4_096);
    await new Promise((r) => setTimeout(r, 100));
    const written = lines.slice(from);
    expect(written.some((l) => l.includes('wh_keys'))).toBe(true);
    expect(Math.max(...written.map((l) => l.length))).toBeLessThan(4_096);
  });
});

describe('afterwards', () => {
  it('the API is healthy and accepts a normal job', async () => {
    expect((await stack.api('GET', '/healthz')).status).toBe(200);
    expect((await stack.api('POST', '/v1/jobs', jobBody())).status).toBe(202);
  });
});
