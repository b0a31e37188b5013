/**
 * Responses scenario (issue 14): the latency Longhaul's OpenAI-compatible `/v1/responses` adds
 * over calling the provider directly, both sides measured with the official `openai` SDK (the
 * version pinned in the repo) in this process, against the same simulator process.
 *
 * - Baseline: `client.responses.create(...)` without `background` straight at the simulator. It
 *   answers a synchronous create at once with the finished Response, as OpenAI does (it runs only
 *   background and streamed responses over time), so this is the fastest a client calling the
 *   provider itself could get; then `client.responses.retrieve(id)` of one of those responses.
 * - Longhaul: the same calls at the API's `/v1` with the tenant's key. A synchronous create is a
 *   durable job: accepted, created at the provider in background mode by the worker, finished when
 *   the provider's webhook reaches the API's receiver and the worker applies it, and answered when
 *   the API's follower of the job's event log sees the end and reads the row. Retrieve reads the
 *   job's row from Postgres; it never calls the provider.
 *
 * The deployment is wired as `npm start` wires it (hybrid completion mode, the simulator's signed
 * webhooks to the API, `info` logs), and first learns that webhooks arrive (a few creates until the
 * worker's webhook health says `healthy`, not counted), so polls are only a safety net. Without
 * webhooks a response is found by the first poll, POLL_INITIAL_MS (1 s by default) after the create.
 *
 * Fairness: baseline and Longhaul phases alternate within each round, and which goes first
 * alternates between rounds, so drift in the machine's load falls on both; samples are pooled over
 * the rounds. Every answer is checked (status, id, output); a wrong one counts as an error, not a
 * sample. The simulator's responses are instant (`metadata.sim_duration_ms: "0"`) on both sides.
 */
import OpenAI from 'openai';
import { VERSION as OPENAI_SDK_VERSION } from 'openai/version';
import type { Response as OpenAIResponse } from 'openai/resources/responses/responses';
import { webhookHealthKey } from '@longhaul/worker';
import { runPool, sleep } from './pool.ts';
import { newWebhookSecret, patchSimConfig, providerCalls, simStats } from './sim-control.ts';
import { deadChild, startStack, type Stack } from './stack.ts';
import { summarize, type Summary } from './stats.ts';
import { formatUsage, snapshotUsage, usageBetween, type UsageSnapshot } from './usage.ts';

export interface ResponsesOptions {
  /** Sequential synchronous creates per side and round. */
  creates: number;
  /** Requests in flight in the concurrent phases (closed loop). */
  concurrency: number;
  /** Rounds of every phase (samples pooled). */
  rounds: number;
  /** `--worker K=V` overrides. */
  workerOverrides: Record<string, string>;
  nodeArgs?: string[];
  log: (line: string) => void;
}

type Side = 'sim' | 'longhaul';
type Phase = 'create, sequential' | 'create, concurrent' | 'retrieve, sequential' | 'retrieve, concurrent';
const PHASES: Phase[] = ['create, sequential', 'create, concurrent', 'retrieve, sequential', 'retrieve, concurrent'];

const WARMUP_CALLS = 20;
const LEARN_TIMEOUT_MS = 30_000;

const RESPONSE_ID_PREFIX = 'resp_lh_';
const JOB_ID_PREFIX = 'job_';

const CREATE = { model: 'o3', input: 'Reply with one word.', metadata: { sim_duration_ms: '0' } } as const;

interface Samples {
  ms: number[];
  errors: number;
  firstError?: string;
  /** Wall time of the phase(s), for the rate. */
  seconds: number;
}

