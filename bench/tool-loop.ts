/**
 * Scenario: tool-call loops (issue 15). `jobs` loops of `turns` turns each (the simulator calls a
 * function for turns − 1 turns, `sim_tool_turns`, then answers; every response takes
 * SIM_DURATION_MS), on a stack in webhook completion mode (the simulator's signed webhooks to the
 * API's receiver, no polling), each turn answered as soon as it is announced. Three modes, each
 * run `concurrency` loops at a time, closed loop:
 *
 * - `client`: POST /v1/jobs with the tools; this process's callback receiver gets
 *   `job.requires_action` and POSTs /v1/jobs/{id}/tool_outputs at once;
 * - `executor`: the same job with `tool_executor: {url}`: a loopback executor in this process
 *   answers Longhaul's signed POST at once with the outputs;
 * - `baseline`: the same turns as the client's own loop, without Longhaul's loop: one plain job per
 *   turn through the OpenAI-compatible POST /v1/responses (`background: true`, `callback_url`,
 *   `previous_response_id` naming the previous turn's response, its function calls answered by
 *   `function_call_output` items), each created when the previous one's `job.completed` arrives.
 *   The same provider work and the same completion path; what differs is who runs the loop.
 *
 * Measured per turn boundary (turn n's response → turn n + 1's create), on the simulator's clock
 * (`GET /sim/responses/{id}/timing`; one machine, so this process's Date.now() is the same clock):
 * the added latency, from the provider finishing turn n (its terminal instant) to the simulator
 * taking turn n + 1's create, split into the time until the turn was announced (the callback's
 * arrival here, or the executor's request), the client's or executor's own time (that arrival →
 * its answer sent), and the answer → the next create. Provider calls are the simulator's creates
 * (per job) and retrieves and cancels (per response of the loop's turns), from `GET /sim/stats`;
 * the floor is 2 per turn (the create, and the one retrieve after the webhook). CPU per loop per
 * process as usage.ts reports it.
 *
 * Samples are pooled over ROUNDS rounds, the modes' order reversed in the second, so drift in the
 * machine's load falls on all of them; a few unmeasured loops of each mode warm the processes up.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runPool } from './pool.ts';
import { newWebhookSecret, patchSimConfig, simStats, type SimStatsView, totalCalls } from './sim-control.ts';
import { deadChild, startStack, type Stack } from './stack.ts';
import { summarize, type Summary } from './stats.ts';
import { formatUsage, mergeUsage, snapshotUsage, usageBetween, type UsageReport } from './usage.ts';

export interface ToolLoopOptions {
  /** Loops per mode (split over the rounds). */
  jobs: number;
  /** Turns (responses) per loop, at least 2. */
  turns: number;
  /** Loops in flight at once. */
  concurrency: number;
  /** `--worker K=V` overrides. */
  workerOverrides: Record<string, string>;
  nodeArgs?: string[];
  log: (line: string) => void;
}

type Mode = 'baseline' | 'client' | 'executor';
const MODES: Mode[] = ['baseline', 'client', 'executor'];
const ROUNDS = 2;
const WARMUP_LOOPS = 3;
/** The issue's target for Longhaul's added latency per turn. */
const TARGET_P99_MS = 100;
/** How long the simulator takes over every response. */
const SIM_DURATION_MS = 200;
/** Give a loop up when it has not ended this long after its start. */
const LOOP_TIMEOUT_MS = 60_000;

const weather = {
  type: 'function',
  name: 'get_weather',
  description: 'The weather in a city.',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: false,
};

interface ToolCall {
  call_id: string;
}
/** The parts of a Longhaul job object (a callback's `data`, GET /v1/jobs/{id}) the scenario reads. */
interface JobView {
  id: string;
  status: string;
  turn: number;
  response_id: string | null;
  required_action: { tool_calls: ToolCall[] } | null;
  output: { type: string; call_id?: string }[] | null;
  turns?: { response_id: string | null }[] | null;
}

interface Announcement {
  type: string;
  atMs: number;
  job: JobView;
}

/**
 * Callback events by job, in arrival order, for whoever awaits them; duplicates (the same
 * webhook-id: callbacks are at least once) are dropped, as a client would.
 */
class Inbox {
  #queued = new Map<string, Announcement[]>();
  #waiting = new Map<string, (a: Announcement | undefined) => void>();
  #seen = new Set<string>();
  duplicates = 0;

