/**
 * `npm run bench`: measure Longhaul against its targets and against bare BullMQ, in one run.
 *
 *   --jobs N          jobs for the end-to-end and baseline runs (default 2000)
 *   --rate R          submit rate of the latency run, req/s (default 200)
 *   --duration S      length of the latency run, seconds (default 10)
 *   --only X          e2e | system | latency | baseline | detection | callbacks | streaming | responses | memory | cache
 *                     (default: all ten; system: what `npm start` runs, defaults, webhooks and info logs;
 *                     responses: the latency /v1/responses adds over the simulator, with the openai SDK;
 *                     memory: Redis bytes and worker/API RSS with many jobs waiting at the provider;
 *                     cache: response caching's hit latency and provider calls saved), fairness
 *                     (two tenants, one at 10x the other's rate: the small one's submit→provider latency
 *                     with the fair queue and with plain FIFO), retention (the POST /v1/jobs p99 the
 *                     sweeper's retention erasing adds while it works through a million old jobs), or ops: the
 *                     CPU cost of each operation a job goes through (a diagnostic, with --iterations N,
 *                     default 2000), or toolloop: tool-call loops in webhook mode, answered by the client's
 *                     callback receiver and by a tool executor, beside the client's own loop of chained jobs
 *                     (provider calls per turn, Longhaul's added latency per turn, target p99 <= 100 ms),
 *                     or pipeline: 3-step pipeline runs in webhook mode beside the same jobs chained by the
 *                     client (step handoff latency, target p99 <= 100 ms; runs/s; provider calls per step job)
 *                     or batch: 10,000 processing: "batch" jobs through the simulator's Batch API beside
 *                     background jobs (provider calls per job <= 0.01, batch completion -> every job
 *                     terminal <= 10 s, Postgres transactions per job, the cost saved)
 *                     or eval: an eval beside a production tenant's traffic (see --eval-items)
 *                     or telemetry: CPU per job of the API and worker with OpenTelemetry off (OTEL_* unset)
 *                     and exporting every span over OTLP/HTTP to a local sink, in alternating rounds
 *   --concurrency C   client requests / Queue.add calls in flight, closed loop (default 64)
 *   --worker K=V      override a worker environment knob (repeatable), e.g. --worker POLL_INITIAL_MS=100
 *   --latency-worker  with | without | both: run the latency scenario while the worker runs on the
 *                     same cores processing what is submitted, with the worker stopped (the API
 *                     alone), or both in that order (default both)
 *   --cpu-prof        write V8 CPU profiles of the children (sim, api, worker) to a temp directory
 *   --detection-jobs N      jobs per completion mode in the detection scenario (default 100)
 *   --detection-scale S     SIM_TIME_SCALE of the detection scenario (default 0.01)
 *   --detection-minutes M   simulated length of each detection job (default 5)
 *   --detection-spread S    seconds over which each mode's creates are spread (default 10)
 *   --guide-jobs N          responses followed by the guide's 2 s loop (default 10)
 *   --callback-jobs N       jobs per phase of the callbacks scenario (default 50)
 *   --callback-endpoints E  webhook endpoints of its tenant (default 100)
 *   --callback-rate R       jobs per second of its paced phase (default 5); 0: the burst phase only
 *   --callback-concurrency C  the worker's CALLBACK_CONCURRENCY for it (default 100)
 *   --callback-workers W    worker processes for it (default 1)
 *   --fairness-rate R       the small tenant's jobs per second in the fairness scenario (default 3)
 *   --fairness-ratio K      the big tenant's rate as a multiple of it (default 10)
 *   --fairness-duration S   seconds of each phase (default 20)
 *   --fairness-orders L     fair,fifo (default both; fifo = fairness off)
 *   --memory-counts L       waiting jobs at which the memory scenario measures, comma-separated
 *                           (default 1000,10000, about 2 minutes; 100000 adds about 10 minutes of submits)
 *   --responses-creates N   sequential synchronous creates per side and round of the responses scenario (the
 *                           OpenAI-compatible /v1/responses against the simulator, with the openai SDK; default 100)
 *   --responses-concurrency C  its requests in flight in the concurrent phases (default 20)
 *   --responses-rounds R    its rounds, samples pooled (default 3)
 *   --cache-rate R          cacheable submissions per second of the cache scenario (response caching: 30 % repeat
 *                           an earlier completed request; default 40)
 *   --cache-background-rate R  ordinary jobs per second beside them (default 20)
 *   --cache-duration S      seconds of each of its phases, with and without cache (default 10)
 *   --cache-rounds R        its rounds of both phases, the order alternating (default 2)
 *   --retention-rows N      old finished jobs of the retention scenario's swept tenant (default 1000000)
 *   --retention-rate R      POST /v1/jobs per second beside the sweeping (default 200)
 *   --retention-duration S  seconds of each of its phases, idle and sweeping (default 15)
 *   --retention-rounds R    its rounds of both phases, the order alternating (default 2)
 *   --toolloop-jobs N       loops per mode of the toolloop scenario (client, executor, baseline; default 50)
 *   --toolloop-turns T      turns (responses) per loop (default 5: four with a function call, then the answer)
 *   --toolloop-concurrency C  loops in flight at once (default 10)
 *   --pipeline-runs N       runs per mode of the pipeline scenario (pipeline, client-chained baseline; default 100)
 *   --pipeline-concurrency C  runs in flight at once (default 10; a smaller phase also runs them one at a time)
 *   --batch-jobs N          processing: "batch" jobs of the batch scenario (default 10000)
 *   --batch-baseline-jobs N background jobs it is compared with in the same run (default 1000)
 *   --eval-items N          dataset items of the eval scenario (an eval of N items × 2 prompt versions, graded exact,
 *                           beside a production tenant's open-loop jobs: their submit→provider p50/p95/p99 alone and
 *                           while the eval runs, target within 1.5×; the eval's results/s, CPU and transactions per
 *                           result; default 1000)
 *   --eval-concurrency C    the eval's concurrency (results in flight; default 32)
 *   --eval-rate R           the production tenant's jobs per second (default 5)
 *   --eval-duration S       seconds of each unloaded baseline phase, before and after the eval (default 30; the loaded
 *                           phase lasts as long as the eval)
 *   --eval-scale S          SIM_TIME_SCALE of the eval scenario (default 0.1: answers of 100 ms at low effort, 400 ms at high)
 *   --eval-tenant T         separate (production is another tenant, default) or shared (the eval's own tenant)
 *
 * A measurement, not a test: exits 0 whether or not targets are met (PASS/MISS is printed), and
 * non-zero only when the benchmark itself could not run.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runBaseline, type BaselineResult } from './baseline.ts';
import { runCache } from './cache.ts';
import { runCallbacks } from './callbacks.ts';
import { runDetection } from './detection.ts';
import { runFairness } from './fairness.ts';
import { runStreaming } from './streaming.ts';
import { runToolLoop } from './tool-loop.ts';
import { runPipeline } from './pipeline.ts';
import { runBatch } from './batch.ts';
import { runEval } from './eval.ts';
import { runTelemetryBench } from './telemetry.ts';
import { runSystem } from './system.ts';
import { runE2e, type E2eResult } from './e2e.ts';
import { runLatency, type LatencyResult } from './latency.ts';
import { runMemory } from './memory.ts';
import { runOps } from './ops.ts';
import { runResponses } from './responses.ts';
import { runRetention } from './retention.ts';
import { runPendingCleanups, startStack } from './stack.ts';
import { formatUsage, loadLine, snapshotUsage, usageBetween } from './usage.ts';

const TARGET_JOBS_PER_SECOND = 300;
const TARGET_SUBMIT_P99_MS = 25;
const TARGET_RATE = 200;

/** Worker knobs for the run (the defaults users get are untouched: these are env vars of the child only). */
const WORKER_KNOBS: Record<string, string> = {
  SUBMIT_CONCURRENCY: '50',
  POLL_CONCURRENCY: '50',
  // Instant jobs: the first poll 50 ms after the create instead of the default 1 s.
  POLL_INITIAL_MS: '50',
};

