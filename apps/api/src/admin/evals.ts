/**
 * /admin/evals: evaluation runs across tenants (issue 18), newest first, 50 a page (keyset on
 * (created_at, id), filtered by tenant); and one eval's page: its inputs, the summary the API
 * shows (`summarizeEval` over `evalResultFigures`, the same figures and the same seed, so both
 * agree), two charts (mean score and pass rate per version with the pass rate's 95% interval;
 * the score distribution per version), each comparison with the baseline, and the items side by
 * side, 50 a page, the rows where the versions' verdicts differ highlighted (`?only=disagree`
 * keeps just those). Read-only: an eval is cancelled or re-run through the API, as its tenant would.
 */
import { Router } from 'express';
import { z } from 'zod';
import { type Grade, resultScore, seedOf, summarizeEval } from '@longhaul/core';
import {
  EVAL_OUTPUT_SHOWN,
  type Eval,
  type EvalItemResult,
  type EvalItemRow,
  type EvalListFacts,
  adminEvalListFacts,
  evalResultCounts,
  evalResultFigures,
  getEval,
  listEvalItemRows,
  listEvals,
} from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import { ids } from '../request-input.ts';
import { adminActor } from './audit.ts';
import { histogramChart, scoreChart, versionColour } from './charts.ts';
import { esc, layout, statusBadge, time, usd } from './html.ts';
import { type FilterField, filterForm, olderPageLink, sendNotFound, queryError } from './list-page.ts';

const EVAL_FILTERS: FilterField[] = [{ kind: 'text', name: 'tenant', label: 'Tenant id', placeholder: 'ten_…' }];

const PAGE_SIZE = 50;
const ITEMS_PAGE_SIZE = 50;

const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : typeof v === 'string' ? v.trim() : v);
const searchSchema = z.object({
  tenant: z.preprocess(blankToUndefined, ids.tenant.optional()),
  after: z.preprocess(blankToUndefined, ids.eval.optional()),
});
const itemsSchema = z.object({
  only: z.preprocess(blankToUndefined, z.enum(['disagree']).optional()),
  offset: z.preprocess(blankToUndefined, z.coerce.number().int().min(0).max(10_000_000).default(0)),
});

type Summary = ReturnType<typeof summarizeEval>;

/** Page-local styles (the layout's are shared by every page; these only matter here). */
const STYLE = `<style>
.chart{background:#fff;border:1px solid #dde1e7;border-radius:6px;margin-right:1rem;vertical-align:top}
.charts{display:flex;flex-wrap:wrap;gap:1rem;margin-top:1.2rem}.charts figure{margin:0}.charts figcaption{font-size:.8rem;color:#5a6472;margin-bottom:.3rem}
.swatch{display:inline-block;width:.7rem;height:.7rem;border-radius:2px;margin-right:.3rem;vertical-align:baseline}
#items tr.disagree td{background:#fff4d6}#items tr.disagree td:first-child{box-shadow:inset 4px 0 #d9822b}
#items td.out{max-width:22rem}#items td.out pre{max-height:7rem;overflow:hidden}
.pass-yes{color:#176b30;font-weight:600}.pass-no{color:#a12a1f;font-weight:600}
.filters a{margin-right:.8rem}.filters a.on{font-weight:600;text-decoration:none;color:#1d2430}
.verdict{padding:.6rem 1rem;background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:.4rem 0}
.verdict.significant{border-color:#8cc79c;background:#effaf2}
</style>`;

const pct = (v: number | null | undefined, digits = 1) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(digits)}%`);
const num = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? '—' : v.toFixed(digits));
const ms = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${Math.round(v)} ms`);

function named(name: string | null, id: string): string {
  return name === null ? `<span class="mono">${esc(id)}</span> <span class="muted">(deleted)</span>` : `${esc(name)} <span class="muted mono">${esc(id)}</span>`;
}

function evalRow(e: Eval, facts: EvalListFacts | undefined): string {
  const versions = facts?.versions ?? [];
  const finished = versions.reduce((s, v) => s + v.finished, 0);
  const total = versions.reduce((s, v) => s + v.total, 0);
  const passRates = versions
    .map((v) => `<span class="mono" data-version="${esc(v.version)}">v${esc(v.version)}&nbsp;${esc(pct(v.graded ? v.passed / v.graded : null))}</span>`)
    .join(' · ');
  return `<tr data-id="${esc(e.id)}" data-status="${esc(e.status)}"><td class="mono"><a href="/admin/evals/${encodeURIComponent(e.id)}">${esc(e.id)}</a></td><td class="mono"><a href="/admin/evals?tenant=${encodeURIComponent(e.tenantId)}">${esc(e.tenantId)}</a></td><td>${named(facts?.promptName ?? null, e.promptId)}</td><td class="mono">${esc(e.versions.map((v) => `v${v}`).join(', '))}</td><td>${named(facts?.datasetName ?? null, e.datasetId)} <span class="muted">v${esc(e.datasetVersion)}</span></td><td>${statusBadge(e.status)}</td><td class="progress">${esc(finished)}/${esc(total)}</td><td class="pass-rates">${passRates || '—'}</td><td class="mono">${esc(time(e.createdAt))}</td></tr>`;
}

