/**
 * Scenario: bounded memory (issue 13). What a job waiting at the provider costs while it waits:
 * Redis bytes, and the resident memory of the worker and the API, at 1k, 10k, 100k waiting jobs.
 *
 * One deployment, filled in steps: the jobs of each step are added to those already waiting, so
 * the figures at each count are of the same processes and show how memory grows with the count.
 * Every job runs for hours at the simulator (`sim_duration_ms`), and the worker's poll schedule is
 * stretched to an hour (POLL_INITIAL_MS = POLL_MAX_MS), so once submitted a job is a response
 * `queued` at the provider with one delayed poll and nothing else going on: the steady state of a
 * deployment whose jobs wait. No webhooks arrive, so polls are primary and each poll work item
 * carries its job's snapshot (@longhaul/db toJobSnapshot); behind arriving webhooks (hybrid mode,
 * healthy) a safety-net poll carries none and a waiting job costs less. A step is measured once
 * every job of it is submitted (Postgres: `queued` or `in_progress`), the submit queue and the fair
 * queue are empty and a few seconds have passed.
 *
 * Redis: every key under the run's prefix is sized with `MEMORY USAGE … SAMPLES 0` (exact), and
 * grouped by kind (BullMQ work items, its delayed sets and event streams, job streams, the fair
 * queue, …); the per-job figure is the growth of that sum since the empty deployment, divided by
 * the jobs waiting. `used_memory` (INFO) is printed beside it, but it is the whole server's:
 * shared with anything else using this Redis, it is a cross-check, not the figure.
 *
 * Processes: VmRSS of each child from /proc (Linux), and VmHWM, the peak; beside them the V8 heap
 * of the worker and the API (used, and reserved) from their /metrics, which tells memory the heap
 * holds (live objects and garbage not yet collected) from memory V8 or the allocator keep.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { createJobsClient } from './http.ts';
import { runPool, sleep } from './pool.ts';
import { deadChild, startStack, type Stack } from './stack.ts';
import { freePort } from '../chaos/servers.ts';

/** A waiting job may cost this much Redis (issue 13). */
const TARGET_REDIS_BYTES_PER_JOB = 2_048;
/** The worker's resident memory with 100 000 jobs waiting may be at most this (issue 13: flat). */
const TARGET_WORKER_RSS_MB = 250;
/** Simulated duration of every job: far longer than any run. */
const JOB_DURATION_MS = 12 * 3_600_000;
/** The worker's poll interval for the run (first poll and every one after): no poll lands during it. */
const POLL_INTERVAL_MS = 6 * 3_600_000;
/** After a step is submitted: time for the last turns, fair-queue releases and GCs to finish. */
const SETTLE_MS = 5_000;
/** Give up when no job was submitted for this long. */
const STALL_MS = 60_000;
const AT_PROVIDER = ['queued', 'in_progress'];

export interface MemoryOptions {
  /** Waiting jobs at which to measure, ascending (each step adds jobs to the ones before). */
  counts: number[];
  /** Client requests in flight while submitting. */
  concurrency: number;
  /** `--worker K=V` overrides, applied over this scenario's knobs. */
  workerOverrides: Record<string, string>;
  nodeArgs: string[];
  log: (line: string) => void;
}

export interface KindUsage {
  kind: string;
  keys: number;
  bytes: number;
}

/** A process's V8 heap as its /metrics tells (prom-client's default metrics), MB. */
export interface HeapView {
  usedMb: number;
  totalMb: number;
  externalMb: number;
}

interface Snapshot {
  usedMemory: number;
  prefixBytes: number;
  byKind: KindUsage[];
  rssMb: Record<string, number>;
  peakRssMb: Record<string, number>;
  heap: Record<string, HeapView>;
}

export interface MemoryStep {
  jobs: number;
  /** Seconds to submit this step's jobs (until the last was at the provider). */
  submitSeconds: number;
  /** Prefix bytes (MEMORY USAGE) grown since the empty deployment, per waiting job. */
  redisBytesPerJob: number;
  /** The server's `used_memory` grown since then, per waiting job (shared server: a cross-check). */
  usedMemoryPerJob: number;
  /** Per kind of key, the growth since the empty deployment. */
  byKind: KindUsage[];
  rssMb: Record<string, number>;
  peakRssMb: Record<string, number>;
  heap: Record<string, HeapView>;
}

