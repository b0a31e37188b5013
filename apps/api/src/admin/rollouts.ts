/**
 * /admin/rollouts: gradual rollouts of prompt versions across tenants (issue 18), newest first,
 * 50 a page (keyset on (created_at, id), filtered by tenant and status); and one rollout's page:
 * where it stands (its step and the traffic split it gives), its guard limits beside the figures
 * of the latest look (the row's `last_figures`, a core `RolloutFigures`, whatever that look
 * decided), the candidate's share of traffic over time drawn from its prompt events, and those
 * events with the figures and breaches each decision was taken on. Read-only: a rollout is
 * paused, resumed or aborted through the API, as its tenant would.
 */
import { Router } from 'express';
import { z } from 'zod';
import { ID_PREFIX, ROLLOUT_STATUSES, type RolloutBreach, type RolloutFigures, type VersionFigures, idPattern } from '@longhaul/core';
import { type AdminRollout, type RolloutEventRow, getRolloutForAdmin, listRolloutEventsForAdmin, searchRollouts } from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import { ids } from '../request-input.ts';
import { adminActor } from './audit.ts';
import { type SharePoint, shareChart } from './charts.ts';
import { esc, layout, statusBadge, time, usd } from './html.ts';
import { type FilterField, filterForm, olderPageLink, sendNotFound, queryError } from './list-page.ts';

const ROLLOUT_FILTERS: FilterField[] = [
  { kind: 'select', name: 'status', label: 'Status', options: ROLLOUT_STATUSES },
  { kind: 'text', name: 'tenant', label: 'Tenant id', placeholder: 'ten_…' },
];

const PAGE_SIZE = 50;
/** A rollout logs one event per decision and per pause or resume: the page shows this many, oldest first. */
const EVENTS_SHOWN = 500;

const rolloutId = z.string().regex(idPattern(ID_PREFIX.rollout), `must be a rollout id (${ID_PREFIX.rollout}_…)`);
const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : typeof v === 'string' ? v.trim() : v);
const searchSchema = z.object({
  tenant: z.preprocess(blankToUndefined, ids.tenant.optional()),
  status: z.preprocess(blankToUndefined, z.enum(ROLLOUT_STATUSES).optional()),
  after: z.preprocess(blankToUndefined, rolloutId.optional()),
});

const STYLE = `<style>
.chart{background:#fff;border:1px solid #dde1e7;border-radius:6px}
ol.steps{display:flex;gap:.4rem;list-style:none;margin:0;padding:0}ol.steps li{padding:.05rem .5rem;border:1px solid #c5ccd6;border-radius:9px;font-size:.8rem}
ol.steps li.done{background:#d8f3df;border-color:#9fd3ad}ol.steps li.current{background:#2456c9;border-color:#2456c9;color:#fff;font-weight:600}
#guards td.ok{color:#176b30;font-weight:600}#guards td.breach{color:#a12a1f;font-weight:600}#guards tr.breach td{background:#fdf0ef}
#events td:nth-child(-n+6),#rollouts td:nth-child(4),#rollouts td:nth-child(6){white-space:nowrap}
ol.steps li.stopped{background:#fde0de;border-color:#e3a19b;color:#a12a1f;font-weight:600}
.status.rolled_back,.status.aborted{background:#fde0de;color:#a12a1f}.status.paused{background:#fcefd2;color:#8a5a00}ul.breaches{margin:0;padding-left:1.1rem;color:#a12a1f}
</style>`;

const pct = (v: number | null | undefined, digits = 1) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(digits)}%`);
const points = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)} pts`);
const ratio = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `×${v.toFixed(3)}`);

function stepText(r: AdminRollout): string {
  return `${r.stepIndex + 1}/${r.definition.steps.length} (${r.definition.steps[r.stepIndex] ?? '?'}%)`;
}

function rolloutRow(r: AdminRollout): string {
  return `<tr data-id="${esc(r.id)}" data-status="${esc(r.status)}"><td class="mono"><a href="/admin/rollouts/${encodeURIComponent(r.id)}">${esc(r.id)}</a></td><td class="mono"><a href="/admin/rollouts?tenant=${encodeURIComponent(r.tenantId)}">${esc(r.tenantId)}</a></td><td>${esc(r.promptName)} <span class="muted mono">${esc(r.promptId)}</span></td><td class="mono">v${esc(r.candidateVersion)} over v${esc(r.baselineVersion)}</td><td>${statusBadge(r.status)}</td><td>${esc(stepText(r))}</td><td class="mono">${esc(time(r.createdAt))}</td><td class="mono">${esc(time(r.updatedAt))}</td></tr>`;
}