const SCENARIOS = [
  'e2e',
  'system',
  'latency',
  'baseline',
  'detection',
  'callbacks',
  'streaming',
  'responses',
  'cache',
  'fairness',
  'retention',
  'memory',
  'ops',
  'toolloop',
  'pipeline',
  'batch',
  'eval',
  'telemetry',
] as const;
const DEFAULT_SCENARIOS: Scenario[] = ['e2e', 'system', 'latency', 'baseline', 'detection', 'callbacks', 'streaming', 'responses', 'cache', 'memory'];
type Scenario = (typeof SCENARIOS)[number];
type LatencyVariant = 'with' | 'without';
const VARIANT_LABEL: Record<LatencyVariant, string> = { with: 'worker running', without: 'worker stopped' };

function parseCli(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      jobs: { type: 'string', default: '2000' },
      rate: { type: 'string', default: String(TARGET_RATE) },
      duration: { type: 'string', default: '10' },
      only: { type: 'string' },
      concurrency: { type: 'string', default: '64' },
      worker: { type: 'string', multiple: true, default: [] },
      'cpu-prof': { type: 'boolean', default: false },
      'latency-worker': { type: 'string', default: 'both' },
      iterations: { type: 'string', default: '2000' },
      'detection-jobs': { type: 'string', default: '100' },
      'detection-scale': { type: 'string', default: '0.01' },
      'detection-minutes': { type: 'string', default: '5' },
      'detection-spread': { type: 'string', default: '10' },
      'guide-jobs': { type: 'string', default: '10' },
      'callback-jobs': { type: 'string', default: '50' },
      'callback-endpoints': { type: 'string', default: '100' },
      'callback-rate': { type: 'string', default: '5' },
      'callback-concurrency': { type: 'string', default: '100' },
      'callback-workers': { type: 'string', default: '1' },
      'fairness-rate': { type: 'string', default: '3' },
      'fairness-ratio': { type: 'string', default: '10' },
      'fairness-duration': { type: 'string', default: '20' },
      'fairness-orders': { type: 'string', default: 'fair,fifo' },
      'memory-counts': { type: 'string', default: '1000,10000' },
      'responses-creates': { type: 'string', default: '100' },
      'responses-concurrency': { type: 'string', default: '20' },
      'responses-rounds': { type: 'string', default: '3' },
      'cache-rate': { type: 'string', default: '40' },
      'cache-background-rate': { type: 'string', default: '20' },
      'cache-duration': { type: 'string', default: '10' },
      'cache-rounds': { type: 'string', default: '2' },
      'retention-rows': { type: 'string', default: '1000000' },
      'retention-rate': { type: 'string', default: '200' },
      'retention-duration': { type: 'string', default: '15' },
      'retention-rounds': { type: 'string', default: '2' },
      'toolloop-jobs': { type: 'string', default: '50' },
      'toolloop-turns': { type: 'string', default: '5' },
      'toolloop-concurrency': { type: 'string', default: '10' },
      'pipeline-runs': { type: 'string', default: '100' },
      'pipeline-concurrency': { type: 'string', default: '10' },
      'batch-jobs': { type: 'string', default: '10000' },
      'batch-baseline-jobs': { type: 'string', default: '1000' },
      'eval-items': { type: 'string', default: '1000' },
      'eval-concurrency': { type: 'string', default: '32' },
      'eval-rate': { type: 'string', default: '5' },
      'eval-duration': { type: 'string', default: '30' },
      'eval-scale': { type: 'string', default: '0.1' },
      'eval-tenant': { type: 'string', default: 'separate' },
    },
    strict: true,
  });
  const positive = (name: string, raw: string) => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got '${raw}'`);
    return n;
  };
  if (values.only !== undefined && !SCENARIOS.includes(values.only as Scenario)) throw new Error(`--only must be one of ${SCENARIOS.join(', ')}`);
  const latencyWorker = values['latency-worker'];
  if (!['with', 'without', 'both'].includes(latencyWorker)) throw new Error(`--latency-worker must be with, without or both`);
  const overrides: Record<string, string> = {};
  for (const pair of values.worker) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`--worker expects KEY=VALUE, got '${pair}'`);
    overrides[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const callbackRate = Number(values['callback-rate']);
  if (!Number.isFinite(callbackRate) || callbackRate < 0) throw new Error(`--callback-rate must be 0 or a positive number`);
  const cacheBackgroundRate = Number(values['cache-background-rate']);
  if (!Number.isFinite(cacheBackgroundRate) || cacheBackgroundRate < 0) throw new Error(`--cache-background-rate must be 0 or a positive number`);
  return {
    jobs: Math.round(positive('jobs', values.jobs)),
    rate: positive('rate', values.rate),
    durationS: positive('duration', values.duration),
    concurrency: Math.round(positive('concurrency', values.concurrency)),
    scenarios: values.only ? [values.only as Scenario] : DEFAULT_SCENARIOS,
    iterations: Math.round(positive('iterations', values.iterations)),
    knobs: { ...WORKER_KNOBS, ...overrides },
    overrides,
    detection: {
      jobs: Math.round(positive('detection-jobs', values['detection-jobs'])),
      timeScale: positive('detection-scale', values['detection-scale']),
      simulatedMs: positive('detection-minutes', values['detection-minutes']) * 60_000,
      spreadMs: positive('detection-spread', values['detection-spread']) * 1000,
      guideJobs: Math.round(positive('guide-jobs', values['guide-jobs'])),
    },
    callbacks: {
      jobs: Math.round(positive('callback-jobs', values['callback-jobs'])),
      endpoints: Math.round(positive('callback-endpoints', values['callback-endpoints'])),
      rate: callbackRate,
      concurrency: Math.round(positive('callback-concurrency', values['callback-concurrency'])),
      workers: Math.round(positive('callback-workers', values['callback-workers'])),
    },
    fairness: {
      smallRate: positive('fairness-rate', values['fairness-rate']),
      ratio: positive('fairness-ratio', values['fairness-ratio']),
      durationS: positive('fairness-duration', values['fairness-duration']),
      orders: values['fairness-orders'].split(',').map((o) => {
        if (o !== 'fair' && o !== 'fifo') throw new Error(`--fairness-orders lists fair and/or fifo, got '${o}'`);
        return o;
      }),
    },
    responses: {
      creates: Math.round(positive('responses-creates', values['responses-creates'])),
      concurrency: Math.round(positive('responses-concurrency', values['responses-concurrency'])),
      rounds: Math.round(positive('responses-rounds', values['responses-rounds'])),
    },
    cache: {
      rate: positive('cache-rate', values['cache-rate']),
      backgroundRate: cacheBackgroundRate,
      durationS: positive('cache-duration', values['cache-duration']),
      rounds: Math.round(positive('cache-rounds', values['cache-rounds'])),
    },
    retention: {
      rows: Math.round(positive('retention-rows', values['retention-rows'])),
      rate: positive('retention-rate', values['retention-rate']),
      durationS: positive('retention-duration', values['retention-duration']),
      rounds: Math.round(positive('retention-rounds', values['retention-rounds'])),
    },
    toolLoop: {
      jobs: Math.round(positive('toolloop-jobs', values['toolloop-jobs'])),
      turns: Math.round(positive('toolloop-turns', values['toolloop-turns'])),
      concurrency: Math.round(positive('toolloop-concurrency', values['toolloop-concurrency'])),
    },
    batch: {
      jobs: Math.round(positive('batch-jobs', values['batch-jobs'])),
      baselineJobs: Math.round(positive('batch-baseline-jobs', values['batch-baseline-jobs'])),
    },
    evals: {
      items: Math.round(positive('eval-items', values['eval-items'])),
      concurrency: Math.round(positive('eval-concurrency', values['eval-concurrency'])),
      rate: positive('eval-rate', values['eval-rate']),
      durationS: positive('eval-duration', values['eval-duration']),
      timeScale: positive('eval-scale', values['eval-scale']),
      tenant: ((t: string): 'separate' | 'shared' => {
        if (t !== 'separate' && t !== 'shared') throw new Error(`--eval-tenant must be separate or shared, got '${t}'`);
        return t;
      })(values['eval-tenant']),
    },
    pipeline: {
      runs: Math.round(positive('pipeline-runs', values['pipeline-runs'])),
      concurrency: Math.round(positive('pipeline-concurrency', values['pipeline-concurrency'])),
    },
    memoryCounts: values['memory-counts'].split(',').map((c) => Math.round(positive('memory-counts', c))),
    cpuProf: values['cpu-prof'],
    latencyVariants: (latencyWorker === 'both' ? ['with', 'without'] : [latencyWorker]) as LatencyVariant[],
  };
}

const log = (line: string) => console.log(line);
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  rows.forEach((row, i) => {
    log(
      row
        .map((cell, col) => cell.padEnd(widths[col]!))
        .join('  ')
        .trimEnd(),
    );
    if (i === 0) log(widths.map((w) => '-'.repeat(w)).join('  '));
  });
}

async function main(): Promise<void> {
  const cli = parseCli(process.argv.slice(2));
  const want = (s: Scenario) => cli.scenarios.includes(s);
  log(`longhaul bench: node ${process.version}, scenarios: ${cli.scenarios.join(', ')}`);
  log(
    `  jobs=${cli.jobs} client-concurrency=${cli.concurrency} rate=${cli.rate}/s duration=${cli.durationS}s; load average ${loadLine()} (other work on this machine skews results)`,
  );

  let baseline: BaselineResult | undefined;
  let e2e: E2eResult | undefined;
  const latency = new Map<LatencyVariant, LatencyResult>();

  if (want('ops')) {
    log(`ops: CPU per operation, ${cli.iterations} iterations each, 10 in flight`);
    const costs = await runOps(cli.iterations, log);
    log('');
    printTable([['operation', 'CPU here (µs)', 'server CPU (µs)', 'wall (µs)'], ...costs.map((c) => [c.name, fmt(c.clientUs, 0), fmt(c.serverUs, 0), fmt(c.wallUs, 0)])]);
    return;
  }

  if (want('baseline')) {
    const workerConcurrency = Number(cli.knobs.SUBMIT_CONCURRENCY ?? 50);
    log(`baseline: bare BullMQ, ${cli.jobs} jobs, ${cli.concurrency} concurrent Queue.add (no addBulk), no-op Worker process, concurrency ${workerConcurrency}`);
    baseline = await runBaseline({ jobs: cli.jobs, concurrency: cli.concurrency, workerConcurrency });
    log(`  ${baseline.completed} completed in ${fmt(baseline.seconds, 2)} s (adds alone ${fmt(baseline.addPerSecond, 0)}/s)`);
    log(`  CPU ms per job: worker ${fmt(baseline.workerCpuMsPerJob, 2)}, producer ${fmt(baseline.producerCpuMsPerJob, 2)}`);
  }

  const profileDir = cli.cpuProf ? mkdtempSync(join(tmpdir(), 'longhaul-bench-prof-')) : undefined;
  const nodeArgs = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  if (want('e2e') || want('latency')) {
    log(
      `stack: sim, api, worker as child processes; worker knobs: ${Object.entries(cli.knobs)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
    const stack = await startStack({ workerEnv: cli.knobs, nodeArgs });
    log(`  database ${stack.database.name}, queue prefix ${stack.prefix}, api ${stack.apiUrl}`);
    try {
      if (want('e2e')) {
        log(`e2e: ${cli.jobs} instant jobs over HTTP, ${cli.concurrency} in flight`);
        const before = await snapshotUsage(stack);
        e2e = await runE2e(stack, { jobs: cli.jobs, concurrency: cli.concurrency, log });
        const usage = usageBetween(before, await snapshotUsage(stack, true), Math.max(1, e2e.terminal));
        log(
          `  ${e2e.terminal}/${e2e.submitted} terminal in ${fmt(e2e.seconds, 2)} s; statuses ${JSON.stringify(e2e.byStatus)}; submit phase ${fmt(e2e.submitPerSecond, 0)} jobs/s`,
        );
        if (e2e.submitErrors) log(`  ${e2e.submitErrors} submits failed, first: ${e2e.firstSubmitError}`);
        if (e2e.stalled) log('  STALLED: no job finished for 30 s; throughput counts the terminal jobs only');
        formatUsage(usage, 'job').forEach(log);
      }
      for (const variant of want('latency') ? cli.latencyVariants : []) {
        if (variant === 'without') await stack.stopWorker();
        log(`latency (${VARIANT_LABEL[variant]}): open loop ${cli.rate} req/s for ${cli.durationS} s`);
        const before = await snapshotUsage(stack);
        const result = await runLatency(stack, { rate: cli.rate, durationS: cli.durationS });
        const usage = usageBetween(before, await snapshotUsage(stack, true), Math.max(1, result.ok));
        latency.set(variant, result);
        log(`  ${result.ok}/${result.sent} accepted, client send lag p99 ${fmt(result.sendLagP99, 2)} ms`);
        if (result.errors) log(`  ${result.errors} submits failed, first: ${result.firstError}`);
        formatUsage(usage, 'request').forEach(log);
      }
    } finally {
      await stack.stop();
    }
    if (profileDir) log(`cpu profiles (pids ${stack.children.map((c) => `${c.name}=${c.pid}`).join(' ')}): ${profileDir}`);
  }

  const extraRows: string[][] = [];
  if (want('system')) extraRows.push(...(await runSystem({ jobs: cli.jobs, concurrency: cli.concurrency, workerOverrides: cli.overrides, nodeArgs, log })).rows);
  if (want('detection')) extraRows.push(...(await runDetection({ ...cli.detection, workerOverrides: cli.overrides, nodeArgs, log })).rows);
  if (want('callbacks')) extraRows.push(...(await runCallbacks({ ...cli.callbacks, workerOverrides: cli.overrides, nodeArgs, log })).rows);
  if (want('fairness')) extraRows.push(...(await runFairness({ ...cli.fairness, submitConcurrency: 2, createMs: 100, nodeArgs, log })).rows);
  if (want('responses')) extraRows.push(...(await runResponses({ ...cli.responses, workerOverrides: cli.overrides, nodeArgs, log })).rows);
  if (want('cache')) extraRows.push(...(await runCache({ ...cli.cache, workerOverrides: cli.overrides, nodeArgs, log })).rows);
  if (want('retention')) extraRows.push(...(await runRetention({ ...cli.retention, workerOverrides: cli.overrides, nodeArgs, log })).rows);
  if (want('toolloop')) extraRows.push(...(await runToolLoop({ ...cli.toolLoop, workerOverrides: cli.overrides, nodeArgs, log })).rows);
  if (want('pipeline')) extraRows.push(...(await runPipeline({ ...cli.pipeline, workerOverrides: cli.overrides, nodeArgs, log })).rows);
  if (want('batch')) extraRows.push(...(await runBatch({ ...cli.batch, workerOverrides: cli.overrides, nodeArgs, log })).rows);
  if (want('eval')) extraRows.push(...(await runEval({ ...cli.evals, workerOverrides: cli.overrides, nodeArgs, log })).rows);
  if (want('telemetry')) extraRows.push(...(await runTelemetryBench({ jobs: cli.jobs, concurrency: cli.concurrency, workerOverrides: cli.overrides, nodeArgs, log })).rows);
  if (want('memory')) extraRows.push(...(await runMemory({ counts: cli.memoryCounts, concurrency: cli.concurrency, workerOverrides: cli.overrides, nodeArgs, log })).rows);
  if (want('streaming')) {
    const watchers = 1000;
    const jobs = 20;
    log(`streaming: ${jobs} stream: true jobs of 20 s, ${watchers} SSE watchers on one API process, each event timed against a direct provider stream`);
    const s = await runStreaming({ jobs, watchers, durationMs: 20_000, nodeArgs });
    log(`  ${s.watchersCompleted}/${s.watchersConnected} watchers received every event (${s.eventsPerWatcher} provider events each); ${s.addedLatency.count} live samples`);
    extraRows.push(
      ['streaming: concurrent watchers on one API', `${s.watchersCompleted}/${s.watchersConnected}`, `>= ${watchers}`, verdict(s.watchersCompleted >= watchers)],
      ['streaming: added latency per event p50 (ms)', fmt(s.addedLatency.p50, 2), '', ''],
      ['streaming: added latency per event p99 (ms)', fmt(s.addedLatency.p99, 2), '<= 30', verdict(s.addedLatency.p99 <= 30)],
    );
  }
  if (profileDir && (want('detection') || want('callbacks') || want('responses') || want('cache') || want('toolloop') || want('pipeline') || want('eval')))
    log(`cpu profiles: ${profileDir} (file names carry the pid)`);

  const rows: string[][] = [['metric', 'value', 'target', 'result']];
  if (e2e) {
    rows.push(['e2e throughput (jobs/s)', fmt(e2e.jobsPerSecond), `>= ${TARGET_JOBS_PER_SECOND}`, verdict(e2e.jobsPerSecond >= TARGET_JOBS_PER_SECOND)]);
    rows.push(['e2e time-to-terminal p50 (ms)', fmt(e2e.timeToTerminal.p50, 0), '', '']);
    rows.push(['e2e time-to-terminal p99 (ms)', fmt(e2e.timeToTerminal.p99, 0), '', '']);
  }
  for (const [variant, result] of latency) {
    const atTarget = cli.rate >= TARGET_RATE;
    const s = result.latency;
    const label = `submit latency, ${VARIANT_LABEL[variant]}`;
    rows.push([`${label}: p50 (ms)`, fmt(s.p50, 2), '', '']);
    rows.push([`${label}: p90 (ms)`, fmt(s.p90, 2), '', '']);
    rows.push([
      `${label}: p99 (ms)`,
      fmt(s.p99, 2),
      `<= ${TARGET_SUBMIT_P99_MS} @ ${TARGET_RATE}/s`,
      atTarget ? verdict(s.p99 <= TARGET_SUBMIT_P99_MS && result.errors === 0) : 'n/a (rate)',
    ]);
    rows.push([`${label}: max (ms)`, fmt(s.max, 2), '', '']);
    rows.push([`${label}: achieved rate (req/s)`, fmt(result.achievedRate), `${cli.rate}`, '']);
  }
  if (baseline) rows.push(['bare BullMQ baseline (jobs/s)', fmt(baseline.jobsPerSecond), '', '']);
  if (e2e && baseline) rows.push(['e2e / bare BullMQ', `${fmt(e2e.jobsPerSecond / baseline.jobsPerSecond, 3)}x`, '', '']);
  rows.push(...extraRows);
  log(`load average at the end ${loadLine()}`);
  log('');
  printTable(rows);
}

// Ctrl-C reaches this process twice (from the terminal's process group and forwarded by
// scripts/run-app.mjs): only a signal at least a second after the first forces the exit.
let interruptedAt: number | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interruptedAt !== undefined) {
      if (Date.now() - interruptedAt > 1_000) process.exit(130);
      return;
    }
    interruptedAt = Date.now();
    console.error(`${signal}: cleaning up (again to force)`);
    void runPendingCleanups().finally(() => process.exit(130));
  });
}

try {
  await main();
  process.exit(0);
} catch (err) {
  // After Ctrl-C the scenario fails as its services go away: the signal handler reports and exits.
  if (interruptedAt === undefined) console.error('bench failed:', err instanceof Error ? err.message : err);
  await runPendingCleanups();
  process.exit(interruptedAt === undefined ? 1 : 130);
}
