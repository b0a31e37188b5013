/**
 * Scenario: batch jobs (issue 17). `jobs` jobs with `processing: "batch"` (default 10,000) are
 * submitted to one API, collected by the worker into Batch API batches (one tenant, one model:
 * one batch up to BATCH_MAX_JOBS), sent to the simulator's Batch API, followed by its signed
 * `batch.completed` webhook, and reconciled from the output file. Beside it, in the same run, a
 * baseline of `baselineJobs` ordinary background jobs of the same body in webhook mode: what
 * the same work costs without batching.
 *
 * Measured: provider calls per job (every /v1 request the simulator logged in the phase, over
 * the phase's jobs; target ≤ 0.01), the time from the batch's completion to every job terminal
 * (target ≤ 10 s; from the provider's `completed_at`, whole seconds, and from the moment
 * Longhaul recorded it completed, exact), Postgres transactions per job over the reconcile
 * (from the batch recorded completed to every job terminal; target ≤ 1), the cost and what it
 * saved in `GET /v1/usage`, and CPU per job per process over the whole phase.
 */
import { runPool, sleep } from './pool.ts';
import { newWebhookSecret, patchSimConfig, simStats, totalCalls } from './sim-control.ts';
import { startStack, type Stack } from './stack.ts';
import { formatUsage, snapshotUsage, usageBetween, type UsageReport } from './usage.ts';

export interface BatchOptions {
  jobs: number;
  baselineJobs: number;
  workerOverrides: Record<string, string>;
  nodeArgs?: string[];
  log: (line: string) => void;
}

const MODEL = 'gpt-4.1';
/** Submissions in flight at once. */
const SUBMIT_CONCURRENCY = 32;
/** The simulator takes this (simulated) long over a batch: 6 s of real time at SIM_TIME_SCALE 0.01. */
const BATCH_DURATION_MS = 600_000;
const TARGETS = { callsPerJob: 0.01, completionToTerminalMs: 10_000, reconcileTransactionsPerJob: 1 };
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

interface Phase {
  jobs: number;
  completed: number;
  wallMs: number;
  calls: number;
  usage: UsageReport;
  /** From every job accepted to every job terminal: collecting, sending, following and reconciling. */
  afterAcceptance: UsageReport;
}

export async function runBatch(options: BatchOptions): Promise<{ rows: string[][] }> {
  const { log } = options;
  const secret = newWebhookSecret();
  const workerEnv = {
    COMPLETION_MODE: 'webhook',
    BATCH_MAX_WAIT_SECONDS: '2',
    BATCH_TICK_MS: '200',
    BATCH_POLL_SECONDS: '60',
    ...options.workerOverrides,
  };
  const stack = await startStack({
    kind: 'batch',
    workerEnv,
    simEnv: { SIM_TIME_SCALE: '0.01', SIM_BATCH_DURATION_MS: String(BATCH_DURATION_MS) },
    apiEnv: { OPENAI_WEBHOOK_SECRET: secret },
    nodeArgs: options.nodeArgs,
  });
  try {
    await patchSimConfig(stack.simUrl, { webhook_urls: [`${stack.apiUrl}/webhooks/openai`], webhook_secret: secret });
    log(
      `batch: ${options.jobs} processing: "batch" jobs (${MODEL}; the simulator takes ${BATCH_DURATION_MS / 100 / 1000} s over a batch) beside ${options.baselineJobs} background jobs of the same body; webhook mode (${Object.entries(
        workerEnv,
      )
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')})`,
    );

    // Baseline first: ordinary background jobs (instant at the simulator).
    const baseline = await phase(stack, options.baselineJobs, 'background', log);
    const batch = await phase(stack, options.jobs, 'batch', log);

    // The batch's own timeline: when the provider completed it, when Longhaul recorded that, when its last job ended.
    const { rows: batches } = await stack.pool.query<{ id: string; provider_batch_id: string; job_count: number; completed_ms: number | null; last_job_ms: number | null }>(
      `select b.id, b.provider_batch_id, b.job_count,
              (select extract(epoch from at) * 1000 from batch_events e where e.batch_id = b.id and e.to_status = 'completed' limit 1)::float8 as completed_ms,
              (select extract(epoch from max(finished_at)) * 1000 from jobs j where j.batch_id = b.id)::float8 as last_job_ms
         from batches b order by b.created_at`,
    );
    let providerToTerminal = 0;
    let learnedToTerminal = 0;
    for (const b of batches) {
      const seen = (await (await fetch(`${stack.simUrl}/v1/batches/${b.provider_batch_id}`, { headers: { authorization: 'Bearer sk-bench' } })).json()) as {
        completed_at?: number;
      };
      if (b.last_job_ms !== null && seen.completed_at) providerToTerminal = Math.max(providerToTerminal, b.last_job_ms - seen.completed_at * 1000);
      if (b.last_job_ms !== null && b.completed_ms !== null) learnedToTerminal = Math.max(learnedToTerminal, b.last_job_ms - b.completed_ms);
    }
    const usage = (await (await fetch(`${stack.apiUrl}/v1/usage`, { headers: { authorization: `Bearer ${stack.apiKey}` } })).json()) as {
      data: { cost_usd: number; saved_usd: number; jobs: number }[];
    };
    const totals = usage.data.reduce((t, r) => ({ cost: t.cost + r.cost_usd, saved: t.saved + r.saved_usd }), { cost: 0, saved: 0 });

    log(
      `  ${batches.length} batch(es) of ${batches.map((b) => b.job_count).join(', ')} jobs; provider completed -> last job terminal ${fmt(providerToTerminal / 1000, 2)} s (completed_at is whole seconds), recorded completed -> last job terminal ${fmt(learnedToTerminal / 1000, 2)} s`,
    );
    log(`  usage report: cost $${totals.cost.toFixed(4)}, saved $${totals.saved.toFixed(4)} (both phases)`);

    const callsPerJob = batch.calls / batch.jobs;
    const reconcileTx = batch.afterAcceptance.pgPerUnit.commits;
    return {
      rows: [
        ['batch: jobs completed', `${batch.completed}/${batch.jobs}`, '', batch.completed === batch.jobs ? '' : 'INCOMPLETE'],
        ['batch: provider calls per job', fmt(callsPerJob, 4), `<= ${TARGETS.callsPerJob}`, verdict(callsPerJob <= TARGETS.callsPerJob)],
        ['batch: baseline (background jobs) provider calls per job', fmt(baseline.calls / baseline.jobs, 2), '', ''],
        [
          'batch: provider completed -> every job terminal (s)',
          fmt(providerToTerminal / 1000, 2),
          `<= ${TARGETS.completionToTerminalMs / 1000}`,
          verdict(batch.completed === batch.jobs && providerToTerminal <= TARGETS.completionToTerminalMs),
        ],
        ['batch: recorded completed -> every job terminal (s)', fmt(learnedToTerminal / 1000, 2), '', ''],
        [
          'batch: Postgres transactions per job after acceptance (collect, send, reconcile)',
          fmt(reconcileTx, 2),
          `<= ${TARGETS.reconcileTransactionsPerJob}`,
          verdict(reconcileTx <= TARGETS.reconcileTransactionsPerJob),
        ],
        [
          'batch: Postgres transactions per job, submission to terminal (baseline: background jobs)',
          `${fmt(batch.usage.pgPerUnit.commits, 2)} (${fmt(baseline.usage.pgPerUnit.commits, 2)})`,
          '',
          '',
        ],
        [
          'batch: CPU ms per job (api / worker / total)',
          `${fmt(batch.usage.perUnit.api ?? Number.NaN, 2)} / ${fmt(batch.usage.perUnit.worker ?? Number.NaN, 2)} / ${fmt(batch.usage.perUnit.total ?? Number.NaN, 2)}`,
          '',
          '',
        ],
        [
          'batch: baseline CPU ms per job (api / worker / total)',
          `${fmt(baseline.usage.perUnit.api ?? Number.NaN, 2)} / ${fmt(baseline.usage.perUnit.worker ?? Number.NaN, 2)} / ${fmt(baseline.usage.perUnit.total ?? Number.NaN, 2)}`,
          '',
          '',
        ],
        ['batch: usage report cost / saved (USD)', `${totals.cost.toFixed(4)} / ${totals.saved.toFixed(4)}`, '', ''],
      ],
    };
  } finally {
    await stack.stop();
  }
}