function trafficText(traffic: { version: number; weight: number }[] | null, currentVersion: number): string {
  if (!traffic || traffic.length === 0) return `all to v${currentVersion}`;
  const total = traffic.reduce((s, t) => s + t.weight, 0) || 1;
  return traffic.map((t) => `v${t.version} ${Math.round((t.weight / total) * 1000) / 10}%`).join(' · ');
}

/** The candidate's share after an event: its weight in the split, or all or nothing once the split is gone. */
function candidateShare(e: RolloutEventRow, candidate: number): number {
  if (!e.traffic || e.traffic.length === 0) return e.currentVersion === candidate ? 100 : 0;
  const total = e.traffic.reduce((s, t) => s + t.weight, 0);
  const mine = e.traffic.filter((t) => t.version === candidate).reduce((s, t) => s + t.weight, 0);
  return total > 0 ? Math.round((mine / total) * 1000) / 10 : 0;
}

function guardTable(r: AdminRollout): string {
  const guard = r.definition.guard;
  const f = r.lastFigures;
  if (!f)
    return `<p class="empty" id="guards-empty">No look yet: the limits are ${esc(`failure rate +${guard.max_failure_rate_increase * 100} pts, incomplete rate +${guard.max_incomplete_rate_increase * 100} pts, cost ×${guard.max_cost_ratio}`)}${guard.min_validator_pass_rate === undefined ? '' : esc(`, validator pass rate ≥ ${pct(guard.min_validator_pass_rate)}`)}.</p>`;
  const compared: VersionFigures | null = f.comparedWith === 'reference' ? f.reference : f.comparedWith === 'step' ? f.baseline : null;
  /** Judged like the core's rolloutDecision: a figure equal to its limit passes; an unbounded cost ratio is a breach. */
  const verdict = (measured: number | null, limit: number, kind: 'max' | 'min', judged: boolean, unbounded = false): { cell: string; breach: boolean } => {
    if (!judged) return { cell: '<td class="muted">not judged yet</td>', breach: false };
    if (unbounded) return { cell: '<td class="breach">breach (unbounded)</td>', breach: true };
    if (measured === null) return { cell: '<td class="muted">—</td>', breach: false };
    const ok = kind === 'max' ? measured <= limit + 1e-9 : measured >= limit - 1e-9;
    return ok ? { cell: '<td class="ok">within</td>', breach: false } : { cell: '<td class="breach">breach</td>', breach: true };
  };
  const sampled = f.candidate.jobs >= f.minJobsPerStep && compared !== null;
  const unboundedCost = sampled && f.costRatio === null && (f.candidate.meanCostUsd ?? 0) > 0 && compared?.meanCostUsd === 0;
  // Each cell's HTML, escaped where it is built.
  const rows: { name: string; limit: string; measured: string; candidate: string; baseline: string; verdict: { cell: string; breach: boolean } }[] = [
    {
      name: 'max_failure_rate_increase',
      limit: esc(points(guard.max_failure_rate_increase)),
      measured: esc(points(f.failureRateIncrease)),
      candidate: esc(pct(f.candidate.failureRate)),
      baseline: esc(pct(compared?.failureRate)),
      verdict: verdict(f.failureRateIncrease, guard.max_failure_rate_increase, 'max', sampled),
    },
    {
      name: 'max_incomplete_rate_increase',
      limit: esc(points(guard.max_incomplete_rate_increase)),
      measured: esc(points(f.incompleteRateIncrease)),
      candidate: esc(pct(f.candidate.incompleteRate)),
      baseline: esc(pct(compared?.incompleteRate)),
      verdict: verdict(f.incompleteRateIncrease, guard.max_incomplete_rate_increase, 'max', sampled),
    },
    {
      name: 'max_cost_ratio',
      limit: esc(ratio(guard.max_cost_ratio)),
      measured: esc(unboundedCost ? 'unbounded' : ratio(f.costRatio)),
      candidate: esc(usd(f.candidate.meanCostUsd)),
      baseline: esc(usd(compared?.meanCostUsd)),
      verdict: verdict(f.costRatio, guard.max_cost_ratio, 'max', sampled, unboundedCost),
    },
  ];
  if (guard.min_validator_pass_rate !== undefined) {
    const checked = f.candidate.validatorChecked ?? 0;
    rows.push({
      name: 'min_validator_pass_rate',
      limit: esc(`≥ ${pct(guard.min_validator_pass_rate)}`),
      measured: `${esc(pct(f.candidate.validatorPassRate))} <span class="muted">of ${esc(checked)}</span>`,
      candidate: esc(pct(f.candidate.validatorPassRate)),
      baseline: '<span class="muted">not compared</span>',
      verdict: verdict(f.candidate.validatorPassRate, guard.min_validator_pass_rate, 'min', checked >= f.minJobsPerStep),
    });
  }
  const body = rows
    .map(
      (row) =>
        `<tr data-guard="${esc(row.name)}"${row.verdict.breach ? ' class="breach"' : ''}><td class="mono">${esc(row.name)}</td><td>${row.limit}</td><td class="measured">${row.measured}</td><td>${row.candidate}</td><td>${row.baseline}</td>${row.verdict.cell}</tr>`,
    )
    .join('');
  const jobs = `<p class="hint" id="sample">Latest look at step ${esc(f.stepIndex + 1)} (${esc(f.percent)}%), ${esc(f.stepSeconds)} s into it: the candidate v${esc(f.candidate.version)} has ${esc(f.candidate.jobs)} of the ${esc(f.minJobsPerStep)} finished jobs a step needs (${esc(f.candidate.failed)} failed, ${esc(f.candidate.incomplete)} incomplete); the baseline v${esc(f.baseline.version)} has ${esc(f.baseline.jobs)} in this step${f.comparedWith === 'reference' ? ', compared with its figures from an earlier step' : f.comparedWith === null ? ', too few to compare with yet' : ''}.</p>`;
  return `${jobs}<div class="scroll"><table id="guards"><thead><tr><th>Guard</th><th>Limit</th><th>Latest figure</th><th>Candidate</th><th>Baseline</th><th>Verdict</th></tr></thead><tbody>${body}</tbody></table></div>`;
}

