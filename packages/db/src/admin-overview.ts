/**
 * The admin overview's figures (the /admin dashboard): aggregates over the jobs *created* in a
 * window, across tenants unless one is given. Operator data, so not scoped by tenant.
 *
 * Every query starts from the window's jobs, read by a range scan of `jobs_created_idx`
 * (created_at desc, id desc), or of `jobs_tenant_created_idx` (tenant_id, created_at desc, id desc)
 * with a tenant: a 30-day window reads 30 days of jobs and nothing older. What hangs off a job
 * (its terminal event, its callback attempts) is reached from those jobs through the per-job
 * indexes (`job_events_job_idx`, `callback_deliveries_job_idx`, `callback_attempts_delivery_idx`),
 * never by a scan of the event or attempt tables, which have no time index. The price of that
 * choice: a callback attempt made today for a job created before the window is not counted.
 *
 * Buckets are `date_bin(bucket, t, 2000-01-01 UTC)`: a bucket that divides a day starts at whole
 * minutes/hours of UTC, so buckets sum into UTC days. Rows come back grouped, at most
 * buckets × statuses × models × tenants of them: the shaping into chart series is the caller's.
 */
import { TERMINAL_STATUSES } from '@longhaul/core';
import { type SQL, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { callbackAttempts, callbackDeliveries, jobEvents, jobs, tenants } from './schema.ts';

export interface OverviewWindow {
  /** Jobs created at or after this instant... */
  from: Date;
  /** ...and before this one. */
  to: Date;
  /** The bucket width, in seconds (it should divide a day). */
  bucketSeconds: number;
  /** Only this tenant's jobs; undefined: every tenant's. */
  tenantId?: string;
}

/** Per bucket of creation, status, model and tenant: how many jobs, what they cost and their tokens. */
export interface OverviewActivityRow {
  bucket: Date;
  status: string;
  model: string;
  tenantId: string;
  jobs: number;
  costUsd: number;
  /** Tokens spent (response-cache hits excluded: nobody spent them). */
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  /** Jobs answered from the response cache. */
  cacheHits: number;
}

/** Time from creation to the terminal state, per model, of the window's finished jobs. */
export interface OverviewLatencyRow {
  model: string;
  jobs: number;
  p50Ms: number;
  p95Ms: number;
}

/** Terminal transitions per bucket of when they happened, by who saw them (`webhook`, `poll`, `cancel`, ...). */
export interface OverviewCompletionRow {
  bucket: Date;
  source: string;
  jobs: number;
}

export type CallbackOutcome = 'delivered' | 'rejected' | 'no_answer';

/** Callback attempts (of the window's jobs) per bucket of when they were made, by outcome. */
export interface OverviewCallbackRow {
  bucket: Date;
  outcome: CallbackOutcome;
  attempts: number;
}

/** The window's jobs' deliveries by their status now. */
export interface OverviewDeliveryRow {
  status: string;
  deliveries: number;
}

export interface OverviewFigures {
  activity: OverviewActivityRow[];
  latency: OverviewLatencyRow[];
  completions: OverviewCompletionRow[];
  callbacks: OverviewCallbackRow[];
  deliveries: OverviewDeliveryRow[];
}

const ORIGIN = sql`timestamptz '2000-01-01 00:00:00+00'`;
const TERMINAL = sql.raw(TERMINAL_STATUSES.map((s) => `'${s}'`).join(', '));

function bucketOf(window: OverviewWindow, column: SQL | typeof jobs.createdAt): SQL {
  return sql`date_bin(${`${Math.max(1, Math.floor(window.bucketSeconds))} seconds`}::interval, ${column}, ${ORIGIN})`;
}

/** The window's jobs (the index range scan every query starts with). */
function inWindow(window: OverviewWindow): SQL {
  const range = sql`${jobs.createdAt} >= ${window.from.toISOString()}::timestamptz and ${jobs.createdAt} < ${window.to.toISOString()}::timestamptz`;
  return window.tenantId === undefined ? range : sql`${jobs.tenantId} = ${window.tenantId} and ${range}`;
}

const tokens = (path: string) => sql.raw(`coalesce(sum((usage #>> '{${path}}')::bigint) filter (where cached_from is null), 0)::text`);

async function activity(db: Database, window: OverviewWindow): Promise<OverviewActivityRow[]> {
  const result = await db.execute<{
    bucket: Date | string;
    status: string;
    model: string;
    tenant_id: string;
    jobs: number;
    cost_usd: string;
    input_tokens: string;
    cached_tokens: string;
    output_tokens: string;
    cache_hits: number;
  }>(sql`
    select ${bucketOf(window, jobs.createdAt)} as bucket, ${jobs.status} as status, ${jobs.model} as model, ${jobs.tenantId} as tenant_id,
      count(*)::int as jobs,
      coalesce(sum(${jobs.costUsd}), 0)::text as cost_usd,
      ${tokens('input_tokens')} as input_tokens,
      ${tokens('input_tokens_details,cached_tokens')} as cached_tokens,
      ${tokens('output_tokens')} as output_tokens,
      (count(*) filter (where ${jobs.cachedFrom} is not null and ${jobs.status} = 'completed'))::int as cache_hits
    from ${jobs}
    where ${inWindow(window)}
    group by 1, 2, 3, 4
    order by 1`);
  return result.rows.map((r) => ({
    bucket: new Date(r.bucket),
    status: r.status,
    model: r.model,
    tenantId: r.tenant_id,
    jobs: r.jobs,
    costUsd: Number(r.cost_usd),
    inputTokens: Number(r.input_tokens),
    cachedTokens: Number(r.cached_tokens),
    outputTokens: Number(r.output_tokens),
    cacheHits: r.cache_hits,
  }));
}

async function latency(db: Database, window: OverviewWindow): Promise<OverviewLatencyRow[]> {
  const result = await db.execute<{ model: string; jobs: number; p50_ms: number; p95_ms: number }>(sql`
    select ${jobs.model} as model, count(*)::int as jobs,
      percentile_cont(0.5) within group (order by extract(epoch from ${jobs.finishedAt} - ${jobs.createdAt}) * 1000)::float8 as p50_ms,
      percentile_cont(0.95) within group (order by extract(epoch from ${jobs.finishedAt} - ${jobs.createdAt}) * 1000)::float8 as p95_ms
    from ${jobs}
    where ${inWindow(window)} and ${jobs.finishedAt} is not null and ${jobs.status} in (${TERMINAL})
    group by 1
    order by 1`);
  return result.rows.map((r) => ({ model: r.model, jobs: r.jobs, p50Ms: Number(r.p50_ms), p95Ms: Number(r.p95_ms) }));
}

/**
 * A job's terminal transition is its one event into a terminal state from a state that was not
 * (terminal states are sticky). Read per job (LATERAL … LIMIT 1 on `job_events_job_idx`): the
 * planner cannot swap it for a scan of the whole event log.
 */
async function completions(db: Database, window: OverviewWindow): Promise<OverviewCompletionRow[]> {
  const result = await db.execute<{ bucket: Date | string; source: string; jobs: number }>(sql`
    select ${bucketOf(window, sql`e.at`)} as bucket, e.source::text as source, count(*)::int as jobs
    from ${jobs}
    cross join lateral (
      select ${jobEvents.at} as at, ${jobEvents.source} as source from ${jobEvents}
      where ${jobEvents.jobId} = ${jobs.id} and ${jobEvents.toStatus} in (${TERMINAL}) and (${jobEvents.fromStatus} is null or ${jobEvents.fromStatus} not in (${TERMINAL}))
      order by ${jobEvents.id}
      limit 1
    ) e
    where ${inWindow(window)} and ${jobs.status} in (${TERMINAL})
    group by 1, 2
    order by 1`);
  return result.rows.map((r) => ({ bucket: new Date(r.bucket), source: r.source, jobs: r.jobs }));
}

/**
 * A job's callback attempts, read per job (`callback_deliveries_job_idx`, then
 * `callback_attempts_delivery_idx`). `offset 0` keeps the LATERAL subquery from being flattened
 * into a join the planner could run as a scan of every delivery.
 */
async function callbacks(db: Database, window: OverviewWindow): Promise<OverviewCallbackRow[]> {
  const result = await db.execute<{ bucket: Date | string; outcome: CallbackOutcome; attempts: number }>(sql`
    select ${bucketOf(window, sql`a.at`)} as bucket,
      case when a.status_code between 200 and 299 then 'delivered' when a.status_code is not null then 'rejected' else 'no_answer' end as outcome,
      count(*)::int as attempts
    from ${jobs}
    cross join lateral (
      select ${callbackAttempts.at} as at, ${callbackAttempts.statusCode} as status_code
      from ${callbackDeliveries} join ${callbackAttempts} on ${callbackAttempts.deliveryId} = ${callbackDeliveries.id}
      where ${callbackDeliveries.jobId} = ${jobs.id}
      offset 0
    ) a
    where ${inWindow(window)} and a.at >= ${window.from.toISOString()}::timestamptz
    group by 1, 2
    order by 1`);
  return result.rows.map((r) => ({ bucket: new Date(r.bucket), outcome: r.outcome, attempts: r.attempts }));
}

async function deliveries(db: Database, window: OverviewWindow): Promise<OverviewDeliveryRow[]> {
  const result = await db.execute<{ status: string; deliveries: number }>(sql`
    select d.status::text as status, count(*)::int as deliveries
    from ${jobs}
    cross join lateral (select ${callbackDeliveries.status} as status from ${callbackDeliveries} where ${callbackDeliveries.jobId} = ${jobs.id} offset 0) d
    where ${inWindow(window)}
    group by 1
    order by 1`);
  return result.rows;
}

/** Every figure of the overview for one window (five queries, run side by side). */
export async function overviewFigures(db: Database, window: OverviewWindow): Promise<OverviewFigures> {
  const [a, l, c, cb, d] = await Promise.all([activity(db, window), latency(db, window), completions(db, window), callbacks(db, window), deliveries(db, window)]);
  return { activity: a, latency: l, completions: c, callbacks: cb, deliveries: d };
}

/** The tenants an operator can filter the overview by, by name (a deployment has tens, not millions). */
export async function listTenantsForAdmin(db: Database, limit = 1000): Promise<{ id: string; name: string }[]> {
  return db.select({ id: tenants.id, name: tenants.name }).from(tenants).orderBy(tenants.name, tenants.id).limit(limit);
}
