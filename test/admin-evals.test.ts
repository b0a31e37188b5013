/**
 * The admin UI's evals and prompt rollouts (issue 18) against real services and the simulator:
 * an eval of a prompt's two versions (reasoning effort low and high, which the simulator answers
 * arithmetic right at 60% and 90%) over 12 items; /admin/evals lists every tenant's evals newest
 * first, and the eval's page shows both versions' figures as the API's summary has them, the two
 * charts (a bar per version with the pass rate's interval as an error bar; the score
 * distribution), the comparison's verdict, and the items side by side with the disagreements
 * highlighted and filterable. Rollouts are written directly into `rollouts` and `prompt_events`
 * (only the pages are under test): the page shows the step, the guards beside the latest figures,
 * the candidate's share over time and the events with their breaches. What a tenant wrote (the
 * prompt's name, an output) is escaped. Screenshots go to a temporary directory (its path is printed).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutDefinition, RolloutFigures, VersionFigures } from '@longhaul/core';
import { createTenant, schema } from '@longhaul/db';
import { CHROMIUM, SKIP_BROWSER, launchChromium, watchPage } from './browser.ts';
import { type Stack, startStack } from './harness.ts';

const TOKEN = 'admin_token_for_evals_tests_0123456789';
const bearer = { authorization: `Bearer ${TOKEN}` };
const HOSTILE_NAME = '<i>arith</i> & "sums"';
const HOSTILE_OUTPUT = `<script>alert("pwned")</script><img src=x onerror=alert(1)> 42 & 'more'`;
const ITEMS = 12;

let stack: Stack;
let other: { tenantId: string; apiKey: string };
let promptId: string;
/** This tenant's eval (finished, with the API's summary), and the other tenant's later one. */
let done: any;
let otherEval: any;
/** Per item: whether v1 and v2 passed it, from the API's results. */
let verdicts: Map<number, { v1: boolean; v2: boolean }>;
const rolloutIds = { running: 'ro_runningRollout0001', rolledBack: 'ro_rolledBackRollout01' };

const template = (effort: 'low' | 'high') => ({ model: 'gpt-5', reasoning: { effort }, instructions: 'Answer with the number only.', input: '{{question}}' });

async function api(method: string, path: string, body?: unknown, apiKey?: string) {
  return stack.api(method, path, body, apiKey ? { authorization: `Bearer ${apiKey}` } : {});
}

async function makePrompt(name: string, apiKey?: string): Promise<string> {
  const created = await api('POST', '/v1/prompts', { name, template: template('low') }, apiKey);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const v2 = await api('POST', `/v1/prompts/${created.body.id}/versions`, { template: template('high'), note: 'think harder' }, apiKey);
  expect(v2.status, JSON.stringify(v2.body)).toBe(201);
  return created.body.id;
}

