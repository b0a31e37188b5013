/**
 * Tenant API keys over HTTP and from the operator CLI: a key is shown once and listed by its
 * prefix only; its scopes decide what it may call (403 insufficient_scope naming the scope it
 * lacks); it cannot make a key more powerful than itself (403 scope_escalation); the tenant's last
 * active key is kept unless the revocation is forced (409 last_api_key); an expired key is a 401
 * api_key_expired, a revoked one a 401 invalid_api_key; bad input is a 400 naming the parameter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '@longhaul/db';
import { spawnApp, until } from './app-process.ts';
import { type Stack, jobBody, startStack } from './harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ startWorker: false });
});
afterAll(async () => {
  await stack?.stop();
});

/** `stack.api` with another tenant key. */
const as = (key: string, method: string, path: string, body?: unknown) => stack.api(method, path, body, { authorization: `Bearer ${key}` });

/** Make a key with the stack's `*` key (or `creator`); returns the 201's body (the key object and `key`). */
async function makeKey(body: Record<string, unknown>, creator = stack.apiKey): Promise<any> {
  const res = await as(creator, 'POST', '/v1/api-keys', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** The key object as GET /v1/api-keys lists it. */
async function listed(id: string, key = stack.apiKey): Promise<any> {
  const res = await as(key, 'GET', '/v1/api-keys?limit=100');
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.data.find((k: any) => k.id === id);
}

function expectError(res: { status: number; body: any }, status: number, type: string, code: string, messagePart?: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body.error).toMatchObject({ type, code });
  if (messagePart) expect(res.body.error.message).toContain(messagePart);
}

describe('the key lifecycle', () => {
  it('shows a new key once; lists it by prefix, never the key or its hash', async () => {
    const created = await makeKey({ name: 'ci deploys', scopes: ['jobs:read'] });
    expect(created.key).toMatch(/^lh_sk_[0-9A-Za-z]{40}$/);
    expect(created).toMatchObject({
      id: expect.stringMatching(/^key_/),
      object: 'api_key',
      name: 'ci deploys',
      prefix: created.key.slice(0, 10),
      scopes: ['jobs:read'],
      status: 'active',
      last_used_at: null,
      expires_at: null,
      revoked_at: null,
    });
    expect(Math.abs(created.created_at - Date.now() / 1000)).toBeLessThan(60);

    const list = await as(stack.apiKey, 'GET', '/v1/api-keys');
    expect(list.body).toMatchObject({ object: 'list', has_more: false });
    const { key, ...object } = created;
    expect(list.body.data).toContainEqual(object);
    const one = await as(stack.apiKey, 'GET', `/v1/api-keys/${created.id}`);
    expect(one.body).toEqual(object);
    for (const text of [JSON.stringify(list.body), JSON.stringify(one.body)]) {
      expect(text).not.toContain(key);
      expect(text).not.toMatch(/hash/);
    }
  });

  it('records when a key was last used, at most once a minute', async () => {
    const created = await makeKey({ name: 'used' });
    expect((await as(created.key, 'GET', '/v1/jobs')).status).toBe(200);
    const first = (await listed(created.id)).last_used_at;
    expect(Math.abs(first - Date.now() / 1000)).toBeLessThan(60);
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await as(created.key, 'GET', '/v1/jobs')).status).toBe(200);
    expect((await listed(created.id)).last_used_at).toBe(first);
  });

  it('pages the list newest first', async () => {
    const tenant = await createTenant(stack.db.db, 'many keys');
    const made = [];
    for (const name of ['a', 'b', 'c']) made.push(await makeKey({ name }, tenant.apiKey));
    const page1 = await as(tenant.apiKey, 'GET', '/v1/api-keys?limit=2');
    expect(page1.body.data.map((k: any) => k.name)).toEqual(['c', 'b']);
    expect(page1.body.has_more).toBe(true);
    const page2 = await as(tenant.apiKey, 'GET', `/v1/api-keys?limit=2&after=${page1.body.data[1].id}`);
    expect(page2.body.data.map((k: any) => k.name)).toEqual(['a', null]);
    expect(page2.body.has_more).toBe(false);
  });

  it('walking the pages returns every key once, keys made at the same moment too', async () => {
    const tenant = await createTenant(stack.db.db, 'keys at once');
    const made = await Promise.all(Array.from({ length: 12 }, (_, i) => makeKey({ name: `k${i}` }, tenant.apiKey)));
    const seen: string[] = [];
    let after = '';
    for (let page = 0; page < 20; page++) {
      const res = await as(tenant.apiKey, 'GET', `/v1/api-keys?limit=1${after}`);
      seen.push(...res.body.data.map((k: any) => k.id));
      if (!res.body.has_more) break;
      after = `&after=${res.body.last_id}`;
    }
    expect(seen).toHaveLength(13);
    expect(new Set(seen)).toEqual(new Set([...made.map((k) => k.id), (await as(tenant.apiKey, 'GET', '/v1/api-keys')).body.data.at(-1).id]));
  });

  it('revokes a key: a 401 from then on; revoking it again changes nothing', async () => {
    const created = await makeKey({ name: 'short-lived' });
    expect((await as(created.key, 'GET', '/v1/jobs')).status).toBe(200);
    const revoked = await as(stack.apiKey, 'DELETE', `/v1/api-keys/${created.id}`);
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    expect(revoked.body).toMatchObject({ id: created.id, object: 'api_key', status: 'revoked', revoked_at: expect.any(Number) });
    expect(revoked.body.key).toBeUndefined();
    // This process forgets the key at once; other API processes within API_KEY_CACHE_TTL_MS (api-keys-revocation.test.ts).
    expectError(await as(created.key, 'GET', '/v1/jobs'), 401, 'authentication_error', 'invalid_api_key', 'revoked');
    const again = await as(stack.apiKey, 'DELETE', `/v1/api-keys/${created.id}`);
    expect(again.status).toBe(200);
    expect(again.body.revoked_at).toBe(revoked.body.revoked_at);
    expect(await listed(created.id)).toMatchObject({ status: 'revoked', revoked_at: revoked.body.revoked_at });
  });

  it("keeps the tenant's last active key unless forced", async () => {
    const tenant = await createTenant(stack.db.db, 'one key');
    const [only] = (await as(tenant.apiKey, 'GET', '/v1/api-keys')).body.data;
    expectError(await as(tenant.apiKey, 'DELETE', `/v1/api-keys/${only.id}`), 409, 'conflict_error', 'last_api_key', 'force=true');

    // A second key makes the first revocable, and the second is then the last.
    const second = await makeKey({ name: 'second' }, tenant.apiKey);
    expect((await as(tenant.apiKey, 'DELETE', `/v1/api-keys/${only.id}`)).status).toBe(200);
    expectError(await as(tenant.apiKey, 'GET', '/v1/jobs'), 401, 'authentication_error', 'invalid_api_key');
    expectError(await as(second.key, 'DELETE', `/v1/api-keys/${second.id}`), 409, 'conflict_error', 'last_api_key');

    const forced = await as(second.key, 'DELETE', `/v1/api-keys/${second.id}?force=true`);
    expect(forced.status, JSON.stringify(forced.body)).toBe(200);
    expect(forced.body).toMatchObject({ id: second.id, status: 'revoked' });
    expectError(await as(second.key, 'GET', '/v1/jobs'), 401, 'authentication_error', 'invalid_api_key');
  });

  it('an expired key does not count as active, and is a 401 api_key_expired', async () => {
    const tenant = await createTenant(stack.db.db, 'expiring');
    const expiresAt = Math.floor(Date.now() / 1000) + 2;
    const expiring = await makeKey({ name: 'expiring', expires_at: expiresAt }, tenant.apiKey);
    expect(expiring.expires_at).toBe(expiresAt);
    expect((await as(expiring.key, 'GET', '/v1/jobs')).status).toBe(200);
    const refused = await until('the key to expire', async () => {
      const res = await as(expiring.key, 'GET', '/v1/jobs');
      return res.status === 401 ? res : null;
    });
    expect(Date.now() / 1000).toBeGreaterThanOrEqual(expiresAt);
    expectError(refused, 401, 'authentication_error', 'api_key_expired', 'expired');
    expect(await listed(expiring.id, tenant.apiKey)).toMatchObject({ status: 'expired' });
    // The tenant's first key is now its only active one.
    const [first] = (await as(tenant.apiKey, 'GET', '/v1/api-keys')).body.data.filter((k: any) => k.status === 'active');
    expectError(await as(tenant.apiKey, 'DELETE', `/v1/api-keys/${first.id}`), 409, 'conflict_error', 'last_api_key');
    // Revoking the expired key needs no force.
    expect((await as(tenant.apiKey, 'DELETE', `/v1/api-keys/${expiring.id}`)).body).toMatchObject({ status: 'revoked' });
  });

  it('expires_in_days sets the expiry that many days ahead', async () => {
    const created = await makeKey({ name: 'month', expires_in_days: 30 });
    expect(Math.abs(created.expires_at - (Date.now() / 1000 + 30 * 86_400))).toBeLessThan(60);
  });

  it("answers 404 for an unknown key and for another tenant's key", async () => {
    const other = await createTenant(stack.db.db, 'other');
    const [theirs] = (await as(other.apiKey, 'GET', '/v1/api-keys')).body.data;
    for (const id of ['key_0000000000000000', theirs.id]) {
      expectError(await as(stack.apiKey, 'DELETE', `/v1/api-keys/${id}`), 404, 'not_found_error', 'not_found');
      expectError(await as(stack.apiKey, 'GET', `/v1/api-keys/${id}`), 404, 'not_found_error', 'not_found');
    }
    expect((await as(stack.apiKey, 'GET', '/v1/api-keys?limit=100')).body.data.map((k: any) => k.id)).not.toContain(theirs.id);
    expect((await as(other.apiKey, 'GET', '/v1/jobs')).status).toBe(200);
  });
});

