/**
 * Cache scenario (issue 23): what response caching buys a workload where 30 % of the cacheable
 * requests repeat an earlier one, beside the usual load.
 *
 * The deployment is wired as `npm start` wires it (hybrid completion mode, the simulator's signed
 * webhooks to the API, `info` logs) and first learns that webhooks arrive, as the system scenario
 * does. Two open-loop streams run side by side (request i of a stream is sent at start + i/rate
 * whatever happened to the earlier ones, and timed from that scheduled instant, so a slow API
 * cannot slow the load down nor hide behind it):
 *
 * - the usual load: ordinary jobs without `cache`, at `backgroundRate`;
 * - cacheable submissions at `rate`: three in ten repeat an earlier request whose job this process
 *   has seen completed (picked at random among them), seven in ten are new requests.
 *
 * Each round runs the same workload twice, the order alternating between rounds so drift in the
 * machine's load falls on both: once with `"cache": {"ttl_seconds"}` on the cacheable stream (a
 * repeat should be answered by its POST, `completed` with `cached_from`, and call no provider), and
 * once without it (the baseline: every repeat runs at the provider). Before the rounds a few new
 * cacheable requests are run to completion, so the first repeats of a phase have sources, and a few
 * seconds of the workload (not measured) warm the processes up.
 *
 * Latency of a job from submit to terminal: from the scheduled POST to the POST's answer for a hit
 * (the answer already says `completed`; every hit is read back with GET afterwards to confirm it,
 * with the source's output, `cost_usd` 0, `saved_usd` the source's cost and no provider call), and
 * to the job's `finished_at` in Postgres for every other job (clocks of one machine, to the ms).
 * The POST latency of every kind is shown too. Provider calls are the simulator's creates and
 * retrieves, per job (`GET /sim/stats`); CPU per job per process as usage.ts reports it.
 */
