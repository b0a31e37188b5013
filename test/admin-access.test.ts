/**
 * Admin access with named admins (ADMIN_USERS, hashes made by hash-password), through the real
 * API over plain HTTP: the lockout counts the user name tried (across every address) and the
 * client address (across every name, a higher cap), X-Forwarded-For counts only from a trusted
 * proxy, and every admin action (a job's cancel, bull-board's retry and clean, logins, logouts,
 * wrong credentials) is in the audit log at /admin/audit under the name of whoever did it. The
 * last part opens the log in headless Chromium; screenshots go to test-output/admin-access/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type ApiConfig } from '@longhaul/api';
import { createAddressPolicy } from '@longhaul/callbacks';
import { type Database, createDb } from '@longhaul/db';
import { createLogger } from '@longhaul/runtime';
import { loadEnv } from '../apps/api/src/env.ts';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';

const ROOT = join(import.meta.dirname, '..');
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(ROOT, 'test-output', 'admin-access');
const TOKEN = 'admin_token_for_access_tests_0123456789';
const PASSWORD = { alice: 'alice-correct-horse-1', bob: 'bob-battery-staple-22' } as const;

let stack: Stack;
let users: NonNullable<ApiConfig['admin']>['users'];
const servers: { close(): Promise<void> }[] = [];

/** `node apps/api/src/admin/hash-password.ts [name]` with the password on standard input. */
function hashPassword(name: string | undefined, password: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'apps/api/src/admin/hash-password.ts', ...(name ? [name] : [])], {
    cwd: ROOT,
    input: `${password}\n`,
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Another API process on the stack's database and Redis, with other settings. */
async function apiWith(config: Partial<ApiConfig>, db: Database = stack.db.db): Promise<string> {
  const app = createServer({
    db,
    queues: stack.queues,
    logger: createLogger({ service: 'test', level: 'silent' }),
    clock: () => new Date(),
    config: { bodyLimit: '1mb', jobDeadlineMs: 3_600_000, idempotencyTtlMs: 86_400_000, openaiWebhookSecrets: [], callbackPolicy: createAddressPolicy(['127.0.0.0/8']), ...config },
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

async function resetThrottle(): Promise<void> {
  const keys = await stack.redis.keys(`${stack.prefix}:admin-*failures*`);
  if (keys.length) await stack.redis.del(...keys);
}

const bearer = { authorization: `Bearer ${TOKEN}` };
const basic = (name: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${name}:${password}`).toString('base64')}` });
const from = (address: string) => ({ 'x-forwarded-for': address });

function login(url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/admin/login`, { method: 'POST', headers: { origin: url, ...headers }, body: new URLSearchParams({ next: '/admin/jobs', ...fields }), redirect: 'manual' });
}

async function session(url: string, name: keyof typeof PASSWORD, headers: Record<string, string> = {}): Promise<string> {
  const res = await login(url, { username: name, password: PASSWORD[name] }, headers);
  expect(res.status, await res.text()).toBe(303);
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

interface AuditRow {
  id: number;
  actor: string;
  action: string;
  target: string;
  status: string;
  cells: string[];
}

/** The rows of an /admin/audit page as the admin sees them (each row's data attributes and cell text). */
function auditRows(html: string): AuditRow[] {
  const unescaped = (s: string) => s.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
  return [...html.matchAll(/<tr data-id="(\d+)" data-actor="([^"]*)" data-action="([^"]*)" data-target="([^"]*)" data-status="([^"]*)">([\s\S]*?)<\/tr>/g)].map((m) => ({
    id: Number(m[1]),
    actor: unescaped(m[2]!),
    action: unescaped(m[3]!),
    target: unescaped(m[4]!),
    status: m[5]!,
    cells: [...m[6]!.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((c) => unescaped(c[1]!.replace(/<[^>]+>/g, ''))),
  }));
}

async function auditPage(query = '', url = stack.apiUrl): Promise<{ rows: AuditRow[]; html: string }> {
  const res = await fetch(`${url}/admin/audit${query}`, { headers: bearer });
  expect(res.status).toBe(200);
  const html = await res.text();
  return { rows: auditRows(html), html };
}

async function queueState(queue: string): Promise<{ isPaused: boolean; counts: Record<string, number> }> {
  const res = await fetch(`${stack.apiUrl}/admin/queues/api/queues?activeQueue=${queue}`, { headers: bearer });
  const { queues } = (await res.json()) as { queues: { name: string; isPaused: boolean; counts: Record<string, number> }[] };
  return queues.find((q) => q.name === queue)!;
}

beforeAll(async () => {
  const entries = (['alice', 'bob'] as const).map((name) => {
    const made = hashPassword(name, PASSWORD[name]);
    expect(made.status, made.stderr).toBe(0);
    return made.stdout.trim();
  });
  users = loadEnv({ ADMIN_USERS: entries.join(',') }).ADMIN_USERS;
  stack = await startStack({ api: { admin: { token: TOKEN, users } } });
}, 60_000);
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await stack?.stop();
});
beforeEach(resetThrottle);

describe('named admins', () => {
  it('hash-password makes an ADMIN_USERS entry (scrypt, salted); the user logs in with it, under their own name', async () => {
    const made = hashPassword('carol', 'carol-password-12345');
    expect(made.status, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/^carol:scrypt:32768:8:1:[A-Za-z0-9_-]{22}:[A-Za-z0-9_-]{43}\n$/);
    // The same password twice: two different hashes (a random salt each time).
    expect(hashPassword('carol', 'carol-password-12345').stdout).not.toBe(made.stdout);
    expect(hashPassword('carol', 'short').status).toBe(1);
    expect(hashPassword('no:colons', 'carol-password-12345').status).toBe(2);

    const url = await apiWith({ admin: { users: loadEnv({ ADMIN_USERS: made.stdout.trim() }).ADMIN_USERS } });
    const page = await (await fetch(`${url}/admin/login`)).text();
    expect(page).toContain('name="username"');
    expect(page).toContain('name="password"');
    expect((await login(url, { username: 'carol', password: 'wrong-password-12345' })).status).toBe(401);
    expect(await (await login(url, { username: 'dave', password: 'carol-password-12345' })).text()).toContain('Wrong user or password.');
    const res = await login(url, { username: 'carol', password: 'carol-password-12345' });
    expect(res.status).toBe(303);
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    const jobs = await fetch(`${url}/admin/jobs`, { headers: { cookie } });
    expect(jobs.status).toBe(200);
    expect(await jobs.text()).toContain('<span class="who">carol</span>');
    // No token configured: no token login.
    expect((await login(url, { password: TOKEN })).status).toBe(401);
  });

  it('keeps the single admin token working beside named admins (actor admin); Basic takes a named admin too', async () => {
    expect((await login(stack.apiUrl, { username: '', password: TOKEN })).status).toBe(303);
    expect((await login(stack.apiUrl, { token: TOKEN })).status).toBe(303);
    const viaBearer = await fetch(`${stack.apiUrl}/admin/jobs`, { headers: bearer });
    expect(await viaBearer.text()).toContain('<span class="who">admin</span>');
    const viaBasic = await fetch(`${stack.apiUrl}/admin/jobs`, { headers: basic('bob', PASSWORD.bob) });
    expect(viaBasic.status).toBe(200);
    expect(await viaBasic.text()).toContain('<span class="who">bob</span>');
    expect((await fetch(`${stack.apiUrl}/admin/jobs`, { headers: basic('bob', PASSWORD.alice) })).status).toBe(401);
    // A session belongs to its user: changing that user's password ends it, not the others'.
    const alice = await session(stack.apiUrl, 'alice');
    const bob = await session(stack.apiUrl, 'bob');
    const rehashed = hashPassword('alice', PASSWORD.alice).stdout.trim();
    const bobEntry = users!.find((u) => u.name === 'bob')!;
    const changed = await apiWith({ admin: { token: TOKEN, users: loadEnv({ ADMIN_USERS: `${rehashed},bob:${bobEntry.passwordHash}` }).ADMIN_USERS } });
    expect((await fetch(`${changed}/admin/jobs`, { headers: { cookie: alice } })).status).toBe(401);
    expect((await fetch(`${changed}/admin/jobs`, { headers: { cookie: bob } })).status).toBe(200);
  });

  it('refuses a malformed ADMIN_USERS at start-up, naming the variable', () => {
    const good = `bob:${users!.find((u) => u.name === 'bob')!.passwordHash}`;
    for (const [value, problem] of [
      ['alice', /entry 1: expected name:hash/],
      ['alice:plain-password', /entry 1: the hash of 'alice'/],
      [`${good},${good}`, /entry 2: 'bob' appears twice/],
      [good.replace(/^bob/, 'admin'), /'admin' is reserved/],
      [good.replace(':32768:', ':1000:'), /N must be a power of two/],
      [good.replace(':32768:8:', ':1048576:32:'), /more than 256 MiB/],
    ] as const) {
      expect(() => loadEnv({ ADMIN_USERS: value }), value).toThrow(problem);
      expect(() => loadEnv({ ADMIN_USERS: value })).toThrow(/^invalid API configuration: ADMIN_USERS: /);
    }
    expect(loadEnv({ ADMIN_USERS: ` ${good} ` }).ADMIN_USERS).toEqual([{ name: 'bob', passwordHash: good.slice(4) }]);
  });
});

describe('lockout per user name and per address', () => {
  const limits = { maxFailuresPerCredential: 3, maxFailuresPerAddress: 6 };

  it('locks a user name guessed from many addresses (through a trusted proxy), and only that name', async () => {
    const url = await apiWith({ admin: { token: TOKEN, users, ...limits }, trustProxy: ['loopback'] });
    const aliceBefore = await session(url, 'alice', from('192.0.2.50'));
    for (let i = 0; i < 3; i++) expect((await login(url, { username: 'alice', password: `guess-${i}` }, from(`203.0.113.${10 + i}`))).status).toBe(401);
    // A fourth address, the right password: still locked (a guesser learns nothing), with Retry-After.
    const locked = await login(url, { username: 'alice', password: PASSWORD.alice }, from('203.0.113.99'));
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(60);
    expect(await locked.text()).toContain('Too many failed attempts for alice');
    const viaBasic = await fetch(`${url}/admin/jobs`, { headers: { ...basic('alice', PASSWORD.alice), ...from('203.0.113.98') } });
    expect(viaBasic.status).toBe(429);
    expect(Number(viaBasic.headers.get('retry-after'))).toBeGreaterThan(60);
    expect((await viaBasic.json()).error).toMatchObject({ type: 'rate_limit_error', code: 'admin_auth_throttled', message: expect.stringContaining('alice') });
    // Bob logs in from an address the guesser used; alice's session from before still works.
    await session(url, 'bob', from('203.0.113.10'));
    expect((await fetch(`${url}/admin/jobs`, { headers: { cookie: aliceBefore } })).status).toBe(200);
    // A name that does not exist is locked the same way (the answers do not tell names apart).
    for (let i = 0; i < 3; i++) expect((await login(url, { username: 'mallory', password: `guess-${i}` }, from(`203.0.113.${20 + i}`))).status).toBe(401);
    expect((await login(url, { username: 'mallory', password: 'guess-3' }, from('203.0.113.30'))).status).toBe(429);
  });

  it('caps the failures of one address across every name it tries; other addresses are not affected', async () => {
    const url = await apiWith({ admin: { token: TOKEN, users, ...limits }, trustProxy: ['loopback'] });
    for (let i = 0; i < 6; i++) expect((await login(url, { username: `user${i}`, password: 'guess' }, from('198.51.100.7'))).status).toBe(401);
    const locked = await login(url, { username: 'bob', password: PASSWORD.bob }, from('198.51.100.7'));
    expect(locked.status).toBe(429);
    expect(await locked.text()).toContain('Too many failed attempts from this address');
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(60);
    await session(url, 'bob', from('198.51.100.8'));
    // Guessing one locked name never adds up to the address's lock: a 429 takes no point.
    for (let i = 0; i < 3; i++) await login(url, { username: 'alice', password: `guess-${i}` }, from('198.51.100.9'));
    for (let i = 0; i < 20; i++) expect((await login(url, { username: 'alice', password: `again-${i}` }, from('198.51.100.9'))).status).toBe(429);
    await session(url, 'bob', from('198.51.100.9'));
  });

  it('ignores a spoofed X-Forwarded-For without TRUST_PROXY: behind an untrusted proxy everyone shares one address, and a second user still logs in while another name is locked', async () => {
    const url = await apiWith({ admin: { token: TOKEN, users, ...limits } });
    for (let i = 0; i < 3; i++) expect((await login(url, { username: 'alice', password: `guess-${i}` }, from(`203.0.113.${40 + i}`))).status).toBe(401);
    expect((await login(url, { username: 'alice', password: PASSWORD.alice }, from('203.0.113.43'))).status).toBe(429);
    await session(url, 'bob', from('203.0.113.44'));
    // Three more names from "new" addresses: the header is ignored, so they all count against 127.0.0.1.
    for (let i = 0; i < 3; i++) expect((await login(url, { username: `spoof${i}`, password: 'guess' }, from(`203.0.113.${50 + i}`))).status).toBe(401);
    const capped = await login(url, { username: 'bob', password: PASSWORD.bob }, from('203.0.113.60'));
    expect(capped.status).toBe(429);
    expect(await capped.text()).toContain('from this address');
    // The log shows where the attempts really came from.
    const spoofed = (await auditPage('?action=login_failed')).rows.filter((r) => r.actor.startsWith('spoof'));
    expect(spoofed.map((r) => r.cells[4])).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1']);
  });

  it('records the client named by a trusted proxy', async () => {
    const url = await apiWith({ admin: { token: TOKEN, users, ...limits }, trustProxy: ['loopback'] });
    expect((await login(url, { username: 'trusted-probe', password: 'guess' }, from('192.0.2.77'))).status).toBe(401);
    const [row] = (await auditPage('?actor=trusted-probe')).rows;
    expect(row).toMatchObject({ action: 'login_failed', status: '401' });
    expect(row!.cells[4]).toBe('192.0.2.77');
  });
});

describe('the audit log', () => {
  it('records a job cancel, retry, clean, login, logout and wrong credentials under the actor, newest first, filtered by actor and action', async () => {
    const { rows: before } = await auditPage();
    const since = before[0]?.id ?? 0;

    const alice = await session(stack.apiUrl, 'alice');
    const created = await stack.api('POST', '/v1/jobs', jobBody({ input: 'cancel me', metadata: { sim_duration_ms: '600000' } }));
    expect(created.status).toBe(202);
    const jobId = created.body.id as string;
    const jobPage = await (await fetch(`${stack.apiUrl}/admin/jobs/${jobId}`, { headers: { cookie: alice } })).text();
    expect(jobPage).toContain(`action="/admin/jobs/${jobId}/cancel"`);
    const cancel = await fetch(`${stack.apiUrl}/admin/jobs/${jobId}/cancel`, { method: 'POST', headers: { cookie: alice, origin: stack.apiUrl }, redirect: 'manual' });
    expect(cancel.status).toBe(303);
    expect(cancel.headers.get('location')).toBe(`/admin/jobs/${jobId}`);
    const cancelled = await stack.waitForJob(jobId, isTerminalJob);
    expect(cancelled.status).toBe('cancelled');
    // A finished job cannot be cancelled: the page says so (409), and the attempt is in the log too.
    const done = (await stack.api('POST', '/v1/jobs', jobBody({ input: 'quick', metadata: { sim_duration_ms: '100' } }))).body.id as string;
    expect((await stack.waitForJob(done, isTerminalJob)).status).toBe('completed');
    const late = await fetch(`${stack.apiUrl}/admin/jobs/${done}/cancel`, {
      method: 'POST',
      headers: { cookie: alice, origin: stack.apiUrl, accept: 'text/html' },
      redirect: 'manual',
    });
    expect(late.status).toBe(409);
    expect(await late.text()).toContain('has already finished (completed)');
    // The job's timeline names the admin.
    expect(await (await fetch(`${stack.apiUrl}/admin/jobs/${jobId}`, { headers: { cookie: alice } })).text()).toContain('&quot;admin&quot;:&quot;alice&quot;');

    const retry = await fetch(`${stack.apiUrl}/admin/queues/api/queues/submit/retry/failed`, { method: 'PUT', headers: basic('bob', PASSWORD.bob) });
    expect(retry.status).toBe(200);
    const clean = await fetch(`${stack.apiUrl}/admin/queues/api/queues/poll/clean/completed`, { method: 'PUT', headers: { cookie: alice, origin: stack.apiUrl } });
    expect(clean.status).toBe(200);
    const missing = await fetch(`${stack.apiUrl}/admin/queues/api/queues/submit/no-such-item/retry`, { method: 'PUT', headers: bearer });
    expect(missing.status).toBe(404);
    const logout = await fetch(`${stack.apiUrl}/admin/logout`, { method: 'POST', headers: { cookie: alice, origin: stack.apiUrl }, redirect: 'manual' });
    expect(logout.status).toBe(303);
    expect((await login(stack.apiUrl, { username: 'bob', password: 'not-bobs-password' })).status).toBe(401);
    expect((await fetch(`${stack.apiUrl}/admin/jobs`, { headers: { authorization: 'Bearer not-the-admin-token-0123' } })).status).toBe(401);

    const { rows, html } = await auditPage();
    expect(html).toMatch(/<a href="\/admin\/audit" class="on">Audit log<\/a>/);
    const mine = rows.filter((r) => r.id > since).map(({ actor, action, target, status }) => ({ actor, action, target, status }));
    expect(mine).toEqual([
      { actor: 'admin', action: 'login_failed', target: '', status: '401' },
      { actor: 'bob', action: 'login_failed', target: '', status: '401' },
      { actor: 'alice', action: 'logout', target: '', status: '303' },
      { actor: 'admin', action: 'work_item.retry', target: 'submit/no-such-item', status: '404' },
      { actor: 'alice', action: 'queue.clean', target: 'poll', status: '200' },
      { actor: 'bob', action: 'queue.retry', target: 'submit', status: '200' },
      { actor: 'alice', action: 'job.cancel', target: done, status: '409' },
      { actor: 'alice', action: 'job.cancel', target: jobId, status: '303' },
      { actor: 'alice', action: 'login', target: '', status: '303' },
    ]);
    const cancelRow = rows.find((r) => r.action === 'job.cancel' && r.status === '303')!;
    expect(cancelRow.cells[4]).toBe('127.0.0.1');
    expect(cancelRow.cells[6]).toContain(`tenant_id=${stack.tenantId}`);
    expect(cancelRow.cells[6]).toMatch(/^from=(pending|queued|in_progress) tenant_id=\S+ to=(cancelled|cancelling)$/);
    expect(rows.find((r) => r.action === 'queue.clean')!.cells[6]).toContain('status=completed');
    expect(rows.find((r) => r.action === 'login_failed' && r.actor === 'bob')!.cells[6]).toContain('credential=form');
    expect(rows.find((r) => r.action === 'login_failed' && r.actor === 'admin')!.cells[6]).toContain('credential=bearer');

    const aliceOnly = (await auditPage('?actor=alice')).rows.filter((r) => r.id > since);
    expect(aliceOnly.map((r) => r.action)).toEqual(['logout', 'queue.clean', 'job.cancel', 'job.cancel', 'login']);
    const cleans = (await auditPage('?action=queue.clean&actor=alice')).rows;
    expect(cleans.map((r) => r.id)).toContain(rows.find((r) => r.action === 'queue.clean')!.id);
    expect(cleans.every((r) => r.action === 'queue.clean' && r.actor === 'alice')).toBe(true);
    // A filter that is no action is a 400 on the page, not a 500.
    expect((await fetch(`${stack.apiUrl}/admin/audit?action=drop-tables`, { headers: bearer })).status).toBe(400);
    expect((await fetch(`${stack.apiUrl}/admin/audit?after=x`, { headers: bearer })).status).toBe(400);
  });

  it('pages through the log, newest first, 50 a page', async () => {
    for (let i = 0; i < 30; i++) {
      expect((await fetch(`${stack.apiUrl}/admin/queues/api/queues/cancel/pause`, { method: 'PUT', headers: bearer })).status).toBe(200);
      expect((await fetch(`${stack.apiUrl}/admin/queues/api/queues/cancel/resume`, { method: 'PUT', headers: bearer })).status).toBe(200);
    }
    const first = await auditPage('?actor=admin');
    expect(first.rows).toHaveLength(50);
    expect(first.rows[0]).toMatchObject({ action: 'queue.resume', target: 'cancel', status: '200' });
    const next = /<a rel="next" href="\/admin\/audit\?([^"]+)">/.exec(first.html)?.[1]?.replaceAll('&amp;', '&');
    expect(next).toMatch(/^actor=admin&after=\d+$/);
    const second = await auditPage(`?${next}`);
    expect(second.rows.length).toBeGreaterThanOrEqual(10);
    const ids = [...first.rows, ...second.rows].map((r) => r.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(new Set(ids).size).toBe(ids.length);
    expect(second.rows.every((r) => r.actor === 'admin')).toBe(true);
  });

  it('refuses a change it cannot record (Postgres unavailable): 503, and nothing changes', async () => {
    const broken = createDb({ connectionString: stack.database.url, max: 1 });
    await broken.close();
    const url = await apiWith({ admin: { token: TOKEN } }, broken.db);
    const res = await fetch(`${url}/admin/queues/api/queues/cancel/pause`, { method: 'PUT', headers: bearer });
    expect(res.status).toBe(503);
    expect((await res.json()).error.code).toBe('admin_audit_unavailable');
    expect((await queueState('cancel')).isPaused).toBe(false);
  });

  it('read-only mode hides the cancel button and refuses the cancel (403 admin_read_only)', async () => {
    const url = await apiWith({ admin: { token: TOKEN, readOnly: true } });
    const created = await stack.api('POST', '/v1/jobs', jobBody({ input: 'read only', metadata: { sim_duration_ms: '600000' } }));
    const jobId = created.body.id as string;
    expect(await (await fetch(`${url}/admin/jobs/${jobId}`, { headers: bearer })).text()).not.toContain('/cancel"');
    const res = await fetch(`${url}/admin/jobs/${jobId}/cancel`, { method: 'POST', headers: bearer });
    expect(res.status).toBe(403);
    expect((await res.json()).error.code).toBe('admin_read_only');
    const [row] = (await auditPage('?action=job.cancel')).rows;
    expect(row).toMatchObject({ actor: 'admin', target: jobId, status: '403' });
    await stack.api('POST', `/v1/jobs/${jobId}/cancel`);
  });
});

const SKIP_BROWSER = !existsSync(CHROMIUM) && ['', 'false', '0'].includes(process.env.CI ?? '');
describe.skipIf(SKIP_BROWSER)(`the audit log in headless Chromium${SKIP_BROWSER ? ` (skipped: ${CHROMIUM} is missing)` : ''}`, () => {
  let browser: Browser;
  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('logs in as alice, cancels a job from its page and cleans a queue, and finds both in the log under her name', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const foreign: string[] = [];
    page.on('request', (req) => {
      if (!req.url().startsWith(stack.apiUrl) && !req.url().startsWith('data:')) foreign.push(req.url());
    });
    try {
      await page.goto(`${stack.apiUrl}/admin/login?next=/admin/audit`);
      await page.screenshot({ path: join(SCREENSHOTS, '1-login.png'), fullPage: true });
      await page.fill('input[name="username"]', 'alice');
      await page.fill('input[name="password"]', PASSWORD.alice);
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/audit`), page.click('form.login button[type="submit"]')]);
      // A job's page: its Cancel button is a form post from our own origin.
      const jobId = (await stack.api('POST', '/v1/jobs', jobBody({ input: 'cancel in the browser', metadata: { sim_duration_ms: '600000' } }))).body.id as string;
      await page.goto(`${stack.apiUrl}/admin/jobs/${jobId}`);
      await page.screenshot({ path: join(SCREENSHOTS, '2-job-cancel-button.png'), fullPage: true });
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/jobs/${jobId}`), page.getByRole('button', { name: 'Cancel job' }).click()]);
      expect((await stack.waitForJob(jobId, isTerminalJob)).status).toBe('cancelled');
      // What bull-board's own page sends for "Clean all" of a status.
      const cleaned = await page.evaluate(async () => (await fetch('/admin/queues/api/queues/webhook/clean/completed', { method: 'PUT' })).status);
      expect(cleaned).toBe(200);
      await page.goto(`${stack.apiUrl}/admin/audit`);
      const newest = await page.locator('#audit tbody tr').evaluateAll((trs) => trs.slice(0, 2).map((tr) => `${tr.getAttribute('data-actor')} ${tr.getAttribute('data-action')}`));
      expect(newest).toEqual(['alice queue.clean', 'alice job.cancel']);
      expect(await page.locator('header .who').textContent()).toBe('alice');
      await page.screenshot({ path: join(SCREENSHOTS, '3-audit.png'), fullPage: true });

      await page.selectOption('select[name="action"]', 'login');
      await page.fill('input[name="actor"]', 'alice');
      await Promise.all([page.waitForURL(/\/admin\/audit\?/), page.click('form.search button[type="submit"]')]);
      const actions = await page.locator('#audit tbody tr').evaluateAll((trs) => trs.map((tr) => `${tr.getAttribute('data-actor')} ${tr.getAttribute('data-action')}`));
      expect(actions.length).toBeGreaterThan(0);
      expect(new Set(actions)).toEqual(new Set(['alice login']));
      await page.screenshot({ path: join(SCREENSHOTS, '4-audit-filtered.png'), fullPage: true });
      expect(foreign).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
