/**
 * Scenario: an evaluation beside production traffic (issue 18). A prompt with two versions
 * (reasoning effort low and high) runs over a dataset of arithmetic items (`What is A + B?`,
 * expected the sum; the simulator answers right more often at high effort), graded `exact`:
 * `items` × 2 answer jobs, at most `concurrency` in flight, in the fair queue's low lane. Meanwhile
 * a production tenant submits ordinary jobs open loop at `rate`.
 *
 * Measured, in one run: the production tenant's submit → provider latency (the client's send time
 * to the simulator's arrival of the job's create, from `GET /sim/request-log`; Postgres's
 * `created_at` → `submitted_at` beside it) alone for `durationS` before the eval and again after
 * it (the baseline, pooled), and for as long as the eval runs; the target is the loaded
 * p50/p95/p99 within 1.5× of the baseline's.
 * The eval's wall time (the client's create to its `finished_at`), results/s, and what one result
 * costs each process in CPU and Postgres in transactions, over the eval's window as measured and
 * net of the production traffic (the baseline's CPU per second times the window, subtracted).
 * The summary's pass rates and winner are a sanity line: version 2 should win.
 */
import { createDb, createTenant } from '@longhaul/db';
import { createJobsClient, type JobsClient } from './http.ts';
import { sleep } from './pool.ts';
import { startStack, type Stack } from './stack.ts';
import { percentile } from './stats.ts';
import { type UsageSnapshot, formatUsage, snapshotUsage, usageBetween } from './usage.ts';

export interface EvalOptions {
  /** Dataset items (each runs against both versions). */
  items: number;
  /** The eval's `concurrency`: its results in flight at once. */
  concurrency: number;
  /** The production tenant's jobs per second. */
  rate: number;
  /** Seconds of each baseline phase (production alone, before and after the eval); the loaded phase lasts as long as the eval. */
  durationS: number;
  /** SIM_TIME_SCALE: the simulator's durations (low effort 1 s, high 4 s, production 1 s) times this. */
  timeScale: number;
  /** `separate`: production is another tenant; `shared`: the eval's own tenant (its low lane must still yield). */
  tenant: 'separate' | 'shared';
  workerOverrides: Record<string, string>;
  nodeArgs?: string[];
  log: (line: string) => void;
}

const VERSIONS = [1, 2];
const TARGET_RATIO = 1.5;
const EVAL_TIMEOUT_MS = 10 * 60_000;
const WARMUP_JOBS = 100;
const WARMUP_RATE = 20;
const PRODUCTION_BODY = JSON.stringify({
  model: 'gpt-4.1',
  input: 'Draft a two-line reply to a customer whose export button does nothing.',
  metadata: { sim_duration_ms: '1000' },
});
const template = (effort: 'low' | 'high') => ({ model: 'gpt-5', reasoning: { effort }, instructions: 'Answer with the number only.', input: '{{question}}' });

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

function percentiles(samples: number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), p99: percentile(sorted, 0.99), max: sorted.at(-1) ?? Number.NaN };
}

const line = (p: Percentiles) => `p50 ${fmt(p.p50)} / p95 ${fmt(p.p95)} / p99 ${fmt(p.p99)} / max ${fmt(p.max)} ms (${p.count})`;

interface Sent {
  id: string;
  sentAtMs: number;
}

interface ProductionPhase {
  sent: Sent[];
  errors: number;
  /** Client send → the simulator's arrival of the create, ms. */
  toProviderMs: number[];
  /** Postgres `created_at` → `submitted_at` (the queue's share), ms. */
  queuedMs: number[];
}

/** Open loop: one submission every 1/rate s while `more(elapsedMs)`, whatever the answers take. */
async function submitWhile(client: JobsClient, rate: number, more: (elapsedMs: number) => boolean): Promise<{ sent: Sent[]; errors: number }> {
  const start = performance.now();
  const sent: Sent[] = [];
  const inFlight: Promise<void>[] = [];
  let errors = 0;
  for (let i = 0; more(performance.now() - start); i++) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    const sentAtMs = Date.now();
    inFlight.push(
      client.submit(PRODUCTION_BODY).then(
        (r) => {
          if (r.jobId) sent.push({ id: r.jobId, sentAtMs });
          else errors += 1;
        },
        () => {
          errors += 1;
        },
      ),
    );
  }
  await Promise.all(inFlight);
  return { sent, errors };
}

