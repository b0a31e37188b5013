/**
 * The admin UI's pipeline runs (issue 16) against real services: /admin/runs lists every
 * tenant's runs newest first (keyset pages, filters by status, tenant and pipeline), a run's page
 * shows its inputs and output, its steps with their jobs and its events, and everything a tenant
 * wrote (inputs, pipeline name, metadata) is escaped. In headless Chromium an operator goes from
 * the list to the run, to a step's job, and sees that job's fallback attempts. Screenshots go to
 * a temporary directory (its path is printed).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '@longhaul/db';
import { CHROMIUM, SKIP_BROWSER, launchChromium, watchPage } from './browser.ts';
import { type Stack, isTerminalJob, startStack } from './harness.ts';

const TOKEN = 'admin_token_for_runs_tests_0123456789';
const bearer = { authorization: `Bearer ${TOKEN}` };
/** What a tenant may write, as it would break the page if it were not escaped. */
const HOSTILE_TASK = `<script>alert("pwned")</script> & <img src=x onerror=alert(1)> 'quoted'`;
const HOSTILE_NAME = '<i>Draft</i> & review';

let stack: Stack;
let other: { tenantId: string; apiKey: string };
/** This tenant's three-step run (its middle step falls back from o3 to gpt-4.1), and another tenant's later run. */
let run: any;
let otherRun: any;
let pipelineId: string;

function draftAndReview() {
  return {
    steps: [
      { name: 'outline', model: 'gpt-4.1', instructions: 'Outline the task.', input: '{{input.task}}', metadata: { sim_duration_ms: '50' } },
      {
        name: 'draft',
        model: 'o3',
        fallbacks: [{ model: 'gpt-4.1' }],
        instructions: 'Draft from the outline.',
        input: 'Outline: {{steps.outline.output_text}}',
        metadata: { sim_outcomes: 'o3=failed', sim_duration_ms: '50' },
      },
      { name: 'review', model: 'gpt-4.1', instructions: 'Review the draft.', input: '{{steps.draft.output_text}}', metadata: { sim_duration_ms: '50' } },
    ],
    output: '{{steps.review.output_text}}',
  };
}

async function api(method: string, path: string, body?: unknown, apiKey?: string) {
  return stack.api(method, path, body, apiKey ? { authorization: `Bearer ${apiKey}` } : {});
}

