/**
 * The admin overview (/admin) and a job page's actions, end to end: jobs across two tenants and
 * two models (completed, failed by the simulator's `sim_outcome`, one whose callbacks a loopback
 * receiver refuses until they are dead letters, one from two days ago), then the overview's JSON
 * checked against them (counts by status, cost by model, the tenant filter, the range), and in
 * headless Chromium: every chart drawn (pixels on each canvas), the range picker and the tenant
 * select changing the address and the figures, and a job's Cancel, Re-run and Resend callbacks,
 * each recorded in the audit log. Nothing may be requested from another origin. Screenshots go to
 * test-output/admin-dashboard/ (and the test checks they are not blank).
 */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, listAdminActions } from '@longhaul/db';
import { type Receiver, startReceiver } from './receiver.ts';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(import.meta.dirname, '..', 'test-output', 'admin-dashboard');
const TOKEN = 'admin_token_for_dashboard_0123456789';
const bearer = { authorization: `Bearer ${TOKEN}` };
const CHARTS = ['jobs', 'latency', 'cost-model', 'cost-tenant', 'cache', 'completions', 'queues', 'callbacks'];

let stack: Stack;
let receiver: Receiver;
let other: { tenantId: string; apiKey: string };
/** Jobs by what they are, for the assertions. */
const made = { completedA: [] as string[], failedA: [] as string[], completedB: [] as string[], failedB: [] as string[], callbackJob: '', oldJob: '' };

async function apiAs(apiKey: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function submit(apiKey: string, body: Record<string, unknown>): Promise<string> {
  const res = await apiAs(apiKey, 'POST', '/v1/jobs', body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id as string;
}

async function overview(query: string): Promise<any> {
  const res = await fetch(`${stack.apiUrl}/admin/overview.json?${query}`, { headers: bearer });
  expect(res.status).toBe(200);
  return res.json();
}

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  stack = await startStack({ webhooks: true, worker: { completionMode: 'hybrid' }, api: { admin: { token: TOKEN } } });
  other = await createTenant(stack.db.db, 'Globex');
  receiver = await startReceiver(() => 500);
  const a = stack.apiKey;
  const body = (model: string, input: string, metadata: Record<string, string> = {}, extra: Record<string, unknown> = {}) =>
    jobBody({ model, input, reasoning: { effort: 'low' }, metadata: { sim_duration_ms: '150', ...metadata }, ...extra });
  made.completedA.push(
    await submit(a, body('o3', 'Dashboard question one')),
    await submit(a, body('o3', 'Dashboard question two')),
    await submit(a, body('gpt-5-mini', 'Dashboard three')),
  );
  made.callbackJob = await submit(a, body('gpt-5-mini', 'Dashboard with a callback', {}, { callback_url: receiver.url }));
  made.completedA.push(made.callbackJob);
  made.failedA.push(await submit(a, body('o3', 'Dashboard fails one', { sim_outcome: 'failed' })), await submit(a, body('o3', 'Dashboard fails two', { sim_outcome: 'failed' })));
  made.completedB.push(await submit(other.apiKey, body('gpt-5-mini', 'Globex one')), await submit(other.apiKey, body('gpt-5-mini', 'Globex two')));
  made.failedB.push(await submit(other.apiKey, body('o3', 'Globex fails', { sim_outcome: 'failed' })));
  made.oldJob = await submit(other.apiKey, body('o3', 'Globex, two days ago'));
  const all = [...made.completedA, ...made.failedA, ...made.completedB, ...made.failedB, made.oldJob];
  const keyOf = (id: string) => (made.completedB.includes(id) || made.failedB.includes(id) || id === made.oldJob ? other.apiKey : a);
  for (const id of all) await until(`job ${id} to finish`, async () => isTerminalJob((await apiAs(keyOf(id), 'GET', `/v1/jobs/${id}`)).body));
  // A job of two days ago: only the 7d and 30d windows hold it.
  await stack.db.pool.query(
    `update jobs set created_at = created_at - interval '2 days', submitted_at = submitted_at - interval '2 days', started_at = started_at - interval '2 days', finished_at = finished_at - interval '2 days' where id = $1`,
    [made.oldJob],
  );
  await stack.db.pool.query(`update job_events set at = at - interval '2 days' where job_id = $1`, [made.oldJob]);
  // The receiver refuses every attempt: the callback's deliveries end as dead letters (the test schedule is fast).
  await until(
    'the callback deliveries to fail',
    async () => {
      const list = (await apiAs(a, 'GET', `/v1/deliveries?job_id=${made.callbackJob}`)).body.data as { status: string }[];
      return list.length > 0 && list.every((d) => d.status === 'failed');
    },
    60_000,
  );
}, 120_000);

