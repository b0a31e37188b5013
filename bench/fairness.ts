/**
 * Fairness scenario (issue 6, per-tenant admission): two tenants share one deployment whose
 * submissions are the bottleneck (few submit slots against a slow provider create). The small
 * tenant submits at `smallRate`, the big one at `ratio` times that, together more than the
 * deployment can create: a backlog builds. The small tenant's time from submit to provider
 * (job created_at → submitted_at, in ms from Postgres) is measured alone (unloaded) and under
 * the big tenant's load, with the fair queue (`ADMISSION_ORDER=fair`) and without it (`fifo`, the
 * order BullMQ alone gives). Target: the small tenant's loaded median within 2× of its unloaded
 * median with fairness on.
 */
import { createDb, createTenant } from '@longhaul/db';
import { createJobsClient, type JobsClient } from './http.ts';
import { sleep } from './pool.ts';
import { type Stack, startStack } from './stack.ts';
import { percentile } from './stats.ts';

interface Latency {
  count: number;
  p50: number;
  p95: number;
}

function latency(samples: number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95) };
}

export interface FairnessOptions {
  /** Small tenant's submissions per second. */
  smallRate: number;
  /** Big tenant's rate as a multiple of the small one's. */
  ratio: number;
  /** Length of each phase, seconds. */
  durationS: number;
  /** The worker's SUBMIT_CONCURRENCY. */
  submitConcurrency: number;
  /** How long the simulated provider takes to answer a create, ms. */
  createMs: number;
  orders: ('fair' | 'fifo')[];
  nodeArgs?: string[];
  log: (line: string) => void;
}

export interface FairnessRun {
  order: 'fair' | 'fifo';
  unloaded: Latency;
  loaded: Latency;
  bigSubmitted: number;
  bigWaitingAtEnd: number;
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const body = JSON.stringify({ model: 'o3', input: 'Summarize the history of otters in space.', reasoning: { effort: 'low' }, metadata: { sim_duration_ms: '100' } });

/** Open loop: one submission every 1/rate s for `durationS`, whatever the answers take. */
async function submitAt(client: JobsClient, rate: number, durationS: number, ids: string[]): Promise<number> {
  const total = Math.round(rate * durationS);
  const start = performance.now();
  const inFlight: Promise<void>[] = [];
  let errors = 0;
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    inFlight.push(
      client.submit(body).then(
        (r) => {
          if (r.jobId) ids.push(r.jobId);
          else errors += 1;
        },
        () => {
          errors += 1;
        },
      ),
    );
  }
  await Promise.all(inFlight);
  return errors;
}

/** Submit → provider latency (ms) of `ids`, once every one of them was submitted (or `timeoutMs` passed). */
async function submitLatencies(stack: Stack, ids: string[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await stack.pool.query<{ waited_ms: number | null }>(
      'select extract(epoch from (submitted_at - created_at)) * 1000 as waited_ms from jobs where id = any($1)',
      [ids],
    );
    const done = rows.filter((r) => r.waited_ms !== null).map((r) => Number(r.waited_ms));
    if (done.length === ids.length || Date.now() > deadline) return done;
    await sleep(250);
  }
}

async function runOne(order: 'fair' | 'fifo', options: FairnessOptions): Promise<FairnessRun> {
  const { log } = options;
  const stack = await startStack({
    kind: 'fairness',
    nodeArgs: options.nodeArgs,
    workerEnv: { SUBMIT_CONCURRENCY: String(options.submitConcurrency), ADMISSION_ORDER: order, POLL_INITIAL_MS: '100' },
    apiEnv: { API_RPM_LIMIT: '0' },
    simEnv: { SIM_CREATE_ANSWER_DELAY_MS: String(options.createMs), SIM_TIME_SCALE: '1' },
  });
  const db = createDb({ connectionString: stack.database.url, max: 2 });
  try {
    const big = await createTenant(db.db, 'big tenant');
    const smallClient = createJobsClient(stack.apiUrl, stack.apiKey, Infinity);
    const bigClient = createJobsClient(stack.apiUrl, big.apiKey, Infinity);
    try {
      const unloadedIds: string[] = [];
      await submitAt(smallClient, options.smallRate, options.durationS, unloadedIds);
      const unloaded = latency(await submitLatencies(stack, unloadedIds, 30_000));
      log(`  ${order}: unloaded small tenant ${unloadedIds.length} jobs, submit→provider p50 ${fmt(unloaded.p50)} ms`);

      const smallIds: string[] = [];
      const bigIds: string[] = [];
      await Promise.all([submitAt(smallClient, options.smallRate, options.durationS, smallIds), submitAt(bigClient, options.smallRate * options.ratio, options.durationS, bigIds)]);
      const loadedSamples = await submitLatencies(stack, smallIds, 120_000);
      const loaded = latency(loadedSamples);
      const { rows } = await stack.pool.query<{ waiting: string }>("select count(*) as waiting from jobs where id = any($1) and status = 'pending'", [bigIds]);
      const bigWaitingAtEnd = Number(rows[0]?.waiting ?? 0);
      log(
        `  ${order}: loaded small ${loadedSamples.length}/${smallIds.length} submitted, p50 ${fmt(loaded.p50)} ms; big tenant ${bigIds.length} jobs, ${bigWaitingAtEnd} still pending when the small tenant's last job was submitted`,
      );
      return { order, unloaded, loaded, bigSubmitted: bigIds.length, bigWaitingAtEnd };
    } finally {
      smallClient.close();
      bigClient.close();
    }
  } finally {
    await db.close();
    await stack.stop();
  }
}

export async function runFairness(options: FairnessOptions): Promise<{ runs: FairnessRun[]; rows: string[][] }> {
  const capacity = (options.submitConcurrency * 1000) / options.createMs;
  const offered = options.smallRate * (1 + options.ratio);
  options.log(
    `fairness: small tenant ${options.smallRate}/s, big tenant ${options.smallRate * options.ratio}/s for ${options.durationS} s; ` +
      `submit capacity about ${fmt(capacity)}/s (SUBMIT_CONCURRENCY=${options.submitConcurrency}, provider create ${options.createMs} ms), offered ${fmt(offered)}/s`,
  );
  const runs: FairnessRun[] = [];
  for (const order of options.orders) runs.push(await runOne(order, options));
  const rows: string[][] = [];
  for (const run of runs) {
    const ratio = run.loaded.p50 / run.unloaded.p50;
    const label = `fairness (${run.order === 'fair' ? 'fair queue' : 'FIFO, fairness off'})`;
    rows.push([`${label}: small tenant submit→provider p50 unloaded / loaded (ms)`, `${fmt(run.unloaded.p50)} / ${fmt(run.loaded.p50)}`, '', '']);
    rows.push([`${label}: p95 unloaded / loaded (ms)`, `${fmt(run.unloaded.p95)} / ${fmt(run.loaded.p95)}`, '', '']);
    rows.push([`${label}: loaded / unloaded p50`, `${fmt(ratio, 2)}x`, run.order === 'fair' ? '<= 2x' : '', run.order === 'fair' ? (ratio <= 2 ? 'PASS' : 'MISS') : '']);
  }
  return { runs, rows };
}