/** Submit `count` jobs, wait for all of them to end, and measure the phase. */
async function phase(stack: Stack, count: number, processing: 'background' | 'batch', log: (line: string) => void): Promise<Phase> {
  const before = await snapshotUsage(stack);
  const callsBefore = await providerRequests(stack);
  const started = performance.now();
  const ids: string[] = [];
  await runPool(count, SUBMIT_CONCURRENCY, async (i) => {
    const res = await fetch(`${stack.apiUrl}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, input: `Classify support ticket ${i}: the export button does nothing.`, processing, metadata: { sim_duration_ms: '0' } }),
    });
    if (res.status !== 202) throw new Error(`POST /v1/jobs answered ${res.status}: ${await res.text()}`);
    ids.push(((await res.json()) as { id: string }).id);
  });
  log(`  ${processing}: ${count} jobs accepted in ${fmt((performance.now() - started) / 1000, 1)} s`);
  const accepted = await snapshotUsage(stack);
  let completed = 0;
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const { rows } = await stack.pool.query<{ done: number; completed: number }>(
      `select count(*) filter (where status in ('completed','failed','cancelled','incomplete','expired'))::int as done, count(*) filter (where status = 'completed')::int as completed from jobs where id = any($1)`,
      [ids],
    );
    completed = rows[0]!.completed;
    if (rows[0]!.done >= count || Date.now() > deadline) break;
    await sleep(100);
  }
  const wallMs = performance.now() - started;
  const end = await snapshotUsage(stack, true);
  const usage = usageBetween(before, end, count);
  const afterAcceptance = usageBetween(accepted, end, count);
  const calls = (await providerRequests(stack)) - callsBefore;
  log(`  ${processing}: ${completed}/${count} completed in ${fmt(wallMs / 1000, 1)} s; ${calls} provider requests (${fmt(calls / count, 4)} per job)`);
  for (const line of formatUsage(usage, 'job')) log(`  ${line}`);
  log(`  ${processing}: after acceptance, ~${fmt(afterAcceptance.pgPerUnit.commits, 2)} Postgres transactions per job`);
  return { jobs: count, completed, wallMs, calls, usage, afterAcceptance };
}

/** Every /v1 request the simulator answered so far: responses' creates, retrieves and cancels, and the Batch and Files APIs' calls. */
async function providerRequests(stack: Stack): Promise<number> {
  const stats = (await simStats(stack.simUrl)) as Awaited<ReturnType<typeof simStats>> & { batches?: { created: number; retrieves: number; lists: number; cancels: number } };
  const files = ((await (await fetch(`${stack.simUrl}/sim/request-log`)).json()) as { data: { path: string }[] }).data.filter((r) => r.path.startsWith('/v1/files')).length;
  const b = stats.batches;
  return totalCalls(stats) + (b ? b.created + b.retrieves + b.lists + b.cancels : 0) + files;
}