async function runToEnd(pipeline: string, inputs: Record<string, unknown>, metadata: Record<string, string>, apiKey?: string): Promise<any> {
  const created = await api('POST', `/v1/pipelines/${pipeline}/runs`, { inputs, metadata }, apiKey);
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const got = (await api('GET', `/v1/runs/${created.body.id}`, undefined, apiKey)).body;
    if (['completed', 'failed', 'cancelled'].includes(got.status)) return got;
    if (Date.now() > deadline) throw new Error(`run ${created.body.id} still ${got.status}: ${JSON.stringify(got.steps)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const adminHtml = async (path: string) => {
  const res = await fetch(`${stack.apiUrl}${path}`, { headers: bearer });
  return { status: res.status, html: await res.text() };
};
const runIdsIn = (html: string) => [...html.matchAll(/<tr data-id="(run_[^"]+)"/g)].map((m) => m[1]);

beforeAll(async () => {
  stack = await startStack({ sim: { time_scale: 0.01 }, api: { admin: { token: TOKEN } } });
  other = await createTenant(stack.db.db, 'other tenant');
  const created = await api('POST', '/v1/pipelines', { name: HOSTILE_NAME, definition: draftAndReview() });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  pipelineId = created.body.id;
  run = await runToEnd(pipelineId, { task: HOSTILE_TASK }, { owner: '<b>ops</b>' });
  expect(run.status, JSON.stringify(run)).toBe('completed');
  const single = await api(
    'POST',
    '/v1/pipelines',
    { name: 'single', definition: { steps: [{ name: 'only', model: 'gpt-4.1', input: '{{input.task}}', metadata: { sim_duration_ms: '50' } }] } },
    other.apiKey,
  );
  expect(single.status, JSON.stringify(single.body)).toBe(201);
  otherRun = await runToEnd(single.body.id, { task: 'plain' }, {}, other.apiKey);
  expect(otherRun.status, JSON.stringify(otherRun)).toBe('completed');
}, 90_000);
afterAll(async () => {
  await stack?.stop();
});

describe('admin runs pages over HTTP', () => {
  it('are behind the admin credential', async () => {
    expect((await fetch(`${stack.apiUrl}/admin/runs`)).status).toBe(401);
    expect((await fetch(`${stack.apiUrl}/admin/runs/${run.id}`)).status).toBe(401);
  });

  it('list every tenant’s runs newest first, a page after the cursor, and filter by status, tenant and pipeline', async () => {
    const all = await adminHtml('/admin/runs');
    expect(all.status).toBe(200);
    expect(runIdsIn(all.html)).toEqual([otherRun.id, run.id]);
    expect(all.html).toContain('3/3');
    expect(all.html).toContain('1/1');
    expect(runIdsIn((await adminHtml(`/admin/runs?after=${otherRun.id}`)).html)).toEqual([run.id]);
    expect(runIdsIn((await adminHtml(`/admin/runs?tenant=${other.tenantId}`)).html)).toEqual([otherRun.id]);
    expect(runIdsIn((await adminHtml(`/admin/runs?pipeline=${pipelineId}`)).html)).toEqual([run.id]);
    const failed = await adminHtml('/admin/runs?status=failed');
    expect(runIdsIn(failed.html)).toEqual([]);
    expect(failed.html).toContain('No run matches.');
    const bad = await adminHtml('/admin/runs?status=bogus');
    expect(bad.status).toBe(400);
    expect(bad.html).toContain('role="alert"');
    expect((await adminHtml('/admin/runs/run_doesnotexist0000')).status).toBe(404);
  });

  it('escape what the tenant wrote: run inputs, the pipeline name, metadata', async () => {
    const { status, html } = await adminHtml(`/admin/runs/${run.id}`);
    expect(status).toBe(200);
    // The layout has no script at all: any <script> or <img> would be the tenant's, unescaped.
    expect(html).not.toMatch(/<script|<img|<i>Draft|<b>ops/);
    expect(html).toContain('&lt;script&gt;alert(\\&quot;pwned\\&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt; &#39;quoted&#39;');
    expect(html).toContain('&lt;i&gt;Draft&lt;/i&gt; &amp; review');
    expect(html).toContain('owner=&lt;b&gt;ops&lt;/b&gt;');
    const list = await adminHtml('/admin/runs');
    expect(list.html).not.toContain('<i>Draft');
    expect(list.html).toContain('&lt;i&gt;Draft&lt;/i&gt; &amp; review');
  });

  it('show a step job’s run, and attempts only for a job with fallbacks', async () => {
    const outline = await adminHtml(`/admin/jobs/${run.steps.outline.job_ids[0]}`);
    expect(outline.html).toContain(`href="/admin/runs/${run.id}"`);
    expect(outline.html).not.toContain('id="attempts"');
    const draft = await adminHtml(`/admin/jobs/${run.steps.draft.job_ids[0]}`);
    expect(draft.html).toContain('id="attempts"');
    const standalone = await api('POST', '/v1/jobs', { model: 'o3', input: 'x', fallbacks: [{ model: 'gpt-5' }], metadata: { sim_outcomes: 'o3=failed', sim_duration_ms: '50' } });
    expect(standalone.status, JSON.stringify(standalone.body)).toBe(202);
    const job = await stack.waitForJob(standalone.body.id, isTerminalJob);
    expect(job).toMatchObject({ status: 'completed', attempt: 2 });
    const page = await adminHtml(`/admin/jobs/${job.id}`);
    expect(page.html).toContain('id="attempts"');
    expect(page.html).not.toContain('href="/admin/runs/');
    for (const a of job.attempts) expect(page.html).toContain(`<td class="mono">${a.response_id}</td>`);
  });
});

describe.skipIf(SKIP_BROWSER)(`admin runs in headless Chromium${SKIP_BROWSER ? ` (skipped: ${CHROMIUM} is missing)` : ''}`, () => {
  let browser: Browser;
  let screenshots: string;
  beforeAll(async () => {
    screenshots = mkdtempSync(join(tmpdir(), 'longhaul-admin-runs-'));
    console.info(`admin runs screenshots: ${screenshots}`);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('goes from the runs list to the run, to a step’s job and its attempts, and back to the run', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const { foreign, dialogs } = watchPage(page, stack.apiUrl);
    try {
      const first = await page.goto(`${stack.apiUrl}/admin/runs`);
      expect(first?.status()).toBe(401);
      await page.fill('input[name="token"]', TOKEN);
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/runs`), page.click('form.login button[type="submit"]')]);

      // The list: both tenants' runs, this one with its pipeline's name (as text), version, status and steps.
      const row = page.locator(`#runs tr[data-id="${run.id}"]`);
      const cells = await row.locator('td').allTextContents();
      expect(cells[0]).toBe(run.id);
      expect(cells[1]).toBe(stack.tenantId);
      expect(cells[2]).toBe(`${HOSTILE_NAME} v1`);
      expect(cells[3]).toBe('completed');
      expect(cells[4]).toBe('3/3');
      expect(cells[6]).toMatch(/\d+(\.\d)? (ms|s)$/);
      expect(await page.locator('#runs tbody tr').count()).toBe(2);
      expect(await page.locator('header a.on').textContent()).toBe('Runs');
      await page.screenshot({ path: join(screenshots, '1-runs.png'), fullPage: true });

      // The run: inputs shown as the tenant wrote them, each step with its job, the events in order.
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/runs/${run.id}`), row.locator(`a[href="/admin/runs/${run.id}"]`).click()]);
      expect(JSON.parse((await page.locator('#inputs').textContent()) ?? '')).toEqual({ task: HOSTILE_TASK });
      expect(JSON.parse((await page.locator('#output').textContent()) ?? '')).toEqual(run.output);
      const steps = page.locator('#steps tbody tr');
      expect(await steps.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-step')))).toEqual(['outline', 'draft', 'review']);
      for (const name of ['outline', 'draft', 'review']) {
        const step = page.locator(`#steps tr[data-step="${name}"]`);
        expect(await step.locator('td').nth(1).textContent()).toBe('completed');
        expect(await step.locator('a[href^="/admin/jobs/"]').allTextContents()).toEqual(run.steps[name].job_ids);
      }
      expect(await page.locator('#steps tr[data-step="draft"]').textContent()).toContain('attempt 2');
      const events = await page.locator('#events tbody tr').allTextContents();
      expect(events[0]).toMatch(/run created\s+pending/);
      expect(events).toContainEqual(expect.stringMatching(/step outline\s+started/));
      expect(events).toContainEqual(expect.stringMatching(/step draft\s+completed/));
      expect(events.at(-1)).toMatch(/run running → completed/);
      const eventIds = await page.locator('#events tbody tr').evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute('data-event'))));
      expect(eventIds).toEqual([...eventIds].sort((a, b) => a - b));
      await page.screenshot({ path: join(screenshots, '2-run.png'), fullPage: true });

      // The draft step's job: its two attempts, o3's failure then gpt-4.1's answer, each its own response.
      const draftJob = run.steps.draft.job_ids[0];
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/jobs/${draftJob}`), page.click(`#steps a[href="/admin/jobs/${draftJob}"]`)]);
      const attempts = page.locator('#attempts tbody tr');
      expect(await attempts.count()).toBe(2);
      const [one, two] = await Promise.all([attempts.nth(0).locator('td').allTextContents(), attempts.nth(1).locator('td').allTextContents()]);
      expect(one.slice(0, 4)).toEqual(['1', 'o3', 'failed', 'server_error']);
      expect(two.slice(0, 4)).toEqual(['2', 'gpt-4.1', 'completed', '—']);
      expect(one[4]).toMatch(/^resp_/);
      expect(two[4]).toMatch(/^resp_/);
      expect(one[4]).not.toBe(two[4]);
      expect(Number(two[5])).toBeGreaterThan(0);
      await page.screenshot({ path: join(screenshots, '3-job-attempts.png'), fullPage: true });

      // Back to the run from the job's facts.
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/runs/${run.id}`), page.click(`dl a[href="/admin/runs/${run.id}"]`)]);
      await page.locator('#steps').waitFor();

      expect(dialogs).toEqual([]);
      expect(foreign).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
