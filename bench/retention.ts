/**
 * Retention scenario (issue 20): what the sweeper's retention erasing costs live traffic. A tenant
 * holds `rows` finished jobs (1,000,000 by default) that finished 30 to 60 days ago, each with its
 * input, output, usage and two state transitions with details, as a tenant that ran for a while
 * without retention would; another tenant (the bench's own) submits instant jobs, open loop at
 * `rate` per second, through the API and the worker (bench/latency.ts: request i is sent at
 * start + i/rate and timed from that scheduled instant).
 *
 * Each round has two phases of `durationS`, their order alternating between rounds so drift in the
 * machine's load falls on both: `idle` (the old tenant's `retention_days` 0: the sweeper finds
 * nothing) and `sweeping` (`retention_days` 7: every old job is past it, and the sweeper erases
 * them in batches of RETENTION_BATCH_SIZE for as long as its budget lets it). The worker sweeps
 * every second (SWEEP_INTERVAL_MS=1000, not the default 10 s) so the sweeping phase is erasing all
 * the time it can: the worst case. Between phases the retention is switched off and the bench
 * waits for the sweep under way to end, so a phase's figures are its own.
 *
 * Figures: POST /v1/jobs latency per phase, the p99 the sweeping adds (target <= 10 ms), the erase
 * rate and what it means for the whole backlog, CPU per request per process.
 */
import type pg from 'pg';
import { runLatency, type LatencyResult } from './latency.ts';
import { sleep } from './pool.ts';
import { startStack, type Stack } from './stack.ts';
import { formatUsage, snapshotUsage, usageBetween, type UsageReport } from './usage.ts';

export interface RetentionOptions {
  /** Old finished jobs of the tenant being swept. */
  rows: number;
  /** POST /v1/jobs per second of the live load. */
  rate: number;
  /** Seconds of each phase. */
  durationS: number;
  rounds: number;
  workerOverrides: Record<string, string>;
  nodeArgs?: string[];
  log: (line: string) => void;
}

const TARGET_ADDED_P99_MS = 10;
/** Retention of the old tenant while sweeping: every seeded job finished at least 30 days ago. */
const SWEEP_DAYS = 7;
const SEED_CHUNK = 50_000;
const WARMUP_S = 3;

type Phase = 'idle' | 'sweeping';

