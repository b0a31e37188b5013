/**
 * Scenario: pipelines (issue 16). `runs` runs of a 3-step linear pipeline (plan → execute →
 * compile, each step a plain gpt-4.1 job taking SIM_DURATION_MS at the provider, its input the
 * previous step's `{{steps.<prev>.output_text}}`), on a stack in webhook completion mode (the
 * simulator's signed webhooks to the API's receiver, no polling), `concurrency` runs in flight,
 * closed loop. Two modes:
 *
 * - `pipeline`: POST /v1/pipelines/{id}/runs with a `callback_url` to this process's loopback
 *   receiver, the run awaited by its terminal `run.*` callback (the client's wait only decides
 *   when the next run starts; the handoffs are Longhaul's: a step job's end advances the run,
 *   which creates the next step's job);
 * - `baseline`: the same three jobs chained by the client itself: POST /v1/jobs with a
 *   `callback_url` to this process's loopback receiver, the next job created (its input filled in
 *   from the previous one's `output_text`) as soon as the previous one's terminal callback arrives.
 *   The same provider work and the same completion path; what differs is who chains the jobs.
 *
 * Measured per step handoff (step n's job → step n + 1's job), on the simulator's clock
 * (`GET /sim/responses/{id}/timing`; one machine, so the jobs' timestamps in Postgres are on the
 * same clock): the time from the provider finishing step n's response (its terminal instant) to
 * the simulator taking step n + 1's create, split into provider done → step n's job finished in
 * Longhaul (webhook, retrieve, write), → step n + 1's job row created (the run's advance, or the
 * callback's delivery and the client's POST), → its create at the provider (dispatch and submit).
 * Runs per second over the measured phase's wall time. Provider calls are the simulator's creates
 * (per job) and retrieves and cancels (per response), from `GET /sim/stats`; the floor is 2 per
 * step job (the create, and the one retrieve after the webhook). CPU per run per process as
 * usage.ts reports it.
 *
 * Samples are pooled over ROUNDS rounds, the modes' order reversed in the second, so drift in the
 * machine's load falls on both; a few unmeasured runs of each mode warm the processes up. A
 * smaller phase runs one at a time (concurrency 1): the handoff without queueing behind other runs.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runPool } from './pool.ts';
import { newWebhookSecret, patchSimConfig, simStats, type SimStatsView, totalCalls } from './sim-control.ts';
import { deadChild, startStack, type Stack } from './stack.ts';
import { summarize, type Summary } from './stats.ts';
import { formatUsage, mergeUsage, snapshotUsage, usageBetween, type UsageReport } from './usage.ts';

export interface PipelineOptions {
  /** Runs per mode at `concurrency` (split over the rounds). */
  runs: number;
  /** Runs in flight at once. */
  concurrency: number;
  /** `--worker K=V` overrides. */
  workerOverrides: Record<string, string>;
  nodeArgs?: string[];
  log: (line: string) => void;
}

type Mode = 'baseline' | 'pipeline';
const MODES: Mode[] = ['baseline', 'pipeline'];
const ROUNDS = 2;
const WARMUP_RUNS = 3;
/** The issue's target for a step handoff in webhook mode. */
const TARGET_P99_MS = 100;
/** How long the simulator takes over every response. */
const SIM_DURATION_MS = 200;
/** Give a run up when it has not ended this long after its start. */
const RUN_TIMEOUT_MS = 60_000;

const MODEL = 'gpt-4.1';
const metadata = { sim_duration_ms: String(SIM_DURATION_MS) };
/** The steps, in order: each one's input refers to the previous step's output text. */
const STEPS = [
  { name: 'plan', instructions: 'Break the task into 3 to 5 concrete steps.', input: 'Task: {{input.task}}' },
  { name: 'execute', instructions: 'Carry out the plan.', input: 'Plan: {{steps.plan.output_text}}' },
  { name: 'compile', instructions: 'Compile the results into a final answer.', input: 'Results: {{steps.execute.output_text}}' },
] as const;
const TASK = 'Plan a product launch in Oslo';