export interface MemoryResult {
  empty: { prefixBytes: number; rssMb: Record<string, number> };
  steps: MemoryStep[];
  rows: string[][];
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
const count = (n: number) => n.toLocaleString('en-US');

/** The knobs of the run: long poll intervals (nothing polls while jobs wait), the rest the defaults users get. */
function memoryKnobs(): Record<string, string> {
  return { POLL_INITIAL_MS: String(POLL_INTERVAL_MS), POLL_MAX_MS: String(POLL_INTERVAL_MS) };
}

export async function runMemory(options: MemoryOptions): Promise<MemoryResult> {
  const { log } = options;
  const counts = [...new Set(options.counts)].sort((a, b) => a - b);
  const workerEnv = { ...memoryKnobs(), ...options.workerOverrides };
  // Metrics listeners on known ports: the heap figures are read there.
  const metricsPorts = { worker: await freePort(), api: await freePort() };
  log(
    `memory: jobs of ${JOB_DURATION_MS / 3_600_000} simulated hours left waiting at the provider, measured at ${counts.map(count).join(', ')} waiting; worker ${Object.entries(
      workerEnv,
    )
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}; ${options.concurrency} submits in flight`,
  );
  const stack = await startStack({
    kind: 'mem',
    workerEnv: { ...workerEnv, METRICS_PORT: String(metricsPorts.worker) },
    apiEnv: { API_METRICS_PORT: String(metricsPorts.api) },
    nodeArgs: options.nodeArgs,
  });
  const snapshot = () => takeSnapshot(stack, metricsPorts);
  try {
    await sleep(SETTLE_MS);
    const empty = await snapshot();
    log(
      `  empty deployment: prefix ${fmt(empty.prefixBytes / 1024)} KB in Redis (used_memory ${fmt(empty.usedMemory / 1048576)} MB, whole server); RSS ${rssLine(empty.rssMb)}; heap ${heapLine(empty.heap)}`,
    );
    const steps: MemoryStep[] = [];
    let submitted = 0;
    for (const target of counts) {
      const started = performance.now();
      await submitJobs(stack, submitted, target - submitted, options.concurrency, log);
      submitted = target;
      await waitAtProvider(stack, target, log);
      const submitSeconds = (performance.now() - started) / 1000;
      await waitForQuiet(stack);
      await sleep(SETTLE_MS);
      const now = await snapshot();
      const step = stepBetween(empty, now, target, submitSeconds);
      steps.push(step);
      log(
        `  ${count(target)} waiting (this step submitted in ${fmt(submitSeconds, 0)} s): Redis ${fmt(step.redisBytesPerJob, 0)} B per job (prefix keys; used_memory ${fmt(step.usedMemoryPerJob, 0)} B per job, whole server); RSS ${rssLine(step.rssMb)} (peak ${rssLine(step.peakRssMb)}); heap ${heapLine(step.heap)}`,
      );
      for (const k of step.byKind.filter((k) => Math.abs(k.bytes) >= 1024 || k.keys !== 0))
        log(`    ${k.kind.padEnd(34)} ${String(k.keys).padStart(8)} keys ${fmt(k.bytes / 1024, 1).padStart(10)} KB  ${fmt(k.bytes / target, 0).padStart(6)} B per job`);
    }
    return { empty: { prefixBytes: empty.prefixBytes, rssMb: empty.rssMb }, steps, rows: memoryRows(steps, empty.rssMb) };
  } finally {
    await stack.stop();
  }
}

const heapLine = (heap: Record<string, HeapView>) =>
  Object.entries(heap)
    .map(([name, h]) => `${name} ${fmt(h.usedMb, 0)} of ${fmt(h.totalMb, 0)} MB used (+${fmt(h.externalMb, 0)} MB external)`)
    .join(', ');

const rssLine = (rss: Record<string, number>) =>
  Object.entries(rss)
    .map(([name, mb]) => `${name} ${fmt(mb, 0)} MB`)
    .join(', ');

/** Jobs `from`…`from + n - 1`, closed loop; every one must be accepted. */
async function submitJobs(stack: Stack, from: number, n: number, concurrency: number, log: (line: string) => void): Promise<void> {
  const client = createJobsClient(stack.apiUrl, stack.apiKey, concurrency);
  let failures = 0;
  let firstFailure: string | undefined;
  let accepted = 0;
  let lastLogged = performance.now();
  try {
    await runPool(n, concurrency, async (i) => {
      const body = JSON.stringify({ model: 'o3', input: `Memory ${from + i}: write a long novel about otters in space.`, metadata: { sim_duration_ms: String(JOB_DURATION_MS) } });
      const result = await client.submit(body).catch((err: Error) => ({ status: 0, error: err.message, jobId: undefined }));
      if (result.jobId) accepted++;
      else {
        failures++;
        firstFailure ??= `${result.status} ${result.error}`;
      }
      if (performance.now() - lastLogged > 10_000) {
        lastLogged = performance.now();
        log(`    ${count(from + accepted)} accepted`);
      }
    });
  } finally {
    client.close();
  }
  if (failures) throw new Error(`${failures}/${n} submits failed, first: ${firstFailure}`);
}

/** Until Postgres counts `jobs` jobs at the provider; fails on a job that ended or a stall. */
async function waitAtProvider(stack: Stack, jobs: number, log: (line: string) => void): Promise<void> {
  let last = -1;
  let lastProgress = performance.now();
  let lastLogged = performance.now();
  for (;;) {
    const { rows } = await stack.pool.query<{ status: string; n: number }>('select status::text, count(*)::int as n from jobs group by 1');
    const by = Object.fromEntries(rows.map((r) => [r.status, r.n]));
    const atProvider = AT_PROVIDER.reduce((n, s) => n + (by[s] ?? 0), 0);
    const elsewhere = rows.filter((r) => r.status !== 'pending' && !AT_PROVIDER.includes(r.status));
    if (elsewhere.length) throw new Error(`jobs left the provider during the run: ${JSON.stringify(by)}`);
    if (atProvider >= jobs) return;
    const dead = deadChild(stack);
    if (dead) throw new Error(`${dead.name} exited (${dead.exitCode()}) during the run\n${dead.output()}`);
    const now = performance.now();
    if (atProvider > last) {
      last = atProvider;
      lastProgress = now;
    }
    if (now - lastProgress > STALL_MS) throw new Error(`no job reached the provider for ${STALL_MS / 1000} s: ${JSON.stringify(by)}`);
    if (now - lastLogged > 10_000) {
      lastLogged = now;
      log(`    ${count(atProvider)}/${count(jobs)} at the provider`);
    }
    await sleep(250);
  }
}

/** Until no submit turn is left (waiting, active or delayed) and the fair queue holds no job. */
async function waitForQuiet(stack: Stack): Promise<void> {
  const deadline = performance.now() + 60_000;
  const p = stack.prefix;
  for (;;) {
    const [wait, active, delayed, prioritized, waiting, taken] = await Promise.all([
      stack.redis.llen(`${p}:submit:wait`),
      stack.redis.llen(`${p}:submit:active`),
      stack.redis.zcard(`${p}:submit:delayed`),
      stack.redis.zcard(`${p}:submit:prioritized`),
      stack.redis.hlen(`${p}:fairq:waiting`),
      stack.redis.hlen(`${p}:fairq:taken`),
    ]);
    if (wait + active + delayed + prioritized + waiting + taken === 0) return;
    if (performance.now() > deadline)
      throw new Error(`submit work still in Redis 60 s after every job was submitted: ${JSON.stringify({ wait, active, delayed, prioritized, waiting, taken })}`);
    await sleep(250);
  }
}

/**
 * The kind of a key under the prefix: a BullMQ work item (`<queue>:<id>`, with `:lock`/`:logs`),
 * one of a queue's own keys (`<queue>:delayed`, `<queue>:events`, …), a job stream, or the
 * first segment of anything else (`fairq:waiting`, `webhook-health`, …).
 */
function keyKind(prefix: string, key: string): string {
  const rest = key.slice(prefix.length + 1);
  const [head, second, third] = rest.split(':') as [string, string?, string?];
  if (head === 'jobstream') return 'job streams (jobstream:<id>)';
  if (head === 'fairq') return `fair queue ${second === 'q' || second === 'bucket' ? `${second}:<tenant>` : (second ?? '')}`;
  if (QUEUE_NAMES.has(head) && second !== undefined) {
    if (WORK_ITEM_ID.test(second)) return `bullmq ${head} work items${third ? ` :${third}` : ''}`;
    return `bullmq ${head}:${second}`;
  }
  return head;
}

const QUEUE_NAMES = new Set(['submit', 'poll', 'stream', 'cancel', 'webhook', 'deliver']);
/** Work item ids are what they are about: a job, an inbox row, a delivery (or BullMQ's own counter). */
const WORK_ITEM_ID = /^(job_|inbox_|dlv_|\d+$)/;

async function takeSnapshot(stack: Stack, metricsPorts: Record<string, number>): Promise<Snapshot> {
  const { redis, prefix } = stack;
  const byKind = new Map<string, KindUsage>();
  let prefixBytes = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    const sizes = await memoryUsage(redis, keys);
    keys.forEach((key, i) => {
      const bytes = sizes[i] ?? 0;
      const kind = keyKind(prefix, key);
      const entry = byKind.get(kind) ?? { kind, keys: 0, bytes: 0 };
      entry.keys++;
      entry.bytes += bytes;
      byKind.set(kind, entry);
      prefixBytes += bytes;
    });
  } while (cursor !== '0');
  const info = await redis.info('memory');
  const usedMemory = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
  const rssMb: Record<string, number> = {};
  const peakRssMb: Record<string, number> = {};
  for (const child of stack.children) {
    const status = procStatus(child.pid);
    rssMb[child.name] = (rssMb[child.name] ?? 0) + status.rssKb / 1024;
    peakRssMb[child.name] = (peakRssMb[child.name] ?? 0) + status.peakKb / 1024;
  }
  const heap: Record<string, HeapView> = {};
  for (const [name, port] of Object.entries(metricsPorts)) heap[name] = await heapOf(port);
  return { usedMemory, prefixBytes, byKind: [...byKind.values()], rssMb, peakRssMb, heap };
}