interface Sides {
  sim: OpenAI;
  longhaul: OpenAI;
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const signed = (n: number, digits = 1) => (Number.isFinite(n) ? `${n >= 0 ? '+' : ''}${n.toFixed(digits)}` : 'n/a');

/** What a synchronous create must answer; throws naming what is wrong. */
function checkCreated(side: Side, r: OpenAIResponse): void {
  if (r.status !== 'completed') throw new Error(`${side}: create answered status ${r.status}, error ${JSON.stringify(r.error)}`);
  if (!r.output_text) throw new Error(`${side}: create answered no output text`);
  if (side === 'longhaul') {
    if (!r.id.startsWith('resp_lh_')) throw new Error(`longhaul: create answered id ${r.id}, not a Longhaul response id`);
    if (r.background !== false) throw new Error(`longhaul: a synchronous create answered background ${String(r.background)}`);
  }
}

function checkRetrieved(side: Side, id: string, r: OpenAIResponse): void {
  if (r.id !== id || r.status !== 'completed' || !r.output_text) throw new Error(`${side}: retrieve of ${id} answered ${r.id} ${r.status}`);
}

/** Time `count` calls of `call(i)`, `concurrency` in flight; a call that throws is an error, not a sample. */
async function timeCalls(count: number, concurrency: number, call: (i: number) => Promise<void>): Promise<Samples> {
  const out: Samples = { ms: [], errors: 0, seconds: 0 };
  const started = performance.now();
  await runPool(count, concurrency, async (i) => {
    const t = performance.now();
    try {
      await call(i);
      out.ms.push(performance.now() - t);
    } catch (err) {
      out.errors++;
      out.firstError ??= err instanceof Error ? err.message : String(err);
    }
  });
  out.seconds = (performance.now() - started) / 1000;
  return out;
}

/** Sums the deltas of several measured intervals into one (zero, total) pair of snapshots for usageBetween. */
class UsageAccumulator {
  readonly zero: UsageSnapshot = { cpuMs: {}, pgBackendMs: new Map(), pg: { commits: 0, inserted: 0, updated: 0 }, machineMs: 0, atMs: 0 };
  readonly total: UsageSnapshot = { cpuMs: {}, pgBackendMs: new Map(), pg: { commits: 0, inserted: 0, updated: 0 }, machineMs: 0, atMs: 0 };
  units = 0;

  add(before: UsageSnapshot, after: UsageSnapshot, units: number): void {
    const t = this.total;
    for (const [name, ms] of Object.entries(after.cpuMs)) t.cpuMs[name] = (t.cpuMs[name] ?? 0) + ms - (before.cpuMs[name] ?? 0);
    let key = t.pgBackendMs.size;
    for (const [pid, ms] of after.pgBackendMs) t.pgBackendMs.set(key++, ms - (before.pgBackendMs.get(pid) ?? 0));
    t.pg.commits += after.pg.commits - before.pg.commits;
    t.pg.inserted += after.pg.inserted - before.pg.inserted;
    t.pg.updated += after.pg.updated - before.pg.updated;
    t.machineMs += after.machineMs - before.machineMs;
    t.atMs += after.atMs - before.atMs;
    this.units += units;
  }
}

/** Creates through Longhaul until the worker's webhook health is `healthy` (they also warm both sides up). */
async function learnWebhooks(stack: Stack, sides: Sides): Promise<string> {
  const deadline = Date.now() + LEARN_TIMEOUT_MS;
  let state = 'none';
  while (Date.now() < deadline) {
    await Promise.all(Array.from({ length: 4 }, () => sides.longhaul.responses.create(CREATE)));
    state = (await stack.redis.hget(webhookHealthKey(stack.prefix), 'state')) ?? 'none';
    if (state === 'healthy') break;
    await sleep(250);
  }
  for (let i = 0; i < WARMUP_CALLS; i++) {
    const direct = await sides.sim.responses.create(CREATE);
    await sides.sim.responses.retrieve(direct.id);
    const viaLonghaul = await sides.longhaul.responses.create(CREATE);
    await sides.longhaul.responses.retrieve(viaLonghaul.id);
  }
  return state;
}

export async function runResponses(options: ResponsesOptions): Promise<{ rows: string[][] }> {
  const { log } = options;
  const secret = newWebhookSecret();
  const stack = await startStack({
    kind: 'responses',
    workerEnv: options.workerOverrides,
    apiEnv: { OPENAI_WEBHOOK_SECRET: secret },
    logLevel: 'info',
    nodeArgs: options.nodeArgs,
  });
  try {
    await patchSimConfig(stack.simUrl, { webhook_urls: [`${stack.apiUrl}/webhooks/openai`], webhook_secret: secret });
    const sides: Sides = {
      sim: new OpenAI({ baseURL: `${stack.simUrl}/v1`, apiKey: 'sk-longhaul-bench', maxRetries: 0 }),
      longhaul: new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: stack.apiKey, maxRetries: 0 }),
    };
    const health = await learnWebhooks(stack, sides);
    const { creates, concurrency, rounds } = options;
    log(
      `responses: openai SDK ${OPENAI_SDK_VERSION}, synchronous responses.create (instant) and responses.retrieve, straight at the simulator (the baseline: it answers a synchronous create at once, as OpenAI does) and at Longhaul's /v1 (npm start's wiring: hybrid mode, webhooks to the API; webhook health ${health}); ${rounds} rounds, each ${creates} creates and ${creates} retrieves per side sequentially and as many at ${concurrency} in flight, the sides alternating`,
    );
    const { rows: before } = await stack.pool.query<{ id: string }>('select id from jobs');
    const learningJobs = new Set(before.map((r) => r.id));