function figuresSummary(f: RolloutFigures): string {
  return `candidate v${f.candidate.version}: ${f.candidate.jobs} jobs, failure ${pct(f.candidate.failureRate)}, incomplete ${pct(f.candidate.incompleteRate)}, mean ${usd(f.candidate.meanCostUsd)}; baseline v${f.baseline.version}: ${f.baseline.jobs} jobs, failure ${pct(f.baseline.failureRate)}; increase ${points(f.failureRateIncrease)}, cost ${ratio(f.costRatio)}`;
}

function breachList(breaches: RolloutBreach[]): string {
  return `<ul class="breaches">${breaches
    .map(
      (b) =>
        `<li><span class="mono">${esc(b.guard)}</span>: ${esc(b.measured === null ? 'unbounded' : b.measured.toFixed(4))} over the limit ${esc(b.limit)} (candidate ${esc(b.candidate.toFixed(4))}, baseline ${esc(b.baseline === null ? '—' : b.baseline.toFixed(4))})${b.early ? ' <span class="muted">early</span>' : ''}</li>`,
    )
    .join('')}</ul>`;
}

function eventRows(events: readonly RolloutEventRow[], candidate: number): string {
  return events
    .map((e) => {
      const { figures, breaches, step_index: stepIndex, percent, status, definition: _definition, ...rest } = (e.details ?? {}) as Record<string, unknown>;
      const parts: string[] = [];
      if (figures && typeof figures === 'object' && 'candidate' in figures) parts.push(`<div class="figures">${esc(figuresSummary(figures as RolloutFigures))}</div>`);
      if (Array.isArray(breaches) && breaches.length) parts.push(breachList(breaches as RolloutBreach[]));
      if (Object.keys(rest).length) parts.push(`<pre class="mono">${esc(JSON.stringify(rest))}</pre>`);
      const step = typeof stepIndex === 'number' ? `${stepIndex + 1}${typeof percent === 'number' ? ` (${percent}%)` : ''}` : '—';
      return `<tr data-event="${esc(e.id)}" data-type="${esc(e.type)}"><td class="mono">${esc(time(e.at))}</td><td class="mono">${esc(e.type)}</td><td>${esc(step)}</td><td>${typeof status === 'string' ? statusBadge(status) : '—'}</td><td class="mono">${esc(trafficText(e.traffic, e.currentVersion))}</td><td class="share">${esc(candidateShare(e, candidate))}%</td><td>${parts.join('')}</td></tr>`;
    })
    .join('');
}

/** A step before the current one passed; the current one is where a rolled-back or aborted rollout stopped. */
function stepClass(r: AdminRollout, i: number): string {
  if (i < r.stepIndex || r.status === 'completed') return 'done';
  if (i > r.stepIndex) return '';
  return r.status === 'rolled_back' || r.status === 'aborted' ? 'stopped' : 'current';
}

