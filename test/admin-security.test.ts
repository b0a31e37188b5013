/**
 * Admin access under attack, through the real API: guessing credentials (throttled per client
 * address and overall, counted atomically, behind a configurable set of trusted proxies), cross-site
 * requests riding the session cookie (refused by Origin / Sec-Fetch-Site, bull-board's API takes
 * JSON only), and sessions (server-side, revoked by logout, `Secure` by configuration, a bad cookie
 * is a 401). The last part replays the cross-site attack in headless Chromium from a page on
 * another port of the same host (same-site, so SameSite=Strict does not stop the cookie).
 * Screenshots go to test-output/admin-security/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type ApiConfig } from '@longhaul/api';
import { createAddressPolicy } from '@longhaul/callbacks';
import { createQueues, type Queues } from '@longhaul/queue';
import { createLogger } from '@longhaul/runtime';
import { loadEnv } from '../apps/api/src/env.ts';
import { type Stack, startStack } from './harness.ts';
import { startPrivateRedis } from './private-redis.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(import.meta.dirname, '..', 'test-output', 'admin-security');
const TOKEN = 'admin_token_for_security_tests_0123456789';
const BASIC = 'ops:basic-password-0123456789';
const LIMIT = 10;

let stack: Stack;
/** The API's log lines (warn and above): which admin requests were answered how. */
const lines: string[] = [];
const servers: { close(): Promise<void> }[] = [];

