import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTenant } from '@longhaul/db';
import { type Stack, jobBody, startStack } from './harness.ts';

// No worker: these tests are about what the API accepts and answers.
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ startWorker: false });
});
afterAll(async () => {
  await stack?.stop();
});

const valid = jobBody();
const manyKeys = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, 'v']));

const MALFORMED: Array<[string, unknown, string | null]> = [
  ['empty object', {}, 'model'],
  ['missing input', { model: 'o3' }, 'input'],
  ['model not a string', { ...valid, model: 42 }, 'model'],
  ['empty model', { ...valid, model: '' }, 'model'],
  ['empty input string', { ...valid, input: '' }, 'input'],
  ['input a number', { ...valid, input: 7 }, 'input'],
  ['unknown top-level field', { ...valid, temperature_x: 1 }, 'temperature_x'],
  ['unknown reasoning field', { ...valid, reasoning: { effort: 'high', depth: 3 } }, 'reasoning.depth'],
  ['bad effort', { ...valid, reasoning: { effort: 'extreme' } }, 'reasoning.effort'],
  ['bad role', { ...valid, input: [{ role: 'robot', content: 'hi' }] }, 'input'],
  ['bad content part type', { ...valid, input: [{ role: 'user', content: [{ type: 'input_video', url: 'x' }] }] }, 'input'],
  ['max_output_tokens negative', { ...valid, max_output_tokens: -5 }, 'max_output_tokens'],
  ['max_output_tokens fractional', { ...valid, max_output_tokens: 100.5 }, 'max_output_tokens'],
  ['metadata value not a string', { ...valid, metadata: { a: 1 } }, 'metadata.a'],
  ['metadata key too long', { ...valid, metadata: { ['k'.repeat(65)]: 'v' } }, `metadata.${'k'.repeat(65)}`],
  ['metadata value too long', { ...valid, metadata: { a: 'v'.repeat(513) } }, 'metadata.a'],
  ["too many metadata keys (16 + Longhaul's own)", { ...valid, metadata: manyKeys }, 'metadata'],
  ['reserved metadata key', { ...valid, metadata: { longhaul_job_id: 'x' } }, 'metadata'],
  ['callback_url not a URL', { ...valid, callback_url: 'not a url' }, 'callback_url'],
  ['callback_url ftp scheme', { ...valid, callback_url: 'ftp://example.com/x' }, 'callback_url'],
  ['background false', { ...valid, background: false }, 'background'],
  ['store false', { ...valid, store: false }, 'store'],
  ['tools not an array', { ...valid, tools: { type: 'web_search' } }, 'tools'],
  ['body is an array', [valid], null],
  ['body is a string', 'hello', null],
];

describe('POST /v1/jobs validation', () => {
  it.each(MALFORMED)('%s → 400 naming the field', async (_name, body, param) => {
    const res = await stack.api('POST', '/v1/jobs', typeof body === 'string' ? JSON.stringify(body) : body);
    expect(res.status).toBe(400);
    expect(res.body.error.type).toBe('invalid_request_error');
    expect(typeof res.body.error.code).toBe('string');
    expect(res.body.error.message.length).toBeGreaterThan(5);
    if (param) expect(res.body.error.param).toBe(param);
    expect(res.body.error.request_id).toBe(res.headers.get('x-request-id'));
  });

  it('answers malformed JSON with 400 invalid_json', async () => {
    const res = await stack.api('POST', '/v1/jobs', '{"model": "o3", "input": ');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_json');
  });

  it('answers a body that is not JSON with 400', async () => {
    const res = await stack.api('POST', '/v1/jobs', undefined, { 'content-type': 'text/plain' });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_body');
  });

  it('answers a body over the limit with 413', async () => {
    const res = await stack.api('POST', '/v1/jobs', { ...valid, input: 'x'.repeat(1_100_000) });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('request_too_large');
  });

  it('accepts a message list with history, instructions and every supported parameter', async () => {
    const res = await stack.api('POST', '/v1/jobs', {
      model: 'gpt-5',
      instructions: 'Be brief.',
      input: [
        { role: 'developer', content: 'You are a novelist.' },
        { role: 'user', content: [{ type: 'input_text', text: 'Start a story.' }] },
        { role: 'assistant', content: [{ type: 'output_text', text: 'Once upon a time...' }] },
        { role: 'user', content: 'Continue.' },
      ],
      reasoning: { effort: 'medium', summary: 'auto' },
      max_output_tokens: 4000,
      metadata: { team: 'fiction' },
      text: { verbosity: 'low' },
      tools: [{ type: 'web_search' }],
      prompt_cache_key: 'novel-v1',
      background: true,
      store: true,
      callback_url: 'https://example.com/hooks/longhaul',
    });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'pending', model: 'gpt-5', callback_url: 'https://example.com/hooks/longhaul', metadata: { team: 'fiction' } });
  });

  it('accepts exactly 15 metadata keys of maximum size', async () => {
    const metadata = Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`${String(i).padStart(2, '0')}${'k'.repeat(62)}`, 'v'.repeat(512)]));
    const res = await stack.api('POST', '/v1/jobs', { ...valid, metadata });
    expect(res.status).toBe(202);
  });
});

