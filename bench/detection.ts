/**
 * Scenario: completion detection (issues 3 and 13). For ~5-minute simulated jobs, time-scaled so
 * they last seconds, how many provider calls each job costs and how long after the provider
 * finished a response its job is terminal in Postgres, in each COMPLETION_MODE, against the
 * guide's fixed 2 s polling loop measured in the same run. Hybrid mode runs twice, each time on a
 * deployment that has first learned that webhooks arrive (a few jobs, until the worker's webhook
 * health says `healthy`; those jobs are not counted): `hybrid` with webhooks arriving, and
 * `hybrid-dropped` with every webhook dropped from then on.
 *
 * Fairness: the simulator multiplies every duration by the time scale, so the worker's poll
 * schedule (POLL_INITIAL_MS, POLL_MAX_MS), webhook mode's safety poll and the guide loop's 2 s
 * are multiplied by the same factor; call counts are then those of real time. Detection
 * latency is reported in real ms, unscaled: webhook delivery and processing are real work.
 *
 * Provider completion is the instant the simulator's response became terminal (`terminal_at_ms`
 * in /sim/stats, ms); a job's detection is its `finished_at` (Postgres) minus that instant.
 *
 * What scaling cannot compress: the work per poll (tens of ms locally) is real time, so scaled
 * polls drift later and a scaled run counts a little fewer polls than real time would (the
 * schedule's own count is printed next to it); and the poll load is 1/scale times the real one,
 * so creates are spread over `spreadMs` to keep it within a small machine.
 */
import { createJobsClient } from './http.ts';
import { runGuidePolling, type GuidePollingResult } from './guide-poller.ts';
import { sleep } from './pool.ts';
import { newWebhookSecret, patchSimConfig, providerCalls, providerTerminalMs, simStats } from './sim-control.ts';
import { webhookHealthKey } from '@longhaul/worker';
import { deadChild, startStack, type Stack } from './stack.ts';
import { summarize, type Summary } from './stats.ts';
import { formatUsage, snapshotUsage, usageBetween } from './usage.ts';

export const DETECTION_MODES = ['webhook', 'hybrid', 'hybrid-dropped', 'poll'] as const;
export type DetectionMode = (typeof DETECTION_MODES)[number];

const TARGET_WEBHOOK_CALLS = 2;
const TARGET_POLL_CALLS = 15;
/** Jobs a hybrid deployment runs first, to learn that webhooks arrive (not counted). */
const LEARNING_JOBS = 10;
const TARGET_DETECTION_P99_MS = 200;
/** Unscaled worker defaults, scaled for the run. */
const POLL_INITIAL_MS = 1_000;
const POLL_MAX_MS = 30_000;
/** Webhook mode's safety poll, unscaled: well past the job's end so only webhooks finish jobs. */
const SAFETY_POLL_MS = 600_000;
/** Hybrid mode's safety poll and webhook grace period: the worker's defaults, unscaled. */
const HYBRID_SAFETY_POLL_MS = 300_000;
const WEBHOOK_GRACE_MS = 30_000;
const GUIDE_INTERVAL_MS = 2_000;
const TERMINAL = ['completed', 'failed', 'cancelled', 'incomplete', 'expired'];

export interface DetectionOptions {
  jobs: number;
  /** Responses of the guide loop (its calls per job do not depend on how many run). */
  guideJobs: number;
  /** Real ms over which each mode's creates are spread (open loop). */
  spreadMs: number;
  timeScale: number;
  /** Simulated duration of every job, ms before scaling (300 000: 5 minutes). */
  simulatedMs: number;
  /** `--worker K=V` overrides, applied over this scenario's knobs. */
  workerOverrides: Record<string, string>;
  nodeArgs: string[];
  log: (line: string) => void;
}

export interface ModeResult {
  mode: DetectionMode;
  terminal: number;
  byStatus: Record<string, number>;
  calls: Summary;
  detection: Summary;
  /** Which path made jobs terminal (job_events.source of the terminal transition), and its latency. */
  detectedBy: Record<string, number>;
  detectionBySource: Record<string, Summary>;
  /** Hybrid modes: the worker's webhook health once every job was terminal. */
  webhookHealth?: string;
}