function rolloutPage(r: AdminRollout, events: readonly RolloutEventRow[], now: Date): string {
  const steps = `<ol class="steps" id="steps">${r.definition.steps.map((s, i) => `<li class="${stepClass(r, i)}" data-step="${i}">${esc(s)}%</li>`).join('')}</ol>`;
  const facts: [string, string][] = [
    ['Status', statusBadge(r.status)],
    ['Tenant', `<a class="mono" href="/admin/rollouts?tenant=${encodeURIComponent(r.tenantId)}">${esc(r.tenantId)}</a>`],
    ['Prompt', `${esc(r.promptName)} <span class="muted mono">${esc(r.promptId)}</span>`],
    ['Candidate', `v${esc(r.candidateVersion)}`],
    ['Baseline', `v${esc(r.baselineVersion)}`],
    ['Step', `<span id="current-step">${esc(stepText(r))}</span>`],
    ['Steps', steps],
    [
      'Prompt traffic now',
      `<span class="mono" id="traffic">${esc(trafficText(r.promptTraffic, r.promptCurrentVersion))}</span> <span class="muted">(current version v${esc(r.promptCurrentVersion)})</span>`,
    ],
    ['Step measured since', esc(time(r.stepStartedAt))],
    ['Jobs a step needs', esc(r.definition.min_jobs_per_step)],
    ['Next look', esc(time(r.nextCheckAt))],
    ['Created', esc(time(r.createdAt))],
    ['Finished', esc(time(r.finishedAt))],
  ];
  const share: SharePoint[] = events.map((e) => ({ at: e.at, share: candidateShare(e, r.candidateVersion), label: e.type }));
  const until = r.finishedAt ?? (events.length ? new Date(Math.max(now.getTime(), events.at(-1)!.at.getTime())) : now);
  return `${STYLE}<p><a href="/admin/rollouts">← Rollouts</a></p>
<h1>Rollout <span class="mono">${esc(r.id)}</span></h1>
<dl>${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>
<h2>Guards and the latest figures</h2>
${guardTable(r)}
<h2>Candidate's share of traffic</h2>
${shareChart(share, until, { id: 'share-chart', title: `Share of traffic on v${r.candidateVersion} over time` })}
<h2>Events</h2>
${events.length >= EVENTS_SHOWN ? `<p class="hint">The first ${EVENTS_SHOWN} events.</p>` : ''}${
  events.length
    ? `<div class="scroll"><table id="events"><thead><tr><th>At (UTC)</th><th>Event</th><th>Step</th><th>Status</th><th>Traffic after</th><th>Candidate share</th><th>Figures / breaches</th></tr></thead><tbody>${eventRows(events, r.candidateVersion)}</tbody></table></div>`
    : '<p class="empty">No event.</p>'
}`;
}

export function adminRolloutsRouter(deps: ApiContext): Router {
  const router = Router();

  router.get('/', async (req, res) => {
    const raw = req.query as Record<string, unknown>;
    const parsed = searchSchema.safeParse(raw);
    let results: string;
    if (!parsed.success) {
      res.status(400);
      results = queryError(parsed.error);
    } else {
      const q = parsed.data;
      const { data, hasMore } = await searchRollouts(deps.db, { tenantId: q.tenant, status: q.status, after: q.after, limit: PAGE_SIZE });
      results = data.length
        ? `<div class="scroll"><table id="rollouts"><thead><tr><th>Rollout</th><th>Tenant</th><th>Prompt</th><th>Versions</th><th>Status</th><th>Step</th><th>Created (UTC)</th><th>Updated (UTC)</th></tr></thead><tbody>${data
            .map(rolloutRow)
            .join('')}</tbody></table></div>${hasMore ? olderPageLink('/admin/rollouts', req, data.at(-1)!.id) : ''}`
        : '<p class="empty">No rollout matches.</p>';
    }
    res.type('html').send(
      layout({
        title: 'Rollouts',
        active: 'rollouts',
        actor: adminActor(res),
        body: `${STYLE}<h1>Prompt rollouts</h1>${filterForm('/admin/rollouts', ROLLOUT_FILTERS, raw)}<h2>Newest first</h2>${results}`,
      }),
    );
  });

  router.get('/:id', async (req, res) => {
    const row = rolloutId.safeParse(req.params.id).success ? await getRolloutForAdmin(deps.db, req.params.id) : null;
    if (!row) {
      sendNotFound(res, { active: 'rollouts', what: 'rollout', id: req.params.id, back: { href: '/admin/rollouts', label: 'Rollouts' } });
      return;
    }
    res.locals.logFields = { rollout_id: row.id, tenant_id: row.tenantId };
    const events = await listRolloutEventsForAdmin(deps.db, row.id, EVENTS_SHOWN);
    res.type('html').send(layout({ title: row.id, active: 'rollouts', actor: adminActor(res), body: rolloutPage(row, events, deps.clock()) }));
  });

  return router;
}