describe('authentication and tenant isolation', () => {
  it('answers 401 without a key or with a wrong one', async () => {
    for (const authorization of ['', 'Bearer', 'Bearer lh_sk_wrong', 'Basic abc']) {
      const res = await fetch(`${stack.apiUrl}/v1/jobs`, { headers: authorization ? { authorization } : {} });
      expect(res.status).toBe(401);
      expect((await res.json()).error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
    }
  });

  it("hides another tenant's jobs behind 404s", async () => {
    const mine = (await stack.api('POST', '/v1/jobs', valid)).body;
    const other = await createTenant(stack.db.db, 'other tenant');
    const as = (path: string, method = 'GET') => fetch(`${stack.apiUrl}${path}`, { method, headers: { authorization: `Bearer ${other.apiKey}` } });
    expect((await as(`/v1/jobs/${mine.id}`)).status).toBe(404);
    expect((await as(`/v1/jobs/${mine.id}/cancel`, 'POST')).status).toBe(404);
    expect((await as(`/v1/jobs/${mine.id}/events`)).status).toBe(404);
    const list = await (await as('/v1/jobs')).json();
    expect(list.data.map((j: any) => j.id)).not.toContain(mine.id);
    expect((await stack.api('GET', '/v1/jobs/job_doesnotexist00000000')).status).toBe(404);
  });
});

describe('idempotency keys', () => {
  it('returns the same job for the same key and body', async () => {
    const body = { ...valid, input: 'idempotent story' };
    const first = await stack.api('POST', '/v1/jobs', body, { 'idempotency-key': 'same-1' });
    // Same body with another key order is the same request.
    const second = await stack.api('POST', '/v1/jobs', Object.fromEntries(Object.entries(body).reverse()), { 'idempotency-key': 'same-1' });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
  });

  it('refuses the same key with a different body with 422', async () => {
    await stack.api('POST', '/v1/jobs', { ...valid, input: 'a' }, { 'idempotency-key': 'diff-1' });
    const res = await stack.api('POST', '/v1/jobs', { ...valid, input: 'b' }, { 'idempotency-key': 'diff-1' });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('idempotency_key_reused');
  });

  it('answers 409 while the first request with the key is still in flight', async () => {
    // Hold the key's lock as an in-flight request would (same lock id derivation as the API).
    const { createHash } = await import('node:crypto');
    const lockId = createHash('sha256').update(`${stack.tenantId}\0inflight-1`).digest().readBigInt64BE(0).toString();
    const client = new pg.Client({ connectionString: stack.database.url });
    await client.connect();
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock($1::bigint)', [lockId]);
    const res = await stack.api('POST', '/v1/jobs', valid, { 'idempotency-key': 'inflight-1' });
    await client.query('rollback');
    await client.end();
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('idempotency_key_in_flight');
    const after = await stack.api('POST', '/v1/jobs', valid, { 'idempotency-key': 'inflight-1' });
    expect(after.status).toBe(202);
  });

  it('resolves concurrent requests with one key to one job', async () => {
    const body = { ...valid, input: 'concurrent' };
    const results = await Promise.all(Array.from({ length: 10 }, () => stack.api('POST', '/v1/jobs', body, { 'idempotency-key': 'race-1' })));
    const created = results.filter((r) => r.status === 202);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(new Set(created.map((r) => r.body.id)).size).toBe(1);
    for (const r of results.filter((x) => x.status !== 202)) expect(r.body.error.code).toBe('idempotency_key_in_flight');
  });

  it('scopes keys per tenant and rejects unusable keys', async () => {
    const other = await createTenant(stack.db.db, 'idem tenant');
    const a = await stack.api('POST', '/v1/jobs', valid, { 'idempotency-key': 'shared-key' });
    const b = await fetch(`${stack.apiUrl}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${other.apiKey}`, 'content-type': 'application/json', 'idempotency-key': 'shared-key' },
      body: JSON.stringify(valid),
    }).then((r) => r.json());
    expect(b.id).not.toBe(a.body.id);
    const bad = await stack.api('POST', '/v1/jobs', valid, { 'idempotency-key': 'x'.repeat(256) });
    expect(bad.status).toBe(400);
  });
});

describe('listing', () => {
  it('pages newest first with a cursor and filters by status', async () => {
    const t = await createTenant(stack.db.db, 'list tenant');
    const call = (path: string, method = 'GET', body?: unknown) =>
      fetch(`${stack.apiUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${t.apiKey}`, 'content-type': 'application/json' },
        body: body ? JSON.stringify(body) : undefined,
      }).then((r) => r.json());
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await call('/v1/jobs', 'POST', valid)).id);
    await call(`/v1/jobs/${ids[0]}/cancel`, 'POST');
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await call(`/v1/jobs?limit=3${after ? `&after=${after}` : ''}`);
      seen.push(...page.data.map((j: any) => j.id));
      if (!page.has_more) break;
      after = page.last_id;
    }
    expect(seen).toEqual([...ids].reverse());
    const cancelled = await call('/v1/jobs?status=cancelled');
    expect(cancelled.data.map((j: any) => j.id)).toEqual([ids[0]]);
    const badStatus = await fetch(`${stack.apiUrl}/v1/jobs?status=done`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(badStatus.status).toBe(400);
    const badLimit = await fetch(`${stack.apiUrl}/v1/jobs?limit=1000`, { headers: { authorization: `Bearer ${t.apiKey}` } });
    expect(badLimit.status).toBe(400);
  });
});