/** Wait until every job of `ids` was submitted to the provider (or the timeout), then measure. */
async function measureProduction(stack: Stack, sent: Sent[], errors: number): Promise<ProductionPhase> {
  const ids = sent.map((s) => s.id);
  const deadline = Date.now() + 120_000;
  let queued: number[] = [];
  for (;;) {
    const { rows } = await stack.pool.query<{ ms: number | null }>('select extract(epoch from (submitted_at - created_at)) * 1000 as ms from jobs where id = any($1)', [ids]);
    queued = rows.filter((r) => r.ms !== null).map((r) => Number(r.ms));
    if (queued.length === ids.length || Date.now() > deadline) break;
    await sleep(250);
  }
  const arrivals = await createArrivals(stack);
  const toProvider = sent.flatMap((s) => {
    const at = arrivals.get(s.id);
    return at === undefined ? [] : [at - s.sentAtMs];
  });
  return { sent, errors, toProviderMs: toProvider, queuedMs: queued };
}

/** By job id: when the simulator received the job's first create (its clock is this machine's). */
async function createArrivals(stack: Stack): Promise<Map<string, number>> {
  const res = await fetch(`${stack.simUrl}/sim/request-log`);
  if (!res.ok) throw new Error(`GET /sim/request-log answered ${res.status}`);
  const { data, dropped } = (await res.json()) as { data: { at_ms: number; method: string; path: string; job_id: string | null }[]; dropped: number };
  if (dropped > 0) throw new Error(`the simulator's request log dropped ${dropped} entries: the scenario is too large for it`);
  const arrivals = new Map<string, number>();
  for (const r of data) if (r.method === 'POST' && r.path === '/v1/responses' && r.job_id !== null && !arrivals.has(r.job_id)) arrivals.set(r.job_id, r.at_ms);
  return arrivals;
}

async function api(stack: Stack, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

async function arithmeticEvalInputs(stack: Stack, items: number): Promise<{ promptId: string; datasetId: string }> {
  const prompt = await api(stack, 'POST', '/v1/prompts', { name: 'arithmetic', template: template('low') });
  await api(stack, 'POST', `/v1/prompts/${prompt.id}/versions`, { template: template('high'), note: 'think harder' });
  const dataset = await api(stack, 'POST', '/v1/datasets', {
    name: 'sums',
    items: Array.from({ length: items }, (_, i) => {
      const a = 17 + i * 7;
      const b = 3 + ((i * 13) % 50);
      return { variables: { question: `What is ${a} + ${b}?` }, expected: String(a + b) };
    }),
  });
  return { promptId: prompt.id, datasetId: dataset.id };
}

interface EvalProgress {
  finishedAtMs: number | null;
  status: string;
  /** Largest number of results running (their jobs submitted or waiting) seen at once. */
  maxRunning: number;
}

/** Follow the eval in Postgres (GET /v1/evals computes the summary: polling it would load the API). */
async function followEval(stack: Stack, id: string, progress: EvalProgress): Promise<void> {
  const deadline = Date.now() + EVAL_TIMEOUT_MS;
  let lastCount = 0;
  for (;;) {
    const { rows } = await stack.pool.query<{ status: string; finished_ms: number | null }>(
      'select status, extract(epoch from finished_at) * 1000 as finished_ms from evals where id = $1',
      [id],
    );
    progress.status = rows[0]!.status;
    if (progress.status !== 'running') {
      progress.finishedAtMs = rows[0]!.finished_ms === null ? Date.now() : Number(rows[0]!.finished_ms);
      return;
    }
    if (Date.now() - lastCount >= 1_000) {
      lastCount = Date.now();
      const { rows: counts } = await stack.pool.query<{ running: number }>("select count(*)::int as running from eval_results where eval_id = $1 and status = 'running'", [id]);
      progress.maxRunning = Math.max(progress.maxRunning, counts[0]!.running);
    }
    if (Date.now() > deadline) return;
    await sleep(200);
  }
}

/** CPU ms and Postgres transactions per second over intervals, by process (for subtracting a background rate). */
function ratesOver(intervals: [UsageSnapshot, UsageSnapshot][]): { perSecond: Record<string, number>; commitsPerSecond: number } {
  let seconds = 0;
  let commits = 0;
  const ms: Record<string, number> = {};
  for (const [before, after] of intervals) {
    seconds += (after.atMs - before.atMs) / 1000;
    const totals = usageBetween(before, after, 1);
    commits += totals.pgPerUnit.commits;
    for (const [name, v] of Object.entries(totals.perUnit)) ms[name] = (ms[name] ?? 0) + v;
  }
  return { perSecond: Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, v / seconds])), commitsPerSecond: commits / seconds };
}