const DEFINITION = {
  steps: STEPS.map((s) => ({ name: s.name, model: MODEL, instructions: s.instructions, input: s.input, metadata })),
  output: '{{steps.compile.output_text}}',
};

/**
 * The parts of a callback's `data` the scenario reads: a Longhaul job object (the baseline) or a
 * run object (its steps' jobs).
 */
interface Subject {
  id: string;
  status: string;
  output_text?: string | null;
  steps?: Record<string, { status: string; job_ids: string[] }>;
  error?: unknown;
}

/**
 * Terminal callbacks by job or run, for whoever awaits them; duplicates (the same webhook-id:
 * callbacks are at least once) and non-terminal events are dropped, as a client would.
 */
class Inbox {
  #queued = new Map<string, Subject>();
  #waiting = new Map<string, (subject: Subject | undefined) => void>();
  #seen = new Set<string>();
  duplicates = 0;

  push(webhookId: string, job: Subject): void {
    if (this.#seen.has(webhookId)) {
      this.duplicates++;
      return;
    }
    this.#seen.add(webhookId);
    if (!TERMINAL.has(job.status)) return;
    const wake = this.#waiting.get(job.id);
    if (wake) {
      this.#waiting.delete(job.id);
      wake(job);
      return;
    }
    this.#queued.set(job.id, job);
  }

  /** The job's or run's terminal event, or undefined after `timeoutMs`. */
  terminal(jobId: string, timeoutMs: number): Promise<Subject | undefined> {
    const queued = this.#queued.get(jobId);
    if (queued) {
      this.#queued.delete(jobId);
      return Promise.resolve(queued);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(jobId);
        resolve(undefined);
      }, timeoutMs);
      this.#waiting.set(jobId, (job) => {
        clearTimeout(timer);
        resolve(job);
      });
    });
  }
}

interface RunRecord {
  /** The step jobs, in step order (one per step). */
  jobIds: string[];
  status: string;
  error?: string;
}

interface Harness {
  stack: Stack;
  pipelineId: string;
  receiverUrl: string;
  inbox: Inbox;
}

export interface PhaseResult {
  mode: Mode;
  concurrency: number;
  runs: number;
  completed: number;
  runsPerSecond: number;
  /** Provider calls per step job: from the runs' own jobs and responses, and all the phase's calls (anyone's). */
  callsPerStepJob: number;
  phaseCallsPerStepJob: number;
  handoff: Summary;
  toFinished: Summary;
  toNextRow: Summary;
  toCreate: Summary;
  usage: UsageReport;
  firstError?: string;
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
/** Terminal job statuses; a run's are among them. */
const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'incomplete', 'expired']);

