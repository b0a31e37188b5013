/**
 * /admin: the overview an operator opens first. Cards of headline figures and charts of the jobs
 * created in a window (1h, 6h, 24h, 7d, 30d), across tenants or for one: jobs by status, time to
 * terminal p50/p95 by model, cost by model and by tenant, cache-hit ratios, how completions were
 * detected (webhook vs poll), queue depths now and callback failures. `range` and `tenant` are
 * query parameters, so a view is a link.
 *
 * The figures come from @longhaul/db admin-overview.ts (Postgres) and the queues (Redis), shaped
 * here into chart series by pure functions, and reach the page twice: as JSON in a
 * `<script type="application/json">` block the page's script draws from, and at
 * /admin/overview.json (the same object) for scripts and tests.
 *
 * The charts are Chart.js, served from its npm package by /admin/assets/chart.umd.min.js, and
 * drawn by /admin/assets/overview.js (overview-client.ts): scripts of this origin, which is all the
 * admin CSP lets run. Nothing is fetched from anywhere else.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { ValidationError } from '@longhaul/core';
import { type OverviewFigures, listTenantsForAdmin, overviewFigures } from '@longhaul/db';
import { queueDepths } from '@longhaul/queue';
import type { ApiContext } from '../context.ts';
import { ids } from '../request-input.ts';
import { adminActor } from './audit.ts';
import { esc, layout } from './html.ts';
import { OVERVIEW_CLIENT_JS } from './overview-client.ts';

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86_400;

/** Each window and its bucket widths (seconds): about a hundred bars, and cost per hour or per day. */
export const OVERVIEW_RANGES = {
  '1h': { seconds: HOUR, bucket: MINUTE, costBucket: HOUR },
  '6h': { seconds: 6 * HOUR, bucket: 5 * MINUTE, costBucket: HOUR },
  '24h': { seconds: DAY, bucket: 15 * MINUTE, costBucket: HOUR },
  '7d': { seconds: 7 * DAY, bucket: HOUR, costBucket: DAY },
  '30d': { seconds: 30 * DAY, bucket: 6 * HOUR, costBucket: DAY },
} as const;
export type OverviewRange = keyof typeof OVERVIEW_RANGES;
const RANGE_NAMES = Object.keys(OVERVIEW_RANGES) as [OverviewRange, ...OverviewRange[]];

const querySchema = z.object({
  range: z.preprocess((v) => (v === '' ? undefined : v), z.enum(RANGE_NAMES).default('24h')),
  tenant: z.preprocess((v) => (v === '' ? undefined : v), ids.tenant.optional()),
});

/** The states a job counts in, stacked in this order (finished first, then what is still running). */
const STATUS_ORDER = ['completed', 'failed', 'incomplete', 'cancelled', 'expired', 'requires_action', 'cancelling', 'in_progress', 'queued', 'pending'];
const OUTCOMES = ['delivered', 'rejected', 'no_answer'] as const;
const ORIGIN_MS = Date.UTC(2000, 0, 1);

type Series = Record<string, number[]>;

export interface Overview {
  range: OverviewRange;
  tenant: string | null;
  from: string;
  to: string;
  bucketSeconds: number;
  costBucketSeconds: number;
  tenants: { id: string; name: string }[];
  totals: {
    jobs: number;
    byStatus: Record<string, number>;
    byModel: Record<string, number>;
    costUsd: number;
    inputTokens: number;
    cachedTokens: number;
    outputTokens: number;
    /** cached input tokens / input tokens; null: no input tokens. */
    tokenCacheRatio: number | null;
    cacheHits: number;
    /** response-cache hits / completed jobs; null: none completed. */
    responseCacheRatio: number | null;
    /** Terminal transitions by who detected them. */
    completionsBySource: Record<string, number>;
    callbackAttempts: Record<string, number>;
    deliveriesByStatus: Record<string, number>;
  };
  jobs: { buckets: string[]; labels: string[]; byStatus: Series };
  latency: { model: string; jobs: number; p50Ms: number; p95Ms: number }[];
  cost: { buckets: string[]; labels: string[]; byModel: Series; byTenant: Series };
  cache: { buckets: string[]; labels: string[]; tokenRatio: (number | null)[]; responseRatio: (number | null)[] };
  completions: { buckets: string[]; labels: string[]; bySource: Series };
  callbacks: { buckets: string[]; labels: string[]; byOutcome: Series };
  queues: { bullmq: { queue: string; states: Record<string, number> }[]; fair: Record<string, number>; error: string | null };
}