/** Provider calls of a job of `durationMs` under the adaptive schedule: the create, then polls until one is past the end. */
export function scheduledCalls(durationMs: number, initialMs = POLL_INITIAL_MS, maxMs = POLL_MAX_MS, factor = 2): number {
  let at = 0;
  let polls = 0;
  while (at < durationMs) at += Math.min(maxMs, initialMs * factor ** polls++);
  return 1 + polls;
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
const scaled = (ms: number, scale: number, min: number) => String(Math.max(min, Math.round(ms * scale)));

const completionModeOf = (mode: DetectionMode) => (mode === 'hybrid-dropped' ? 'hybrid' : mode);

/** Worker knobs of a mode: the default schedule, multiplied by the time scale. */
export function modeKnobs(mode: DetectionMode, scale: number): Record<string, string> {
  const completion = completionModeOf(mode);
  const knobs: Record<string, string> = { COMPLETION_MODE: completion, POLL_INITIAL_MS: scaled(POLL_INITIAL_MS, scale, 10), POLL_MAX_MS: scaled(POLL_MAX_MS, scale, 10) };
  if (mode === 'webhook') knobs.SAFETY_POLL_MS = scaled(SAFETY_POLL_MS, scale, 1_000);
  if (completion === 'hybrid') {
    knobs.SAFETY_POLL_MS = scaled(HYBRID_SAFETY_POLL_MS, scale, 1_000);
    knobs.WEBHOOK_GRACE_MS = scaled(WEBHOOK_GRACE_MS, scale, 0);
  }
  return knobs;
}

export async function runDetection(options: DetectionOptions): Promise<{ results: ModeResult[]; guide: GuidePollingResult; rows: string[][] }> {
  const { log, timeScale } = options;
  const realMs = options.simulatedMs * timeScale;
  log(
    `detection: ${options.jobs} jobs per mode of ${fmt(options.simulatedMs / 60_000, 1)} simulated minutes at SIM_TIME_SCALE=${timeScale} (${fmt(realMs / 1000, 2)} s real each), creates spread over ${fmt(options.spreadMs / 1000, 1)} s`,
  );
  log(
    `  every interval scaled by ${timeScale}: worker polls ${POLL_INITIAL_MS} ms -> ${POLL_MAX_MS} ms become ${modeKnobs('poll', timeScale).POLL_INITIAL_MS} -> ${modeKnobs('poll', timeScale).POLL_MAX_MS} ms, webhook-mode safety poll ${SAFETY_POLL_MS / 60_000} min becomes ${modeKnobs('webhook', timeScale).SAFETY_POLL_MS} ms, hybrid's ${HYBRID_SAFETY_POLL_MS / 60_000} min and ${WEBHOOK_GRACE_MS / 1000} s grace ${modeKnobs('hybrid', timeScale).SAFETY_POLL_MS} and ${modeKnobs('hybrid', timeScale).WEBHOOK_GRACE_MS} ms, the guide's 2 s loop ${fmt(GUIDE_INTERVAL_MS * timeScale, 0)} ms`,
  );
  log(
    `  detection latency is real ms (not scaled); where a poll detects, most of it is the wait for that poll, which IS scaled (x${timeScale}: real time waits up to ${POLL_MAX_MS / 1000} s, or 2 s for the guide loop)`,
  );
  log(
    `  unscaled, the adaptive schedule polls a ${fmt(options.simulatedMs / 60_000, 1)}-minute job ${scheduledCalls(options.simulatedMs) - 1} times (${scheduledCalls(options.simulatedMs)} calls with the create), a fixed 2 s loop ${Math.ceil(options.simulatedMs / GUIDE_INTERVAL_MS)} times`,
  );
  const results: ModeResult[] = [];
  let guide: GuidePollingResult | undefined;
  for (const mode of DETECTION_MODES) {
    const last = mode === DETECTION_MODES[DETECTION_MODES.length - 1];
    const { result, guideResult } = await runMode(mode, options, last);
    results.push(result);
    guide ??= guideResult;
  }
  if (!guide) throw new Error('the guide loop did not run');
  return { results, guide, rows: detectionRows(results, guide, options.simulatedMs, timeScale) };
}

async function runMode(mode: DetectionMode, options: DetectionOptions, withGuide: boolean): Promise<{ result: ModeResult; guideResult?: GuidePollingResult }> {
  const { log, timeScale } = options;
  const realMs = options.simulatedMs * timeScale;
  const webhooks = mode !== 'poll';
  const secret = newWebhookSecret();
  const workerEnv = { ...modeKnobs(mode, timeScale), ...options.workerOverrides };
  const stack = await startStack({
    kind: `det_${mode}`,
    workerEnv,
    simEnv: { SIM_TIME_SCALE: String(timeScale) },
    apiEnv: webhooks ? { OPENAI_WEBHOOK_SECRET: secret } : {},
    nodeArgs: options.nodeArgs,
  });
  try {
    if (webhooks) await patchSimConfig(stack.simUrl, { webhook_urls: [`${stack.apiUrl}/webhooks/openai`], webhook_secret: secret });
    log(
      `  ${mode}: worker ${Object.entries(workerEnv)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}; ${webhooks ? 'simulator sends signed webhooks to /webhooks/openai' : 'no webhooks'}`,
    );
    const hybrid = completionModeOf(mode) === 'hybrid';
    const learning = hybrid ? await learnWebhooks(stack, options) : new Set<string>();
    if (mode === 'hybrid-dropped') {
      await patchSimConfig(stack.simUrl, { webhook_drop_rate: 1 });
      log('    from here on the simulator drops every webhook');
    }
    const before = await snapshotUsage(stack);
    const submitted = await submitPaced(stack, options.jobs, options.simulatedMs, options.spreadMs);
    await waitForTerminal(stack, submitted + learning.size, realMs + 30_000);
    const result = await collect(stack, mode, learning);
    if (hybrid) result.webhookHealth = (await stack.redis.hget(webhookHealthKey(stack.prefix), 'state')) ?? 'none';
    log(
      `    ${result.terminal}/${options.jobs} terminal ${JSON.stringify(result.byStatus)}, detected by ${JSON.stringify(result.detectedBy)}; calls/job mean ${fmt(result.calls.mean, 2)} (min ${result.calls.min}, max ${result.calls.max}); detection ms p50 ${fmt(result.detection.p50)} p99 ${fmt(result.detection.p99)} max ${fmt(result.detection.max)}${hybrid ? `; webhook health at the end: ${result.webhookHealth}` : ''}`,
    );
    for (const [source, s] of Object.entries(result.detectionBySource)) log(`    detected by ${source}: ${s.count} jobs, ms p50 ${fmt(s.p50)} p99 ${fmt(s.p99)} max ${fmt(s.max)}`);
    const usage = formatUsage(usageBetween(before, await snapshotUsage(stack), Math.max(1, result.terminal)), 'job');
    for (const line of [usage[0]!, usage[2]!]) log(`    ${line.trim()}`);
    if (!withGuide) return { result };

    const intervalMs = GUIDE_INTERVAL_MS * timeScale;
    log(
      `  guide loop: ${options.guideJobs} responses created with the openai SDK at the same simulator, retrieved every ${fmt(intervalMs, 0)} ms (2 s x ${timeScale}, on a fixed grid) until terminal`,
    );
    const guideResult = await runGuidePolling(stack.simUrl, { jobs: options.guideJobs, simulatedMs: options.simulatedMs, intervalMs, spreadMs: realMs });
    log(
      `    ${guideResult.completed}/${guideResult.jobs} completed${guideResult.failures ? `, ${guideResult.failures} failed (${guideResult.firstFailure})` : ''}; calls/job mean ${fmt(guideResult.calls.mean, 2)} (client counted ${fmt(guideResult.clientCallsMean, 2)}); detection ms p50 ${fmt(guideResult.detection.p50)} p99 ${fmt(guideResult.detection.p99)}`,
    );
    return { result, guideResult };
  } finally {
    await stack.stop();
  }
}

/**
 * A fresh hybrid deployment polls adaptively until it has seen webhooks arrive: run a few jobs
 * and wait for the worker's webhook health (its Redis record) to say `healthy`. Returns their ids.
 */
async function learnWebhooks(stack: Stack, options: DetectionOptions): Promise<Set<string>> {
  const startedAt = performance.now();
  const client = createJobsClient(stack.apiUrl, stack.apiKey, LEARNING_JOBS);
  const body = (i: number) =>
    JSON.stringify({ model: 'o3', input: `Learning ${i}: write a long novel about otters in space.`, metadata: { sim_duration_ms: String(options.simulatedMs) } });
  const ids = await Promise.all(Array.from({ length: LEARNING_JOBS }, (_, i) => client.submit(body(i)).then((r) => r.jobId)));
  client.close();
  if (ids.some((id) => id === undefined)) throw new Error('a learning job was not accepted');
  await waitForTerminal(stack, LEARNING_JOBS, options.simulatedMs * options.timeScale + 30_000);
  const deadline = performance.now() + 30_000;
  while ((await stack.redis.hget(webhookHealthKey(stack.prefix), 'state')) !== 'healthy') {
    if (performance.now() > deadline) {
      const record = await stack.redis.hgetall(webhookHealthKey(stack.prefix));
      const { rows } = await stack.pool.query<{ status: string; n: number }>('select status::text, count(*)::int n from webhook_inbox group by 1');
      throw new Error(`the worker did not learn that webhooks arrive within 30 s of its learning jobs: health ${JSON.stringify(record)}, inbox ${JSON.stringify(rows)}`);
    }
    await sleep(100);
  }
  options.log(`    learned that webhooks arrive from ${LEARNING_JOBS} jobs in ${fmt((performance.now() - startedAt) / 1000, 1)} s (not counted below)`);
  return new Set(ids as string[]);
}

/** Open loop: job i is sent at start + i × spreadMs / jobs, whatever happened to the others. */
async function submitPaced(stack: Stack, jobs: number, simulatedMs: number, spreadMs: number): Promise<number> {
  const client = createJobsClient(stack.apiUrl, stack.apiKey, 32);
  const spacing = spreadMs / jobs;
  const start = performance.now();
  const sends: Promise<boolean>[] = [];
  for (let i = 0; i < jobs; i++) {
    await sleep(Math.max(0, start + i * spacing - performance.now()));
    const body = JSON.stringify({ model: 'o3', input: `Detection ${i}: write a long novel about otters in space.`, metadata: { sim_duration_ms: String(simulatedMs) } });
    sends.push(
      client.submit(body).then(
        (r) => r.jobId !== undefined,
        () => false,
      ),
    );
  }
  const accepted = (await Promise.all(sends)).filter(Boolean).length;
  client.close();
  if (accepted < jobs) throw new Error(`only ${accepted}/${jobs} detection jobs were accepted`);
  return accepted;
}

async function waitForTerminal(stack: Stack, jobs: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const { rows } = await stack.pool.query<{ n: number }>('select count(*)::int as n from jobs where status = any($1::job_status[])', [TERMINAL]);
    if (rows[0]!.n >= jobs) return;
    const dead = deadChild(stack);
    if (dead) throw new Error(`${dead.name} exited (${dead.exitCode()}) during the run\n${dead.output()}`);
    if (performance.now() > deadline) throw new Error(`only ${rows[0]!.n}/${jobs} jobs terminal after ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function collect(stack: Stack, mode: DetectionMode, exclude: ReadonlySet<string>): Promise<ModeResult> {
  const stats = await simStats(stack.simUrl);
  const { rows: all } = await stack.pool.query<{ id: string; response_id: string | null; status: string; finished_ms: number | null }>(
    'select id, response_id, status, (extract(epoch from finished_at) * 1000)::float8 as finished_ms from jobs',
  );
  const rows = all.filter((j) => !exclude.has(j.id));
  const { rows: sources } = await stack.pool.query<{ job_id: string; source: string }>(
    'select distinct on (job_id) job_id, source::text from job_events where to_status = any($1::job_status[]) order by job_id, id',
    [TERMINAL],
  );
  const sourceOf = new Map(sources.map((s) => [s.job_id, s.source]));
  const bySource = new Map<string, number[]>();
  const calls: number[] = [];
  const detection: number[] = [];
  const byStatus: Record<string, number> = {};
  for (const job of rows) {
    byStatus[job.status] = (byStatus[job.status] ?? 0) + 1;
    calls.push(providerCalls(stats, job.id, job.response_id));
    const finishedAt = providerTerminalMs(stats, job.response_id);
    if (finishedAt === undefined || job.finished_ms === null) continue;
    detection.push(job.finished_ms - finishedAt);
    const source = sourceOf.get(job.id) ?? 'unknown';
    bySource.set(source, [...(bySource.get(source) ?? []), job.finished_ms - finishedAt]);
  }
  return {
    mode,
    terminal: rows.filter((j) => TERMINAL.includes(j.status)).length,
    byStatus,
    calls: summarize(calls),
    detection: summarize(detection),
    detectedBy: Object.fromEntries([...bySource].map(([source, samples]) => [source, samples.length])),
    detectionBySource: Object.fromEntries([...bySource].map(([source, samples]) => [source, summarize(samples)])),
  };
}

function detectionRows(results: ModeResult[], guide: GuidePollingResult, simulatedMs: number, timeScale: number): string[][] {
  const rows: string[][] = [];
  for (const r of results) {
    const calls = `${fmt(r.calls.mean, 2)} (${r.calls.min}-${r.calls.max})`;
    if (r.mode === 'webhook' || r.mode === 'hybrid')
      rows.push([
        `detection ${r.mode === 'hybrid' ? 'hybrid, webhooks arriving' : 'webhook'}: provider calls/job`,
        calls,
        `${fmt(TARGET_WEBHOOK_CALLS, 2)}`,
        verdict(r.calls.min === TARGET_WEBHOOK_CALLS && r.calls.max === TARGET_WEBHOOK_CALLS),
      ]);
    else if (r.mode === 'hybrid-dropped') {
      rows.push([
        `detection hybrid, webhooks all dropped: provider calls/job (${fmt(simulatedMs / 60_000, 0)}-min job)`,
        calls,
        `<= ${TARGET_POLL_CALLS}, all terminal`,
        verdict(r.calls.max <= TARGET_POLL_CALLS && r.terminal === r.calls.count),
      ]);
      rows.push(['detection hybrid, webhooks all dropped: webhook health at the end', r.webhookHealth ?? 'n/a', '', '']);
    } else if (r.mode === 'poll') {
      // Scaled polls drift later (per-poll work is real time): the schedule's own count must pass too.
      const planned = scheduledCalls(simulatedMs);
      rows.push([
        `detection poll: provider calls/job (${fmt(simulatedMs / 60_000, 0)}-min job)`,
        `${calls}; schedule ${planned}`,
        `<= ${TARGET_POLL_CALLS}`,
        verdict(r.calls.max <= TARGET_POLL_CALLS && planned <= TARGET_POLL_CALLS),
      ]);
    } else rows.push([`detection ${r.mode}: provider calls/job`, calls, '', '']);
    // Poll-detected latency is mostly the wait for the next poll, which is scaled (x timeScale).
    const polled = r.mode === 'poll' || r.mode === 'hybrid-dropped';
    const unit = polled ? `ms, wait x${timeScale}` : 'ms';
    rows.push([`detection ${r.mode}: latency p50 (${unit})`, fmt(r.detection.p50), '', '']);
    const p99Target = polled ? ['', ''] : [`<= ${TARGET_DETECTION_P99_MS}`, verdict(r.detection.p99 <= TARGET_DETECTION_P99_MS && r.detection.count === r.terminal)];
    rows.push([`detection ${r.mode}: latency p99 (${unit})`, fmt(r.detection.p99), ...p99Target]);
  }
  rows.push([`detection guide 2 s loop: provider calls/job`, `${fmt(guide.calls.mean, 2)} (${guide.calls.min}-${guide.calls.max})`, '', '']);
  rows.push([`detection guide 2 s loop: latency p50 (ms, wait x${timeScale})`, fmt(guide.detection.p50), '', '']);
  rows.push([`detection guide 2 s loop: latency p99 (ms, wait x${timeScale})`, fmt(guide.detection.p99), '', '']);
  const webhook = results.find((r) => r.mode === 'webhook');
  if (webhook) rows.push(['detection guide loop / webhook mode (calls)', `${fmt(guide.calls.mean / webhook.calls.mean, 1)}x`, '', '']);
  return rows;
}