export async function runPipeline(options: PipelineOptions): Promise<{ results: PhaseResult[]; rows: string[][] }> {
  const { log } = options;
  const inbox = new Inbox();
  const receiver = await startReceiver(inbox);
  const secret = newWebhookSecret();
  const loopback = { CALLBACK_ALLOWED_CIDRS: '127.0.0.0/8' };
  const workerEnv = { COMPLETION_MODE: 'webhook', ...loopback, ...options.workerOverrides };
  let stack: Stack | undefined;
  try {
    stack = await startStack({ kind: 'pipeline', workerEnv, apiEnv: { OPENAI_WEBHOOK_SECRET: secret, ...loopback }, nodeArgs: options.nodeArgs });
    await patchSimConfig(stack.simUrl, { webhook_urls: [`${stack.apiUrl}/webhooks/openai`], webhook_secret: secret });
    const pipeline = await api<{ id: string }>(stack, 'POST', '/v1/pipelines', { name: 'bench-plan-execute-compile', definition: DEFINITION }, 201);
    const h: Harness = { stack, pipelineId: pipeline.id, receiverUrl: receiver.url, inbox };
    log(
      `pipeline: ${options.runs} runs per mode of a 3-step linear pipeline (${STEPS.map((s) => s.name).join(' -> ')}, ${MODEL}, ${SIM_DURATION_MS} ms per response), ${options.concurrency} runs in flight; webhook completion mode (${Object.entries(
        workerEnv,
      )
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}); ${ROUNDS} rounds, the modes' order reversed in the second; each run or chained job awaited by its terminal callback`,
    );
    for (const mode of MODES) await runRuns(h, mode, WARMUP_RUNS, options.concurrency);

    const results: PhaseResult[] = [];
    const phases: { concurrency: number; runs: number }[] = [{ concurrency: options.concurrency, runs: options.runs }];
    if (options.concurrency > 1) phases.push({ concurrency: 1, runs: Math.max(4, Math.ceil(options.runs / 4)) });
    for (const phase of phases) {
      const perMode = new Map<Mode, { runs: RunRecord[]; calls: number; wallMs: number; usage: UsageReport[] }>(
        MODES.map((m) => [m, { runs: [], calls: 0, wallMs: 0, usage: [] }]),
      );
      for (let round = 0; round < ROUNDS; round++) {
        const count = Math.ceil(phase.runs / ROUNDS) - (round === ROUNDS - 1 && phase.runs % ROUNDS !== 0 ? 1 : 0);
        for (const mode of round % 2 === 0 ? MODES : [...MODES].reverse()) {
          if (count <= 0) continue;
          const entry = perMode.get(mode)!;
          const statsBefore = await simStats(stack.simUrl);
          const before = await snapshotUsage(stack);
          const startedAt = performance.now();
          const runs = await runRuns(h, mode, count, phase.concurrency);
          entry.wallMs += performance.now() - startedAt;
          entry.usage.push(usageBetween(before, await snapshotUsage(stack, true), runs.length));
          const statsAfter = await simStats(stack.simUrl);
          entry.calls += totalCalls(statsAfter) - totalCalls(statsBefore);
          entry.runs.push(...runs);
          log(`  concurrency ${phase.concurrency} round ${round + 1} ${mode}: ${runs.filter((r) => r.status === 'completed').length}/${runs.length} runs completed`);
        }
      }
      const stats = await simStats(stack.simUrl);
      for (const mode of MODES) {
        const entry = perMode.get(mode)!;
        const result = await measure(h, mode, phase.concurrency, entry, stats, mergeUsage(entry.usage));
        results.push(result);
        log(
          `  ${mode} (${phase.concurrency} in flight): ${result.completed}/${result.runs} runs completed, ${fmt(result.runsPerSecond, 2)} runs/s; provider calls per step job ${fmt(result.callsPerStepJob, 2)} (all calls in its phases ${fmt(result.phaseCallsPerStepJob, 2)} per step job)`,
        );
        log(
          `    step handoff (provider done -> next step's create), ${result.handoff.count} handoffs: p50 ${fmt(result.handoff.p50)} p99 ${fmt(result.handoff.p99)} max ${fmt(result.handoff.max)} ms`,
        );
        log(
          `    of which: done -> job finished p50 ${fmt(result.toFinished.p50)} p99 ${fmt(result.toFinished.p99)}; -> next job created (${mode === 'pipeline' ? "the run's advance" : "callback and the client's POST"}) p50 ${fmt(result.toNextRow.p50)} p99 ${fmt(result.toNextRow.p99)}; -> provider create p50 ${fmt(result.toCreate.p50)} p99 ${fmt(result.toCreate.p99)} ms`,
        );
        if (result.firstError) log(`    first problem: ${result.firstError}`);
        for (const line of formatUsage(result.usage, 'run')) log(`  ${line}`);
      }
    }
    if (inbox.duplicates) log(`  ${inbox.duplicates} duplicate callbacks (same webhook-id) dropped`);
    return { results, rows: rowsOf(results) };
  } finally {
    await stack?.stop();
    await receiver.close();
  }
}

async function runRuns(h: Harness, mode: Mode, count: number, concurrency: number): Promise<RunRecord[]> {
  const runs: RunRecord[] = [];
  await runPool(count, concurrency, async () => {
    const dead = deadChild(h.stack);
    if (dead) throw new Error(`${dead.name} exited (${dead.exitCode()}) during the run\n${dead.output()}`);
    const record: RunRecord = { jobIds: [], status: 'not started' };
    runs.push(record);
    try {
      await (mode === 'baseline' ? runBaselineChain(h, record) : runPipelineRun(h, record));
    } catch (err) {
      record.status = 'error';
      record.error = err instanceof Error ? err.message : String(err);
    }
  });
  return runs;
}