afterAll(async () => {
  await receiver?.close();
  await stack?.stop();
});

describe('the overview JSON', () => {
  it('counts the jobs by status and model, prices them and narrows by tenant', async () => {
    const all = await overview('range=24h');
    expect(all.range).toBe('24h');
    expect(all.bucketSeconds).toBe(900);
    expect(all.totals.byStatus.completed).toBe(made.completedA.length + made.completedB.length);
    expect(all.totals.byStatus.failed).toBe(made.failedA.length + made.failedB.length);
    expect(all.totals.jobs).toBe(made.completedA.length + made.completedB.length + made.failedA.length + made.failedB.length);
    expect(sum(all.jobs.byStatus.completed)).toBe(all.totals.byStatus.completed);
    expect(sum(all.jobs.byStatus.failed)).toBe(all.totals.byStatus.failed);
    expect(all.totals.byModel).toEqual({ o3: 2 + 2 + 1, 'gpt-5-mini': 2 + 2 });
    expect(sum(all.cost.byModel.o3)).toBeGreaterThan(0);
    expect(sum(all.cost.byModel['gpt-5-mini'])).toBeGreaterThan(0);
    expect(sum(all.cost.byTenant[stack.tenantId])).toBeGreaterThan(0);
    expect(sum(all.cost.byTenant[other.tenantId])).toBeGreaterThan(0);
    expect(sum(Object.values(all.cost.byModel).flat() as number[])).toBeCloseTo(all.totals.costUsd, 6);
    const models = all.latency.map((l: any) => l.model).sort();
    expect(models).toEqual(['gpt-5-mini', 'o3']);
    for (const l of all.latency) expect(l.p95Ms).toBeGreaterThanOrEqual(l.p50Ms);
    expect(all.totals.inputTokens).toBeGreaterThan(0);
    // Every finished job's terminal transition, by who saw it.
    expect(sum(Object.values(all.totals.completionsBySource) as number[])).toBe(all.totals.jobs);
    expect((all.totals.completionsBySource.webhook ?? 0) + (all.totals.completionsBySource.poll ?? 0)).toBeGreaterThan(0);
    expect(all.totals.callbackAttempts.rejected).toBeGreaterThanOrEqual(2);
    expect(all.totals.deliveriesByStatus.failed).toBeGreaterThanOrEqual(1);
    expect(all.queues.error).toBeNull();
    expect(all.queues.bullmq.map((q: any) => q.queue)).toEqual(expect.arrayContaining(['submit', 'poll', 'cancel', 'webhook']));
    expect(all.tenants.map((t: any) => t.id)).toEqual(expect.arrayContaining([stack.tenantId, other.tenantId]));

    const globex = await overview(`range=24h&tenant=${other.tenantId}`);
    expect(globex.tenant).toBe(other.tenantId);
    expect(globex.totals.byStatus).toEqual({ completed: made.completedB.length, failed: made.failedB.length });
    expect(Object.keys(globex.cost.byTenant)).toEqual([other.tenantId]);
    expect(globex.totals.callbackAttempts.rejected).toBe(0);
    const mine = await overview(`range=24h&tenant=${stack.tenantId}`);
    expect(mine.totals.byStatus).toEqual({ completed: made.completedA.length, failed: made.failedA.length });

    // The job of two days ago is in the 7-day window only.
    const week = await overview('range=7d');
    expect(week.bucketSeconds).toBe(3600);
    expect(week.totals.byStatus.completed).toBe(all.totals.byStatus.completed + 1);
    expect(sum(week.cost.byModel.o3)).toBeGreaterThan(sum(all.cost.byModel.o3));
    // Minute bars over the last hour (the first and the last partly in it).
    const hour = (await overview('range=1h')).jobs.labels.length;
    expect(hour === 60 || hour === 61, String(hour)).toBe(true);
    expect((await fetch(`${stack.apiUrl}/admin/overview.json?range=2y`, { headers: bearer })).status).toBe(400);
    expect((await fetch(`${stack.apiUrl}/admin/overview.json`)).status).toBe(401);
  });
});