/** Another API process on the stack's database and Redis (or on `queues`), with other settings. */
async function apiWith(config: Partial<ApiConfig>, queues: Queues = stack.queues): Promise<string> {
  const app = createServer({
    db: stack.db.db,
    queues,
    logger: createLogger({ service: 'test', level: 'silent' }),
    clock: () => new Date(),
    config: {
      bodyLimit: '1mb',
      jobDeadlineMs: 3_600_000,
      idempotencyTtlMs: 86_400_000,
      openaiWebhookSecrets: [],
      callbackPolicy: createAddressPolicy(['127.0.0.0/8']),
      ...config,
    },
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push({
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Forget every failed-credential count (each test starts with a clean slate for 127.0.0.1). */
async function resetThrottle(): Promise<void> {
  const keys = await stack.redis.keys(`${stack.prefix}:admin-*failures*`);
  if (keys.length) await stack.redis.del(...keys);
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const basic = (credentials: string) => ({ authorization: `Basic ${Buffer.from(credentials).toString('base64')}` });
const form = (token: string) => new URLSearchParams({ token, next: '/admin/jobs' });

async function login(url = stack.apiUrl, token = TOKEN): Promise<{ cookie: string; setCookie: string }> {
  const res = await fetch(`${url}/admin/login`, { method: 'POST', headers: { origin: url }, body: form(token), redirect: 'manual' });
  expect(res.status, await res.text()).toBe(303);
  const setCookie = res.headers.get('set-cookie')!;
  return { cookie: setCookie.split(';')[0]!, setCookie };
}

/** A request with a Host header of our choosing (fetch sends its own). */
function rawRequest(url: string, options: { method: string; headers: Record<string, string>; body?: string }): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method, headers: options.headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

function tally(statuses: number[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
}

/** Work items in one queue, read through bull-board's API with the Bearer token. */
async function counts(queue: string, url = stack.apiUrl): Promise<Record<string, number>> {
  const res = await fetch(`${url}/admin/queues/api/queues?activeQueue=${queue}`, { headers: bearer(TOKEN) });
  expect(res.status).toBe(200);
  const { queues } = (await res.json()) as { queues: { name: string; counts: Record<string, number> }[] };
  return queues.find((q) => q.name === queue)!.counts;
}

beforeAll(async () => {
  stack = await startStack({
    startWorker: false,
    api: { admin: { token: TOKEN } },
    logLevel: 'warn',
    logDestination: { write: (chunk: string) => void lines.push(...chunk.split('\n').filter(Boolean)) },
  });
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await stack?.stop();
});
beforeEach(resetThrottle);

describe('guessing admin credentials', () => {
  it('400 parallel wrong Bearer tokens: at most 10 reach the comparison (401), the rest are 429 with Retry-After', async () => {
    const responses = await Promise.all(Array.from({ length: 400 }, (_, i) => fetch(`${stack.apiUrl}/admin/jobs`, { headers: bearer(`wrong-token-${i}-0123456789`) })));
    const statuses = responses.map((r) => r.status);
    expect(tally(statuses)).toEqual({ 401: LIMIT, 429: 400 - LIMIT });
    const throttled = responses.find((r) => r.status === 429)!;
    expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThan(60);
    expect((await throttled.json()).error).toMatchObject({ type: 'rate_limit_error', code: 'admin_auth_throttled' });
    // The right token is no way out while the address is locked: it gets the same answer.
    const right = await fetch(`${stack.apiUrl}/admin/jobs`, { headers: bearer(TOKEN) });
    expect(right.status).toBe(429);
  });

  it('400 parallel wrong logins through the form: at most 10 are checked', async () => {
    const responses = await Promise.all(
      Array.from({ length: 400 }, (_, i) => fetch(`${stack.apiUrl}/admin/login`, { method: 'POST', body: form(`wrong-${i}`), redirect: 'manual' })),
    );
    expect(tally(responses.map((r) => r.status))).toEqual({ 401: LIMIT, 429: 400 - LIMIT });
    const locked = await fetch(`${stack.apiUrl}/admin/login`, { method: 'POST', body: form(TOKEN), redirect: 'manual' });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(60);
    expect(await locked.text()).toContain('Too many failed attempts');
  });

  it('counts the token per address however it is sent (form, Bearer), each Basic user apart; a success clears its own count only', async () => {
    const url = await apiWith({ admin: { token: TOKEN, basicAuth: BASIC } });
    for (let i = 0; i < 4; i++) expect((await fetch(`${url}/admin/login`, { method: 'POST', body: form(`wrong-${i}`), redirect: 'manual' })).status).toBe(401);
    for (let i = 0; i < 3; i++) expect((await fetch(`${url}/admin/queues/api/queues`, { headers: bearer(`wrong-${i}-0123456789`) })).status).toBe(401);
    for (let i = 0; i < 2; i++) expect((await fetch(`${url}/admin/queues/api/queues`, { headers: basic(`ops:wrong-${i}`) })).status).toBe(401);
    // The right Basic credentials still work, and clear their own count (not the token's).
    expect((await fetch(`${url}/admin/queues/api/queues`, { headers: basic(BASIC) })).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await fetch(`${url}/admin/jobs`, { headers: bearer(`again-${i}-0123456789`) })).status).toBe(401);
    // Ten wrong tokens from this address: the token is locked here, through the form and the header alike...
    expect((await fetch(`${url}/admin/jobs`, { headers: bearer(TOKEN) })).status).toBe(429);
    expect((await fetch(`${url}/admin/login`, { method: 'POST', body: form(TOKEN), redirect: 'manual' })).status).toBe(429);
    // ...while another credential from the same address is not (the address's own cap is higher).
    expect((await fetch(`${url}/admin/jobs`, { headers: basic(BASIC) })).status).toBe(200);
    for (let i = 0; i < LIMIT; i++) expect((await fetch(`${url}/admin/jobs`, { headers: basic(`ops:again-${i}`) })).status).toBe(401);
    expect((await fetch(`${url}/admin/jobs`, { headers: basic(BASIC) })).status).toBe(429);
  });

  it('ignores X-Forwarded-For unless the proxy is trusted (TRUST_PROXY), then counts each client apart', async () => {
    // Not trusted (the default): every request is from 127.0.0.1, whatever the header says.
    for (let i = 0; i < LIMIT; i++) {
      const res = await fetch(`${stack.apiUrl}/admin/jobs`, { headers: { ...bearer(`wrong-${i}-0123456789`), 'x-forwarded-for': '203.0.113.1' } });
      expect(res.status).toBe(401);
    }
    expect((await fetch(`${stack.apiUrl}/admin/jobs`, { headers: { ...bearer('wrong-0123456789'), 'x-forwarded-for': '203.0.113.2' } })).status).toBe(429);
    await resetThrottle();

    const url = await apiWith({ admin: { token: TOKEN }, trustProxy: loadEnv({ TRUST_PROXY: 'loopback' }).TRUST_PROXY });
    const from = (address: string, token: string) => fetch(`${url}/admin/jobs`, { headers: { ...bearer(token), 'x-forwarded-for': address } });
    for (let i = 0; i < LIMIT; i++) expect((await from('203.0.113.1', `wrong-${i}-0123456789`)).status).toBe(401);
    expect((await from('203.0.113.1', TOKEN)).status).toBe(429);
    // Another client behind the same proxy is not locked out by the first.
    expect((await from('203.0.113.2', 'wrong-0123456789')).status).toBe(401);
    expect((await from('203.0.113.2', TOKEN)).status).toBe(200);
    // IPv6 clients are counted by /64 (one subscriber's whole prefix is one client).
    for (let i = 0; i < LIMIT; i++) expect((await from(`2001:db8:1:2::${i + 1}`, `wrong-${i}-0123456789`)).status).toBe(401);
    expect((await from('2001:db8:1:2:ffff::1', 'wrong-0123456789')).status).toBe(429);
    expect((await from('2001:db8:1:3::1', TOKEN)).status).toBe(200);
  });

  it('bounds a guess spread over many addresses with a cap on all failures together', async () => {
    const url = await apiWith({ admin: { token: TOKEN, maxFailuresGlobal: 15 }, trustProxy: ['loopback'] });
    const from = (address: string, token: string) => fetch(`${url}/admin/jobs`, { headers: { ...bearer(token), 'x-forwarded-for': address } });
    const statuses: number[] = [];
    for (const address of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) {
      for (let i = 0; i < LIMIT; i++) statuses.push((await from(address, `wrong-${i}-0123456789`)).status);
    }
    expect(tally(statuses)).toEqual({ 401: 15, 429: 15 });
    // While the cap holds, nobody's credential is checked; a live session still works.
    expect((await from('198.51.100.9', TOKEN)).status).toBe(429);
    await resetThrottle();
    const { cookie } = await login(url);
    for (let i = 0; i < 15; i++) await from(`198.51.100.${20 + i}`, `wrong-${i}-0123456789`);
    expect((await from('198.51.100.9', TOKEN)).status).toBe(429);
    expect((await fetch(`${url}/admin/jobs`, { headers: { cookie } })).status).toBe(200);
  });

  it('fails closed when Redis is down: no credential is checked (503), sessions cannot be verified', async () => {
    const redis = await startPrivateRedis();
    const stopped = { redis: false };
    const queues = createQueues({ redisUrl: redis.url, prefix: stack.prefix, role: 'producer' });
    try {
      if (queues.connection.status !== 'ready') await new Promise((r) => queues.connection.once('ready', r));
      const url = await apiWith({ admin: { token: TOKEN } }, queues);
      const { cookie } = await login(url);
      expect((await fetch(`${url}/admin/jobs`, { headers: { cookie } })).status).toBe(200);
      await redis.stop();
      stopped.redis = true;
      await new Promise((r) => setTimeout(r, 200));
      const viaBearer = await fetch(`${url}/admin/jobs`, { headers: bearer(TOKEN) });
      expect(viaBearer.status).toBe(503);
      expect((await viaBearer.json()).error.code).toBe('admin_auth_unavailable');
      expect((await fetch(`${url}/admin/jobs`, { headers: { cookie } })).status).toBe(503);
      expect((await fetch(`${url}/admin/login`, { method: 'POST', body: form(TOKEN), redirect: 'manual' })).status).toBe(503);
    } finally {
      await queues.close();
      if (!stopped.redis) await redis.stop();
    }
  });
});

describe('what the README promises about the throttle and sessions', () => {
  const wrong = (url: string) => fetch(`${url}/admin/jobs`, { headers: bearer('wrong_token_guess_0123456789') });
  const right = (url: string) => fetch(`${url}/admin/jobs`, { headers: bearer(TOKEN) });

  it('shares the failure count between API processes: failures at one lock the address at the other', async () => {
    const other = await apiWith({ admin: { token: TOKEN } });
    expect((await right(stack.apiUrl)).status).toBe(200);
    const statuses = [];
    for (let i = 0; i < LIMIT; i++) statuses.push((await wrong(other)).status);
    expect(tally(statuses)).toEqual({ 401: LIMIT });
    const locked = await right(stack.apiUrl);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('lets the address in again once the window has passed, not before', async () => {
    const windowSeconds = 2;
    const url = await apiWith({ admin: { token: TOKEN, failureWindowSeconds: windowSeconds } });
    const firstFailure = Date.now();
    for (let i = 0; i < LIMIT; i++) expect((await wrong(url)).status).toBe(401);
    expect((await right(url)).status).toBe(429);
    // Wait for the lock to lift (the observable), then check when it did: never before the window.
    let status = 429;
    while (status === 429 && Date.now() - firstFailure < 30_000) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await right(url)).status;
    }
    expect(status).toBe(200);
    expect(Date.now() - firstFailure).toBeGreaterThanOrEqual(windowSeconds * 1000 - 50);
  });

  it('ends a session after its lifetime (ADMIN_SESSION_TTL_SECONDS), not before', async () => {
    const ttlMs = 2_000;
    const url = await apiWith({ admin: { token: TOKEN, sessionTtlMs: ttlMs } });
    const loggedInAt = Date.now();
    const { cookie, setCookie } = await login(url);
    expect(setCookie).toMatch(/; Max-Age=2(;|$)/);
    expect((await fetch(`${url}/admin/jobs`, { headers: { cookie } })).status).toBe(200);
    let status = 200;
    while (status === 200 && Date.now() - loggedInAt < 30_000) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await fetch(`${url}/admin/jobs`, { headers: { cookie } })).status;
    }
    expect(status).toBe(401);
    expect(Date.now() - loggedInAt).toBeGreaterThanOrEqual(ttlMs - 50);
  });
});

describe('admin security settings', () => {
  it('parses TRUST_PROXY as Express takes it, off by default', () => {
    expect(loadEnv({}).TRUST_PROXY).toBe(false);
    expect(loadEnv({ TRUST_PROXY: 'false' }).TRUST_PROXY).toBe(false);
    expect(loadEnv({ TRUST_PROXY: 'true' }).TRUST_PROXY).toBe(true);
    expect(loadEnv({ TRUST_PROXY: '2' }).TRUST_PROXY).toBe(2);
    expect(loadEnv({ TRUST_PROXY: 'loopback, 10.0.0.0/8,fd00::/8, 192.0.2.7' }).TRUST_PROXY).toEqual(['loopback', '10.0.0.0/8', 'fd00::/8', '192.0.2.7']);
    for (const bad of ['10.0.0.0/33', 'loopbak', '10.0.0.0/8,', 'nginx']) {
      expect(() => loadEnv({ TRUST_PROXY: bad }), bad).toThrow(/^invalid API configuration: TRUST_PROXY: entry \d is not an IP address/);
    }
  });

  it('parses ADMIN_PUBLIC_ORIGIN, ADMIN_COOKIE_SECURE and the throttle and session settings', () => {
    const defaults = loadEnv({});
    expect(defaults).toMatchObject({
      ADMIN_COOKIE_SECURE: 'auto',
      ADMIN_SESSION_TTL_SECONDS: 43_200,
      ADMIN_AUTH_MAX_FAILURES_PER_CREDENTIAL: 10,
      ADMIN_AUTH_MAX_FAILURES: 50,
      ADMIN_AUTH_MAX_FAILURES_GLOBAL: 1000,
    });
    expect(defaults.ADMIN_PUBLIC_ORIGIN).toBeUndefined();
    expect(loadEnv({ ADMIN_PUBLIC_ORIGIN: 'https://admin.example.com/, http://10.1.2.3:8080' }).ADMIN_PUBLIC_ORIGIN).toEqual(['https://admin.example.com', 'http://10.1.2.3:8080']);
    expect(() => loadEnv({ ADMIN_PUBLIC_ORIGIN: 'https://admin.example.com/admin' })).toThrow(/ADMIN_PUBLIC_ORIGIN: entry 1 is not an origin/);
    expect(loadEnv({ ADMIN_COOKIE_SECURE: 'true' }).ADMIN_COOKIE_SECURE).toBe(true);
    expect(loadEnv({ ADMIN_COOKIE_SECURE: 'false' }).ADMIN_COOKIE_SECURE).toBe(false);
    expect(() => loadEnv({ ADMIN_COOKIE_SECURE: 'maybe' })).toThrow(/ADMIN_COOKIE_SECURE/);
  });
});

describe('cross-site requests with the session cookie', () => {
  let cookie: string;
  beforeAll(async () => {
    ({ cookie } = await login());
    await stack.queues.add('poll', { jobId: 'job_csrfdelayed0001', attempt: 0 }, { delayMs: 3_600_000 });
  });

  it('refuses a PUT from another origin (retry, clean) and a text/plain form to submit/add; nothing changes', async () => {
    const before = await counts('submit');
    const evil = { cookie, origin: 'http://evil.example' };
    for (const path of ['/admin/queues/api/queues/submit/retry/failed', '/admin/queues/api/queues/poll/clean/delayed']) {
      const res = await fetch(`${stack.apiUrl}${path}`, { method: 'PUT', headers: evil });
      expect(res.status, path).toBe(403);
      expect((await res.json()).error).toMatchObject({ code: 'csrf_refused' });
    }
    // Same site (another port of this host: the browser sends the SameSite=Strict cookie).
    const sameSite = 'http://127.0.0.1:9';
    const add = await fetch(`${stack.apiUrl}/admin/queues/api/queues/submit/add`, {
      method: 'POST',
      headers: { cookie, origin: sameSite, 'sec-fetch-site': 'same-site', 'content-type': 'text/plain' },
      body: '{"name":"x","data":{}}',
    });
    expect(add.status).toBe(403);
    expect((await counts('submit')).waiting).toBe(before.waiting);
    expect((await counts('poll')).delayed).toBe(1);
  });

  it('refuses a cookie request with neither Origin nor Sec-Fetch-Site, and a cross-site Sec-Fetch-Site', async () => {
    const none = await fetch(`${stack.apiUrl}/admin/queues/api/queues/poll/promote`, { method: 'PUT', headers: { cookie } });
    expect(none.status).toBe(403);
    expect((await none.json()).error.code).toBe('csrf_refused');
    const crossSite = await fetch(`${stack.apiUrl}/admin/queues/api/queues/poll/promote`, { method: 'PUT', headers: { cookie, 'sec-fetch-site': 'cross-site' } });
    expect(crossSite.status).toBe(403);
    const nullOrigin = await fetch(`${stack.apiUrl}/admin/queues/api/queues/poll/promote`, { method: 'PUT', headers: { cookie, origin: 'null' } });
    expect(nullOrigin.status).toBe(403);
    expect((await counts('poll')).delayed).toBe(1);
  });

  it('bull-board takes JSON only: a same-origin text/plain or form body is 415; a bodyless PUT needs no type', async () => {
    const own = { cookie, origin: stack.apiUrl };
    const before = await counts('submit');
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await fetch(`${stack.apiUrl}/admin/queues/api/queues/submit/add`, { method: 'POST', headers: { ...own, 'content-type': type }, body: '{"name":"x","data":{}}' });
      expect(res.status, type).toBe(415);
      expect((await res.json()).error.code).toBe('unsupported_media_type');
    }
    expect((await counts('submit')).waiting).toBe(before.waiting);
    // What bull-board's own page sends: Origin (or Sec-Fetch-Site: same-origin), JSON or no body.
    const retry = await fetch(`${stack.apiUrl}/admin/queues/api/queues/submit/retry/failed`, { method: 'PUT', headers: { cookie, 'sec-fetch-site': 'same-origin' } });
    expect(retry.status).toBe(200);
    const pause = await fetch(`${stack.apiUrl}/admin/queues/api/queues/cancel/pause`, { method: 'PUT', headers: own });
    expect(pause.status).toBe(200);
    const resume = await fetch(`${stack.apiUrl}/admin/queues/api/queues/cancel/resume`, { method: 'PUT', headers: { ...own, 'content-type': 'application/json' }, body: '{}' });
    expect(resume.status).toBe(200);
  });

  it('lets scripts with a Bearer token in without Origin; Basic credentials are checked like the cookie when a browser sends them', async () => {
    expect((await fetch(`${stack.apiUrl}/admin/queues/api/queues/cancel/pause`, { method: 'PUT', headers: bearer(TOKEN) })).status).toBe(200);
    expect((await fetch(`${stack.apiUrl}/admin/queues/api/queues/cancel/resume`, { method: 'PUT', headers: { ...bearer(TOKEN), origin: 'http://evil.example' } })).status).toBe(
      200,
    );
    const url = await apiWith({ admin: { basicAuth: BASIC } });
    // A browser replays cached Basic credentials on a cross-site request: refused.
    const crossSite = await fetch(`${url}/admin/queues/api/queues/cancel/pause`, {
      method: 'PUT',
      headers: { ...basic(BASIC), origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
    });
    expect(crossSite.status).toBe(403);
    // curl -u: no Origin, no Sec-Fetch-Site, no cookie.
    expect((await fetch(`${url}/admin/queues/api/queues/cancel/pause`, { method: 'PUT', headers: basic(BASIC) })).status).toBe(200);
    expect((await fetch(`${url}/admin/queues/api/queues/cancel/resume`, { method: 'PUT', headers: basic(BASIC) })).status).toBe(200);
  });

  it('accepts the configured public origin (ADMIN_PUBLIC_ORIGIN) behind a proxy, and refuses login and logout from elsewhere', async () => {
    const url = await apiWith({ admin: { token: TOKEN, publicOrigins: ['https://admin.example.com'] } });
    const { cookie: session } = await login(url);
    const viaProxy = await fetch(`${url}/admin/queues/api/queues/cancel/pause`, { method: 'PUT', headers: { cookie: session, origin: 'https://admin.example.com' } });
    expect(viaProxy.status).toBe(200);
    await fetch(`${url}/admin/queues/api/queues/cancel/resume`, { method: 'PUT', headers: bearer(TOKEN) });
    const evilLogin = await fetch(`${url}/admin/login`, { method: 'POST', headers: { origin: 'http://evil.example' }, body: form(TOKEN), redirect: 'manual' });
    expect(evilLogin.status).toBe(403);
    const evilLogout = await fetch(`${url}/admin/logout`, { method: 'POST', headers: { cookie: session, origin: 'http://evil.example' }, redirect: 'manual' });
    expect(evilLogout.status).toBe(403);
    expect((await fetch(`${url}/admin/jobs`, { headers: { cookie: session } })).status).toBe(200);
  });
});

describe('admin sessions', () => {
  it('are cookies with HttpOnly, SameSite=Strict, Path=/admin and a Max-Age, holding no token', async () => {
    const { setCookie } = await login();
    expect(setCookie).toMatch(/^longhaul_admin=[A-Za-z0-9_.-]+;/);
    expect(setCookie).toMatch(/; HttpOnly/i);
    expect(setCookie).toMatch(/; SameSite=Strict/i);
    expect(setCookie).toMatch(/; Path=\/admin(;|$)/);
    expect(setCookie).toMatch(/; Max-Age=43200/);
    expect(setCookie).not.toContain(TOKEN);
  });

  it('end at logout: the old cookie is refused afterwards', async () => {
    const { cookie } = await login();
    expect((await fetch(`${stack.apiUrl}/admin/jobs`, { headers: { cookie } })).status).toBe(200);
    const logout = await fetch(`${stack.apiUrl}/admin/logout`, { method: 'POST', headers: { cookie, origin: stack.apiUrl }, redirect: 'manual' });
    expect(logout.status).toBe(303);
    expect(logout.headers.get('location')).toBe('/admin/login');
    expect(logout.headers.get('set-cookie')).toMatch(/longhaul_admin=;/);
    // Replaying the cookie (a copy kept by whoever saw it) no longer works.
    const replay = await fetch(`${stack.apiUrl}/admin/queues/api/queues`, { headers: { cookie } });
    expect(replay.status).toBe(401);
    expect((await fetch(`${stack.apiUrl}/admin/jobs`, { headers: { cookie, accept: 'text/html' } })).status).toBe(401);
  });

  it('do not end on GET /admin/logout (no logout by link or image): a page with a POST form instead', async () => {
    const { cookie } = await login();
    const page = await fetch(`${stack.apiUrl}/admin/logout`, { headers: { cookie, accept: 'text/html' }, redirect: 'manual' });
    expect(page.status).toBe(200);
    expect(page.headers.get('set-cookie')).toBeNull();
    expect(await page.text()).toMatch(/<form[^>]*method="post"[^>]*action="\/admin\/logout"/);
    expect((await fetch(`${stack.apiUrl}/admin/jobs`, { headers: { cookie } })).status).toBe(200);
  });

  it('all end when the admin token changes', async () => {
    const { cookie } = await login();
    const rotated = await apiWith({ admin: { token: 'a_new_admin_token_0123456789abcdef' } });
    expect((await fetch(`${rotated}/admin/jobs`, { headers: { cookie } })).status).toBe(401);
    expect((await fetch(`${stack.apiUrl}/admin/jobs`, { headers: { cookie } })).status).toBe(200);
  });

  it('answer a malformed or unknown cookie with 401 (the login form for a page), never 500', async () => {
    for (const value of ['%E0%A4%A', '%', 'x', 'a.b', `${'A'.repeat(43)}.${'B'.repeat(43)}`, '\u00e9t\u00e9', 'longhaul_admin=1']) {
      const cookie = `longhaul_admin=${value}`;
      const api = await fetch(`${stack.apiUrl}/admin/queues/api/queues`, { headers: { cookie } });
      expect(api.status, value).toBe(401);
      expect((await api.json()).error.code).toBe('admin_auth_required');
      const page = await fetch(`${stack.apiUrl}/admin/jobs`, { headers: { cookie, accept: 'text/html' } });
      expect(page.status, value).toBe(401);
      expect(await page.text()).toContain('name="token"');
      const board = await fetch(`${stack.apiUrl}/admin/queues/`, { headers: { cookie, accept: 'text/html' } });
      expect(board.status, value).toBe(401);
      const logout = await fetch(`${stack.apiUrl}/admin/logout`, { method: 'POST', headers: { cookie, origin: stack.apiUrl }, redirect: 'manual' });
      expect(logout.status, value).toBe(303);
      const relogin = await fetch(`${stack.apiUrl}/admin/login`, { method: 'POST', headers: { cookie, origin: stack.apiUrl }, body: form(TOKEN), redirect: 'manual' });
      expect(relogin.status, value).toBe(303);
    }
    expect(lines.filter((l) => l.includes('"statusCode":500'))).toEqual([]);
  });

  it('set Secure by configuration: always, never, or (auto) unless the browser talks plain HTTP to this machine', async () => {
    const secure = async (url: string, headers: Record<string, string> = {}) => {
      const res = await rawRequest(`${url}/admin/login`, {
        method: 'POST',
        headers: { origin: url, 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body: form(TOKEN).toString(),
      });
      expect(res.status).toBe(303);
      return /; Secure/i.test(String(res.headers['set-cookie']));
    };
    const always = await apiWith({ admin: { token: TOKEN, cookieSecure: true } });
    expect(await secure(always)).toBe(true);
    const never = await apiWith({ admin: { token: TOKEN, cookieSecure: false } });
    expect(await secure(never, { origin: 'https://admin.example.com', 'sec-fetch-site': 'same-origin' })).toBe(false);
    // auto (the default): npm start on http://127.0.0.1 works...
    expect(await secure(stack.apiUrl)).toBe(false);
    // ...and behind TLS termination (the browser's Origin is https, or it reached us by name) the cookie is Secure.
    expect(await secure(stack.apiUrl, { origin: 'https://admin.example.com', 'sec-fetch-site': 'same-origin' })).toBe(true);
    expect(await secure(stack.apiUrl, { host: 'admin.example.com', origin: 'http://admin.example.com' })).toBe(true);
  });
});

describe.skipIf(!existsSync(CHROMIUM))(`cross-site attack in headless Chromium${existsSync(CHROMIUM) ? '' : ` (skipped: ${CHROMIUM} is missing)`}`, () => {
  let browser: Browser;
  let attacker: Server;
  let attackerUrl: string;
  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    const board = `${stack.apiUrl}/admin/queues/api/queues`;
    // The attacker's pages, on another port of 127.0.0.1: same site as the API, another origin.
    const pages: Record<string, string> = {
      '/form': `<!doctype html><title>Win a prize</title><h1>Loading your prize…</h1>
<form id="f" method="post" enctype="text/plain" action="${board}/submit/add"><input type="hidden" name='{"name":"x","data":{"a":"' value='"}}'></form>
<script>setTimeout(() => document.getElementById('f').submit(), 300)</script>`,
      '/fetch': `<!doctype html><title>Win a prize</title><h1>Checking…</h1><pre id="out"></pre>
<script>
(async () => {
  const out = {};
  try { const r = await fetch('${board}/poll/clean/delayed', { method: 'PUT', credentials: 'include' }); out.put = r.status; } catch (e) { out.put = 'blocked: ' + e.message; }
  try { await fetch('${board}/submit/add', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{"name":"x","data":{}}' }); out.noCors = 'sent (opaque)'; } catch (e) { out.noCors = 'blocked: ' + e.message; }
  document.getElementById('out').textContent = JSON.stringify(out, null, 2);
  document.title = 'done';
})();
</script>`,
    };
    attacker = createHttpServer((req, res) => {
      const body = pages[req.url ?? ''];
      res.writeHead(body ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' }).end(body ?? 'not found');
    });
    await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', () => r()));
    attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((r) => (attacker ? attacker.close(() => r()) : r()));
  });

  it('a page on another port of the same host cannot add or clean work items with the logged-in admin cookie; the admin UI itself still works', async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();
    try {
      await stack.queues.add('poll', { jobId: 'job_csrfbrowser0001', attempt: 0 }, { delayMs: 3_600_000 });
      const delayedBefore = (await counts('poll')).delayed!;
      const waitingBefore = (await counts('submit')).waiting!;
      const seen: { method: string; url: string; status: number }[] = [];
      page.on('response', (r) => {
        if (r.url().startsWith(stack.apiUrl)) seen.push({ method: r.request().method(), url: r.url().slice(stack.apiUrl.length), status: r.status() });
      });

      // The admin logs in through the form (a real browser POST from our own page).
      await page.goto(`${stack.apiUrl}/admin/login?next=/admin/jobs`);
      await page.fill('input[name="token"]', TOKEN);
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/jobs`), page.click('form.login button[type="submit"]')]);
      expect((await context.cookies(`${stack.apiUrl}/admin/`)).map((c) => c.name)).toContain('longhaul_admin');

      // Then visits the attacker's pages in the same browser.
      await page.goto(`${attackerUrl}/fetch`);
      await page.waitForFunction(() => document.title === 'done', undefined, { timeout: 10_000 });
      // biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator, not a DOM node
      const fetchResults = JSON.parse(await page.locator('#out').innerText()) as { put: unknown; noCors: unknown };
      await page.screenshot({ path: join(SCREENSHOTS, '1-attacker-fetch.png'), fullPage: true });
      expect(String(fetchResults.put)).toMatch(/^blocked/); // the preflight gets no CORS answer
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/queues/api/queues/submit/add`), page.goto(`${attackerUrl}/form`)]);
      await page.waitForLoadState('load');
      // biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator, not a DOM node
      const shown = await page.locator('body').innerText();
      await page.screenshot({ path: join(SCREENSHOTS, '2-attacker-form-result.png'), fullPage: true });
      expect(shown).toContain('csrf_refused');

      const adds = seen.filter((r) => r.url === '/admin/queues/api/queues/submit/add');
      // The no-cors fetch and the form both reached the API, and both were refused.
      expect(adds.map((r) => `${r.method} ${r.status}`)).toEqual(['POST 403', 'POST 403']);
      expect((await counts('submit')).waiting).toBe(waitingBefore);
      expect((await counts('poll')).delayed).toBe(delayedBefore);

      // bull-board's own page still acts: its requests are same-origin (Promote all, confirmed).
      await page.goto(`${stack.apiUrl}/admin/queues/queue/poll?status=delayed`);
      await page.getByRole('button', { name: 'Promote all' }).click();
      const promoted = page.waitForResponse((r) => r.url() === `${stack.apiUrl}/admin/queues/api/queues/poll/promote`);
      await page.getByRole('button', { name: 'Confirm' }).click();
      expect((await promoted).status()).toBe(200);
      expect((await counts('poll')).delayed).toBe(0);
      await page.waitForLoadState('networkidle');
      await page.screenshot({ path: join(SCREENSHOTS, '3-board-promoted.png'), fullPage: true });

      // Logging out is a form POST from our pages; the session is over afterwards.
      const cookie = (await context.cookies(`${stack.apiUrl}/admin/`)).find((c) => c.name === 'longhaul_admin')!;
      await page.goto(`${stack.apiUrl}/admin/jobs`);
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/login`), page.click('header form button[type="submit"]')]);
      await page.screenshot({ path: join(SCREENSHOTS, '4-logged-out.png'), fullPage: true });
      expect((await fetch(`${stack.apiUrl}/admin/jobs`, { headers: { cookie: `longhaul_admin=${cookie.value}` } })).status).toBe(401);
      // bull-board's "Log out" link leads to the same POST form.
      await page.goto(`${stack.apiUrl}/admin/logout`);
      await page.screenshot({ path: join(SCREENSHOTS, '5-logout-page.png'), fullPage: true });
      expect(await page.locator('form[method="post"][action="/admin/logout"] button').count()).toBe(1);
    } finally {
      await context.close();
    }
  });
});