/** Bucket starts covering [from, to), aligned like Postgres's `date_bin(…, 2000-01-01 UTC)`. */
export function bucketStarts(from: Date, to: Date, bucketSeconds: number): number[] {
  const width = bucketSeconds * 1000;
  const starts: number[] = [];
  for (let t = ORIGIN_MS + Math.floor((from.getTime() - ORIGIN_MS) / width) * width; t < to.getTime(); t += width) starts.push(t);
  return starts;
}

const align = (t: Date, bucketSeconds: number) => ORIGIN_MS + Math.floor((t.getTime() - ORIGIN_MS) / (bucketSeconds * 1000)) * bucketSeconds * 1000;

/** A bucket's label, in UTC: the time of day, with the date when the window spans days. */
function labelOf(t: number, bucketSeconds: number, spansDays: boolean): string {
  const iso = new Date(t).toISOString();
  if (bucketSeconds >= DAY) return iso.slice(5, 10);
  return spansDays ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 16);
}

/** Sum `value` of each row into its bucket, one series per key. */
function series<R>(
  starts: number[],
  bucketSeconds: number,
  rows: readonly R[],
  at: (r: R) => Date,
  key: (r: R) => string,
  value: (r: R) => number,
  keys: readonly string[] = [],
): Series {
  const index = new Map(starts.map((t, i) => [t, i]));
  const out: Series = {};
  for (const k of keys) out[k] = starts.map(() => 0);
  for (const r of rows) {
    const i = index.get(align(at(r), bucketSeconds));
    if (i === undefined) continue;
    const k = key(r);
    const row = out[k] ?? starts.map(() => 0);
    out[k] = row;
    row[i] = row[i]! + value(r);
  }
  return out;
}

const sumBy = <R>(rows: readonly R[], key: (r: R) => string, value: (r: R) => number): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const r of rows) out[key(r)] = (out[key(r)] ?? 0) + value(r);
  return out;
};

const ratio = (part: number, whole: number) => (whole > 0 ? part / whole : null);
const round = (v: number, digits = 9) => Number(v.toFixed(digits));

