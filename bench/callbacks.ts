/**
 * Scenario: callback fan-out (issue 8). A tenant with `endpoints` webhook endpoints (all on a
 * receiver in this process, each its own URL), `jobs` instant jobs, so jobs × endpoints signed
 * deliveries of the terminal event. Measured at the receiver:
 *
 * - latency of each delivery: its arrival (body received, answered 200) − its job's
 *   `finished_at` in Postgres (the terminal state change that wrote the outbox rows);
 * - deliveries/s: deliveries received / (last arrival − first arrival).
 *
 * Two phases on one stack, after a small unmeasured warm-up: `paced`, jobs submitted open loop at
 * `rate` jobs/s (rate × endpoints deliveries/s offered), for the latency at a sustained load; then
 * `burst`, every job at once, for the fan-out capacity (its latency is mostly the time to drain
 * the queue it creates).
 */
import { INSTANT_JOB } from './e2e.ts';
import { createJobsClient } from './http.ts';
import { runPool, sleep } from './pool.ts';
import { parseArrivals, startReceiver, type Arrival, type Receiver } from './receiver.ts';
import { deadChild, startStack, type Stack } from './stack.ts';
import { summarize, type Summary } from './stats.ts';
import { formatUsage, snapshotUsage, usageBetween } from './usage.ts';

const TARGET_P99_MS = 1_000;
const TARGET_DELIVERIES_PER_SECOND = 500;
/** Give up when nothing arrived for this long. */
const STALL_MS = 20_000;
/** Jobs of the unmeasured warm-up (JIT, connection pools, keep-alive sockets to the receiver). */
const WARMUP_JOBS = 5;

export interface CallbacksOptions {
  /** Jobs per phase. */
  jobs: number;
  endpoints: number;
  /** Jobs per second of the paced phase, open loop; 0 skips it. */
  rate: number;
  /** The worker's CALLBACK_CONCURRENCY. */
  concurrency: number;
  /** Worker processes. */
  workers: number;
  workerOverrides: Record<string, string>;
  nodeArgs: string[];
  log: (line: string) => void;
}