    const samples = new Map<string, Samples>();
    const record = (side: Side, phase: Phase, s: Samples) => {
      const all = samples.get(`${side}|${phase}`) ?? { ms: [], errors: 0, seconds: 0 };
      all.ms.push(...s.ms);
      all.errors += s.errors;
      all.seconds += s.seconds;
      all.firstError ??= s.firstError;
      samples.set(`${side}|${phase}`, all);
    };
    const ids: Record<Side, string[]> = { sim: [], longhaul: [] };
    /** Longhaul's sequential creates: when each was sent and answered (epoch ms), by job id, for where the time goes. */
    const timeline = new Map<string, { sentMs: number; answeredMs: number }>();
    const usage: Record<Side, UsageAccumulator> = { sim: new UsageAccumulator(), longhaul: new UsageAccumulator() };

    const runPhase = async (side: Side, phase: Phase): Promise<Samples> => {
      const client = sides[side];
      const inFlight = phase.endsWith('sequential') ? 1 : concurrency;
      if (phase.startsWith('create')) {
        return timeCalls(creates, inFlight, async () => {
          const sentMs = Date.now();
          const r = await client.responses.create(CREATE);
          checkCreated(side, r);
          ids[side].push(r.id);
          if (side === 'longhaul' && inFlight === 1) timeline.set(r.id.replace(RESPONSE_ID_PREFIX, JOB_ID_PREFIX), { sentMs, answeredMs: Date.now() });
        });
      }
      const known = ids[side];
      return timeCalls(creates, inFlight, async (i) => {
        const id = known[(i * 7919) % known.length]!;
        checkRetrieved(side, id, await client.responses.retrieve(id));
      });
    };

    const started = performance.now();
    for (let round = 0; round < rounds; round++) {
      const order: Side[] = round % 2 === 0 ? ['sim', 'longhaul'] : ['longhaul', 'sim'];
      for (const phase of PHASES) {
        for (const side of order) {
          // CPU per response over the concurrent creates (the steady state a deployment sees).
          const counted = phase === 'create, concurrent';
          const snapBefore = counted ? await snapshotUsage(stack) : undefined;
          const s = await runPhase(side, phase);
          if (snapBefore) usage[side].add(snapBefore, await snapshotUsage(stack, side === 'longhaul'), s.ms.length + s.errors);
          record(side, phase, s);
          const dead = deadChild(stack);
          if (dead) throw new Error(`${dead.name} exited (${dead.exitCode()}) during the run\n${dead.output()}`);
        }
      }
      log(`  round ${round + 1}/${rounds} done after ${fmt((performance.now() - started) / 1000)} s`);
    }

    // Provider calls per Longhaul response: 2 while webhooks arrive (the create, and the retrieve of a webhook's thin payload).
    const stats = await simStats(stack.simUrl);
    const { rows: jobs } = await stack.pool.query<{ id: string; response_id: string | null }>('select id, response_id from jobs');
    const measured = jobs.filter((j) => !learningJobs.has(j.id));
    const calls = measured.reduce((sum, j) => sum + providerCalls(stats, j.id, j.response_id), 0) / Math.max(1, measured.length);

    for (const line of await whereTheTimeGoes(stack, timeline, stats.terminal_at_ms ?? {})) log(line);

    const summaries = new Map<string, Summary>();
    for (const [key, s] of samples) summaries.set(key, summarize(s.ms));
    const get = (side: Side, phase: Phase) => summaries.get(`${side}|${phase}`)!;

    const rate = (side: Side, phase: Phase) => {
      const s = samples.get(`${side}|${phase}`)!;
      return fmt(s.ms.length / s.seconds, 0);
    };
    const table: string[][] = [['phase', 'n', 'sim p50', 'sim p99', 'longhaul p50', 'longhaul p99', 'added p50', 'added p99', 'calls/s sim/longhaul', 'errors sim/longhaul']];
    for (const phase of PHASES) {
      const base = get('sim', phase);
      const lh = get('longhaul', phase);
      table.push([
        label(phase, concurrency),
        String(lh.count),
        fmt(base.p50, 2),
        fmt(base.p99, 2),
        fmt(lh.p50, 2),
        fmt(lh.p99, 2),
        signed(lh.p50 - base.p50, 2),
        signed(lh.p99 - base.p99, 2),
        `${rate('sim', phase)}/${rate('longhaul', phase)}`,
        `${samples.get(`sim|${phase}`)!.errors}/${samples.get(`longhaul|${phase}`)!.errors}`,
      ]);
    }
    log('  latency per call, ms (from the SDK call to its answer, in this process):');
    printIndented(table, log);
    for (const side of ['sim', 'longhaul'] as const) {
      for (const phase of PHASES) {
        const s = samples.get(`${side}|${phase}`)!;
        if (s.errors) log(`  ${side} ${phase}: ${s.errors} failed, first: ${s.firstError}`);
      }
    }
    log(`  provider calls per Longhaul response: ${fmt(calls, 2)} (${measured.length} responses)`);
    for (const side of ['sim', 'longhaul'] as const) {
      const acc = usage[side];
      log(`  ${side === 'sim' ? 'baseline (straight at the simulator)' : 'Longhaul'}, synchronous creates at ${concurrency} in flight:`);
      for (const line of formatUsage(usageBetween(acc.zero, acc.total, Math.max(1, acc.units)), 'response')) log(`  ${line}`);
    }