/** The chart series and totals of one window's figures (pure). */
export function shapeOverview(
  figures: OverviewFigures,
  opts: { range: OverviewRange; tenant: string | null; from: Date; to: Date; tenants: { id: string; name: string }[]; queues: Overview['queues'] },
): Overview {
  const { bucket, costBucket, seconds } = OVERVIEW_RANGES[opts.range];
  const spansDays = seconds > DAY;
  const starts = bucketStarts(opts.from, opts.to, bucket);
  const costStarts = bucketStarts(opts.from, opts.to, costBucket);
  const labels = starts.map((t) => labelOf(t, bucket, spansDays));
  const buckets = starts.map((t) => new Date(t).toISOString());
  const costAxis = { buckets: costStarts.map((t) => new Date(t).toISOString()), labels: costStarts.map((t) => labelOf(t, costBucket, spansDays)) };
  const { activity, latency, completions, callbacks, deliveries } = figures;

  const byStatusTotals = sumBy(
    activity,
    (r) => r.status,
    (r) => r.jobs,
  );
  const statuses = STATUS_ORDER.filter((s) => byStatusTotals[s]);
  const byStatus = series(
    starts,
    bucket,
    activity,
    (r) => r.bucket,
    (r) => r.status,
    (r) => r.jobs,
    statuses,
  );
  const costByModel = series(
    costStarts,
    costBucket,
    activity,
    (r) => r.bucket,
    (r) => r.model,
    (r) => r.costUsd,
  );
  const costByTenant = series(
    costStarts,
    costBucket,
    activity,
    (r) => r.bucket,
    (r) => r.tenantId,
    (r) => r.costUsd,
  );
  for (const s of [costByModel, costByTenant]) for (const k of Object.keys(s)) s[k] = s[k]!.map((v) => round(v));

  // One line per bucket: the activity rows summed by `value`.
  const line = (value: (r: (typeof activity)[number]) => number) =>
    series(
      starts,
      bucket,
      activity,
      (r) => r.bucket,
      () => 'v',
      value,
    ).v ?? starts.map(() => 0);
  const input = line((r) => r.inputTokens);
  const cached = line((r) => r.cachedTokens);
  const completed = line((r) => (r.status === 'completed' ? r.jobs : 0));
  const hits = line((r) => r.cacheHits);

  const totalInput = activity.reduce((a, r) => a + r.inputTokens, 0);
  const totalCached = activity.reduce((a, r) => a + r.cachedTokens, 0);
  const totalHits = activity.reduce((a, r) => a + r.cacheHits, 0);
  return {
    range: opts.range,
    tenant: opts.tenant,
    from: opts.from.toISOString(),
    to: opts.to.toISOString(),
    bucketSeconds: bucket,
    costBucketSeconds: costBucket,
    tenants: opts.tenants,
    totals: {
      jobs: activity.reduce((a, r) => a + r.jobs, 0),
      byStatus: byStatusTotals,
      byModel: sumBy(
        activity,
        (r) => r.model,
        (r) => r.jobs,
      ),
      costUsd: round(activity.reduce((a, r) => a + r.costUsd, 0)),
      inputTokens: totalInput,
      cachedTokens: totalCached,
      outputTokens: activity.reduce((a, r) => a + r.outputTokens, 0),
      tokenCacheRatio: ratio(totalCached, totalInput),
      cacheHits: totalHits,
      responseCacheRatio: ratio(totalHits, byStatusTotals.completed ?? 0),
      completionsBySource: sumBy(
        completions,
        (r) => r.source,
        (r) => r.jobs,
      ),
      callbackAttempts: {
        delivered: 0,
        rejected: 0,
        no_answer: 0,
        ...sumBy(
          callbacks,
          (r) => r.outcome,
          (r) => r.attempts,
        ),
      },
      deliveriesByStatus: Object.fromEntries(deliveries.map((d) => [d.status, d.deliveries])),
    },
    jobs: { buckets, labels, byStatus },
    latency: latency.map((l) => ({ model: l.model, jobs: l.jobs, p50Ms: Math.round(l.p50Ms), p95Ms: Math.round(l.p95Ms) })),
    cost: { ...costAxis, byModel: costByModel, byTenant: costByTenant },
    cache: { buckets, labels, tokenRatio: starts.map((_, i) => ratio(cached[i]!, input[i]!)), responseRatio: starts.map((_, i) => ratio(hits[i]!, completed[i]!)) },
    completions: {
      buckets,
      labels,
      bySource: series(
        starts,
        bucket,
        completions,
        (r) => r.bucket,
        (r) => r.source,
        (r) => r.jobs,
        ['webhook', 'poll'],
      ),
    },
    callbacks: {
      buckets,
      labels,
      byOutcome: series(
        starts,
        bucket,
        callbacks,
        (r) => r.bucket,
        (r) => r.outcome,
        (r) => r.attempts,
        OUTCOMES,
      ),
    },
    queues: opts.queues,
  };
}