describe('scopes', () => {
  it('a jobs:read key reads jobs and nothing else', async () => {
    const { key } = await makeKey({ name: 'reader', scopes: ['jobs:read'] });
    expect((await as(key, 'GET', '/v1/jobs')).status).toBe(200);
    expect((await as(key, 'GET', '/v1/jobs/job_000000000000000000000000')).status).toBe(404);
    expectError(await as(key, 'POST', '/v1/jobs', jobBody()), 403, 'permission_error', 'insufficient_scope', "'jobs:write'");
    expectError(await as(key, 'POST', '/v1/responses', { model: 'o3', input: 'hi', background: true }), 403, 'permission_error', 'insufficient_scope', "'jobs:write'");
    expectError(await as(key, 'GET', '/v1/prompts'), 403, 'permission_error', 'insufficient_scope', "'prompts:read'");
    expectError(await as(key, 'GET', '/v1/usage'), 403, 'permission_error', 'insufficient_scope', "'usage:read'");
    expectError(await as(key, 'GET', '/v1/api-keys'), 403, 'permission_error', 'insufficient_scope', "'keys:read'");
    // A path no resource claims needs `*`.
    expectError(await as(key, 'GET', '/v1/nothing'), 403, 'permission_error', 'insufficient_scope', "'*'");
    expect((await as(stack.apiKey, 'GET', '/v1/nothing')).status).toBe(404);
  });

  it('write implies read of the same resource', async () => {
    const { key } = await makeKey({ name: 'submitter', scopes: ['jobs:write', 'jobs:read'] });
    const submitted = await as(key, 'POST', '/v1/jobs', jobBody());
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    expect((await as(key, 'GET', `/v1/jobs/${submitted.body.id}`)).body).toMatchObject({ id: submitted.body.id });
    expectError(await as(key, 'GET', '/v1/files'), 403, 'permission_error', 'insufficient_scope', "'files:read'");
  });

  it('read_only reads everything and writes nothing', async () => {
    const created = await makeKey({ name: 'dashboard', scopes: ['read_only'] });
    expect(created.scopes).toEqual(['jobs:read', 'prompts:read', 'pipelines:read', 'files:read', 'evals:read', 'webhooks:read', 'usage:read', 'keys:read']);
    for (const path of ['/v1/jobs', '/v1/prompts', '/v1/pipelines', '/v1/runs', '/v1/usage', '/v1/webhook-endpoints', '/v1/deliveries', '/v1/api-keys']) {
      const res = await as(created.key, 'GET', path);
      expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(200);
    }
    expectError(await as(created.key, 'POST', '/v1/prompts', { name: 'p', template: { instructions: 'x' } }), 403, 'permission_error', 'insufficient_scope', "'prompts:write'");
    expectError(await as(created.key, 'DELETE', `/v1/api-keys/${created.id}`), 403, 'permission_error', 'insufficient_scope', "'keys:write'");
    // The callback signing secret lets whoever holds it sign callbacks: reading it needs write.
    expectError(await as(created.key, 'GET', '/v1/callback-secret'), 403, 'permission_error', 'insufficient_scope', "'webhooks:write'");
  });

  it('a key cannot make a key with scopes it does not hold', async () => {
    const creator = await makeKey({ name: 'key admin', scopes: ['keys:write', 'jobs:read'] });
    expect((await makeKey({ name: 'narrower', scopes: ['jobs:read'] }, creator.key)).scopes).toEqual(['jobs:read']);
    expect((await makeKey({ name: 'keys reader', scopes: ['keys:read'] }, creator.key)).scopes).toEqual(['keys:read']);
    // Without `scopes`, a new key has its maker's.
    expect((await makeKey({ name: 'same' }, creator.key)).scopes).toEqual(['jobs:read', 'keys:write']);
    for (const scopes of [['jobs:write'], ['*'], ['read_only'], ['jobs:read', 'prompts:read']]) {
      const res = await as(creator.key, 'POST', '/v1/api-keys', { name: 'wider', scopes });
      expectError(res, 403, 'permission_error', 'scope_escalation');
      expect(res.body.error.param).toBe('scopes');
    }
    const refused = await as(creator.key, 'POST', '/v1/api-keys', { name: 'wider', scopes: ['jobs:read', 'prompts:write'] });
    expect(refused.body.error.message).toContain("'prompts:write'");
    expect(refused.body.error.message).not.toContain("'jobs:read'");
  });
});