/** prom-client's heap gauges from a process's /metrics (NaN when unreadable). */
async function heapOf(port: number): Promise<HeapView> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`)
    .then((r) => r.text())
    .catch(() => '');
  const gauge = (name: string) => Number(new RegExp(`^\\w*${name} ([\\d.e+]+)$`, 'm').exec(text)?.[1] ?? Number.NaN) / 1048576;
  return { usedMb: gauge('nodejs_heap_size_used_bytes'), totalMb: gauge('nodejs_heap_size_total_bytes'), externalMb: gauge('nodejs_external_memory_bytes') };
}

/** `MEMORY USAGE` of each key (exact: SAMPLES 0), pipelined; a key gone meanwhile counts 0. */
async function memoryUsage(redis: Redis, keys: string[]): Promise<number[]> {
  if (keys.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
  const replies = (await pipeline.exec()) ?? [];
  return replies.map(([err, bytes]) => (err ? 0 : Number(bytes ?? 0)));
}

/** VmRSS and VmHWM of a process, KB (NaN off Linux or once it is gone). */
function procStatus(pid: number): { rssKb: number; peakKb: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssKb: field('VmRSS'), peakKb: field('VmHWM') };
  } catch {
    return { rssKb: Number.NaN, peakKb: Number.NaN };
  }
}

function stepBetween(empty: Snapshot, now: Snapshot, jobs: number, submitSeconds: number): MemoryStep {
  const before = new Map(empty.byKind.map((k) => [k.kind, k]));
  const kinds = new Set([...before.keys(), ...now.byKind.map((k) => k.kind)]);
  const byKind = [...kinds]
    .map((kind) => {
      const a = before.get(kind);
      const b = now.byKind.find((k) => k.kind === kind);
      return { kind, keys: (b?.keys ?? 0) - (a?.keys ?? 0), bytes: (b?.bytes ?? 0) - (a?.bytes ?? 0) };
    })
    .sort((x, y) => y.bytes - x.bytes);
  return {
    jobs,
    submitSeconds,
    redisBytesPerJob: (now.prefixBytes - empty.prefixBytes) / jobs,
    usedMemoryPerJob: (now.usedMemory - empty.usedMemory) / jobs,
    byKind,
    rssMb: now.rssMb,
    peakRssMb: now.peakRssMb,
    heap: now.heap,
  };
}

function memoryRows(steps: MemoryStep[], emptyRss: Record<string, number>): string[][] {
  const rows: string[][] = [];
  for (const s of steps) {
    const n = count(s.jobs);
    rows.push([
      `memory ${n} waiting: Redis bytes per job (prefix keys)`,
      fmt(s.redisBytesPerJob, 0),
      `<= ${TARGET_REDIS_BYTES_PER_JOB}`,
      verdict(s.redisBytesPerJob <= TARGET_REDIS_BYTES_PER_JOB),
    ]);
    rows.push([`memory ${n} waiting: Redis used_memory per job (whole server)`, fmt(s.usedMemoryPerJob, 0), '', '']);
    const worker = s.rssMb.worker ?? Number.NaN;
    rows.push([
      `memory ${n} waiting: worker RSS (MB; ${fmt(emptyRss.worker ?? Number.NaN, 0)} empty)`,
      fmt(worker, 0),
      `<= ${TARGET_WORKER_RSS_MB}`,
      verdict(worker <= TARGET_WORKER_RSS_MB),
    ]);
    rows.push([`memory ${n} waiting: API RSS (MB; ${fmt(emptyRss.api ?? Number.NaN, 0)} empty)`, fmt(s.rssMb.api ?? Number.NaN, 0), '', '']);
  }
  const first = steps[0];
  const last = steps.at(-1);
  if (first && last && last.jobs > first.jobs) {
    // What one more waiting job adds, without the capped keys' fixed cost (BullMQ's event streams).
    const marginal = (last.redisBytesPerJob * last.jobs - first.redisBytesPerJob * first.jobs) / (last.jobs - first.jobs);
    rows.push([`memory Redis bytes per more waiting job (${count(first.jobs)} -> ${count(last.jobs)})`, fmt(marginal, 0), '', '']);
    const span = (last.jobs - first.jobs) / 1000;
    for (const name of ['worker', 'api'])
      rows.push([
        `memory ${name} RSS growth per 1,000 more waiting (MB, ${count(first.jobs)} -> ${count(last.jobs)})`,
        fmt(((last.rssMb[name] ?? Number.NaN) - (first.rssMb[name] ?? Number.NaN)) / span, 2),
        '',
        '',
      ]);
  }
  return rows;
}