  push(webhookId: string, announcement: Announcement): void {
    if (this.#seen.has(webhookId)) {
      this.duplicates++;
      return;
    }
    this.#seen.add(webhookId);
    const wake = this.#waiting.get(announcement.job.id);
    if (wake) {
      this.#waiting.delete(announcement.job.id);
      wake(announcement);
      return;
    }
    const queue = this.#queued.get(announcement.job.id) ?? [];
    queue.push(announcement);
    this.#queued.set(announcement.job.id, queue);
  }

  /** The job's next event, or undefined after `timeoutMs`. */
  next(jobId: string, timeoutMs: number): Promise<Announcement | undefined> {
    const queued = this.#queued.get(jobId)?.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(jobId);
        resolve(undefined);
      }, timeoutMs);
      this.#waiting.set(jobId, (a) => {
        clearTimeout(timer);
        resolve(a);
      });
    });
  }
}

/** When a turn was announced (callback or executor call arrived) and answered (answer sent), epoch ms; by provider response id. */
interface TurnMarks {
  announcedAtMs: number;
  answeredAtMs: number;
}

interface LoopRecord {
  /** The Longhaul jobs of the loop: one for client and executor, one per turn for the baseline. */
  jobIds: string[];
  status: string;
  /** Its turns' provider responses, in order (filled after the phase for the loop modes). */
  responseIds: string[];
  error?: string;
}

interface Harness {
  stack: Stack;
  receiverUrl: string;
  executorUrl: string;
  inbox: Inbox;
  /** Executor calls by `job_id turn`: arrival and answer. */
  executorMarks: Map<string, TurnMarks>;
  /** The client's answers (client and baseline) by the provider response of the turn answered. */
  clientMarks: Map<string, TurnMarks>;
  turns: number;
}

export interface ModeResult {
  mode: Mode;
  loops: number;
  completed: number;
  turnsCompleted: number;
  /** Provider calls per loop: from the loops' own jobs and responses, and all the phase's calls (anyone's). */
  callsPerLoop: number;
  phaseCallsPerLoop: number;
  added: Summary;
  toAnnounce: Summary;
  own: Summary;
  answerToCreate: Summary;
  /** Turn boundaries whose next create did not continue the previous response. */
  unchained: number;
  usage: UsageReport;
  firstError?: string;
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'incomplete', 'expired']);

export async function runToolLoop(options: ToolLoopOptions): Promise<{ results: ModeResult[]; rows: string[][] }> {
  const { log } = options;
  if (options.turns < 2) throw new Error('--toolloop-turns must be at least 2 (a loop has a turn after a tool call)');
  const inbox = new Inbox();
  const executorMarks = new Map<string, TurnMarks>();
  const servers = await startServers(inbox, executorMarks);
  const secret = newWebhookSecret();
  const loopback = { CALLBACK_ALLOWED_CIDRS: '127.0.0.0/8' };
  const workerEnv = { COMPLETION_MODE: 'webhook', ...loopback, ...options.workerOverrides };
  let stack: Stack | undefined;
  try {
    stack = await startStack({ kind: 'toolloop', workerEnv, apiEnv: { OPENAI_WEBHOOK_SECRET: secret, ...loopback }, nodeArgs: options.nodeArgs });
    await patchSimConfig(stack.simUrl, { webhook_urls: [`${stack.apiUrl}/webhooks/openai`], webhook_secret: secret });
    const h: Harness = { stack, receiverUrl: servers.receiverUrl, executorUrl: servers.executorUrl, inbox, executorMarks, clientMarks: new Map(), turns: options.turns };
    log(
      `toolloop: ${options.jobs} loops per mode of ${options.turns} turns (${options.turns - 1} with a function call), ${SIM_DURATION_MS} ms per response, ${options.concurrency} loops in flight; webhook completion mode (${Object.entries(
        workerEnv,
      )
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}); ${ROUNDS} rounds, the modes' order reversed in the second`,
    );
    for (const mode of MODES) await runLoops(h, mode, WARMUP_LOOPS, options.concurrency);

    const perMode = new Map<Mode, { loops: LoopRecord[]; calls: number; before: Awaited<ReturnType<typeof snapshotUsage>>[]; usage: UsageReport[] }>(
      MODES.map((m) => [m, { loops: [], calls: 0, before: [], usage: [] }]),
    );
    for (let round = 0; round < ROUNDS; round++) {
      const count = Math.ceil(options.jobs / ROUNDS) - (round === ROUNDS - 1 && options.jobs % ROUNDS !== 0 ? 1 : 0);
      for (const mode of round % 2 === 0 ? MODES : [...MODES].reverse()) {
        if (count <= 0) continue;
        const entry = perMode.get(mode)!;
        const statsBefore = await simStats(stack.simUrl);
        const before = await snapshotUsage(stack);
        const loops = await runLoops(h, mode, count, options.concurrency);
        entry.usage.push(usageBetween(before, await snapshotUsage(stack, true), loops.length));
        const statsAfter = await simStats(stack.simUrl);
        entry.calls += totalCalls(statsAfter) - totalCalls(statsBefore);
        entry.loops.push(...loops);
        log(`  round ${round + 1} ${mode}: ${loops.filter((l) => l.status === 'completed').length}/${loops.length} loops completed`);
      }
    }

    const results: ModeResult[] = [];
    const stats = await simStats(stack.simUrl);
    for (const mode of MODES) {
      const entry = perMode.get(mode)!;
      const result = await measure(h, mode, entry.loops, stats, entry.calls, mergeUsage(entry.usage));
      results.push(result);
      log(
        `  ${mode}: ${result.completed}/${result.loops} loops completed, ${result.turnsCompleted} turns; provider calls per loop ${fmt(result.callsPerLoop, 2)} (${fmt(result.callsPerLoop / options.turns, 2)} per turn; all calls in its phases ${fmt(result.phaseCallsPerLoop, 2)} per loop)${result.unchained ? `; ${result.unchained} turns NOT chained on the previous response` : ''}`,
      );
      log(
        `    added latency per turn (provider done -> next create), ${result.added.count} turn boundaries: p50 ${fmt(result.added.p50)} p99 ${fmt(result.added.p99)} max ${fmt(result.added.max)} ms`,
      );
      log(
        `    of which: done -> ${mode === 'executor' ? 'executor called' : mode === 'client' ? 'job.requires_action arrived' : 'job.completed arrived'} p50 ${fmt(result.toAnnounce.p50)} p99 ${fmt(result.toAnnounce.p99)}; ${mode === 'executor' ? "the executor's" : "the client's"} own time p50 ${fmt(result.own.p50)} p99 ${fmt(result.own.p99)}; answer sent -> next create p50 ${fmt(result.answerToCreate.p50)} p99 ${fmt(result.answerToCreate.p99)} ms`,
      );
      if (result.firstError) log(`    first problem: ${result.firstError}`);
      for (const line of formatUsage(result.usage, 'loop')) log(`  ${line}`);
    }
    if (inbox.duplicates) log(`  ${inbox.duplicates} duplicate callbacks (same webhook-id) dropped`);
    return { results, rows: rowsOf(results, options.turns) };
  } finally {
    await stack?.stop();
    await servers.close();
  }
}