describe('bad input', () => {
  const bad: Array<[string, unknown, string, string]> = [
    ['no name', { scopes: ['jobs:read'] }, 'name', 'missing_required_parameter'],
    ['empty name', { name: '' }, 'name', 'invalid_value'],
    ['name too long', { name: 'n'.repeat(257) }, 'name', 'invalid_value'],
    ['a NUL in the name', { name: 'a\u0000b' }, 'name', 'invalid_characters'],
    ['an unknown scope', { name: 'k', scopes: ['jobs:read', 'jobs:delete'] }, 'scopes[1]', 'invalid_value'],
    ['usage has no write', { name: 'k', scopes: ['usage:write'] }, 'scopes[0]', 'invalid_value'],
    ['no scopes', { name: 'k', scopes: [] }, 'scopes', 'invalid_value'],
    ['scopes a string', { name: 'k', scopes: 'jobs:read' }, 'scopes', 'invalid_value'],
    ['expires_at in the past', { name: 'k', expires_at: 1_000_000 }, 'expires_at', 'invalid_value'],
    ['expires_at not a number', { name: 'k', expires_at: '2030-01-01' }, 'expires_at', 'invalid_value'],
    ['expires_in_days zero', { name: 'k', expires_in_days: 0 }, 'expires_in_days', 'invalid_value'],
    ['expires_in_days fractional', { name: 'k', expires_in_days: 1.5 }, 'expires_in_days', 'invalid_value'],
    ['both expiries', { name: 'k', expires_at: 4_000_000_000, expires_in_days: 3 }, 'expires_in_days', 'invalid_value'],
    ['an unknown field', { name: 'k', admin: true }, 'admin', 'unknown_parameter'],
  ];
  it.each(bad)('POST /v1/api-keys with %s is a 400 naming it', async (_name, body, param, code) => {
    const res = await stack.api('POST', '/v1/api-keys', body);
    expectError(res, 400, 'invalid_request_error', code);
    expect(res.body.error.param).toBe(param);
  });

  it('an unknown scope is named in the message', async () => {
    const res = await stack.api('POST', '/v1/api-keys', { name: 'k', scopes: ['jobs:delete'] });
    expect(res.body.error.message).toContain("'jobs:delete'");
  });

  it('malformed ids, force values and list queries are 400s', async () => {
    for (const id of ['%00', 'key_%00', `key_${'a'.repeat(300)}`, 'job_0000000000000000']) {
      expectError(await stack.api('DELETE', `/v1/api-keys/${id}`), 400, 'invalid_request_error', 'invalid_id');
    }
    const [mine] = (await stack.api('GET', '/v1/api-keys')).body.data;
    expectError(await stack.api('DELETE', `/v1/api-keys/${mine.id}?force=maybe`), 400, 'invalid_request_error', 'invalid_value');
    for (const query of ['limit=0', 'limit=101', 'after=nope', 'after=%00', 'x=1']) {
      expect((await stack.api('GET', `/v1/api-keys?${query}`)).status, query).toBe(400);
    }
  });
});