/** Work items per BullMQ queue and state, and the fair queue's waiting jobs per tenant (its low lanes as `<tenant>~low`); a tenant filter narrows the latter. */
async function queuesNow(deps: ApiContext, tenant: string | null): Promise<Overview['queues']> {
  try {
    const [depths, fair] = await Promise.all([queueDepths(deps.queues), deps.admission.fairQueue.waitingByTenant()]);
    const bullmq = new Map<string, Record<string, number>>();
    for (const d of depths) bullmq.set(d.queue, { ...bullmq.get(d.queue), [d.state]: d.count });
    const fairShown = tenant === null ? fair : Object.fromEntries(Object.entries(fair).filter(([t]) => t === tenant || t === `${tenant}~low`));
    return { bullmq: [...bullmq].map(([queue, states]) => ({ queue, states })), fair: fairShown, error: null };
  } catch (err) {
    return { bullmq: [], fair: {}, error: `queue depths unavailable: ${(err as Error).message}` };
  }
}

export async function buildOverview(deps: ApiContext, query: { range: OverviewRange; tenant?: string }): Promise<Overview> {
  const to = deps.clock();
  const { seconds, bucket } = OVERVIEW_RANGES[query.range];
  const from = new Date(to.getTime() - seconds * 1000);
  const [figures, tenants, queues] = await Promise.all([
    overviewFigures(deps.db, { from, to, bucketSeconds: bucket, tenantId: query.tenant }),
    listTenantsForAdmin(deps.db),
    queuesNow(deps, query.tenant ?? null),
  ]);
  return shapeOverview(figures, { range: query.range, tenant: query.tenant ?? null, from, to, tenants, queues });
}

const duration = (s: number) => (s >= DAY ? `${s / DAY} d` : s >= HOUR ? `${s / HOUR} h` : `${s / MINUTE} min`);
const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(1)} %`);
const seconds = (ms: number) => (ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`);
const int = (n: number) => n.toLocaleString('en-US');
/** Dollars in a headline: three significant digits below a cent. */
const dollars = (v: number) => (v === 0 ? '$0' : v >= 1 ? `$${v.toFixed(2)}` : v >= 0.01 ? `$${v.toFixed(3)}` : `$${Number(v.toPrecision(3))}`);

const OVERVIEW_STYLE = `
.filters{display:flex;flex-wrap:wrap;gap:.8rem 1.4rem;align-items:end;margin:0 0 .6rem}
.ranges{display:inline-flex;border:1px solid #c5ccd6;border-radius:6px;overflow:hidden;background:#fff}
.ranges a{padding:.35rem .8rem;color:#2b3440;text-decoration:none;border-left:1px solid #dde1e7}.ranges a:first-child{border-left:0}
.ranges a.on{background:#2456c9;color:#fff}.ranges a:hover:not(.on){background:#eef2f8}
.filters label{flex-direction:row;align-items:center;gap:.5rem;font-size:.85rem}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(138px,1fr));gap:.7rem;margin:1rem 0}
.kpi{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:.65rem .8rem}
.kpi .label{font-size:.7rem;white-space:nowrap;color:#5a6472;text-transform:uppercase;letter-spacing:.04em}
.kpi .value{font-size:1.45rem;font-weight:600;margin-top:.15rem;font-variant-numeric:tabular-nums}
.kpi .sub{font-size:.78rem;color:#6b7582}.kpi.bad .value{color:#a12a1f}.kpi.good .value{color:#176b30}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(310px,1fr));gap:1rem}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:.8rem 1rem 1rem;min-width:0}
.card header{all:unset;display:block;margin-bottom:.5rem}
.card h2{margin:0;font-size:.95rem}.card .unit{display:block;font-size:.74rem;color:#6b7582;margin-top:.1rem}
.card .plot{position:relative;height:240px}.card p.note{margin:.4rem 0 0;font-size:.75rem;color:#6b7582}
`;

function kpi(label: string, value: string, sub: string, tone: '' | 'good' | 'bad' = ''): string {
  return `<div class="kpi${tone ? ` ${tone}` : ''}"><div class="label">${esc(label)}</div><div class="value">${esc(value)}</div><div class="sub">${esc(sub)}</div></div>`;
}