async function runLoops(h: Harness, mode: Mode, count: number, concurrency: number): Promise<LoopRecord[]> {
  const loops: LoopRecord[] = [];
  await runPool(count, concurrency, async () => {
    const dead = deadChild(h.stack);
    if (dead) throw new Error(`${dead.name} exited (${dead.exitCode()}) during the run\n${dead.output()}`);
    const record: LoopRecord = { jobIds: [], status: 'not started', responseIds: [] };
    loops.push(record);
    try {
      await (mode === 'baseline' ? runBaselineChain(h, record) : runLoop(h, mode, record));
    } catch (err) {
      record.status = 'error';
      record.error = err instanceof Error ? err.message : String(err);
    }
  });
  return loops;
}

const metadata = (turns: number) => ({ sim_duration_ms: String(SIM_DURATION_MS), sim_tool_turns: String(turns - 1) });

/** One loop run by Longhaul: the client answers each announced turn at once (client), or the executor does (executor). */
async function runLoop(h: Harness, mode: 'client' | 'executor', record: LoopRecord): Promise<void> {
  const body = {
    model: 'o3',
    input: 'Plan my trip to Oslo.',
    instructions: 'Use the tools.',
    tools: [weather],
    metadata: metadata(h.turns),
    max_turns: h.turns,
    callback_url: `${h.receiverUrl}/${mode}`,
    ...(mode === 'executor' ? { tool_executor: { url: h.executorUrl } } : {}),
  };
  const job = await api<JobView>(h.stack, 'POST', '/v1/jobs', body, 202);
  record.jobIds.push(job.id);
  record.status = job.status;
  const deadline = Date.now() + LOOP_TIMEOUT_MS;
  for (;;) {
    const event = await h.inbox.next(job.id, Math.max(0, deadline - Date.now()));
    if (!event) {
      record.status = 'timed out';
      return;
    }
    record.status = event.job.status;
    if (TERMINAL.has(event.job.status)) return;
    if (event.type !== 'job.requires_action' || mode !== 'client') continue;
    const calls = event.job.required_action?.tool_calls ?? [];
    const sentAt = Date.now();
    await api(h.stack, 'POST', `/v1/jobs/${job.id}/tool_outputs`, { tool_outputs: calls.map((c) => ({ call_id: c.call_id, output: `12 degrees at ${c.call_id}` })) }, 200);
    h.clientMarks.set(event.job.response_id ?? '', { announcedAtMs: event.atMs, answeredAtMs: sentAt });
  }
}