describe('the CLI', () => {
  const cli = async (...args: string[]) => {
    const run = spawnApp('cli', { DATABASE_URL: stack.database.url }, ['tenant', 'keys', ...args]);
    const { code } = await run.exited();
    return { code, output: run.tail().trim() };
  };
  const json = (output: string) => JSON.parse(output.split('\n').at(-1)!);

  it('creates, lists and revokes keys', async () => {
    const tenant = await createTenant(stack.db.db, 'cli keys');
    const made = await cli('create', tenant.tenantId, '--name', 'from cli', '--scopes', 'prompts:write,jobs:read', '--expires-in-days', '7');
    expect(made.code, made.output).toBe(0);
    const created = json(made.output);
    expect(created).toMatchObject({ tenant_id: tenant.tenantId, object: 'api_key', name: 'from cli', scopes: ['jobs:read', 'prompts:write'], status: 'active' });
    expect(created.key).toMatch(/^lh_sk_/);
    expect(Math.abs(created.expires_at - (Date.now() / 1000 + 7 * 86_400))).toBeLessThan(60);
    expect((await as(created.key, 'GET', '/v1/prompts')).status).toBe(200);
    expectError(await as(created.key, 'POST', '/v1/jobs', jobBody()), 403, 'permission_error', 'insufficient_scope');

    const list = await cli('list', tenant.tenantId);
    expect(list.code, list.output).toBe(0);
    const listed = json(list.output);
    expect(listed).toMatchObject({ tenant_id: tenant.tenantId, object: 'list' });
    expect(listed.data.map((k: any) => k.name)).toEqual(['from cli', null]);
    expect(list.output).not.toContain(created.key);

    const revoked = await cli('revoke', tenant.tenantId, created.id);
    expect(revoked.code, revoked.output).toBe(0);
    expect(json(revoked.output)).toMatchObject({ tenant_id: tenant.tenantId, id: created.id, status: 'revoked' });
    // The API process learns of it within API_KEY_CACHE_TTL_MS.
    await until('the revoked key to be refused', async () => (await as(created.key, 'GET', '/v1/prompts')).status === 401, 5_000);
  });

  it('keeps the last key unless --force, and refuses bad input', async () => {
    const tenant = await createTenant(stack.db.db, 'cli last key');
    const [only] = json((await cli('list', tenant.tenantId)).output).data;
    const kept = await cli('revoke', tenant.tenantId, only.id);
    expect(kept.code).not.toBe(0);
    expect(kept.output).toContain('--force');
    expect((await as(tenant.apiKey, 'GET', '/v1/jobs')).status).toBe(200);
    const forced = await cli('revoke', tenant.tenantId, only.id, '--force');
    expect(forced.code, forced.output).toBe(0);
    expect(json(forced.output)).toMatchObject({ id: only.id, status: 'revoked' });

    for (const [args, message] of [
      [['create', tenant.tenantId, '--name', 'k', '--scopes', 'jobs:read,jobs:delete'], "'jobs:delete'"],
      [['create', tenant.tenantId], '--name'],
      [['create', tenant.tenantId, '--name', 'k', '--expires-in-days', 'soon'], '--expires-in-days'],
      [['create', 'ten_doesnotexist0000', '--name', 'k'], 'no tenant'],
      [['revoke', tenant.tenantId, 'key_doesnotexist0000'], 'no key'],
      [['list', 'ten_doesnotexist0000'], 'no tenant'],
    ] as const) {
      const run = await cli(...args);
      expect(run.code, args.join(' ')).not.toBe(0);
      expect(run.output, args.join(' ')).toContain(message);
    }
  });
});