async function makeDataset(n: number, apiKey?: string): Promise<string> {
  const items = Array.from({ length: n }, (_, i) => {
    const a = 17 + i * 7;
    const b = 3 + ((i * 13) % 50);
    return { variables: { question: `What is ${a} + ${b}?` }, expected: String(a + b) };
  });
  const res = await api('POST', '/v1/datasets', { name: 'sums <b>v1</b>', items }, apiKey);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function runEval(body: Record<string, unknown>, apiKey?: string): Promise<any> {
  const res = await api('POST', '/v1/evals', body, apiKey);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const got = await api('GET', `/v1/evals/${res.body.id}`, undefined, apiKey);
    if (['completed', 'cancelled', 'failed'].includes(got.body.status)) return got.body;
    if (Date.now() > deadline) throw new Error(`eval ${res.body.id} still ${got.body.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const adminHtml = async (path: string) => {
  const res = await fetch(`${stack.apiUrl}${path}`, { headers: bearer });
  return { status: res.status, html: await res.text() };
};
const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

function figuresOf(version: number, jobs: number, failed: number, incomplete: number, costUsd: number): VersionFigures {
  return {
    version,
    jobs,
    failed,
    incomplete,
    costUsd,
    failureRate: jobs ? failed / jobs : null,
    incompleteRate: jobs ? incomplete / jobs : null,
    meanCostUsd: jobs ? costUsd / jobs : null,
    validatorPassRate: null,
  };
}

function figures(stepIndex: number, percent: number, candidate: VersionFigures, baseline: VersionFigures): RolloutFigures {
  return {
    stepIndex,
    percent,
    stepSeconds: 90,
    minJobsPerStep: 20,
    candidate,
    baseline,
    comparedWith: 'step',
    reference: null,
    failureRateIncrease: candidate.failureRate! - baseline.failureRate!,
    incompleteRateIncrease: candidate.incompleteRate! - baseline.incompleteRate!,
    costRatio: candidate.meanCostUsd! / baseline.meanCostUsd!,
  };
}

/** Two rollouts of v2 on the prompt, as the lead's rollout loop writes them: an older one rolled back, and one running at its second step. */
async function insertRollouts(): Promise<void> {
  const db = stack.db.db;
  const def: RolloutDefinition = {
    candidate_version: 2,
    steps: [10, 50, 100],
    min_jobs_per_step: 20,
    guard: { max_failure_rate_increase: 0.02, max_incomplete_rate_increase: 0.05, max_cost_ratio: 1.5 },
  };
  const t0 = new Date(Date.now() - 3_600_000);
  const at = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);
  const split = (percent: number) => [
    { version: 1, weight: 100 - percent },
    { version: 2, weight: percent },
  ];
  const breachFigures = figures(0, 10, figuresOf(2, 20, 4, 0, 0.02), figuresOf(1, 180, 2, 0, 0.18));
  const stepFigures = figures(0, 10, figuresOf(2, 24, 0, 1, 0.03), figuresOf(1, 200, 2, 4, 0.2));
  const latest = figures(1, 50, figuresOf(2, 12, 1, 0, 0.018), figuresOf(1, 25, 0, 0, 0.025));
  await db.insert(schema.rollouts).values([
    {
      id: rolloutIds.rolledBack,
      tenantId: stack.tenantId,
      promptId,
      definition: def,
      status: 'rolled_back',
      stepIndex: 0,
      stepStartedAt: at(0),
      candidateVersion: 2,
      baselineVersion: 1,
      lastFigures: breachFigures,
      nextCheckAt: null,
      createdAt: at(0),
      updatedAt: at(5),
      finishedAt: at(5),
    },
    {
      id: rolloutIds.running,
      tenantId: stack.tenantId,
      promptId,
      definition: def,
      status: 'running',
      stepIndex: 1,
      stepStartedAt: at(20),
      candidateVersion: 2,
      baselineVersion: 1,
      lastFigures: latest,
      // No worker looks at it: the figures stay as written.
      nextCheckAt: null,
      createdAt: at(10),
      updatedAt: at(30),
    },
  ]);
  // The prompt's routing as the running rollout left it.
  await stack.db.pool.query('update prompts set traffic = $1::jsonb, current_version = 1 where id = $2', [JSON.stringify(split(50)), promptId]);
  const common = { promptId, tenantId: stack.tenantId };
  await db.insert(schema.promptEvents).values([
    {
      ...common,
      rolloutId: rolloutIds.rolledBack,
      type: 'started',
      traffic: split(10),
      currentVersion: 1,
      details: { step_index: 0, percent: 10, status: 'running', definition: def },
      at: at(0),
    },
    {
      ...common,
      rolloutId: rolloutIds.rolledBack,
      type: 'rollback',
      traffic: null,
      currentVersion: 1,
      details: {
        step_index: 0,
        percent: 10,
        status: 'rolled_back',
        figures: breachFigures,
        breaches: [{ guard: 'max_failure_rate_increase', limit: 0.02, measured: 0.1889, candidate: 0.2, baseline: 0.0111, early: false }],
      },
      at: at(5),
    },
    {
      ...common,
      rolloutId: rolloutIds.running,
      type: 'started',
      traffic: split(10),
      currentVersion: 1,
      details: { step_index: 0, percent: 10, status: 'running', definition: def },
      at: at(10),
    },
    {
      ...common,
      rolloutId: rolloutIds.running,
      type: 'advance',
      traffic: split(50),
      currentVersion: 1,
      details: { step_index: 1, percent: 50, status: 'running', figures: stepFigures, from_step: 0 },
      at: at(20),
    },
  ]);
}

beforeAll(async () => {
  stack = await startStack({ sim: { time_scale: 0.002 }, api: { admin: { token: TOKEN } } });
  other = await createTenant(stack.db.db, 'other tenant');
  promptId = await makePrompt(HOSTILE_NAME);
  const datasetId = await makeDataset(ITEMS);
  done = await runEval({ prompt_id: promptId, versions: [1, 2], dataset_id: datasetId, graders: [{ type: 'exact' }, { type: 'numeric', tolerance: 0 }], concurrency: 8 });
  expect(done.status, JSON.stringify(done)).toBe('completed');
  const results = (await api('GET', `/v1/evals/${done.id}/results?limit=100`)).body.data;
  verdicts = new Map();
  for (const r of results) {
    const entry = verdicts.get(r.item_index) ?? { v1: false, v2: false };
    entry[r.version === 1 ? 'v1' : 'v2'] = r.grades.every((g: any) => g.pass);
    verdicts.set(r.item_index, entry);
  }
  // An output that would break the page if it were not escaped (only the page is under test).
  await stack.db.pool.query('update jobs set output_text = $1 where id = (select job_id from eval_results where eval_id = $2 and version = 1 and item_index = 0)', [
    HOSTILE_OUTPUT,
    done.id,
  ]);
  const otherPrompt = await makePrompt('other prompt', other.apiKey);
  const otherDataset = await makeDataset(3, other.apiKey);
  otherEval = await runEval({ prompt_id: otherPrompt, versions: [2], dataset_id: otherDataset, graders: [{ type: 'exact' }] }, other.apiKey);
  await insertRollouts();
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

const disagreeing = () => [...verdicts].filter(([, v]) => v.v1 !== v.v2).map(([item]) => item);

describe('admin evals and rollouts pages over HTTP', () => {
  it('are behind the admin credential: without one, the login form (401) that comes back to the page', async () => {
    for (const path of ['/admin/evals', `/admin/evals/${done.id}`, '/admin/rollouts', `/admin/rollouts/${rolloutIds.running}`]) {
      const res = await fetch(`${stack.apiUrl}${path}`, { headers: { accept: 'text/html' }, redirect: 'manual' });
      expect(res.status, path).toBe(401);
      const html = await res.text();
      expect(html).toContain('form class="login"');
      expect(html).toContain(`name="next" value="${path}"`);
    }
  });

  it('list every tenant’s evals newest first, filter by tenant, and answer 404 and 400', async () => {
    const all = await adminHtml('/admin/evals');
    expect(all.status).toBe(200);
    expect([...all.html.matchAll(/<tr data-id="(eval_[^"]+)"/g)].map((m) => m[1])).toEqual([otherEval.id, done.id]);
    const mine = await adminHtml(`/admin/evals?tenant=${stack.tenantId}`);
    expect([...mine.html.matchAll(/<tr data-id="(eval_[^"]+)"/g)].map((m) => m[1])).toEqual([done.id]);
    const older = await adminHtml(`/admin/evals?after=${otherEval.id}`);
    expect([...older.html.matchAll(/<tr data-id="(eval_[^"]+)"/g)].map((m) => m[1])).toEqual([done.id]);
    expect((await adminHtml('/admin/evals?tenant=nope')).status).toBe(400);
    expect((await adminHtml('/admin/evals/eval_doesnotexist0000')).status).toBe(404);
    expect((await adminHtml('/admin/evals/not-an-id')).status).toBe(404);
    expect((await adminHtml('/admin/rollouts/ro_doesnotexist0000')).status).toBe(404);
    expect((await adminHtml('/admin/rollouts?status=bogus')).status).toBe(400);
  });

  it('escape what the tenant wrote: the prompt’s and dataset’s names, an output', async () => {
    for (const path of ['/admin/evals', `/admin/evals/${done.id}`, '/admin/rollouts', `/admin/rollouts/${rolloutIds.running}`]) {
      const { html } = await adminHtml(path);
      // The layout has no script and no image: any would be the tenant's, unescaped.
      expect(html, path).not.toMatch(/<script|<img|<i>arith|<b>v1/);
      expect(html, path).toContain('&lt;i&gt;arith&lt;/i&gt; &amp; &quot;sums&quot;');
    }
    const { html } = await adminHtml(`/admin/evals/${done.id}`);
    expect(html).toContain('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt; 42 &amp; &#39;more&#39;');
  });

  it('page the items 50 at a time, from an offset', async () => {
    const { html } = await adminHtml(`/admin/evals/${done.id}?offset=10`);
    expect([...html.matchAll(/<tr data-item="(\d+)"/g)].map((m) => Number(m[1]))).toEqual([10, 11]);
    expect(html).toContain('rel="prev"');
    expect(html).not.toContain('rel="next"');
    expect((await adminHtml(`/admin/evals/${done.id}?offset=-1`)).status).toBe(400);
  });
});

describe.skipIf(SKIP_BROWSER)(`admin evals and rollouts in headless Chromium${SKIP_BROWSER ? ` (skipped: ${CHROMIUM} is missing)` : ''}`, () => {
  let browser: Browser;
  let screenshots: string;
  beforeAll(async () => {
    screenshots = mkdtempSync(join(tmpdir(), 'longhaul-admin-evals-'));
    console.info(`admin evals screenshots: ${screenshots}`);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows the eval list, the eval with its figures, charts, comparison and items, and the filter on disagreements', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const { foreign, dialogs } = watchPage(page, stack.apiUrl);
    try {
      const first = await page.goto(`${stack.apiUrl}/admin/evals`);
      expect(first?.status()).toBe(401);
      await page.fill('input[name="token"]', TOKEN);
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/evals`), page.click('form.login button[type="submit"]')]);
      expect(await page.locator('header a.on').textContent()).toBe('Evals');

      // The list: both tenants' evals; this one with its prompt's name as text, its progress and pass rates.
      const [v1, v2] = done.summary.versions;
      const row = page.locator(`#evals tr[data-id="${done.id}"]`);
      const cells = await row.locator('td').allTextContents();
      expect(cells[0]).toBe(done.id);
      expect(cells[1]).toBe(stack.tenantId);
      expect(cells[2]).toBe(`${HOSTILE_NAME} ${promptId}`);
      expect(cells[3]).toBe('v1, v2');
      expect(cells[5]).toBe('completed');
      expect(cells[6]).toBe(`${ITEMS * 2}/${ITEMS * 2}`);
      expect(cells[7]!.replaceAll('\u00a0', ' ')).toBe(`v1 ${pct(v1.pass_rate.rate)} · v2 ${pct(v2.pass_rate.rate)}`);
      expect(await page.locator('#evals tbody tr').count()).toBe(2);
      await page.screenshot({ path: join(screenshots, '1-evals.png'), fullPage: true });

      // The eval: each version's figures as the API's summary has them.
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/evals/${done.id}`), row.locator(`a[href="/admin/evals/${done.id}"]`).click()]);
      expect(await page.locator('#progress').textContent()).toBe(`${ITEMS * 2}/${ITEMS * 2}`);
      for (const v of done.summary.versions) {
        const vr = page.locator(`#versions tr[data-version="${v.version}"]`);
        expect(await vr.locator('.mean-score').textContent()).toBe(v.mean_score.toFixed(3));
        expect(await vr.locator('.pass-rate').textContent()).toBe(`${pct(v.pass_rate.rate)} [${pct(v.pass_rate.low)}, ${pct(v.pass_rate.high)}]`);
        expect(await vr.locator('.errors').textContent()).toBe('0');
      }
      // The charts: a score and a pass bar per version, an error bar on each pass bar; ten buckets per version.
      expect(await page.locator('#score-chart rect.pass').count()).toBe(2);
      expect(await page.locator('#score-chart rect.score').count()).toBe(2);
      expect(await page.locator('#score-chart g.ci').count()).toBe(2);
      for (const v of done.summary.versions) {
        const bar = page.locator(`#score-chart rect.pass[data-version="${v.version}"]`);
        expect(Number(await bar.getAttribute('data-value'))).toBeCloseTo(v.pass_rate.rate, 9);
        const ci = page.locator(`#score-chart g.ci[data-version="${v.version}"]`);
        expect(Number(await ci.getAttribute('data-low'))).toBeCloseTo(v.pass_rate.low, 9);
        expect(Number(await ci.getAttribute('data-high'))).toBeCloseTo(v.pass_rate.high, 9);
        const counts = await page.locator(`#histogram-chart rect.hist[data-version="${v.version}"]`).evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('data-count'))));
        expect(counts).toEqual(v.score_histogram);
      }
      const box = await page.locator('#score-chart rect.pass[data-version="2"]').boundingBox();
      expect(box!.height).toBeGreaterThan(0);
      // The comparison: the winner when significant, else "not significant".
      const comparison = done.summary.comparisons[0];
      const verdict = await page.locator('.verdict').textContent();
      if (comparison.significant) expect(verdict).toContain(`v${comparison.winner} wins`);
      else expect(verdict).toContain('not significant');
      const compared = await page.locator('#comparison tbody tr td').allTextContents();
      expect(compared[2]).toBe(`${comparison.wins} / ${comparison.losses} / ${comparison.ties}`);
      expect(compared[7]).toBe(comparison.winner === null ? '—' : `v${comparison.winner}`);
      // The items: all 12, those where one version passed and the other did not highlighted.
      expect(await page.locator('#items tbody tr').count()).toBe(ITEMS);
      const highlighted = await page.locator('#items tbody tr.disagree').evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute('data-item'))));
      expect(disagreeing().length).toBeGreaterThan(0);
      expect(highlighted).toEqual(disagreeing());
      const background = await page
        .locator('#items tbody tr.disagree td')
        .first()
        .evaluate((td) => getComputedStyle(td).backgroundColor);
      expect(background).not.toBe('rgba(0, 0, 0, 0)');
      // The hostile output is shown as text; nothing ran.
      expect(await page.locator('#items tr[data-item="0"] td.out[data-version="1"] pre').textContent()).toBe(HOSTILE_OUTPUT);
      await page.screenshot({ path: join(screenshots, '2-eval.png'), fullPage: true });

      // Only the disagreements.
      await Promise.all([page.waitForURL(/only=disagree/), page.click('.filters a[href*="only=disagree"]')]);
      expect(await page.locator('#items tbody tr').count()).toBe(disagreeing().length);
      expect(await page.locator('#items tbody tr:not(.disagree)').count()).toBe(0);
      await page.screenshot({ path: join(screenshots, '3-eval-disagreements.png'), fullPage: true });

      // An item's job, on the job page.
      const jobLink = page.locator('#items tbody tr td.out a[href^="/admin/jobs/"]').first();
      const jobId = await jobLink.textContent();
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/jobs/${jobId}`), jobLink.click()]);

      expect(dialogs).toEqual([]);
      expect(foreign).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('shows the rollouts, a running one’s step, guards, share over time and events, and a rolled-back one’s breach', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const foreign: string[] = [];
    page.on('request', (req) => {
      if (!req.url().startsWith(stack.apiUrl) && !req.url().startsWith('data:')) foreign.push(req.url());
    });
    try {
      // Not logged in: the login form, then straight back to the page asked for.
      const first = await page.goto(`${stack.apiUrl}/admin/rollouts/${rolloutIds.running}`);
      expect(first?.status()).toBe(401);
      await page.fill('input[name="token"]', TOKEN);
      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/rollouts/${rolloutIds.running}`), page.click('form.login button[type="submit"]')]);
      expect(await page.locator('#current-step').textContent()).toBe('2/3 (50%)');
      expect(await page.locator('#steps li.current').textContent()).toBe('50%');
      expect(await page.locator('#steps li.done').allTextContents()).toEqual(['10%']);
      expect(await page.locator('#traffic').textContent()).toBe('v1 50% · v2 50%');
      const guards = await page.locator('#guards tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
      // 12 of 20 candidate jobs: the latest figures are shown, not judged yet.
      expect(guards).toEqual([
        ['max_failure_rate_increase', '+2.0 pts', '+8.3 pts', '8.3%', '0.0%', 'not judged yet'],
        ['max_incomplete_rate_increase', '+5.0 pts', '+0.0 pts', '0.0%', '0.0%', 'not judged yet'],
        ['max_cost_ratio', '×1.500', '×1.500', '$0.001500', '$0.001000', 'not judged yet'],
      ]);
      expect(await page.locator('#share-chart circle.point').evaluateAll((cs) => cs.map((c) => Number(c.getAttribute('data-share'))))).toEqual([10, 50]);
      expect(await page.locator('#share-chart path.share').count()).toBe(1);
      const events = await page.locator('#events tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-type')));
      expect(events).toEqual(['started', 'advance']);
      expect(await page.locator('#events tr[data-type="advance"] .figures').textContent()).toContain('candidate v2: 24 jobs');
      await page.screenshot({ path: join(screenshots, '5-rollout-running.png'), fullPage: true });

      await page.goto(`${stack.apiUrl}/admin/rollouts`);
      expect(await page.locator('header a.on').textContent()).toBe('Rollouts');
      expect(await page.locator('#rollouts tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')))).toEqual([rolloutIds.running, rolloutIds.rolledBack]);
      await page.screenshot({ path: join(screenshots, '4-rollouts.png'), fullPage: true });

      await Promise.all([page.waitForURL(`${stack.apiUrl}/admin/rollouts/${rolloutIds.rolledBack}`), page.click(`a[href="/admin/rollouts/${rolloutIds.rolledBack}"]`)]);
      expect(await page.locator('#share-chart circle.point').evaluateAll((cs) => cs.map((c) => Number(c.getAttribute('data-share'))))).toEqual([10, 0]);
      expect(await page.locator('#guards tr.breach').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-guard')))).toEqual(['max_failure_rate_increase']);
      expect(await page.locator('#events tr[data-type="rollback"] ul.breaches').textContent()).toContain('max_failure_rate_increase');
      expect(await page.locator('#steps li.stopped').textContent()).toBe('10%');
      await page.screenshot({ path: join(screenshots, '6-rollout-rolled-back.png'), fullPage: true });
      expect(foreign).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