/** Production traffic alone for `durationS`: its latencies and the usage interval it spans. */
async function quietPhase(stack: Stack, client: JobsClient, options: EvalOptions, label: string): Promise<{ phase: ProductionPhase; interval: [UsageSnapshot, UsageSnapshot] }> {
  const before = await snapshotUsage(stack);
  const sent = await submitWhile(client, options.rate, (ms) => ms < options.durationS * 1000);
  const phase = await measureProduction(stack, sent.sent, sent.errors);
  const after = await snapshotUsage(stack, true);
  options.log(`  ${label}: ${phase.sent.length} production jobs, submit→provider ${line(percentiles(phase.toProviderMs))}; created→submitted ${line(percentiles(phase.queuedMs))}`);
  return { phase, interval: [before, after] };
}

export async function runEval(options: EvalOptions): Promise<{ rows: string[][] }> {
  const { log } = options;
  const results = options.items * VERSIONS.length;
  const stack = await startStack({ kind: 'eval', workerEnv: options.workerOverrides, simEnv: { SIM_TIME_SCALE: String(options.timeScale) }, nodeArgs: options.nodeArgs });
  const db = createDb({ connectionString: stack.database.url, max: 2 });
  let client: JobsClient | undefined;
  try {
    const productionKey = options.tenant === 'shared' ? stack.apiKey : (await createTenant(db.db, 'production tenant')).apiKey;
    client = createJobsClient(stack.apiUrl, productionKey, Infinity);
    const { promptId, datasetId } = await arithmeticEvalInputs(stack, options.items);
    log(
      `eval: ${options.items} items × ${VERSIONS.length} prompt versions (gpt-5, effort low / high) = ${results} answer jobs, graded exact, eval concurrency ${options.concurrency}; ` +
        `production (${options.tenant === 'shared' ? "the eval's own tenant" : 'another tenant'}) ${options.rate} jobs/s open loop; SIM_TIME_SCALE=${options.timeScale} ` +
        `(answers take ${fmt(1000 * options.timeScale, 0)} / ${fmt(4000 * options.timeScale, 0)} ms, production jobs ${fmt(1000 * options.timeScale, 0)} ms); worker defaults${
          Object.keys(options.workerOverrides).length
            ? ` with ${Object.entries(options.workerOverrides)
                .map(([k, v]) => `${k}=${v}`)
                .join(' ')}`
            : ''
        }`,
    );

    // Warm the production path (connections, the API's and the worker's code paths: a cold API costs
    // more CPU per request for its first seconds, which would inflate the baseline's rate); not measured.
    const warm = await submitWhile(client, WARMUP_RATE, (ms) => ms < (WARMUP_JOBS * 1000) / WARMUP_RATE);
    await measureProduction(stack, warm.sent, warm.errors);
    await sleep(2_000);

    // Baseline: production traffic alone, before the eval and again after it (pooled: one phase of
    // 30 s on a shared machine is a noisy tail, and the API's first seconds cost more CPU).
    const before = await quietPhase(stack, client, options, 'unloaded, before the eval');

    // Loaded: the eval, production traffic for as long as it runs.
    const evalStart = await snapshotUsage(stack);
    const createdAtMs = Date.now();
    const created = await api(stack, 'POST', '/v1/evals', {
      prompt_id: promptId,
      versions: VERSIONS,
      dataset_id: datasetId,
      graders: [{ type: 'exact' }],
      concurrency: options.concurrency,
    });
    const progress: EvalProgress = { finishedAtMs: null, status: created.status, maxRunning: 0 };
    const following = followEval(stack, created.id, progress);
    let evalOver = false;
    const over = () => {
      evalOver = true;
    };
    following.then(over, over);
    const loadedSent = await submitWhile(client, options.rate, () => !evalOver);
    await following;
    const evalEnd = await snapshotUsage(stack, true);
    const loadedPhase = await measureProduction(stack, loadedSent.sent, loadedSent.errors);
    const loaded = { errors: loadedPhase.errors, toProvider: percentiles(loadedPhase.toProviderMs) };
    log(
      `  while the eval runs: ${loadedPhase.sent.length} production jobs, submit→provider ${line(loaded.toProvider)}; created→submitted ${line(percentiles(loadedPhase.queuedMs))}`,
    );
    const after = await quietPhase(stack, client, options, 'unloaded, after the eval');
    const unloaded = {
      errors: before.phase.errors + after.phase.errors,
      toProvider: percentiles([...before.phase.toProviderMs, ...after.phase.toProviderMs]),
    };
    log(`  unloaded, both phases pooled: submit→provider ${line(unloaded.toProvider)}`);
    const background = ratesOver([before.interval, after.interval]);

    const wallMs = (progress.finishedAtMs ?? Date.now()) - createdAtMs;
    const usage = usageBetween(evalStart, evalEnd, results);
    const windowS = (evalEnd.atMs - evalStart.atMs) / 1000;
    const net = Object.fromEntries(
      Object.entries(usage.perUnit).map(([name, ms]) => [name, name === 'total' ? Number.NaN : ms - ((background.perSecond[name] ?? 0) * windowS) / results]),
    );
    net.total = Object.entries(net)
      .filter(([name]) => name !== 'total')
      .reduce((sum, [, ms]) => sum + ms, 0);
    const netCommits = usage.pgPerUnit.commits - (background.commitsPerSecond * windowS) / results;

    const busy = ratesOver([[evalStart, evalEnd]]);
    const quietBefore = ratesOver([before.interval]);
    const quietAfter = ratesOver([after.interval]);
    log(
      `  CPU ms per second by process, unloaded before/after → while the eval runs: ${Object.keys(busy.perSecond)
        .filter((name) => name !== 'total')
        .map((name) => `${name} ${fmt(quietBefore.perSecond[name] ?? 0, 0)}/${fmt(quietAfter.perSecond[name] ?? 0, 0)} → ${fmt(busy.perSecond[name] ?? 0, 0)}`)
        .join(', ')}; Postgres transactions/s ${fmt(background.commitsPerSecond, 0)} → ${fmt(busy.commitsPerSecond, 0)}`,
    );
    const summary = await api(stack, 'GET', `/v1/evals/${created.id}`);
    const { rows: evalJobs } = await stack.pool.query<{ queued_ms: number; total_ms: number | null }>(
      `select extract(epoch from (submitted_at - created_at)) * 1000 as queued_ms, extract(epoch from (finished_at - created_at)) * 1000 as total_ms
         from jobs where eval_id = $1 and submitted_at is not null`,
      [created.id],
    );
    const evalQueued = percentiles(evalJobs.map((r) => Number(r.queued_ms)));
    // What bounds results/s at a fixed cap: each result holds its slot for its job's whole life (create, the first poll, the reconcile) and the next tick.
    const evalJobLife = percentiles(evalJobs.filter((r) => r.total_ms !== null).map((r) => Number(r.total_ms)));
    const passRates = (summary.summary.versions as { version: number; pass_rate: { rate: number } }[]).map((v) => `v${v.version} ${fmt(v.pass_rate.rate * 100, 1)} %`).join(', ');
    const comparison = summary.summary.comparisons[0] as { winner: number | null; p_value: number; wins: number; losses: number; ties: number } | undefined;
    log(
      `  eval ${created.id}: ${summary.status}, ${summary.results.done}/${summary.results.total} done (${summary.results.error} errors) in ${fmt(wallMs / 1000, 1)} s, ${fmt((results * 1000) / wallMs, 1)} results/s; at most ${progress.maxRunning} running at once (cap ${options.concurrency}); its jobs created→submitted ${line(evalQueued)}, created→finished ${line(evalJobLife)}`,
    );
    for (const l of formatUsage(usage, 'result')) log(`  ${l}`);
    log(
      `  net of production traffic (its unloaded rate × the ${fmt(windowS, 1)} s window): CPU ms per result ${Object.entries(net)
        .map(([k, v]) => `${k} ${fmt(v, 2)}`)
        .join(', ')}; ~${fmt(netCommits, 2)} Postgres transactions per result`,
    );
    log(
      `  summary: pass rates ${passRates}; winner ${comparison?.winner ?? 'none'} (wins ${comparison?.wins}, losses ${comparison?.losses}, ties ${comparison?.ties}, p ${comparison ? comparison.p_value.toExponential(2) : 'n/a'})`,
    );

    const ratio = (pick: (p: Percentiles) => number) => pick(loaded.toProvider) / pick(unloaded.toProvider);
    const ratios = { p50: ratio((p) => p.p50), p95: ratio((p) => p.p95), p99: ratio((p) => p.p99) };
    const within = ratios.p50 <= TARGET_RATIO && ratios.p95 <= TARGET_RATIO && ratios.p99 <= TARGET_RATIO;
    const pl = (p: Percentiles) => `${fmt(p.p50)} / ${fmt(p.p95)} / ${fmt(p.p99)}`;
    return {
      rows: [
        ['eval: results done', `${summary.results.done}/${results}`, '', summary.status === 'completed' ? '' : summary.status.toUpperCase()],
        ['eval: wall time create → completed (s)', fmt(wallMs / 1000, 1), '', ''],
        ['eval: results/s (concurrency cap)', `${fmt((results * 1000) / wallMs, 1)} (${options.concurrency})`, '', ''],
        [
          'eval: CPU ms per result api / worker / total, measured',
          `${fmt(usage.perUnit.api ?? Number.NaN, 2)} / ${fmt(usage.perUnit.worker ?? Number.NaN, 2)} / ${fmt(usage.perUnit.total ?? Number.NaN, 2)}`,
          '',
          '',
        ],
        ['eval: same, net of production traffic', `${fmt(net.api ?? Number.NaN, 2)} / ${fmt(net.worker ?? Number.NaN, 2)} / ${fmt(net.total ?? Number.NaN, 2)}`, '', ''],
        ['eval: Postgres transactions per result, measured (net)', `${fmt(usage.pgPerUnit.commits, 2)} (${fmt(netCommits, 2)})`, '', ''],
        ['eval: production submit→provider p50 / p95 / p99 unloaded (ms)', pl(unloaded.toProvider), '', ''],
        ['eval: same while the eval runs (ms)', pl(loaded.toProvider), '', ''],
        [
          'eval: loaded / unloaded p50 / p95 / p99',
          `${fmt(ratios.p50, 2)}x / ${fmt(ratios.p95, 2)}x / ${fmt(ratios.p99, 2)}x`,
          `<= ${TARGET_RATIO}x`,
          loaded.errors + unloaded.errors === 0 ? verdict(within) : `MISS (${loaded.errors + unloaded.errors} submits failed)`,
        ],
        ['eval: pass rates; winner', `${passRates}; ${comparison?.winner ?? 'none'}`, 'v2 wins', verdict(comparison?.winner === 2)],
      ],
    };
  } finally {
    client?.close();
    await db.close();
    await stack.stop();
  }
}