interface PhaseResult {
  phase: Phase;
  latency: LatencyResult;
  erased: number;
  seconds: number;
  usage: UsageReport;
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** `rows` finished jobs of `tenantId` with content, and two transitions each, in chunks. */
async function seed(pool: pg.Pool, tenantId: string, rows: number, log: (line: string) => void): Promise<void> {
  const started = performance.now();
  for (let offset = 0; offset < rows; offset += SEED_CHUNK) {
    const n = Math.min(SEED_CHUNK, rows - offset);
    await pool.query(
      `with made as (
         insert into jobs (id, tenant_id, status, model, request, metadata, response_id, output_text, output, usage, cost_usd,
                           deadline_at, created_at, updated_at, submitted_at, started_at, finished_at, thread_id, submit_attempts, polls)
         select 'job_old' || lpad((g + $2)::text, 10, '0'), $1, 'completed', 'o3',
                jsonb_build_object('model', 'o3', 'background', true, 'reasoning', jsonb_build_object('effort', 'high'),
                                   'input', 'Plan the migration of warehouse ' || g || ': ' || repeat('inventory, routes and staff; ', 12)),
                jsonb_build_object('customer', 'c' || (g % 5000)),
                'resp_old' || lpad((g + $2)::text, 10, '0'),
                repeat('The plan, step by step, with the risks of each. ', 10),
                jsonb_build_array(jsonb_build_object('type', 'message', 'role', 'assistant', 'content',
                  jsonb_build_array(jsonb_build_object('type', 'output_text', 'text', repeat('The plan, step by step, with the risks of each. ', 10))))),
                jsonb_build_object('input_tokens', 420, 'output_tokens', 2800, 'total_tokens', 3220,
                                   'output_tokens_details', jsonb_build_object('reasoning_tokens', 2200)),
                0.0238,
                t + interval '1 hour', t, t + interval '3 minutes', t, t, t + interval '3 minutes', 'job_old' || lpad((g + $2)::text, 10, '0'), 1, 4
           from generate_series(1, $3::int) g,
                lateral (select now() - interval '30 days' - (g + $2) * interval '2 seconds' as t) ts
         returning id, tenant_id, created_at, finished_at
       )
       insert into job_events (job_id, tenant_id, from_status, to_status, source, at, details)
       select id, tenant_id, 'queued'::job_status, 'in_progress'::job_status, 'submit'::event_source, created_at, jsonb_build_object('response_id', 'resp_x', 'idempotency_key', 'order-' || id) from made
       union all
       select id, tenant_id, 'in_progress'::job_status, 'completed'::job_status, 'poll'::event_source, finished_at, jsonb_build_object('polls', 4) from made`,
      [tenantId, offset, n],
    );
    if ((offset / SEED_CHUNK) % 4 === 3) log(`  seeded ${offset + n} jobs (${fmt((performance.now() - started) / 1000, 0)} s)`);
  }
  // Vacuumed and checkpointed now: autovacuum's pass over a million fresh rows, or a checkpoint
  // writing them out, would otherwise land in the middle of a phase, idle or sweeping at random.
  await pool.query('vacuum (analyze) jobs');
  await pool.query('vacuum (analyze) job_events');
  await pool.query('checkpoint');
  log(`  seeded ${rows} old finished jobs with ${2 * rows} transitions in ${fmt((performance.now() - started) / 1000, 0)} s`);
}

/** Old jobs whose content is still there (the retention index's entries for the tenant). */
async function remaining(pool: pg.Pool, tenantId: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>('select count(*)::int as n from jobs where tenant_id = $1 and finished_at is not null and erased_at is null', [tenantId]);
  return rows[0]!.n;
}

async function setRetention(pool: pg.Pool, tenantId: string, days: number): Promise<void> {
  await pool.query('update tenants set retention_days = $2 where id = $1', [tenantId, days]);
}

/** Wait for the sweep under way to end: nothing erased for three seconds. */
async function quiesce(pool: pg.Pool, tenantId: string): Promise<void> {
  let last = await remaining(pool, tenantId);
  for (let still = 0; still < 3; ) {
    await sleep(1_000);
    const now = await remaining(pool, tenantId);
    still = now === last ? still + 1 : 0;
    last = now;
  }
}

async function runPhase(stack: Stack, pool: pg.Pool, tenantId: string, phase: Phase, options: RetentionOptions): Promise<PhaseResult> {
  const before = await remaining(pool, tenantId);
  if (phase === 'sweeping') await setRetention(pool, tenantId, SWEEP_DAYS);
  const usageBefore = await snapshotUsage(stack);
  const started = performance.now();
  const latency = await runLatency(stack, { rate: options.rate, durationS: options.durationS });
  const seconds = (performance.now() - started) / 1000;
  const usage = usageBetween(usageBefore, await snapshotUsage(stack, true), Math.max(1, latency.ok));
  const erasedInPhase = before - (await remaining(pool, tenantId));
  if (phase === 'sweeping') {
    await setRetention(pool, tenantId, 0);
    await quiesce(pool, tenantId);
  }
  return { phase, latency, erased: erasedInPhase, seconds, usage };
}

export async function runRetention(options: RetentionOptions): Promise<{ rows: string[][] }> {
  const { log } = options;
  log(
    `retention: ${options.rows} old finished jobs of one tenant; ${options.rate} POST /v1/jobs per second of another, ${options.rounds} rounds of ${options.durationS} s idle and ${options.durationS} s sweeping`,
  );
  const stack = await startStack({
    kind: 'retention',
    // The worker at npm start's priority (idle: the API's requests take a core first).
    workerEnv: {
      SUBMIT_CONCURRENCY: '50',
      POLL_CONCURRENCY: '50',
      POLL_INITIAL_MS: '50',
      SWEEP_INTERVAL_MS: '1000',
      WORKER_CPU_PRIORITY: 'idle',
      ...options.workerOverrides,
    },
    nodeArgs: options.nodeArgs,
  });
  const pool = stack.pool;
  try {
    const tenantId = 'ten_retention_old';
    await pool.query("insert into tenants (id, name, retention_days) values ($1, 'old jobs', 0)", [tenantId]);
    await seed(pool, tenantId, options.rows, log);
    const { rows: size } = await pool.query<{ jobs: string; events: string }>(
      "select pg_size_pretty(pg_total_relation_size('jobs')) as jobs, pg_size_pretty(pg_total_relation_size('job_events')) as events",
    );
    log(`  jobs table ${size[0]!.jobs}, job_events ${size[0]!.events} (with indexes)`);

    log(`  warm-up: ${WARMUP_S} s of the load, not measured`);
    await runLatency(stack, { rate: options.rate, durationS: WARMUP_S });

    const results: PhaseResult[] = [];
    for (let round = 0; round < options.rounds; round++) {
      const order: Phase[] = round % 2 === 0 ? ['idle', 'sweeping'] : ['sweeping', 'idle'];
      for (const phase of order) {
        const r = await runPhase(stack, pool, tenantId, phase, options);
        results.push(r);
        const s = r.latency.latency;
        log(
          `  round ${round + 1} ${phase}: ${r.latency.ok}/${r.latency.sent} accepted, POST p50 ${fmt(s.p50, 2)} p99 ${fmt(s.p99, 2)} max ${fmt(s.max, 1)} ms; ${r.erased} old jobs erased (${fmt(r.erased / r.seconds, 0)}/s); client send lag p99 ${fmt(r.latency.sendLagP99, 2)} ms`,
        );
        if (r.latency.errors) log(`    ${r.latency.errors} submits failed, first: ${r.latency.firstError}`);
        if (phase === 'sweeping' && r.erased === 0) {
          // Nothing erased while it should have: what Postgres is running, and the worker's last words.
          const { rows: active } = await pool.query(
            "select pid, state, wait_event_type, wait_event, now() - query_start as running, left(query, 200) as query from pg_stat_activity where datname = current_database() and state <> 'idle'",
          );
          log(`    nothing erased; Postgres: ${JSON.stringify(active)}`);
          log(
            `    worker output: ${stack.children
              .find((c) => c.name === 'worker')
              ?.output()
              .slice(-2000)}`,
          );
        }
        for (const line of formatUsage(r.usage, 'request')) log(`  ${line}`);
      }
    }

    const pooled = (phase: Phase) => {
      const samples = results.filter((r) => r.phase === phase);
      return {
        p99: samples.map((r) => r.latency.latency.p99).reduce((a, b) => a + b, 0) / samples.length,
        p50: samples.map((r) => r.latency.latency.p50).reduce((a, b) => a + b, 0) / samples.length,
        erased: samples.reduce((a, r) => a + r.erased, 0),
        seconds: samples.reduce((a, r) => a + r.seconds, 0),
        errors: samples.reduce((a, r) => a + r.latency.errors, 0),
      };
    };
    const idle = pooled('idle');
    const sweeping = pooled('sweeping');
    const added = sweeping.p99 - idle.p99;
    const rate = sweeping.erased / sweeping.seconds;
    const left = await remaining(pool, tenantId);
    log(`  ${options.rows - left} of ${options.rows} old jobs erased over the run; the whole backlog at this rate: ${fmt(options.rows / rate / 60, 1)} min`);
    return {
      rows: [
        ['retention: POST /v1/jobs p50, idle / sweeping (ms)', `${fmt(idle.p50, 2)} / ${fmt(sweeping.p50, 2)}`, '', ''],
        ['retention: POST /v1/jobs p99, idle / sweeping (ms)', `${fmt(idle.p99, 2)} / ${fmt(sweeping.p99, 2)}`, '', ''],
        [
          'retention: p99 added by sweeping (ms)',
          fmt(added, 2),
          `<= ${TARGET_ADDED_P99_MS} @ ${options.rate}/s`,
          added <= TARGET_ADDED_P99_MS && sweeping.errors === 0 ? 'PASS' : 'MISS',
        ],
        ['retention: old jobs erased per second while sweeping', fmt(rate, 0), '', ''],
        [`retention: ${options.rows} old jobs at that rate (min)`, fmt(options.rows / rate / 60, 1), '', ''],
      ],
    };
  } finally {
    await stack.stop();
  }
}