function versionTable(summary: Summary): string {
  const rows = summary.versions
    .map(
      (v, i) =>
        `<tr data-version="${esc(v.version)}"><td><span class="swatch" style="background:${versionColour(i)}"></span>v${esc(v.version)}</td><td>${esc(v.finished)}/${esc(v.results)}</td><td class="mean-score">${esc(num(v.meanScore))}</td><td class="pass-rate">${esc(pct(v.passRate.rate))} <span class="muted">[${esc(pct(v.passRate.low))}, ${esc(pct(v.passRate.high))}]</span></td><td>${esc(usd(v.costUsd.total))} <span class="muted">/ ${esc(usd(v.costUsd.mean))}</span></td><td>${esc(ms(v.latencyMs.p50))} <span class="muted">/ ${esc(ms(v.latencyMs.p95))}</span></td><td>${esc(v.tokens.input)} <span class="muted">/ ${esc(v.tokens.output)}</span></td><td class="errors">${esc(v.errors)}</td></tr>`,
    )
    .join('');
  return `<div class="scroll"><table id="versions"><thead><tr><th>Version</th><th>Finished</th><th>Mean score</th><th>Pass rate [95% CI]</th><th>Cost total / mean</th><th>Latency p50 / p95</th><th>Tokens in / out</th><th>Errors</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

function comparisonBlock(summary: Summary): string {
  if (summary.comparisons.length === 0) return '<p class="empty">One version: nothing to compare.</p>';
  const rows = summary.comparisons
    .map(({ a, b, comparison: c }) => {
      const winner = c.significant ? (c.meanDifference! > 0 ? b : a) : null;
      const interval = c.interval ? `[${num(c.interval.low)}, ${num(c.interval.high)}]` : '—';
      return `<tr data-baseline="${esc(a)}" data-version="${esc(b)}"><td>v${esc(b)} vs v${esc(a)}</td><td>${esc(c.n)}</td><td>${esc(c.wins)} / ${esc(c.losses)} / ${esc(c.ties)}</td><td>${esc(num(c.meanDifference))}</td><td>${esc(num(c.pValue, 4))}</td><td>${esc(interval)}</td><td>${c.significant ? 'yes' : 'no'}</td><td class="winner">${winner === null ? '—' : `v${esc(winner)}`}</td></tr>`;
    })
    .join('');
  const verdicts = summary.comparisons
    .map(({ a, b, comparison: c }) => {
      if (!c.significant) return `<p class="verdict" data-version="${esc(b)}">v${esc(b)} vs v${esc(a)}: not significant (p = ${esc(num(c.pValue, 4))}).</p>`;
      const winner = c.meanDifference! > 0 ? b : a;
      return `<p class="verdict significant" data-version="${esc(b)}">v${esc(b)} vs v${esc(a)}: <b>v${esc(winner)} wins</b> (p = ${esc(num(c.pValue, 4))}, mean difference ${esc(num(c.meanDifference))}).</p>`;
    })
    .join('');
  return `${verdicts}<div class="scroll"><table id="comparison"><thead><tr><th>Compared</th><th>Items</th><th>Wins / losses / ties</th><th>Mean difference</th><th>p-value (sign test)</th><th>Bootstrap 95% interval</th><th>Significant</th><th>Winner</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

function resultCell(r: EvalItemResult | undefined): string {
  if (!r) return '<td class="out muted">—</td><td>—</td><td>—</td>';
  const graded = (r.status === 'done' || r.status === 'error') && r.grades?.length && r.grades.every((g) => g !== null);
  const score = graded ? resultScore(r.grades) : null;
  const pass = graded ? (r.grades as Grade[]).every((g) => g.pass) : null;
  const text = r.outputText ?? '';
  const cut = text.length > EVAL_OUTPUT_SHOWN ? `${text.slice(0, EVAL_OUTPUT_SHOWN)}…` : text;
  const output = r.error
    ? `<span class="error mono">${esc(r.error.code)}</span>: ${esc(r.error.message)}`
    : r.outputText === null
      ? `<span class="muted">${esc(r.status)}</span>`
      : `<pre class="mono">${esc(cut)}</pre>`;
  const job = r.jobId ? `<div><a class="mono" href="/admin/jobs/${encodeURIComponent(r.jobId)}">${esc(r.jobId)}</a></div>` : '';
  const passCell = pass === null ? '<td>—</td>' : pass ? '<td class="pass-yes" data-pass="true">pass</td>' : '<td class="pass-no" data-pass="false">fail</td>';
  return `<td class="out" data-version="${esc(r.version)}">${output}${job}</td><td class="score">${esc(num(score, 2))}</td>${passCell}`;
}

function itemsBlock(e: Eval, page: { data: EvalItemRow[]; hasMore: boolean; rows: number; disagreeing: number }, q: { only?: 'disagree'; offset: number }): string {
  const base = `/admin/evals/${encodeURIComponent(e.id)}`;
  const link = (params: { only?: string; offset?: number }) => {
    const p = new URLSearchParams();
    if (params.only) p.set('only', params.only);
    if (params.offset) p.set('offset', String(params.offset));
    const qs = p.toString();
    return `${base}${qs ? `?${qs}` : ''}#item-by-item`;
  };
  const filters = `<p class="filters"><a href="${esc(link({}))}"${q.only ? '' : ' class="on"'}>All rows (${esc(page.rows)})</a><a href="${esc(link({ only: 'disagree' }))}"${q.only ? ' class="on"' : ''}>Only where the versions disagree (${esc(page.disagreeing)})</a></p>`;
  const head = e.versions.map((v, i) => `<th colspan="3"><span class="swatch" style="background:${versionColour(i)}"></span>v${esc(v)}: output / score / pass</th>`).join('');
  const rows = page.data
    .map((row) => {
      const byVersion = new Map(row.results.map((r) => [r.version, r]));
      const cells = e.versions.map((v) => resultCell(byVersion.get(v))).join('');
      const repeat = e.repeats > 1 ? `<td>${esc(row.repeat)}</td>` : '';
      return `<tr data-item="${esc(row.itemIndex)}" data-repeat="${esc(row.repeat)}"${row.disagree ? ' class="disagree"' : ''}><td>${esc(row.itemIndex)}</td>${repeat}${cells}</tr>`;
    })
    .join('');
  const pager = [
    q.offset > 0 ? `<a rel="prev" href="${esc(link({ only: q.only, offset: Math.max(0, q.offset - ITEMS_PAGE_SIZE) }))}">← Previous</a>` : '',
    page.hasMore ? `<a rel="next" href="${esc(link({ only: q.only, offset: q.offset + ITEMS_PAGE_SIZE }))}">Next →</a>` : '',
  ]
    .filter(Boolean)
    .join(' · ');
  const shown = page.data.length
    ? `<p class="hint">Rows ${esc(q.offset + 1)}–${esc(q.offset + page.data.length)}; highlighted: some versions passed the item and some did not.</p>`
    : '';
  const table = page.data.length
    ? `<div class="scroll"><table id="items"><thead><tr><th>Item</th>${e.repeats > 1 ? '<th>Repeat</th>' : ''}${head}</tr></thead><tbody>${rows}</tbody></table></div>`
    : `<p class="empty">${q.only ? 'No item where the versions disagree.' : 'No item.'}</p>`;
  return `${filters}${shown}${table}${pager ? `<p class="pager">${pager}</p>` : ''}`;
}

function evalPage(e: Eval, facts: EvalListFacts | undefined, counts: Record<string, number>, summary: Summary, items: string): string {
  const total = Object.values(counts).reduce((s, n) => s + n, 0);
  const finished = (counts.done ?? 0) + (counts.error ?? 0);
  const countsText = ['pending', 'running', 'grading', 'done', 'error']
    .filter((s) => counts[s])
    .map((s) => `${s} ${counts[s]}`)
    .join(' · ');
  const metadata = Object.entries(e.metadata ?? {});
  const facts_: [string, string][] = [
    ['Status', statusBadge(e.status)],
    ['Tenant', `<a class="mono" href="/admin/evals?tenant=${encodeURIComponent(e.tenantId)}">${esc(e.tenantId)}</a>`],
    ['Prompt', named(facts?.promptName ?? null, e.promptId)],
    ['Versions', `<span class="mono">${esc(e.versions.map((v) => `v${v}`).join(', '))}</span> <span class="muted">(v${esc(e.versions[0])} is the baseline)</span>`],
    ['Dataset', `${named(facts?.datasetName ?? null, e.datasetId)} <span class="muted">version ${esc(e.datasetVersion)}</span>`],
    ['Graders', `<ol class="mono graders">${e.graders.map((g) => `<li>${esc(JSON.stringify(g))}</li>`).join('')}</ol>`],
    ['Repeats', esc(e.repeats)],
    ['Concurrency', esc(e.concurrency)],
    ['Progress', `<span id="progress">${esc(finished)}/${esc(total)}</span> <span class="muted">${esc(countsText)}</span>`],
    ['Created', esc(time(e.createdAt))],
    ['Finished', esc(time(e.finishedAt))],
    ['Metadata', metadata.length ? metadata.map(([k, v]) => `<span class="mono">${esc(k)}=${esc(v)}</span>`).join('<br>') : '<span class="muted">—</span>'],
  ];
  if (e.rerunOf) facts_.push(['Re-run of', `<a class="mono" href="/admin/evals/${encodeURIComponent(e.rerunOf)}">${esc(e.rerunOf)}</a>`]);
  if (e.error) facts_.push(['Error', `<span class="error mono">${esc(e.error.code)}</span>: ${esc(e.error.message)}`]);
  const charts = `<div class="charts"><figure><figcaption>Mean score and pass rate per version (error bars: the pass rate's 95% interval)</figcaption>${scoreChart(
    summary.versions.map((v) => ({ version: v.version, meanScore: v.meanScore, passRate: v.passRate })),
    { id: 'score-chart', title: 'Mean score and pass rate per version' },
  )}</figure><figure><figcaption>Score distribution per version (results per tenth of the score)</figcaption>${histogramChart(
    summary.versions.map((v) => ({ version: v.version, histogram: v.histogram })),
    { id: 'histogram-chart', title: 'Score distribution per version' },
  )}</figure></div>`;
  return `${STYLE}<p><a href="/admin/evals">← Evals</a></p>
<h1>Eval <span class="mono">${esc(e.id)}</span></h1>
<dl>${facts_.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>
<h2>Per version</h2>
${versionTable(summary)}
${charts}
<h2>Comparison with the baseline</h2>
${comparisonBlock(summary)}
<h2 id="item-by-item">Item by item</h2>
${items}`;
}

export function adminEvalsRouter(deps: ApiContext): Router {
  const router = Router();

  router.get('/', async (req, res) => {
    const raw = req.query as Record<string, unknown>;
    const parsed = searchSchema.safeParse(raw);
    let results: string;
    if (!parsed.success) {
      res.status(400);
      results = queryError(parsed.error);
    } else {
      const { data, hasMore } = await listEvals(deps.db, { tenantId: parsed.data.tenant ?? null, after: parsed.data.after, limit: PAGE_SIZE });
      const facts = await adminEvalListFacts(deps.db, data);
      results = data.length
        ? `<div class="scroll"><table id="evals"><thead><tr><th>Eval</th><th>Tenant</th><th>Prompt</th><th>Versions</th><th>Dataset</th><th>Status</th><th>Done</th><th>Pass rate</th><th>Created (UTC)</th></tr></thead><tbody>${data
            .map((e) => evalRow(e, facts.get(e.id)))
            .join('')}</tbody></table></div>${hasMore ? olderPageLink('/admin/evals', req, data.at(-1)!.id) : ''}`
        : '<p class="empty">No eval matches.</p>';
    }
    res.type('html').send(
      layout({
        title: 'Evals',
        active: 'evals',
        actor: adminActor(res),
        body: `${STYLE}<h1>Evals</h1>${filterForm('/admin/evals', EVAL_FILTERS, raw)}<h2>Newest first</h2>${results}`,
      }),
    );
  });

  router.get('/:id', async (req, res) => {
    const row = ids.eval.safeParse(req.params.id).success ? await getEval(deps.db, req.params.id) : null;
    if (!row) {
      sendNotFound(res, { active: 'evals', what: 'eval', id: req.params.id, back: { href: '/admin/evals', label: 'Evals' } });
      return;
    }
    res.locals.logFields = { eval_id: row.id, tenant_id: row.tenantId };
    const q = itemsSchema.safeParse(req.query);
    const query = q.success ? q.data : { only: undefined, offset: 0 };
    const [facts, counts, figures, page] = await Promise.all([
      adminEvalListFacts(deps.db, [row]),
      evalResultCounts(deps.db, row.id),
      evalResultFigures(deps.db, row.id),
      listEvalItemRows(deps.db, row.id, { onlyDisagree: query.only === 'disagree', offset: query.offset, limit: ITEMS_PAGE_SIZE }),
    ]);
    const summary = summarizeEval(row.versions, row.graders, figures, seedOf(row.id));
    const alert = q.success ? '' : `<p class="error" role="alert">${esc(q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '))}</p>`;
    if (!q.success) res.status(400);
    res
      .type('html')
      .send(layout({ title: row.id, active: 'evals', actor: adminActor(res), body: evalPage(row, facts.get(row.id), counts, summary, alert + itemsBlock(row, page, query)) }));
  });

  return router;
}
