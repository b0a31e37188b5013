/**
 * Scenario 1, end-to-end throughput in poll mode: N instant simulated jobs submitted over HTTP
 * (closed loop, `concurrency` requests in flight), timed from the first submit to the moment
 * Postgres counts all of them terminal. Completion is observed with one count query every
 * ~50 ms, not per-job GETs, so the measurement itself stays cheap.
 */
import { createJobsClient } from './http.ts';
import { runPool, sleep } from './pool.ts';
import { deadChild, type Stack } from './stack.ts';
import { summarize, type Summary } from './stats.ts';

export const INSTANT_JOB = JSON.stringify({ model: 'o3', input: 'Reply with one word.', metadata: { sim_duration_ms: '0' } });

const TERMINAL = ['completed', 'failed', 'cancelled', 'incomplete', 'expired'];
const POLL_MS = 50;
/** Give up when no job finished for this long (a stuck pipeline must not hang the benchmark). */
const STALL_MS = 30_000;

export interface E2eOptions {
  jobs: number;
  concurrency: number;
  log: (line: string) => void;
  /** Jobs of the run's database already terminal before it (not counted). */
  alreadyTerminal?: number;
}

export interface E2eResult {
  submitted: number;
  submitErrors: number;
  firstSubmitError?: string;
  /** Jobs seen terminal when the run ended (all of them unless it stalled). */
  terminal: number;
  byStatus: Record<string, number>;
  seconds: number;
  jobsPerSecond: number;
  /** Submit phase alone: accepted jobs per second over HTTP. */
  submitPerSecond: number;
  /** From the client sending the POST to the job's finished_at, per job. */
  timeToTerminal: Summary;
  stalled: boolean;
}

export async function runE2e(stack: Stack, options: E2eOptions): Promise<E2eResult> {
  const client = createJobsClient(stack.apiUrl, stack.apiKey, options.concurrency);
  const sentAt = new Map<string, number>();
  let submitErrors = 0;
  let firstSubmitError: string | undefined;
  let submitDone = false;
  let submitEnded = 0;

  const started = performance.now();
  const submitting = runPool(options.jobs, options.concurrency, async () => {
    const t = Date.now();
    const result = await client.submit(INSTANT_JOB).catch((err: Error) => ({ status: 0, error: err.message, jobId: undefined }));
    if (result.jobId) sentAt.set(result.jobId, t);
    else {
      submitErrors++;
      firstSubmitError ??= `${result.status} ${result.error}`;
    }
  }).finally(() => {
    submitDone = true;
    submitEnded = performance.now();
  });

  let terminal = 0;
  let ended = started;
  let lastProgress = performance.now();
  let stalled = false;
  let lastLogged = 0;
  for (;;) {
    await sleep(POLL_MS);
    const { rows } = await stack.pool.query<{ n: number }>('select count(*)::int as n from jobs where status = any($1::job_status[])', [TERMINAL]);
    const dead = deadChild(stack);
    if (dead) throw new Error(`${dead.name} exited (${dead.exitCode()}) during the run\n${dead.output()}`);
    const now = performance.now();
    const n = rows[0]!.n - (options.alreadyTerminal ?? 0);
    if (n > terminal) lastProgress = now;
    terminal = n;
    ended = now;
    if (submitDone && terminal >= sentAt.size) break;
    if (now - lastProgress > STALL_MS) {
      stalled = true;
      break;
    }
    if (now - lastLogged > 5_000) {
      lastLogged = now;
      options.log(`  e2e: ${sentAt.size} accepted, ${terminal} terminal after ${((now - started) / 1000).toFixed(1)} s`);
    }
  }
  await submitting;
  client.close();

  const seconds = (ended - started) / 1000;
  const { rows: statusRows } = await stack.pool.query<{ status: string; n: number }>('select status, count(*)::int as n from jobs group by status');
  const { rows: finished } = await stack.pool.query<{ id: string; finished_ms: number }>(
    'select id, (extract(epoch from finished_at) * 1000)::float8 as finished_ms from jobs where finished_at is not null',
  );
  const ttt = finished.flatMap((row) => {
    const t = sentAt.get(row.id);
    return t === undefined ? [] : [row.finished_ms - t];
  });
  return {
    submitted: sentAt.size,
    submitErrors,
    firstSubmitError,
    terminal,
    byStatus: Object.fromEntries(statusRows.map((r) => [r.status, r.n])),
    seconds,
    jobsPerSecond: terminal / seconds,
    submitPerSecond: sentAt.size / ((submitEnded - started) / 1000),
    timeToTerminal: summarize(ttt),
    stalled,
  };
}