/** One run by Longhaul, awaited by its terminal callback; its step jobs read from the run it carries. */
async function runPipelineRun(h: Harness, record: RunRecord): Promise<void> {
  const created = await api<Subject>(h.stack, 'POST', `/v1/pipelines/${h.pipelineId}/runs`, { inputs: { task: TASK }, callback_url: `${h.receiverUrl}/runs` }, 202);
  record.status = created.status;
  const run = await h.inbox.terminal(created.id, RUN_TIMEOUT_MS);
  if (!run) {
    record.status = 'timed out';
    return;
  }
  record.status = run.status;
  record.jobIds = STEPS.flatMap((s) => run.steps?.[s.name]?.job_ids ?? []);
  if (run.status !== 'completed') record.error = `run ${run.id} ${run.status}: ${JSON.stringify(run.error).slice(0, 300)}`;
}

/** The client's own chain: a plain job per step, the next created when the previous one's terminal callback arrives. */
async function runBaselineChain(h: Harness, record: RunRecord): Promise<void> {
  const deadline = Date.now() + RUN_TIMEOUT_MS;
  let previous = '';
  for (const step of STEPS) {
    const input = step.input.replace('{{input.task}}', TASK).replace(/\{\{steps\.\w+\.output_text\}\}/, previous);
    const body = { model: MODEL, instructions: step.instructions, input, metadata, callback_url: `${h.receiverUrl}/baseline` };
    const job = await api<{ id: string }>(h.stack, 'POST', '/v1/jobs', body, 202);
    record.jobIds.push(job.id);
    const done = await h.inbox.terminal(job.id, Math.max(0, deadline - Date.now()));
    if (!done) {
      record.status = 'timed out';
      return;
    }
    record.status = done.status;
    if (done.status !== 'completed') {
      record.error = `step ${step.name} job ${job.id} ${done.status}`;
      return;
    }
    previous = done.output_text ?? '';
  }
}

async function api<T>(stack: Stack, method: string, path: string, body: unknown, expected: number): Promise<T> {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status !== expected) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

interface Timing {
  created_at_ms: number;
  ends_at_ms: number;
  terminal_at_ms: number | null;
}

interface JobRow {
  id: string;
  response_id: string | null;
  created_ms: number;
  finished_ms: number | null;
}