    // Summary rows: Longhaul's figure, the simulator's beside it, and the difference (the added latency).
    const rows: string[][] = [];
    for (const phase of PHASES) {
      const base = get('sim', phase);
      const lh = get('longhaul', phase);
      for (const q of ['p50', 'p99'] as const) {
        rows.push([`responses: ${label(phase, concurrency)} ${q} (ms)`, `${fmt(lh[q], 1)} (sim ${fmt(base[q], 1)}, ${signed(lh[q] - base[q], 1)})`, '', '']);
      }
    }
    rows.push([`responses: sync creates/s at ${concurrency} in flight`, `${rate('longhaul', 'create, concurrent')} (sim ${rate('sim', 'create, concurrent')})`, '', '']);
    const errors = [...samples.values()].reduce((n, s) => n + s.errors, 0);
    rows.push(['responses: wrong or failed answers', String(errors), '0', errors === 0 ? 'PASS' : 'MISS']);
    return { rows };
  } finally {
    await stack.stop();
  }
}

/**
 * A sequential synchronous create through Longhaul, stage by stage (medians, ms): from the client's
 * send to the job's row, to the provider's create, to the provider finishing, to its webhook at the
 * API's receiver, to the job finished in Postgres, to the answer at the client. Clocks: this
 * process's Date.now(), Postgres's timestamps and the simulator's, all on this machine.
 */
async function whereTheTimeGoes(stack: Stack, timeline: Map<string, { sentMs: number; answeredMs: number }>, providerDoneMs: Record<string, number>): Promise<string[]> {
  const { rows } = await stack.pool.query<{ id: string; response_id: string | null; created: number; submitted: number | null; finished: number | null; webhook: number | null }>(
    `select j.id, j.response_id,
            extract(epoch from j.created_at) * 1000 as created,
            extract(epoch from j.submitted_at) * 1000 as submitted,
            extract(epoch from j.finished_at) * 1000 as finished,
            (select min(extract(epoch from w.received_at) * 1000) from webhook_inbox w where w.response_id = j.response_id) as webhook
       from jobs j where j.id = any($1)`,
    [[...timeline.keys()]],
  );
  const stages: [string, number[]][] = [
    ['request -> job row', []],
    ['-> created at the provider', []],
    ['-> provider done', []],
    ['-> webhook at the API', []],
    ['-> job finished', []],
    ['-> answer at the client', []],
  ];
  // A webhook that beats the submit's commit of the response id waits for a retry (process-webhook.ts).
  let early = 0;
  const totals: number[] = [];
  for (const row of rows) {
    const t = timeline.get(row.id)!;
    const done = row.response_id ? providerDoneMs[row.response_id] : undefined;
    const points = [t.sentMs, Number(row.created), Number(row.submitted), done, Number(row.webhook), Number(row.finished), t.answeredMs];
    if (points.some((p) => p === undefined || !Number.isFinite(p))) continue;
    for (let i = 0; i < stages.length; i++) stages[i]![1].push(points[i + 1]! - points[i]!);
    if (Number(row.webhook) < Number(row.submitted)) early++;
    totals.push(t.answeredMs - t.sentMs);
  }
  const parts = stages.map(([name, ms]) => `${name} ${fmt(summarize(ms).p50, 0)}`);
  const slow = summarize(totals).p90;
  const slowStages = stages.map(([name, ms]) => `${name.replace(/^-> /, '')} ${fmt(summarize(ms).p90, 0)}`);
  return [
    `  where a sequential synchronous create's time goes (${totals.length} creates, median of each stage, ms, clocks to the ms): ${parts.join(', ')}`,
    `    p90 of each stage: ${slowStages.join(', ')} (p90 of the whole: ${fmt(slow, 0)}); the webhook arrived before the worker had committed the response id in ${early} of ${totals.length}`,
  ];
}

function label(phase: Phase, concurrency: number): string {
  return phase.replace('concurrent', `${concurrency} in flight`).replace('create', 'sync create');
}

function printIndented(rows: string[][], log: (line: string) => void): void {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  rows.forEach((row, i) => {
    log(`  ${row.map((cell, col) => cell.padEnd(widths[col]!)).join('  ')}`.trimEnd());
    if (i === 0) log(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  });
}
