/**
 * The admin UI's batches (issue 17) against real services and the simulator's Batch API:
 * /admin/batches lists every tenant's batches newest first (keyset pages, filters by tenant and
 * status), a batch's page shows its facts, request counts, events and jobs, and what a tenant
 * wrote (the model name) is escaped. In headless Chromium an operator goes from the list to the
 * batch, to one of its jobs, and back to the batch from the job's facts. Screenshots go to a
 * temporary directory (its path is printed).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '@longhaul/db';
import { CHROMIUM, SKIP_BROWSER, launchChromium, watchPage } from './browser.ts';
import { FAST_BATCHING, type Stack, isTerminalJob, startStack } from './harness.ts';

const TOKEN = 'admin_token_for_batches_tests_0123456789';
const bearer = { authorization: `Bearer ${TOKEN}` };
const HOSTILE_MODEL = `<script>alert("pwned")</script>&<img src=x onerror=alert(1)>`;

let stack: Stack;
let other: { tenantId: string; apiKey: string };
/** This tenant's batch of three jobs (one failed line), and the other tenant's later one-job batch. */
let jobs: any[];
let batchId: string;
let otherBatchId: string;

async function runBatch(inputs: Array<Record<string, unknown>>, apiKey = stack.apiKey): Promise<any[]> {
  const headers = { authorization: `Bearer ${apiKey}` };
  const submitted = await Promise.all(
    inputs.map(async (extra) => {
      const res = await stack.api('POST', '/v1/jobs', { model: 'gpt-4.1', input: 'Summarise the quarterly report.', processing: 'batch', ...extra }, headers);
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      return res.body;
    }),
  );
  const done: any[] = [];
  for (const job of submitted) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const got = (await stack.api('GET', `/v1/jobs/${job.id}`, undefined, headers)).body;
      if (isTerminalJob(got) && got.batch?.status) {
        done.push(got);
        break;
      }
      if (Date.now() > deadline) throw new Error(`job ${job.id} still ${got.status}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  expect(new Set(done.map((j) => j.batch.id)).size).toBe(1);
  return done;
}

const adminHtml = async (path: string) => {
  const res = await fetch(`${stack.apiUrl}${path}`, { headers: bearer });
  return { status: res.status, html: await res.text() };
};
/**
 * A finished batch row like `templateId`'s, written directly (only the pages are under test):
 * reconciled, so no worker takes it up.
 */
async function insertBatch(templateId: string, row: { id: string; model?: string; createdAt: Date; error?: { code: string; message: string } }): Promise<void> {
  await stack.db.pool.query(
    `insert into batches (id, tenant_id, model, status, job_count, bytes, error, created_at, finished_at, reconciled_at)
     select $1, tenant_id, coalesce($2, model), 'failed', job_count, bytes, $3::jsonb, $4, $4, $4 from batches where id = $5`,
    [row.id, row.model ?? null, row.error ? JSON.stringify(row.error) : null, row.createdAt, templateId],
  );
}
const batchIdsIn = (html: string) => [...html.matchAll(/<tr data-id="(lhb_[^"]+)"/g)].map((m) => m[1]);

beforeAll(async () => {
  stack = await startStack({
    sim: { time_scale: 0.0001, batch_duration_ms: 600_000 },
    webhooks: true,
    api: { admin: { token: TOKEN } },
    worker: {
      batching: FAST_BATCHING,
    },
  });
  other = await createTenant(stack.db.db, 'other tenant');
  jobs = await runBatch([{ input: 'one' }, { input: 'two' }, { input: 'three', metadata: { sim_outcome: 'failed' } }]);
  batchId = jobs[0].batch.id;
  otherBatchId = (await runBatch([{ input: 'theirs' }], other.apiKey))[0].batch.id;
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

describe('admin batches pages over HTTP', () => {
  it('are behind the admin credential', async () => {
    expect((await fetch(`${stack.apiUrl}/admin/batches`)).status).toBe(401);
    expect((await fetch(`${stack.apiUrl}/admin/batches/${batchId}`)).status).toBe(401);
  });

  it('list every tenant’s batches newest first, a page after the cursor, and filter by tenant and status', async () => {
    const all = await adminHtml('/admin/batches');
    expect(all.status).toBe(200);
    expect(batchIdsIn(all.html)).toEqual([otherBatchId, batchId]);
    expect(all.html).not.toContain('Older →');
    expect(batchIdsIn((await adminHtml(`/admin/batches?after=${otherBatchId}`)).html)).toEqual([batchId]);
    expect(batchIdsIn((await adminHtml(`/admin/batches?tenant=${other.tenantId}`)).html)).toEqual([otherBatchId]);
    expect(batchIdsIn((await adminHtml('/admin/batches?status=completed')).html)).toEqual([otherBatchId, batchId]);
    const failed = await adminHtml('/admin/batches?status=failed');
    expect(batchIdsIn(failed.html)).toEqual([]);
    expect(failed.html).toContain('No batch matches.');
    for (const bad of ['status=bogus', 'tenant=nope', 'after=batch_1']) {
      const res = await adminHtml(`/admin/batches?${bad}`);
      expect(res.status, bad).toBe(400);
      expect(res.html).toContain('role="alert"');
    }
    expect((await adminHtml('/admin/batches/lhb_000000000000000000000000')).status).toBe(404);
    expect((await adminHtml('/admin/batches/not-an-id')).status).toBe(404);
  });

  it('page 50 at a time with an "Older →" link that keeps the filters', async () => {
    // Fifty-one more batch rows of the other tenant (written directly: only the listing is under test).
    const base = Date.now();
    const extra = Array.from({ length: 51 }, (_, i) => ({ id: `lhb_pagingfixture${String(i).padStart(8, '0')}`, createdAt: new Date(base + 1000 + i) }));
    for (const row of extra) await insertBatch(otherBatchId, row);
    try {
      const first = await adminHtml(`/admin/batches?tenant=${other.tenantId}&status=failed`);
      const shown = batchIdsIn(first.html);
      expect(shown).toHaveLength(50);
      expect(shown[0]).toBe(extra[50]!.id);
      const next = first.html.match(/<a rel="next" href="([^"]+)">Older →<\/a>/)?.[1]?.replaceAll('&amp;', '&');
      expect(next).toBe(`/admin/batches?tenant=${other.tenantId}&status=failed&after=${shown[49]}`);
      const second = await adminHtml(next!);
      expect(batchIdsIn(second.html)).toEqual([extra[0]!.id]);
      expect(second.html).not.toContain('Older →');
    } finally {
      await stack.db.pool.query("delete from batches where id like 'lhb_pagingfixture%'");
    }
  });

  it('show a batch’s facts, request counts, events and jobs, and link a batch job to its batch', async () => {
    const { status, html } = await adminHtml(`/admin/batches/${batchId}`);
    expect(status).toBe(200);
    expect(html).toContain(jobs[0].batch.provider_batch_id);
    for (const j of jobs) expect(html).toContain(`href="/admin/jobs/${j.id}"`);
    expect(html).toContain('id="events"');
    const job = await adminHtml(`/admin/jobs/${jobs[0].id}`);
    expect(job.html).toContain(`<dt>Batch</dt><dd><a class="mono" href="/admin/batches/${batchId}">${batchId}</a></dd>`);
    // A job sent on its own has no batch fact.
    const plain = await stack.api('POST', '/v1/jobs', { model: 'gpt-4.1', input: 'x', metadata: { sim_duration_ms: '10' } });
    expect(plain.status, JSON.stringify(plain.body)).toBe(202);
    expect((await adminHtml(`/admin/jobs/${plain.body.id}`)).html).not.toContain('<dt>Batch</dt>');
  });

  it('escape what a tenant wrote (the model) and what the provider said (the error)', async () => {
    const hostileId = 'lhb_hostilefixture0000000001';
    await insertBatch(otherBatchId, {
      id: hostileId,
      model: HOSTILE_MODEL,
      error: { code: '<b>bad</b>', message: '</pre><script>alert(2)</script>' },
      createdAt: new Date(Date.now() + 10_000),
    });
    try {
      for (const path of ['/admin/batches', `/admin/batches/${hostileId}`]) {
        const { status, html } = await adminHtml(path);
        expect(status, path).toBe(200);
        // The layout has no script or image at all: any would be the tenant's, unescaped.
        expect(html, path).not.toMatch(/<script|<img|<b>bad/);
        expect(html, path).toContain('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;&amp;&lt;img src=x onerror=alert(1)&gt;');
      }
      const page = (await adminHtml(`/admin/batches/${hostileId}`)).html;
      expect(page).toContain('&lt;b&gt;bad&lt;/b&gt;');
      expect(page).toContain('&lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt;');
    } finally {
      await stack.db.pool.query('delete from batches where id = $1', [hostileId]);
    }
  });
});

describe.skipIf(SKIP_BROWSER)(`admin batches in headless Chromium${SKIP_BROWSER ? ` (skipped: ${CHROMIUM} is missing)` : ''}`, () => {
  let browser: Browser;
  let screenshots: string;
  beforeAll(async () => {
    screenshots = mkdtempSync(join(tmpdir(), 'longhaul-admin-batches-'));
    console.info(`admin batches screenshots: ${screenshots}`);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('goes from the batches list to the batch, to one of its jobs, and back to the batch', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const { foreign, dialogs } = watchPage(page, stack.apiUrl);
    try {
      const first = await page.goto(`${stack.apiUrl}/admin/batches`);
      expect(first?.status()).toBe(401);
      await page.fill('input[name="token"]', TOKEN);
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/batches`), page.click('form.login button[type="submit"]')]);

      // The list: both tenants' batches; this one with its model, status, jobs by status and the provider's id.
      const row = page.locator(`#batches tr[data-id="${batchId}"]`);
      const cells = await row.locator('td').allTextContents();
      expect(cells[0]).toBe(batchId);
      expect(cells[1]).toBe(stack.tenantId);
      expect(cells[2]).toBe('gpt-4.1');
      expect(cells[3]).toBe('completed');
      expect(cells[4]).toBe('3 · completed 2 failed 1');
      expect(cells[5]).toBe(jobs[0].batch.provider_batch_id);
      expect(cells[7]).toMatch(/\d+(\.\d)? (ms|s)$/);
      expect(await page.locator('#batches tbody tr').count()).toBe(2);
      expect(await page.locator('header a.on').textContent()).toBe('Batches');
      await page.screenshot({ path: join(screenshots, '1-batches.png'), fullPage: true });

      // The batch: its request counts, its events from collection to completion, its three jobs.
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/batches/${batchId}`), row.locator(`a[href="/admin/batches/${batchId}"]`).click()]);
      expect(JSON.parse((await page.locator('#request-counts').textContent()) ?? '')).toEqual({ total: 3, completed: 2, failed: 1 });
      expect(await page.locator('#error').textContent()).toBe('—');
      const events = await page.locator('#events tbody tr').allTextContents();
      expect(events[0]).toMatch(/collected\s+building/);
      expect(events).toContainEqual(expect.stringMatching(/building\s+→\s+uploaded/));
      expect(events.at(-1)).toMatch(/→\s+completed/);
      const eventIds = await page.locator('#events tbody tr').evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute('data-event'))));
      expect(eventIds).toEqual([...eventIds].sort((a, b) => a - b));
      const jobRows = page.locator('#jobs tbody tr');
      expect((await jobRows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-job')))).sort()).toEqual(jobs.map((j) => j.id).sort());
      const failedJob = jobs.find((j) => j.status === 'failed');
      expect(await page.locator(`#jobs tr[data-job="${failedJob.id}"] td`).nth(1).textContent()).toBe('failed');
      await page.screenshot({ path: join(screenshots, '2-batch.png'), fullPage: true });

      // One of its jobs, and back to the batch from the job's facts.
      const job = jobs.find((j) => j.status === 'completed');
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/jobs/${job.id}`), page.click(`#jobs a[href="/admin/jobs/${job.id}"]`)]);
      await page.locator('#timeline').waitFor();
      await page.screenshot({ path: join(screenshots, '3-job.png'), fullPage: true });
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/batches/${batchId}`), page.click(`dl a[href="/admin/batches/${batchId}"]`)]);
      await page.locator('#events').waitFor();

      expect(dialogs).toEqual([]);
      expect(foreign).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