export interface PhaseResult {
  phase: 'paced' | 'burst';
  expected: number;
  received: number;
  /** Arrivals beyond the first of the same (webhook-id, endpoint): at-least-once redeliveries. */
  duplicates: number;
  latency: Summary;
  deliveriesPerSecond: number;
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

export function callbackKnobs(concurrency: number): Record<string, string> {
  return {
    CALLBACK_CONCURRENCY: String(concurrency),
    CALLBACK_ALLOWED_CIDRS: '127.0.0.0/8',
    SUBMIT_CONCURRENCY: '50',
    POLL_CONCURRENCY: '50',
    // Instant jobs: the first poll 50 ms after the create instead of the default 1 s.
    POLL_INITIAL_MS: '50',
  };
}

export async function runCallbacks(options: CallbacksOptions): Promise<{ phases: PhaseResult[]; rows: string[][] }> {
  const { log } = options;
  const receiver = await startReceiver();
  const workerEnv = { ...callbackKnobs(options.concurrency), ...options.workerOverrides };
  const expected = options.jobs * options.endpoints;
  let stack: Stack | undefined;
  try {
    stack = await startStack({ kind: 'cb', workerEnv, workers: options.workers, apiEnv: { CALLBACK_ALLOWED_CIDRS: '127.0.0.0/8' }, nodeArgs: options.nodeArgs });
    log(
      `callbacks: ${options.endpoints} endpoints (distinct URLs on a receiver in this process, ${receiver.url}) x ${options.jobs} instant jobs = ${expected} deliveries per phase`,
    );
    log(
      `  ${options.workers} worker process${options.workers > 1 ? 'es' : ''}: ${Object.entries(workerEnv)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
    await createEndpoints(stack, receiver, options.endpoints);
    await submitJobs(stack, WARMUP_JOBS, 0);
    await waitForArrivals(stack, receiver, WARMUP_JOBS * options.endpoints, log);
    const phases: PhaseResult[] = [];
    for (const phase of options.rate > 0 ? (['paced', 'burst'] as const) : (['burst'] as const)) {
      const rate = phase === 'paced' ? options.rate : 0;
      log(`  ${phase}: jobs submitted ${rate > 0 ? `at ${rate}/s, open loop (${fmt(rate * options.endpoints, 0)} deliveries/s offered)` : 'all at once'}`);
      const from = receiver.arrivals.length;
      const connectionsBefore = receiver.connections();
      const before = await snapshotUsage(stack);
      const jobIds = await submitJobs(stack, options.jobs, rate);
      await waitForArrivals(stack, receiver, from + expected, log);
      const usage = usageBetween(before, await snapshotUsage(stack, true), Math.max(1, receiver.arrivals.length - from));
      const result = await measure(stack, phase, receiver.arrivals.slice(from), jobIds, expected);
      log(
        `    ${result.received}/${expected} received (${result.duplicates} duplicates) over ${receiver.connections() - connectionsBefore} new connections; latency ms p50 ${fmt(result.latency.p50)} p99 ${fmt(result.latency.p99)} max ${fmt(result.latency.max)}; ${fmt(result.deliveriesPerSecond, 0)} deliveries/s`,
      );
      for (const line of formatUsage(usage, 'callback')) log(`  ${line}`);
      phases.push(result);
    }
    const { rows: statusRows } = await stack.pool.query<{ status: string; n: number }>('select status::text, count(*)::int as n from callback_deliveries group by status');
    log(`  callback_deliveries by status: ${JSON.stringify(Object.fromEntries(statusRows.map((r) => [r.status, r.n])))}`);
    return { phases, rows: phases.flatMap((p) => phaseRows(p, options)) };
  } finally {
    await stack?.stop();
    await receiver.close();
  }
}

async function createEndpoints(stack: Stack, receiver: Receiver, count: number): Promise<void> {
  await runPool(count, 8, async (i) => {
    const res = await fetch(`${stack.apiUrl}/v1/webhook-endpoints`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: `${receiver.url}/hook/${i}`, description: `bench endpoint ${i}` }),
    });
    if (res.status !== 201) throw new Error(`POST /v1/webhook-endpoints answered ${res.status}: ${await res.text()}`);
  });
}

/** Open loop at `rate` jobs/s, or everything at once (32 requests in flight) when rate is 0. Answers the job ids. */
async function submitJobs(stack: Stack, jobs: number, rate: number): Promise<Set<string>> {
  const client = createJobsClient(stack.apiUrl, stack.apiKey, 32);
  const sends: Promise<string | undefined>[] = [];
  const start = performance.now();
  for (let i = 0; i < jobs; i++) {
    if (rate > 0) await sleep(Math.max(0, start + (i * 1000) / rate - performance.now()));
    sends.push(
      client.submit(INSTANT_JOB).then(
        (r) => r.jobId,
        () => undefined,
      ),
    );
  }
  const ids = new Set((await Promise.all(sends)).filter((id): id is string => id !== undefined));
  client.close();
  if (ids.size < jobs) throw new Error(`only ${ids.size}/${jobs} jobs were accepted`);
  return ids;
}

async function waitForArrivals(stack: Stack, receiver: Receiver, expected: number, log: (line: string) => void): Promise<void> {
  let seen = 0;
  let lastProgress = performance.now();
  let lastLogged = performance.now();
  while (receiver.arrivals.length < expected) {
    await sleep(100);
    const dead = deadChild(stack);
    if (dead) throw new Error(`${dead.name} exited (${dead.exitCode()}) during the run\n${dead.output()}`);
    const now = performance.now();
    if (receiver.arrivals.length > seen) {
      seen = receiver.arrivals.length;
      lastProgress = now;
    }
    if (now - lastProgress > STALL_MS) {
      log(`  STALLED: no delivery for ${STALL_MS / 1000} s, ${seen}/${expected} received`);
      return;
    }
    if (now - lastLogged > 5_000) {
      lastLogged = now;
      log(`  callbacks: ${seen}/${expected} received`);
    }
  }
}

async function measure(stack: Stack, phase: PhaseResult['phase'], raw: Arrival[], jobIds: Set<string>, expected: number): Promise<PhaseResult> {
  const arrivals = parseArrivals(raw).filter((a) => jobIds.has(a.jobId));
  const { rows } = await stack.pool.query<{ id: string; finished_ms: number | null }>(
    'select id, (extract(epoch from finished_at) * 1000)::float8 as finished_ms from jobs where id = any($1)',
    [[...jobIds]],
  );
  const finished = new Map(rows.map((r) => [r.id, r.finished_ms]));
  const firstSeen = new Set<string>();
  const latencies: number[] = [];
  let duplicates = 0;
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const a of arrivals) {
    const key = `${a.webhookId} ${a.path}`;
    if (firstSeen.has(key)) {
      duplicates++;
      continue;
    }
    firstSeen.add(key);
    first = Math.min(first, a.atMs);
    last = Math.max(last, a.atMs);
    const at = finished.get(a.jobId);
    if (at != null) latencies.push(a.atMs - at);
  }
  return { phase, expected, received: firstSeen.size, duplicates, latency: summarize(latencies), deliveriesPerSecond: firstSeen.size / ((last - first) / 1000) };
}

/** The latency target is judged at the paced load, the throughput target on the burst (capacity). */
function phaseRows(r: PhaseResult, options: CallbacksOptions): string[][] {
  const complete = r.received === r.expected;
  const label = r.phase === 'paced' ? `callbacks paced (${fmt(options.rate * options.endpoints, 0)}/s offered)` : 'callbacks burst';
  const latencyTarget = r.phase === 'paced' ? [`<= ${TARGET_P99_MS}`, verdict(complete && r.latency.p99 <= TARGET_P99_MS)] : ['', ''];
  const rateTarget = r.phase === 'burst' ? [`>= ${TARGET_DELIVERIES_PER_SECOND}`, verdict(complete && r.deliveriesPerSecond >= TARGET_DELIVERIES_PER_SECOND)] : ['', ''];
  return [
    [`${label}: received`, `${r.received}/${r.expected}`, '', complete ? '' : 'INCOMPLETE'],
    [`${label}: terminal -> 2xx p50 (ms)`, fmt(r.latency.p50), '', ''],
    [`${label}: terminal -> 2xx p99 (ms)`, fmt(r.latency.p99), ...latencyTarget],
    [`${label}: deliveries/s`, fmt(r.deliveriesPerSecond, 0), ...rateTarget],
  ];
}