async function measure(
  h: Harness,
  mode: Mode,
  concurrency: number,
  entry: { runs: RunRecord[]; calls: number; wallMs: number },
  stats: SimStatsView,
  usage: UsageReport,
): Promise<PhaseResult> {
  const { runs } = entry;
  const jobIds = runs.flatMap((r) => r.jobIds);
  const { rows } = await h.stack.pool.query<JobRow>(
    `select id, response_id, extract(epoch from created_at) * 1000 as created_ms, extract(epoch from finished_at) * 1000 as finished_ms
       from jobs where id = any($1)`,
    [jobIds],
  );
  const jobs = new Map(rows.map((r) => [r.id, { ...r, created_ms: Number(r.created_ms), finished_ms: r.finished_ms === null ? null : Number(r.finished_ms) }]));
  const responseIds = rows.map((r) => r.response_id).filter((id): id is string => id !== null);
  const timings = new Map<string, Timing>();
  await runPool(responseIds.length, 8, async (i) => {
    const res = await fetch(`${h.stack.simUrl}/sim/responses/${responseIds[i]}/timing`);
    if (res.ok) timings.set(responseIds[i]!, (await res.json()) as Timing);
  });

  const handoff: number[] = [];
  const toFinished: number[] = [];
  const toNextRow: number[] = [];
  const toCreate: number[] = [];
  let calls = 0;
  for (const run of runs) {
    for (const id of run.jobIds) {
      const responseId = jobs.get(id)?.response_id;
      calls += (stats.creates_by_job[id] ?? 0) + (responseId ? (stats.by_response[responseId]?.retrieves ?? 0) + (stats.by_response[responseId]?.cancels ?? 0) : 0);
    }
    run.jobIds.forEach((id, n) => {
      const prev = jobs.get(id);
      const next = jobs.get(run.jobIds[n + 1] ?? '');
      const done = prev?.response_id ? timings.get(prev.response_id) : undefined;
      const created = next?.response_id ? timings.get(next.response_id) : undefined;
      if (!prev || !next || !done || !created) return;
      const doneAt = done.terminal_at_ms ?? done.ends_at_ms;
      handoff.push(created.created_at_ms - doneAt);
      if (prev.finished_ms === null) return;
      toFinished.push(prev.finished_ms - doneAt);
      toNextRow.push(next.created_ms - prev.finished_ms);
      toCreate.push(created.created_at_ms - next.created_ms);
    });
  }
  const stepJobs = Math.max(1, jobIds.length);
  const failed = runs.find((r) => r.status !== 'completed');
  const firstError = failed?.error ?? failed?.status;
  return {
    mode,
    concurrency,
    runs: runs.length,
    completed: runs.filter((r) => r.status === 'completed').length,
    runsPerSecond: runs.filter((r) => r.status === 'completed').length / (entry.wallMs / 1000),
    callsPerStepJob: calls / stepJobs,
    phaseCallsPerStepJob: entry.calls / stepJobs,
    handoff: summarize(handoff),
    toFinished: summarize(toFinished),
    toNextRow: summarize(toNextRow),
    toCreate: summarize(toCreate),
    usage,
    ...(firstError === undefined ? {} : { firstError }),
  };
}

/** The callback receiver: every POST acknowledged at once, then handed to the inbox. */
async function startReceiver(inbox: Inbox): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let event: { type: string; data: Subject };
      try {
        event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { type: string; data: Subject };
      } catch {
        res.writeHead(400).end();
        return;
      }
      res.writeHead(200, { 'content-length': '0' }).end();
      inbox.push(String(req.headers['webhook-id'] ?? `${event.data.id} ${event.type}`), event.data);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function rowsOf(results: PhaseResult[]): string[][] {
  const rows: string[][] = [];
  for (const r of results) {
    const label = `pipeline ${r.mode === 'baseline' ? 'baseline (client-chained jobs)' : 'runs'}, ${r.concurrency} in flight`;
    const complete = r.completed === r.runs;
    const judged = r.mode === 'pipeline';
    const baseline = results.find((b) => b.mode === 'baseline' && b.concurrency === r.concurrency);
    rows.push([`${label}: runs completed`, `${r.completed}/${r.runs}`, '', complete ? '' : 'INCOMPLETE']);
    rows.push([`${label}: runs/s`, fmt(r.runsPerSecond, 2), '', '']);
    rows.push([`${label}: step handoff p50 (ms)`, fmt(r.handoff.p50), '', '']);
    rows.push([`${label}: step handoff p99 (ms)`, fmt(r.handoff.p99), judged ? `<= ${TARGET_P99_MS}` : '', judged ? verdict(complete && r.handoff.p99 <= TARGET_P99_MS) : '']);
    rows.push([`${label}: step handoff max (ms)`, fmt(r.handoff.max), '', '']);
    rows.push([`${label}: provider calls per step job`, fmt(r.callsPerStepJob, 2), judged ? '2.00 (floor)' : '', judged ? verdict(complete && r.callsPerStepJob <= 2 + 1e-9) : '']);
    rows.push([
      `${label}: CPU ms per run (api / worker / total)`,
      `${fmt(r.usage.perUnit.api ?? Number.NaN)} / ${fmt(r.usage.perUnit.worker ?? Number.NaN)} / ${fmt(r.usage.perUnit.total ?? Number.NaN)}`,
      '',
      '',
    ]);
    if (judged && baseline)
      rows.push([`${label}: handoff p50 / p99 vs baseline (ms)`, `${fmt(r.handoff.p50 - baseline.handoff.p50)} / ${fmt(r.handoff.p99 - baseline.handoff.p99)}`, '', '']);
  }
  return rows;
}