/** The client's own loop: a plain job per turn through /v1/responses, the next created on the previous one's job.completed. */
async function runBaselineChain(h: Harness, record: LoopRecord): Promise<void> {
  let input: string | Record<string, unknown>[] = 'Plan my trip to Oslo.';
  let previous: string | undefined;
  const deadline = Date.now() + LOOP_TIMEOUT_MS;
  let announced: Announcement | undefined;
  for (let turn = 1; turn <= h.turns; turn++) {
    const sentAt = Date.now();
    const body = {
      model: 'o3',
      input,
      instructions: 'Use the tools.',
      tools: [weather],
      metadata: metadata(h.turns),
      background: true,
      callback_url: `${h.receiverUrl}/baseline`,
      ...(previous ? { previous_response_id: previous } : {}),
    };
    const created = await api<{ id: string }>(h.stack, 'POST', '/v1/responses', body, 200, true);
    if (announced) h.clientMarks.set(announced.job.response_id ?? '', { announcedAtMs: announced.atMs, answeredAtMs: sentAt });
    record.jobIds.push(created.jobId);
    let event: Announcement | undefined;
    do event = await h.inbox.next(created.jobId, Math.max(0, deadline - Date.now()));
    while (event && !TERMINAL.has(event.job.status));
    if (!event) {
      record.status = 'timed out';
      return;
    }
    record.status = event.job.status;
    if (event.job.response_id) record.responseIds.push(event.job.response_id);
    if (event.job.status !== 'completed') return;
    const calls = (event.job.output ?? []).filter((item) => item.type === 'function_call');
    if (calls.length === 0) {
      if (turn < h.turns) record.status = `answered at turn ${turn} of ${h.turns}`;
      return;
    }
    if (turn === h.turns) {
      record.status = `still calling tools at turn ${turn}`;
      return;
    }
    input = calls.map((c) => ({ type: 'function_call_output', call_id: c.call_id, output: `12 degrees at ${c.call_id}` }));
    previous = created.id;
    announced = event;
  }
}

