/**
 * The default system scenario: what `npm start` runs, measured end to end. The worker with no
 * knobs (hybrid completion mode, the default poll schedule), the simulator sending signed
 * webhooks to the API's receiver (as `npm start` wires them), LOG_LEVEL `info` everywhere. The
 * e2e scenario measures the pipeline tuned for instant jobs, in poll mode and quiet; this one
 * measures what a user gets, and how many provider calls each job costs there.
 *
 * A few jobs first teach the worker that webhooks arrive (its webhook health turns `healthy`, as
 * it does minutes into any deployment); they are not counted.
 */
import { webhookHealthKey } from '@longhaul/worker';
import { runE2e, INSTANT_JOB } from './e2e.ts';
import { createJobsClient } from './http.ts';
import { newWebhookSecret, patchSimConfig, providerCalls, simStats } from './sim-control.ts';
import { sleep } from './pool.ts';
import { startStack } from './stack.ts';
import { formatUsage, snapshotUsage, usageBetween } from './usage.ts';

export const TARGET_SYSTEM_JOBS_PER_SECOND = 250;
const LEARNING_JOBS = 20;

export interface SystemOptions {
  jobs: number;
  concurrency: number;
  workerOverrides: Record<string, string>;
  nodeArgs?: string[];
  log: (line: string) => void;
}

export async function runSystem(options: SystemOptions): Promise<{ rows: string[][] }> {
  const { log } = options;
  const secret = newWebhookSecret();
  const stack = await startStack({ kind: 'system', workerEnv: options.workerOverrides, apiEnv: { OPENAI_WEBHOOK_SECRET: secret }, logLevel: 'info', nodeArgs: options.nodeArgs });
  const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
  try {
    await patchSimConfig(stack.simUrl, { webhook_urls: [`${stack.apiUrl}/webhooks/openai`], webhook_secret: secret });
    const health = await learnWebhooks(stack);
    log(
      `system: the npm start defaults (hybrid mode, webhooks to the API, LOG_LEVEL info), ${options.jobs} instant jobs, ${options.concurrency} in flight; webhook health ${health}`,
    );
    const before = await snapshotUsage(stack);
    const statsBefore = await simStats(stack.simUrl);
    const { rows: done } = await stack.pool.query<{ n: number }>('select count(*)::int as n from jobs where finished_at is not null');
    const result = await runE2e(stack, { jobs: options.jobs, concurrency: options.concurrency, log, alreadyTerminal: done[0]!.n });
    const usage = usageBetween(before, await snapshotUsage(stack, true), Math.max(1, result.terminal));
    const stats = await simStats(stack.simUrl);
    const { rows } = await stack.pool.query<{ id: string; response_id: string | null }>('select id, response_id from jobs order by created_at desc limit $1', [options.jobs]);
    const calls = rows.map((r) => providerCalls(stats, r.id, r.response_id) - providerCalls(statsBefore, r.id, r.response_id));
    const callsPerJob = calls.reduce((a, b) => a + b, 0) / Math.max(1, calls.length);
    log(
      `  ${result.terminal}/${result.submitted} terminal in ${fmt(result.seconds, 2)} s; statuses ${JSON.stringify(result.byStatus)}; ${fmt(callsPerJob, 2)} provider calls per job`,
    );
    if (result.submitErrors) log(`  ${result.submitErrors} submits failed, first: ${result.firstSubmitError}`);
    formatUsage(usage, 'job').forEach(log);
    return {
      rows: [
        [
          'system (npm start defaults) throughput (jobs/s)',
          fmt(result.jobsPerSecond),
          `>= ${TARGET_SYSTEM_JOBS_PER_SECOND}`,
          result.jobsPerSecond >= TARGET_SYSTEM_JOBS_PER_SECOND ? 'PASS' : 'MISS',
        ],
        ['system: provider calls per instant job', fmt(callsPerJob, 2), '2.00', callsPerJob <= 2 ? 'PASS' : 'MISS'],
        ['system: time-to-terminal p99 (ms)', fmt(result.timeToTerminal.p99, 0), '', ''],
      ],
    };
  } finally {
    await stack.stop();
  }
}

/** Run a few jobs until the worker's webhook health is `healthy` (or 30 s pass); answers the health. */
async function learnWebhooks(stack: Awaited<ReturnType<typeof startStack>>): Promise<string> {
  const client = createJobsClient(stack.apiUrl, stack.apiKey, 4);
  const deadline = Date.now() + 30_000;
  let state = 'none';
  try {
    while (Date.now() < deadline) {
      await Promise.all(Array.from({ length: LEARNING_JOBS / 4 }, () => client.submit(INSTANT_JOB)));
      await sleep(500);
      state = (await stack.redis.hget(webhookHealthKey(stack.prefix), 'state')) ?? 'none';
      if (state === 'healthy') break;
    }
  } finally {
    client.close();
  }
  // Let the learning jobs finish before the measured run starts.
  for (let i = 0; i < 100; i++) {
    const { rows } = await stack.pool.query<{ n: number }>('select count(*)::int as n from jobs where finished_at is null');
    if (rows[0]!.n === 0) break;
    await sleep(100);
  }
  return state;
}