function card(id: string, title: string, unit: string, note = ''): string {
  return `<article class="card" id="card-${id}"><header><h2>${esc(title)}</h2><span class="unit">${esc(unit)}</span></header><div class="plot"><canvas id="chart-${id}" role="img" aria-label="${esc(title)}"></canvas></div>${note ? `<p class="note">${esc(note)}</p>` : ''}</article>`;
}

function filters(o: Overview): string {
  const link = (range: string) => {
    const params = new URLSearchParams({ range });
    if (o.tenant) params.set('tenant', o.tenant);
    return `<a href="/admin?${esc(params.toString())}"${range === o.range ? ' class="on" aria-current="true"' : ''}>${esc(range)}</a>`;
  };
  const options = [
    `<option value="">All tenants</option>`,
    ...o.tenants.map((t) => `<option value="${esc(t.id)}"${t.id === o.tenant ? ' selected' : ''}>${esc(t.name)} (${esc(t.id)})</option>`),
  ].join('');
  return `<form class="filters" method="get" action="/admin" id="filters">
  <nav class="ranges" aria-label="Time range">${RANGE_NAMES.map(link).join('')}</nav>
  <input type="hidden" name="range" value="${esc(o.range)}">
  <label>Tenant <select name="tenant" data-autosubmit>${options}</select></label>
  <noscript><button class="primary" type="submit">Apply</button></noscript>
  <a class="muted" href="/admin/overview.json?${esc(new URLSearchParams({ range: o.range, ...(o.tenant ? { tenant: o.tenant } : {}) }).toString())}">JSON</a>
</form>`;
}

function kpis(o: Overview): string {
  const t = o.totals;
  const finished = ['completed', 'failed', 'incomplete', 'cancelled', 'expired'].reduce((a, s) => a + (t.byStatus[s] ?? 0), 0);
  const failed = (t.byStatus.failed ?? 0) + (t.byStatus.expired ?? 0);
  const slowest = [...o.latency].sort((a, b) => b.p95Ms - a.p95Ms)[0];
  const webhook = t.completionsBySource.webhook ?? 0;
  const poll = t.completionsBySource.poll ?? 0;
  const callbackFailures = (t.callbackAttempts.rejected ?? 0) + (t.callbackAttempts.no_answer ?? 0);
  const deadLetters = t.deliveriesByStatus.failed ?? 0;
  return `<section class="kpis" aria-label="Headline figures">
${kpi('Jobs', int(t.jobs), `${int(finished)} finished · ${int(t.jobs - finished)} running`)}
${kpi('Completed', pct(ratio(t.byStatus.completed ?? 0, finished)), `${int(t.byStatus.completed ?? 0)} of ${int(finished)} finished`, finished ? 'good' : '')}
${kpi('Failed or expired', int(failed), pct(ratio(failed, finished)), failed ? 'bad' : '')}
${kpi('Slowest p95', slowest ? seconds(slowest.p95Ms) : '—', slowest ? `${slowest.model} · p50 ${seconds(slowest.p50Ms)}` : 'no finished job')}
${kpi('Cost', dollars(t.costUsd), `${int(t.inputTokens + t.outputTokens)} tokens, list prices`)}
${kpi('Token cache hits', pct(t.tokenCacheRatio), `${int(t.cachedTokens)} cached input tokens`)}
${kpi('Response cache', int(t.cacheHits), `${pct(t.responseCacheRatio)} of completed jobs`)}
${kpi('Webhook / poll', `${int(webhook)} / ${int(poll)}`, 'how completions were seen')}
${kpi('Callback failures', int(callbackFailures), `failed attempts · ${int(deadLetters)} dead letter${deadLetters === 1 ? '' : 's'}`, callbackFailures || deadLetters ? 'bad' : '')}
</section>`;
}

/** JSON inside `<script type="application/json">`: `<` escaped, so no `</script>` can end the block early. */
const jsonBlock = (value: unknown) => JSON.stringify(value).replaceAll('<', '\\u003c');