describe('the overview and job actions in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** Pixels a chart's canvas has drawn (not transparent), per chart. */
  const drawnPixels = (page: Page) =>
    page.evaluate((ids) => {
      const out: Record<string, number> = {};
      for (const id of ids) {
        const canvas = document.getElementById(`chart-${id}`) as HTMLCanvasElement | null;
        if (!canvas) continue;
        const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
        let n = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++;
        out[id] = n;
      }
      return out;
    }, CHARTS);

  const dataOf = (page: Page) => page.evaluate(() => JSON.parse(document.getElementById('overview-data')!.textContent!));
  const shot = async (page: Page, name: string) => {
    const path = join(SCREENSHOTS, name);
    await page.screenshot({ path, fullPage: true });
    // A rendered dashboard is tens of kilobytes; a blank page a few.
    expect(statSync(path).size, name).toBeGreaterThan(20_000);
  };

  it('shows every chart, follows the range picker and the tenant select, and runs Cancel, Re-run and Resend callbacks', async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    const page = await context.newPage();
    const foreign: string[] = [];
    const errors: string[] = [];
    page.on('request', (req) => {
      if (!req.url().startsWith(stack.apiUrl) && !req.url().startsWith('data:')) foreign.push(req.url());
    });
    page.on('pageerror', (err) => errors.push(err.message));
    try {
      const first = await page.goto(`${stack.apiUrl}/admin`);
      expect(first?.status()).toBe(401);
      await page.fill('input[name="token"]', TOKEN);
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin`), page.click('form.login button[type="submit"]')]);
      await page.waitForSelector(`body[data-charts="${CHARTS.length}"]`);
      const pixels = await drawnPixels(page);
      expect(Object.keys(pixels).sort()).toEqual([...CHARTS].sort());
      for (const id of CHARTS) expect(pixels[id], id).toBeGreaterThan(2000);
      expect(await page.locator('header a.on').textContent()).toBe('Overview');
      const day = await dataOf(page);
      expect(day.range).toBe('24h');
      expect(day.totals.byStatus.completed).toBe(made.completedA.length + made.completedB.length);
      await shot(page, '1-overview-24h.png');

      // The range picker: a link, so the view's address says what it shows.
      await Promise.all([page.waitForURL(/\/admin\?range=7d$/), page.click('nav.ranges a:text-is("7d")')]);
      await page.waitForSelector(`body[data-charts="${CHARTS.length}"]`);
      const week = await dataOf(page);
      expect(week.range).toBe('7d');
      expect(week.totals.jobs).toBe(day.totals.jobs + 1);
      expect(await page.locator('nav.ranges a.on').textContent()).toBe('7d');
      await shot(page, '2-overview-7d.png');

      // The tenant select submits itself; the range stays.
      await Promise.all([page.waitForURL(new RegExp(`range=7d&tenant=${other.tenantId}`)), page.selectOption('select[name="tenant"]', other.tenantId)]);
      await page.waitForSelector(`body[data-charts="${CHARTS.length}"]`);
      const globex = await dataOf(page);
      expect(globex.tenant).toBe(other.tenantId);
      expect(globex.totals.byStatus).toEqual({ completed: made.completedB.length + 1, failed: made.failedB.length });
      expect(await page.locator('#window').textContent()).toContain('tenant Globex');
      await shot(page, '3-overview-tenant.png');

      // Cancel: a job still at the provider.
      const long = await submit(stack.apiKey, jobBody({ input: 'Cancel me from the admin UI', metadata: { sim_duration_ms: '600000' } }));
      await stack.waitForJob(long, (j) => j.status === 'in_progress' || j.status === 'queued');
      await page.goto(`${stack.apiUrl}/admin/jobs/${long}`);
      expect(await page.getByRole('button', { name: /Re-run/ }).count()).toBe(0);
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/jobs/${long}`), page.getByRole('button', { name: 'Cancel job' }).click()]);
      expect(await page.locator('p.flash').textContent()).toMatch(/Cancel/);
      await shot(page, '4-job-cancel.png');
      expect((await stack.waitForJob(long, isTerminalJob)).status).toBe('cancelled');
      await page.reload();
      expect(await page.locator('p.flash').count()).toBe(0);
      expect(await page.getByRole('button', { name: 'Cancel job' }).count()).toBe(0);

      // Re-run: a completed job becomes a new job of the same tenant, with the same input.
      const original = made.completedA[0]!;
      await page.goto(`${stack.apiUrl}/admin/jobs/${original}`);
      expect(await page.getByRole('button', { name: 'Cancel job' }).count()).toBe(0);
      await Promise.all([
        page.waitForURL((url) => /\/admin\/jobs\/job_/.test(url.pathname) && !url.pathname.endsWith(original)),
        page.getByRole('button', { name: 'Re-run as a new job' }).click(),
      ]);
      const rerunId = new URL(page.url()).pathname.split('/').at(-1)!;
      expect(await page.locator('p.flash').textContent()).toContain(`re-run of ${original}`);
      expect(await page.locator(`dd a[href="/admin/jobs/${original}"]`).count()).toBeGreaterThan(0);
      await shot(page, '5-job-rerun.png');
      const rerun = await stack.waitForJob(rerunId, isTerminalJob);
      const source = (await stack.api('GET', `/v1/jobs/${original}`)).body;
      expect(rerun.status).toBe('completed');
      expect(rerun.metadata.rerun_of).toBe(original);
      expect(rerun.model).toBe(source.model);
      const inputs = await stack.db.pool.query<{ id: string; input: unknown }>(`select id, request->'input' as input from jobs where id = any($1)`, [[original, rerunId]]);
      expect(inputs.rows).toHaveLength(2);
      expect(inputs.rows[0]!.input).toEqual(inputs.rows[1]!.input);

      // Resend callbacks: its dead letters go out again, and reach the receiver.
      receiver.respond = () => 200;
      const before = receiver.received.length;
      await page.goto(`${stack.apiUrl}/admin/jobs/${made.callbackJob}`);
      expect(await page.locator('#deliveries tbody tr[data-status="failed"]').count()).toBeGreaterThan(0);
      await shot(page, '6-job-callbacks-failed.png');
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/jobs/${made.callbackJob}`), page.getByRole('button', { name: /^Resend callbacks/ }).click()]);
      expect(await page.locator('p.flash').textContent()).toMatch(/sent again/);
      await shot(page, '7-job-callbacks-resent.png');
      await until('a new attempt at the receiver', async () => receiver.received.length > before);
      await until('the deliveries to succeed', async () => {
        const list = (await stack.api('GET', `/v1/deliveries?job_id=${made.callbackJob}`)).body.data as { status: string }[];
        return list.every((d) => d.status === 'succeeded');
      });
      await page.reload();
      expect(await page.getByRole('button', { name: /^Resend callbacks/ }).count()).toBe(0);
      expect(await page.locator('#deliveries tbody tr[data-status="succeeded"]').count()).toBeGreaterThan(0);

      // Each action is in the audit log, under the admin, with how it was answered.
      const { data: log } = await listAdminActions(stack.db.db, { limit: 20 });
      const mine = log.filter((r) => r.actor === 'admin');
      expect(mine.find((r) => r.action === 'job.cancel' && r.target === long)?.statusCode).toBe(303);
      const rerunRow = mine.find((r) => (r.details as { job_action?: string }).job_action === 'rerun');
      expect(rerunRow).toMatchObject({ action: 'job.rerun', target: original });
      expect(rerunRow?.statusCode).toBe(303);
      expect(rerunRow?.details).toMatchObject({ tenant_id: stack.tenantId, new_job_id: rerunId });
      const resendRow = mine.find((r) => (r.details as { job_action?: string }).job_action === 'resend_callbacks');
      expect(resendRow).toMatchObject({ action: 'job.resend_callbacks', target: made.callbackJob });
      expect(resendRow?.statusCode).toBe(303);
      expect(((resendRow?.details ?? {}) as { deliveries?: string[] }).deliveries?.length).toBeGreaterThan(0);

      expect(errors).toEqual([]);
      expect(foreign).toEqual([]);
    } finally {
      await context.close();
    }
  }, 120_000);
});