import { Agent, request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { webhookHealthKey } from '@longhaul/worker';
import { INSTANT_JOB } from './e2e.ts';
import { runPool, sleep } from './pool.ts';
import { newWebhookSecret, patchSimConfig, providerCalls, simStats, type SimStatsView } from './sim-control.ts';
import { deadChild, startStack, type Stack } from './stack.ts';
import { summarize, type Summary } from './stats.ts';
import { formatUsage, snapshotUsage, usageBetween, type UsageReport } from './usage.ts';

export interface CacheOptions {
  /** Cacheable submissions per second. */
  rate: number;
  /** Ordinary (never cached) jobs per second beside them: the usual load. */
  backgroundRate: number;
  /** Seconds of each phase. */
  durationS: number;
  /** Rounds of both phases (samples pooled). */
  rounds: number;
  /** `--worker K=V` overrides. */
  workerOverrides: Record<string, string>;
  nodeArgs?: string[];
  log: (line: string) => void;
}

/** The issue's target for a hit, from the client's POST to the job being terminal. */
const TARGET_HIT_P99_MS = 20;
/** Repeats among the cacheable submissions: slots 2, 5 and 8 of every ten (exactly 30 %). */
const REPEAT_SLOTS = new Set([2, 5, 8]);
const REPEAT_SHARE = REPEAT_SLOTS.size / 10;
/** How long the simulator takes over every job: short, so sources complete within the phase. */
const SIM_DURATION_MS = 200;
const TTL_SECONDS = 3600;
/** New cacheable requests run to completion before the rounds, the first repeats' sources. */
const SEED_REQUESTS = 40;
/** Seconds of unmeasured load before the rounds. */
const WARMUP_S = 3;
const LEARN_TIMEOUT_MS = 30_000;
/** Give up waiting for a phase's jobs when none finished for this long. */
const STALL_MS = 30_000;
/** How often this process looks for completed sources during a phase (a client polling its jobs). */
const WATCH_MS = 100;

const TERMINAL = ['completed', 'failed', 'cancelled', 'incomplete', 'expired'];

type Mode = 'cache' | 'no cache';
/** ordinary: the usual load; new: a cacheable request not sent before; repeat: an earlier request again. */
type Kind = 'ordinary' | 'new' | 'repeat';
const KINDS: Kind[] = ['repeat', 'new', 'ordinary'];

/** The parts of the job object the scenario reads. */
interface JobView {
  id: string;
  status: string;
  cached_from: string | null;
  output_text: string | null;
  cost_usd: number | null;
  saved_usd: number | null;
  response_id: string | null;
}

interface Sent {
  kind: Kind;
  /** The scheduled send, epoch ms (for finished_at) and performance.now() ms. */
  scheduledEpochMs: number;
  postMs?: number;
  job?: JobView;
  /** A repeat's: the job whose result should answer it (with cache). */
  sourceId?: string;
  error?: string;
}

interface Source {
  input: string;
  jobId: string;
}

interface PhaseResult {
  mode: Mode;
  sent: Sent[];
  /** By kind: POST latency and submit→terminal latency, ms. */
  post: Record<Kind, number[]>;
  terminal: Record<Kind, number[]>;
  /** Hits whose finished_at, from the scheduled POST (a cross-check of the POST's figure). */
  hitFinishedMs: number[];
  calls: Record<Kind, { calls: number; jobs: number }>;
  /** All provider calls over the phase (creates + retrieves), whoever made them. */
  simCalls: number;
  usage: UsageReport;
  sendLagP99: number;
  seconds: number;
  stalled: boolean;
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const pct = (n: number) => (Number.isFinite(n) ? `${(n * 100).toFixed(1)}%` : 'n/a');
const byKind = <T>(make: () => T): Record<Kind, T> => ({ repeat: make(), new: make(), ordinary: make() });

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32): the same run picks the same repeats. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** A keep-alive client for `POST /v1/jobs` and `GET /v1/jobs/{id}` that answers the job object. */
function jobsClient(apiUrl: string, apiKey: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, maxFreeSockets: 256 });
  const call = (method: 'POST' | 'GET', path: string, body?: string) =>
    new Promise<{ status: number; job?: JobView; error?: string }>((resolve, reject) => {
      const headers: Record<string, string | number> = { authorization: `Bearer ${apiKey}` };
      if (body !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      const req = request(new URL(path, apiUrl), { method, agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status !== 202 && status !== 200) return resolve({ status, error: text.slice(0, 300) });
          try {
            resolve({ status, job: JSON.parse(text) as JobView });
          } catch {
            resolve({ status, error: `unparseable body: ${text.slice(0, 300)}` });
          }
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  return {
    submit: (body: string) => call('POST', '/v1/jobs', body),
    get: (id: string) => call('GET', `/v1/jobs/${id}`),
    close: () => agent.destroy(),
  };
}
type JobsClient = ReturnType<typeof jobsClient>;

/**
 * Send `count` requests at `rate`/s from `start` (performance.now() ms), open loop: every slot that
 * is due is sent, a late timer sends a small burst. Answers how late each send was, ms.
 */
async function openLoop(rate: number, count: number, start: number, fire: (i: number, scheduled: number) => Promise<void>): Promise<number[]> {
  const intervalMs = 1000 / rate;
  const inFlight: Promise<void>[] = [];
  const lags: number[] = [];
  let next = 0;
  while (next < count) {
    const now = performance.now();
    while (next < count && start + next * intervalMs <= now) {
      const scheduled = start + next * intervalMs;
      lags.push(now - scheduled);
      inFlight.push(fire(next++, scheduled));
    }
    if (next < count) await sleep(Math.max(0, start + next * intervalMs - performance.now()));
  }
  await Promise.all(inFlight);
  return lags;
}

/** Submits INSTANT_JOB batches until the worker's webhook health is `healthy`, then lets them finish. */
async function learnWebhooks(stack: Stack, client: JobsClient): Promise<string> {
  const deadline = Date.now() + LEARN_TIMEOUT_MS;
  let state = 'none';
  while (Date.now() < deadline) {
    await Promise.all(Array.from({ length: 5 }, () => client.submit(INSTANT_JOB)));
    await sleep(500);
    state = (await stack.redis.hget(webhookHealthKey(stack.prefix), 'state')) ?? 'none';
    if (state === 'healthy') break;
  }
  await waitTerminal(stack, null);
  return state;
}

/** Wait until every job (of `ids`, or all when null) is terminal; false when none finished for STALL_MS. */
async function waitTerminal(stack: Stack, ids: string[] | null): Promise<boolean> {
  let open = Number.POSITIVE_INFINITY;
  let progressAt = performance.now();
  for (;;) {
    const { rows } = ids
      ? await stack.pool.query<{ n: number }>('select count(*)::int as n from jobs where id = any($1) and status <> all($2::job_status[])', [ids, TERMINAL])
      : await stack.pool.query<{ n: number }>('select count(*)::int as n from jobs where status <> all($1::job_status[])', [TERMINAL]);
    const n = rows[0]!.n;
    if (n === 0) return true;
    if (n < open) progressAt = performance.now();
    open = n;
    if (performance.now() - progressAt > STALL_MS) return false;
    const dead = deadChild(stack);
    if (dead) throw new Error(`${dead.name} exited (${dead.exitCode()}) during the run\n${dead.output()}`);
    await sleep(50);
  }
}

export async function runCache(options: CacheOptions): Promise<{ rows: string[][] }> {
  const { log } = options;
  const secret = newWebhookSecret();
  const stack = await startStack({
    kind: 'cache',
    workerEnv: options.workerOverrides,
    apiEnv: { OPENAI_WEBHOOK_SECRET: secret },
    logLevel: 'info',
    nodeArgs: options.nodeArgs,
  });
  const client = jobsClient(stack.apiUrl, stack.apiKey);
  try {
    await patchSimConfig(stack.simUrl, { webhook_urls: [`${stack.apiUrl}/webhooks/openai`], webhook_secret: secret });
    const health = await learnWebhooks(stack, client);
    const nonce = randomBytes(4).toString('hex');
    let requests = 0;
    const newInput = () => `Summarise field report ${nonce}-${++requests} in one line.`;
    const body = (input: string, cache: boolean) =>
      JSON.stringify({ model: 'o3', input, metadata: { sim_duration_ms: String(SIM_DURATION_MS) }, ...(cache ? { cache: { ttl_seconds: TTL_SECONDS } } : {}) });
    const ordinary = JSON.stringify({ model: 'o3', input: 'Reply with one word.', metadata: { sim_duration_ms: String(SIM_DURATION_MS) } });

    // Requests whose cached job completed: what the repeats of both phases ask again.
    const sources: Source[] = [];
    const seeds = Array.from({ length: SEED_REQUESTS }, newInput);
    await runPool(seeds.length, 8, async (i) => {
      const res = await client.submit(body(seeds[i]!, true));
      if (!res.job) throw new Error(`seed request answered ${res.status} ${res.error}`);
      sources.push({ input: seeds[i]!, jobId: res.job.id });
    });
    const seedIds = sources.map((s) => s.jobId);
    if (!(await waitTerminal(stack, seedIds))) throw new Error('the seed requests did not finish');
    const { rows: seeded } = await stack.pool.query<{ id: string; status: string }>('select id, status from jobs where id = any($1)', [seedIds]);
    const notCompleted = seeded.filter((r) => r.status !== 'completed');
    if (notCompleted.length) throw new Error(`seed jobs did not complete: ${notCompleted.map((r) => `${r.id} ${r.status}`).join(', ')}`);

    const pick = random(0x5eed);
    const phase = (mode: Mode, seconds: number) =>
      runPhase(stack, client, {
        mode,
        perPhase: { cacheable: Math.max(1, Math.round(options.rate * seconds)), ordinary: Math.round(options.backgroundRate * seconds) },
        options,
        sources,
        pickSource: () => sources[Math.floor(pick() * sources.length)]!,
        newInput,
        body,
        ordinary,
      });
    // Not measured: the first seconds at load pay for the JIT and warm connections, which would fall on the first phase only.
    await phase('cache', WARMUP_S);
    log(
      `cache: npm start's wiring (hybrid mode, webhooks to the API, info logs; webhook health ${health}); ${options.rounds} rounds, each a phase with "cache": {"ttl_seconds": ${TTL_SECONDS}} and one without (the baseline), the order alternating, after ${WARMUP_S} s of warm-up; per phase ${options.durationS} s of ${options.rate} cacheable submissions/s (${pct(REPEAT_SHARE)} repeating an earlier completed request, the rest new) beside ${options.backgroundRate} ordinary jobs/s, open loop; every job ${SIM_DURATION_MS} ms at the simulator`,
    );

    const results: PhaseResult[] = [];
    const started = performance.now();
    for (let round = 0; round < options.rounds; round++) {
      const order: Mode[] = round % 2 === 0 ? ['cache', 'no cache'] : ['no cache', 'cache'];
      for (const mode of order) {
        results.push(await phase(mode, options.durationS));
        const dead = deadChild(stack);
        if (dead) throw new Error(`${dead.name} exited (${dead.exitCode()}) during the run\n${dead.output()}`);
      }
      log(`  round ${round + 1}/${options.rounds} done after ${fmt((performance.now() - started) / 1000)} s`);
    }

    const problems = await confirmHits(stack, client, results);
    return { rows: report(results, problems, options, log) };
  } finally {
    client.close();
    await stack.stop();
  }
}

interface PhasePlan {
  mode: Mode;
  perPhase: { cacheable: number; ordinary: number };
  options: CacheOptions;
  sources: Source[];
  pickSource(): Source;
  newInput(): string;
  body(input: string, cache: boolean): string;
  ordinary: string;
}

async function runPhase(stack: Stack, client: JobsClient, plan: PhasePlan): Promise<PhaseResult> {
  const { mode, options } = plan;
  const cache = mode === 'cache';
  const sent: Sent[] = [];
  const epochOffset = Date.now() - performance.now();
  const send = async (kind: Kind, json: string, scheduled: number, sourceId?: string) => {
    const entry: Sent = { kind, scheduledEpochMs: scheduled + epochOffset, sourceId };
    sent.push(entry);
    try {
      const res = await client.submit(json);
      entry.postMs = performance.now() - scheduled;
      if (res.job) entry.job = res.job;
      else entry.error = `${res.status} ${res.error}`;
    } catch (err) {
      entry.error = err instanceof Error ? err.message : String(err);
    }
    return entry;
  };

  // With cache, a new request whose job this process sees completed becomes a source for later repeats.
  const watching = new Map<string, string>();
  let phaseOver = false;
  const watcher = (async () => {
    while (!phaseOver) {
      await sleep(WATCH_MS);
      if (watching.size === 0) continue;
      const { rows } = await stack.pool.query<{ id: string; status: string }>('select id, status from jobs where id = any($1) and status = any($2::job_status[])', [
        [...watching.keys()],
        TERMINAL,
      ]);
      for (const row of rows) {
        if (row.status === 'completed') plan.sources.push({ input: watching.get(row.id)!, jobId: row.id });
        watching.delete(row.id);
      }
    }
  })();

  const before = await snapshotUsage(stack);
  const statsBefore = await simStats(stack.simUrl);
  const start = performance.now() + 20;
  const [cacheableLags, ordinaryLags] = await Promise.all([
    openLoop(options.rate, plan.perPhase.cacheable, start, async (i, scheduled) => {
      if (REPEAT_SLOTS.has(i % 10)) {
        const source = plan.pickSource();
        await send('repeat', plan.body(source.input, cache), scheduled, source.jobId);
        return;
      }
      const input = plan.newInput();
      const entry = await send('new', plan.body(input, cache), scheduled);
      if (cache && entry.job) watching.set(entry.job.id, input);
    }),
    plan.perPhase.ordinary > 0 ? openLoop(options.backgroundRate, plan.perPhase.ordinary, start, (_, scheduled) => send('ordinary', plan.ordinary, scheduled).then(() => {})) : [],
  ]);
  const ids = sent.flatMap((s) => (s.job ? [s.job.id] : []));
  const drained = await waitTerminal(stack, ids);
  const seconds = (performance.now() - start) / 1000;
  phaseOver = true;
  await watcher;
  const usage = usageBetween(before, await snapshotUsage(stack, true), Math.max(1, ids.length));
  const stats = await simStats(stack.simUrl);

  const { rows } = await stack.pool.query<{ id: string; response_id: string | null; finished_ms: number | null }>(
    'select id, response_id, (extract(epoch from finished_at) * 1000)::float8 as finished_ms from jobs where id = any($1)',
    [ids],
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  const post = byKind<number[]>(() => []);
  const terminal = byKind<number[]>(() => []);
  const calls = byKind(() => ({ calls: 0, jobs: 0 }));
  const hitFinishedMs: number[] = [];
  for (const s of sent) {
    if (!s.job || s.postMs === undefined) continue;
    post[s.kind].push(s.postMs);
    const row = byId.get(s.job.id);
    const answeredTerminal = TERMINAL.includes(s.job.status);
    // A job the POST answered terminal (a hit) was terminal when the answer arrived.
    if (answeredTerminal) terminal[s.kind].push(s.postMs);
    else if (row?.finished_ms != null) terminal[s.kind].push(row.finished_ms - s.scheduledEpochMs);
    if (answeredTerminal && row?.finished_ms != null) hitFinishedMs.push(row.finished_ms - s.scheduledEpochMs);
    calls[s.kind].calls += providerCalls(stats, s.job.id, row?.response_id ?? null);
    calls[s.kind].jobs++;
  }
  return {
    mode,
    sent,
    post,
    terminal,
    hitFinishedMs,
    calls,
    simCalls: totalCalls(stats) - totalCalls(statsBefore),
    usage,
    sendLagP99: summarize([...cacheableLags, ...ordinaryLags]).p99,
    seconds,
    stalled: !drained,
  };
}

const totalCalls = (stats: SimStatsView) => stats.creates + stats.retrieves;

/**
 * Read every repeat of the cache phases back: answered at once from its source (completed,
 * `cached_from` the source, its output, cost 0, saved the source's cost) and no provider call for
 * it. Answers a line per repeat that was not so.
 */
async function confirmHits(stack: Stack, client: JobsClient, results: PhaseResult[]): Promise<string[]> {
  const problems: string[] = [];
  const stats = await simStats(stack.simUrl);
  const repeats = results.filter((r) => r.mode === 'cache').flatMap((r) => r.sent.filter((s) => s.kind === 'repeat'));
  const sourceJobs = new Map<string, Promise<JobView | undefined>>();
  const sourceOf = (id: string) => {
    let job = sourceJobs.get(id);
    if (!job) {
      job = client.get(id).then((r) => r.job);
      sourceJobs.set(id, job);
    }
    return job;
  };
  await runPool(repeats.length, 8, async (i) => {
    const s = repeats[i]!;
    // A failed POST is counted with the submit errors.
    if (!s.job) return;
    const id = s.job.id;
    const found: string[] = [];
    if (s.job.status !== 'completed') found.push(`the POST answered ${s.job.status} (cached_from ${s.job.cached_from}), not completed`);
    const [read, source] = await Promise.all([client.get(id), sourceOf(s.sourceId!)]);
    const job = read.job;
    if (!job || !source) found.push(`GET answered ${read.status} ${read.error ?? ''} (source ${s.sourceId} ${source ? 'read' : 'unreadable'})`);
    else {
      if (job.status !== 'completed' || job.cached_from !== source.id) found.push(`reads ${job.status}, cached_from ${job.cached_from}, expected completed from ${source.id}`);
      else if (job.output_text !== source.output_text || job.cost_usd !== 0 || job.saved_usd !== source.cost_usd)
        found.push(`output, cost_usd ${job.cost_usd} or saved_usd ${job.saved_usd} differ from the source's (cost ${source.cost_usd})`);
      const calls = providerCalls(stats, id, job.response_id);
      if (calls > 0) found.push(`${calls} provider calls`);
    }
    if (found.length) problems.push(`${id} (a repeat of ${s.sourceId}, which had read completed): ${found.join('; ')}`);
  });
  return problems;
}

function report(results: PhaseResult[], problems: string[], options: CacheOptions, log: (line: string) => void): string[][] {
  const pooled = (mode: Mode) => {
    const phases = results.filter((r) => r.mode === mode);
    const post = byKind<number[]>(() => []);
    const terminal = byKind<number[]>(() => []);
    const calls = byKind(() => ({ calls: 0, jobs: 0 }));
    for (const p of phases) {
      for (const kind of KINDS) {
        post[kind].push(...p.post[kind]);
        terminal[kind].push(...p.terminal[kind]);
        calls[kind].calls += p.calls[kind].calls;
        calls[kind].jobs += p.calls[kind].jobs;
      }
    }
    const sent = phases.flatMap((p) => p.sent);
    const cacheable = sent.filter((s) => s.kind !== 'ordinary');
    const hits = cacheable.filter((s) => s.job?.cached_from && TERMINAL.includes(s.job.status)).length;
    const repeats = cacheable.filter((s) => s.kind === 'repeat').length;
    const errors = sent.filter((s) => s.error);
    const jobs = KINDS.reduce((n, k) => n + calls[k].jobs, 0);
    const cacheableJobs = calls.new.jobs + calls.repeat.jobs;
    return {
      phases,
      post: Object.fromEntries(KINDS.map((k) => [k, summarize(post[k])])) as Record<Kind, Summary>,
      terminal: Object.fromEntries(KINDS.map((k) => [k, summarize(terminal[k])])) as Record<Kind, Summary>,
      hitFinished: summarize(phases.flatMap((p) => p.hitFinishedMs)),
      callsPer: (k: Kind) => calls[k].calls / Math.max(1, calls[k].jobs),
      callsPerCacheable: (calls.new.calls + calls.repeat.calls) / Math.max(1, cacheableJobs),
      callsPerJob: KINDS.reduce((n, k) => n + calls[k].calls, 0) / Math.max(1, jobs),
      simCallsPerJob: phases.reduce((n, p) => n + p.simCalls, 0) / Math.max(1, jobs),
      hitShare: hits / Math.max(1, cacheable.length),
      hits,
      repeats,
      cacheable: cacheable.length,
      errors,
      sendLagP99: Math.max(...phases.map((p) => p.sendLagP99)),
      stalled: phases.some((p) => p.stalled),
    };
  };
  const withCache = pooled('cache');
  const without = pooled('no cache');

  const label: Record<Kind, string> = { repeat: 'repeat', new: 'new request', ordinary: 'ordinary job' };
  const table: string[][] = [['job', 'n', 'POST p50', 'POST p99', 'submit→terminal p50', 'p99', 'max', 'provider calls/job']];
  for (const [mode, p] of [
    ['cache', withCache],
    ['no cache', without],
  ] as const) {
    for (const kind of KINDS) {
      const name = mode === 'cache' && kind === 'repeat' ? 'repeat (hit)' : mode === 'cache' && kind === 'new' ? 'new request (miss)' : label[kind];
      table.push([
        `${mode}: ${name}`,
        String(p.post[kind].count),
        fmt(p.post[kind].p50, 2),
        fmt(p.post[kind].p99, 2),
        fmt(p.terminal[kind].p50, 1),
        fmt(p.terminal[kind].p99, 1),
        fmt(p.terminal[kind].max, 1),
        fmt(p.callsPer(kind), 2),
      ]);
    }
  }
  log('  latency per job, ms, from the scheduled POST (a hit is terminal when its POST answers; any other job at its finished_at):');
  printIndented(table, log);
  log(
    `  hits read back from Postgres: finished_at p50 ${fmt(withCache.hitFinished.p50, 1)}, p99 ${fmt(withCache.hitFinished.p99, 1)} ms after the scheduled POST (at or before its answer)`,
  );
  log(
    `  hits: ${withCache.hits}/${withCache.cacheable} cacheable submissions (${pct(withCache.hitShare)}; ${withCache.repeats} repeats); provider calls per cacheable submission ${fmt(withCache.callsPerCacheable, 2)} with cache, ${fmt(without.callsPerCacheable, 2)} without (${pct(1 - withCache.callsPerCacheable / without.callsPerCacheable)} saved); per job of the whole workload ${fmt(withCache.callsPerJob, 2)} vs ${fmt(without.callsPerJob, 2)} (the simulator's totals: ${fmt(withCache.simCallsPerJob, 2)} vs ${fmt(without.simCallsPerJob, 2)})`,
  );
  for (const [mode, p] of [
    ['with cache', withCache],
    ['without cache (the baseline)', without],
  ] as const) {
    log(`  ${mode}: client send lag p99 ${fmt(p.sendLagP99, 2)} ms${p.stalled ? '; STALLED: some jobs did not finish' : ''}`);
    if (p.errors.length) log(`    ${p.errors.length} submits failed, first: ${p.errors[0]!.error}`);
    for (const [i, phase] of p.phases.entries()) {
      log(`    phase ${i + 1} (${fmt(phase.seconds, 1)} s with its drain):`);
      for (const line of formatUsage(phase.usage, 'job')) log(`    ${line}`);
    }
  }
  // CPU per job by process, averaged over each mode's phases: what a hit saves and what the cache's statements cost.
  const cpuBy = (p: typeof withCache, name: string) => p.phases.reduce((n, phase) => n + (phase.usage.perUnit[name] ?? 0), 0) / Math.max(1, p.phases.length);
  const processes = Object.keys(withCache.phases[0]?.usage.perUnit ?? {});
  const pgBy = (p: typeof withCache) => p.phases.reduce((n, phase) => n + phase.usage.pgPerUnit.commits, 0) / Math.max(1, p.phases.length);
  log('  CPU ms per job by process (mean of the phases; *redis: whole server):');
  printIndented(
    [
      ['', ...processes, 'Postgres transactions'],
      ['with cache', ...processes.map((name) => fmt(cpuBy(withCache, name), 2)), fmt(pgBy(withCache), 1)],
      ['without', ...processes.map((name) => fmt(cpuBy(without, name), 2)), fmt(pgBy(without), 1)],
    ],
    log,
  );
  if (problems.length) {
    log(`  ${problems.length} repeats were not answered from the cache as they should be; first ${Math.min(10, problems.length)}:`);
    for (const line of problems.slice(0, 10)) log(`    ${line}`);
  }

  const hitP99 = withCache.terminal.repeat.p99;
  const wrong = problems.length + withCache.errors.length + without.errors.length;
  return [
    [
      `cache: hit submit→terminal p50 (ms)`,
      `${fmt(withCache.terminal.repeat.p50, 2)} (miss POST ${fmt(withCache.post.new.p50, 2)}, ordinary POST ${fmt(withCache.post.ordinary.p50, 2)})`,
      '',
      '',
    ],
    [
      `cache: hit submit→terminal p99 (ms), beside ${options.backgroundRate} jobs/s`,
      `${fmt(hitP99, 2)} (miss POST ${fmt(withCache.post.new.p99, 2)}, ordinary POST ${fmt(withCache.post.ordinary.p99, 2)})`,
      `<= ${TARGET_HIT_P99_MS}`,
      hitP99 <= TARGET_HIT_P99_MS ? 'PASS' : 'MISS',
    ],
    [
      `cache: miss submit→terminal p50/p99 (ms)`,
      `${fmt(withCache.terminal.new.p50, 0)}/${fmt(withCache.terminal.new.p99, 0)} (ordinary ${fmt(withCache.terminal.ordinary.p50, 0)}/${fmt(withCache.terminal.ordinary.p99, 0)})`,
      '',
      '',
    ],
    [
      `cache: hits of cacheable submissions`,
      `${pct(withCache.hitShare)} (${withCache.hits}/${withCache.cacheable})`,
      pct(REPEAT_SHARE),
      withCache.hits === withCache.repeats ? 'PASS' : 'MISS',
    ],
    [`cache: provider calls per cacheable submission`, `${fmt(withCache.callsPerCacheable, 2)} (no cache ${fmt(without.callsPerCacheable, 2)})`, '', ''],
    [`cache: provider calls per job, whole workload`, `${fmt(withCache.callsPerJob, 2)} (no cache ${fmt(without.callsPerJob, 2)})`, '', ''],
    [`cache: CPU ms per job, all processes`, `${fmt(cpuBy(withCache, 'total'), 2)} (no cache ${fmt(cpuBy(without, 'total'), 2)})`, '', ''],
    ['cache: repeats not answered from the cache, wrong or failed answers', String(wrong), '0', wrong === 0 ? 'PASS' : 'MISS'],
  ];
}

function printIndented(rows: string[][], log: (line: string) => void): void {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  rows.forEach((row, i) => {
    log(`  ${row.map((cell, col) => cell.padEnd(widths[col]!)).join('  ')}`.trimEnd());
    if (i === 0) log(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  });
}