function overviewPage(o: Overview): string {
  const per = duration(o.bucketSeconds);
  const costPer = o.costBucketSeconds >= DAY ? 'day' : 'hour';
  const tenantName = o.tenant ? (o.tenants.find((t) => t.id === o.tenant)?.name ?? o.tenant) : null;
  const when = `Jobs created ${o.from.slice(0, 16).replace('T', ' ')} – ${o.to.slice(0, 16).replace('T', ' ')} UTC${tenantName ? `, tenant ${tenantName}` : ', all tenants'}; bars of ${per}.`;
  return `<style>${OVERVIEW_STYLE}</style>
<h1>Overview</h1>
${filters(o)}
<p class="hint" id="window">${esc(when)}</p>
${kpis(o)}
<section class="cards">
${card('jobs', 'Jobs by status', `jobs created per ${per}`, 'Stacked by the status each job has now.')}
${card('latency', 'Time to terminal by model', 'seconds, p50 and p95', 'From creation to the final state, finished jobs only.')}
${card('cost-model', `Cost per ${costPer} by model`, 'USD, estimated at list prices')}
${card('cost-tenant', `Cost per ${costPer} by tenant`, 'USD, estimated at list prices')}
${card('cache', 'Cache-hit ratio', `% per ${per}`, 'Cached input tokens ÷ input tokens; response-cache hits ÷ completed jobs.')}
${card('completions', 'Completions: webhook vs poll', `terminal transitions per ${per}`, 'webhook: an OpenAI webhook; poll: the worker polling; others: cancel, sweeper, cache…')}
${card('queues', 'Queue depths now', 'work items; fair queue: jobs', o.queues.error ?? (o.tenant ? 'BullMQ queues are shared by all tenants; the fair queue shows this tenant.' : 'BullMQ queues by state; the fair queue: jobs waiting for admission.'))}
${card('callbacks', 'Callback attempts', `attempts per ${per}`, 'rejected: a non-2xx answer; no answer: timeout or network error.')}
</section>
<script type="application/json" id="overview-data">${jsonBlock(o)}</script>
<script src="/admin/assets/chart.umd.min.js"></script>
<script src="/admin/assets/overview.js"></script>`;
}

/** Chart.js's browser build in the package the API depends on (its `exports` do not list it: found beside the main entry). */
const chartJsFile = (() => {
  let cached: Promise<Buffer> | undefined;
  return () => {
    cached ??= readFile(join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js'));
    return cached;
  };
})();

const ASSET_CACHE = 'private, max-age=3600';

function sendScript(res: Response, body: Buffer | string): void {
  res.setHeader('Cache-Control', ASSET_CACHE);
  res.type('application/javascript').send(body);
}

export function adminOverviewRouter(deps: ApiContext): Router {
  const router = Router();
  const parse = (req: Request) => querySchema.safeParse(req.query);

  router.get('/', async (req, res) => {
    const q = parse(req);
    if (!q.success) {
      res
        .status(400)
        .type('html')
        .send(
          layout({
            title: 'Overview',
            active: 'overview',
            actor: adminActor(res),
            body: `<h1>Overview</h1><p class="error" role="alert">${esc(q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '))}</p><p><a href="/admin">Reset</a></p>`,
          }),
        );
      return;
    }
    const overview = await buildOverview(deps, q.data);
    res.type('html').send(layout({ title: 'Overview', active: 'overview', actor: adminActor(res), body: overviewPage(overview) }));
  });

  router.get('/overview.json', async (req, res) => {
    const q = parse(req);
    if (!q.success) {
      const issue = q.error.issues[0]!;
      throw new ValidationError(`${issue.path.join('.')}: ${issue.message}`, issue.path.join('.'), 'invalid_value');
    }
    res.json(await buildOverview(deps, q.data));
  });

  router.get('/assets/chart.umd.min.js', async (_req, res) => sendScript(res, await chartJsFile()));
  router.get('/assets/overview.js', (_req, res) => sendScript(res, OVERVIEW_CLIENT_JS));
  return router;
}