async function api<T>(stack: Stack, method: string, path: string, body: unknown, expected: number, withJobId?: false): Promise<T>;
async function api<T>(stack: Stack, method: string, path: string, body: unknown, expected: number, withJobId: true): Promise<T & { jobId: string }>;
async function api<T>(stack: Stack, method: string, path: string, body: unknown, expected: number, withJobId = false): Promise<T> {
  const res = await fetch(`${stack.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status !== expected) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  const parsed = JSON.parse(text) as T;
  if (!withJobId) return parsed;
  const jobId = res.headers.get('longhaul-job-id');
  if (!jobId) throw new Error(`${method} ${path} answered without a Longhaul-Job-Id header`);
  return { ...parsed, jobId };
}

interface Timing {
  created_at_ms: number;
  ends_at_ms: number;
  terminal_at_ms: number | null;
  previous_response_id: string | null;
}

async function measure(h: Harness, mode: Mode, loops: LoopRecord[], stats: SimStatsView, phaseCalls: number, usage: UsageReport): Promise<ModeResult> {
  // The loop modes' turns are on the job (GET /v1/jobs/{id}); the baseline recorded each turn's job's response.
  if (mode !== 'baseline') {
    await runPool(loops.length, 8, async (i) => {
      const loop = loops[i]!;
      if (loop.jobIds.length === 0) return;
      const job = await api<JobView>(h.stack, 'GET', `/v1/jobs/${loop.jobIds[0]}`, undefined, 200);
      loop.responseIds = (job.turns ?? []).map((t) => t.response_id).filter((id): id is string => id !== null);
    });
  }
  const timings = new Map<string, Timing>();
  const all = loops.flatMap((l) => l.responseIds);
  await runPool(all.length, 8, async (i) => {
    const res = await fetch(`${h.stack.simUrl}/sim/responses/${all[i]}/timing`);
    if (res.ok) timings.set(all[i]!, (await res.json()) as Timing);
  });

  const added: number[] = [];
  const toAnnounce: number[] = [];
  const own: number[] = [];
  const answerToCreate: number[] = [];
  let unchained = 0;
  let calls = 0;
  let turnsCompleted = 0;
  for (const loop of loops) {
    turnsCompleted += loop.responseIds.length;
    calls += loop.jobIds.reduce((n, id) => n + (stats.creates_by_job[id] ?? 0), 0);
    for (const id of loop.responseIds) calls += (stats.by_response[id]?.retrieves ?? 0) + (stats.by_response[id]?.cancels ?? 0);
    loop.responseIds.forEach((id, n) => {
      const next = loop.responseIds[n + 1];
      const done = timings.get(id);
      const created = next === undefined ? undefined : timings.get(next);
      if (!done || !created) return;
      if (created.previous_response_id !== id) unchained++;
      const doneAt = done.terminal_at_ms ?? done.ends_at_ms;
      added.push(created.created_at_ms - doneAt);
      const mark = mode === 'executor' ? h.executorMarks.get(`${loop.jobIds[0]} ${n + 1}`) : h.clientMarks.get(id);
      if (!mark) return;
      toAnnounce.push(mark.announcedAtMs - doneAt);
      own.push(mark.answeredAtMs - mark.announcedAtMs);
      answerToCreate.push(created.created_at_ms - mark.answeredAtMs);
    });
  }
  const firstError = loops.find((l) => l.status !== 'completed')?.error ?? loops.find((l) => l.status !== 'completed')?.status;
  return {
    mode,
    loops: loops.length,
    completed: loops.filter((l) => l.status === 'completed').length,
    turnsCompleted,
    callsPerLoop: calls / Math.max(1, loops.length),
    phaseCallsPerLoop: phaseCalls / Math.max(1, loops.length),
    added: summarize(added),
    toAnnounce: summarize(toAnnounce),
    own: summarize(own),
    answerToCreate: summarize(answerToCreate),
    unchained,
    usage,
    ...(firstError === undefined ? {} : { firstError }),
  };
}

/** The callback receiver (`/client`, `/executor`, `/baseline`) and the tool executor (`/tools`), one loopback server. */
async function startServers(inbox: Inbox, executorMarks: Map<string, TurnMarks>): Promise<{ receiverUrl: string; executorUrl: string; close(): Promise<void> }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const atMs = Date.now();
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400).end();
        return;
      }
      if (req.url === '/tools') {
        // The executor: every call answered at once.
        const call = body as { job_id: string; turn: number; tool_calls: ToolCall[] };
        const answer = JSON.stringify({ tool_outputs: call.tool_calls.map((c) => ({ call_id: c.call_id, output: `12 degrees at ${c.call_id}` })) });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }).end(answer);
        const key = `${call.job_id} ${call.turn}`;
        if (!executorMarks.has(key)) executorMarks.set(key, { announcedAtMs: atMs, answeredAtMs: Date.now() });
        return;
      }
      // A callback: acknowledged at once, then acted on (the answer does not wait for the 200).
      res.writeHead(200, { 'content-length': '0' }).end();
      const event = body as { type: string; data: JobView };
      inbox.push(String(req.headers['webhook-id'] ?? `${event.data.id} ${event.type} ${event.data.turn}`), { type: event.type, atMs, job: event.data });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    receiverUrl: url,
    executorUrl: `${url}/tools`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function rowsOf(results: ModeResult[], turns: number): string[][] {
  const rows: string[][] = [];
  const baseline = results.find((r) => r.mode === 'baseline');
  for (const r of results) {
    const label = `toolloop ${r.mode}${r.mode === 'baseline' ? ' (client-chained jobs)' : ''}`;
    const complete = r.completed === r.loops;
    const judged = r.mode !== 'baseline';
    rows.push([`${label}: loops completed`, `${r.completed}/${r.loops}`, '', complete ? '' : 'INCOMPLETE']);
    rows.push([
      `${label}: provider calls per turn`,
      fmt(r.callsPerLoop / turns, 2),
      judged ? '2.00 (floor)' : '',
      judged ? verdict(complete && r.callsPerLoop / turns <= 2 + 1e-9) : '',
    ]);
    rows.push([`${label}: added latency per turn p50 (ms)`, fmt(r.added.p50), '', '']);
    rows.push([
      `${label}: added latency per turn p99 (ms)`,
      fmt(r.added.p99),
      judged ? `<= ${TARGET_P99_MS}` : '',
      judged ? verdict(complete && r.added.p99 <= TARGET_P99_MS) : '',
    ]);
    rows.push([`${label}: added latency per turn max (ms)`, fmt(r.added.max), '', '']);
    if (judged && baseline) rows.push([`${label}: p50 / p99 vs baseline (ms)`, `${fmt(r.added.p50 - baseline.added.p50)} / ${fmt(r.added.p99 - baseline.added.p99)}`, '', '']);
  }
  return rows;
}
