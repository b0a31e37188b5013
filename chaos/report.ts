/**
 * What a scenario reports, measured from Postgres (the source of truth) and the simulator:
 *
 * - outcome: every accepted job (a 202 was received) must reach the status its scenario expects
 *   (completed, unless the scenario makes another outcome correct); a job in any other status
 *   after the settle deadline, terminal or not, fails the scenario;
 * - lost: accepted − terminal once the settle deadline has passed;
 * - duplicate creates: Σ over jobs of max(0, creates − 1), from the simulator's per-job counts;
 * - duplicate terminal events: `job_events` rows into a terminal status beyond one per job (a
 *   terminal transition written twice); the same is checked for terminal callback events;
 * - max time-to-terminal: the longest `finished_at − created_at` of the run's jobs;
 * - recovery: from the end of the (last) fault until every accepted job was terminal.
 */
import { JOB_STATUSES, isTerminal } from '@longhaul/core';
import type { Deployment } from './cluster.ts';
import { seconds, sleep } from './time.ts';

export const TERMINAL_STATUSES = JOB_STATUSES.filter(isTerminal);

/** The status a job of a scenario must end in. */
export type ExpectedOutcome = (typeof JOB_STATUSES)[number];

/** An accepted job that did not end as expected: its status, or `absent` when Postgres has no such job. */
export interface WrongOutcome {
  id: string;
  expected: ExpectedOutcome;
  status: string;
}
const TERMINAL_EVENT_TYPES = TERMINAL_STATUSES.map((s) => `job.${s}`);

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface ScenarioResult {
  id: number;
  name: string;
  accepted: number;
  terminal: number;
  completed: number;
  /** Accepted jobs in another status than the scenario expects (terminal or not). */
  wrongOutcomes: number;
  lost: number;
  duplicateCreates: number;
  duplicateTerminalEvents: number;
  duplicateTerminalCallbacks: number;
  maxTimeToTerminalMs: number | null;
  recoveryMs: number | null;
  /** Scenario-specific checks; all must hold for the scenario to pass. */
  checks: Check[];
  /** Scenario-specific figures, printed under the summary line. */
  notes: string[];
  durationMs: number;
  passed: boolean;
}

/** Wait until every id is terminal in Postgres; the time it happened, or null at the deadline. */
export async function waitForTerminal(deployment: Deployment, ids: string[], timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { rows } = await deployment.pool.query<{ n: number }>('select count(*)::int as n from jobs where id = any($1) and status = any($2)', [ids, TERMINAL_STATUSES]);
      if ((rows[0]?.n ?? 0) >= ids.length) return Date.now();
    } catch {
      // Postgres may be down in the middle of a scenario: keep waiting.
    }
    if (Date.now() > deadline) return null;
    await sleep(200);
  }
}

export interface Measured {
  accepted: number;
  terminal: number;
  completed: number;
  lost: number;
  /** Accepted jobs not in their expected status, in acceptance order. */
  wrongOutcomes: WrongOutcome[];
  /** Jobs not accepted by the client but present in Postgres (a 202 that never arrived). */
  unacknowledged: number;
  byStatus: Record<string, number>;
  duplicateCreates: number;
  duplicateTerminalEvents: number;
  duplicateTerminalCallbacks: number;
  maxTimeToTerminalMs: number | null;
}

export async function measure(deployment: Deployment, accepted: string[], expected: (id: string) => ExpectedOutcome): Promise<Measured> {
  const db = deployment.pool;
  const { rows: jobRows } = await db.query<{ id: string; status: string }>('select id, status from jobs where id = any($1)', [accepted]);
  const statusOf = new Map(jobRows.map((r) => [r.id, r.status]));
  const byStatus: Record<string, number> = {};
  for (const r of jobRows) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  const terminal = TERMINAL_STATUSES.reduce((sum, s) => sum + (byStatus[s] ?? 0), 0);
  const wrongOutcomes: WrongOutcome[] = [];
  for (const id of accepted) {
    const status = statusOf.get(id) ?? 'absent';
    if (status !== expected(id)) wrongOutcomes.push({ id, expected: expected(id), status });
  }
  const { rows: extra } = await db.query<{ n: number }>('select count(*)::int as n from jobs where not (id = any($1))', [accepted]);
  const { rows: ttt } = await db.query<{ ms: number | null }>('select max(extract(epoch from finished_at - created_at) * 1000)::float8 as ms from jobs');
  const { rows: dupEvents } = await db.query<{ n: number }>(
    'select coalesce(sum(n - 1), 0)::int as n from (select job_id, count(*) as n from job_events where to_status = any($1) group by job_id) t',
    [TERMINAL_STATUSES],
  );
  const { rows: dupCallbacks } = await db.query<{ n: number }>(
    'select coalesce(sum(n - 1), 0)::int as n from (select job_id, count(*) as n from callback_events where type = any($1) and job_id is not null group by job_id) t',
    [TERMINAL_EVENT_TYPES],
  );
  const stats = await deployment.simStats();
  // A tool-call loop's job makes one create per turn, a job with fallbacks one per attempt (a
  // pipeline's step jobs included, which the client never submitted itself).
  const { rows: made } = await db.query<{ id: string; turn: number; attempt: number }>('select id, turn, attempt from jobs where id = any($1)', [
    Object.keys(stats.creates_by_job),
  ]);
  const expectedCreates = new Map(made.map((r) => [r.id, r.turn + r.attempt - 1]));
  const creates = Object.entries(stats.creates_by_job).map(([id, n]) => n - ((expectedCreates.get(id) ?? 1) - 1));
  return {
    accepted: accepted.length,
    terminal,
    completed: byStatus.completed ?? 0,
    lost: accepted.length - terminal,
    wrongOutcomes,
    unacknowledged: extra[0]?.n ?? 0,
    byStatus,
    duplicateCreates: creates.reduce((sum, n) => sum + Math.max(0, n - 1), 0),
    duplicateTerminalEvents: dupEvents[0]?.n ?? 0,
    duplicateTerminalCallbacks: dupCallbacks[0]?.n ?? 0,
    maxTimeToTerminalMs: ttt[0]?.ms ?? null,
  };
}

/** The one line a scenario prints. */
export function formatLine(r: ScenarioResult): string {
  return (
    `#${r.id} ${r.name}: accepted ${r.accepted}, terminal ${r.terminal}, completed ${r.completed}, not as expected ${r.wrongOutcomes}, lost ${r.lost}, ` +
    `duplicate creates ${r.duplicateCreates}, duplicate terminal events ${r.duplicateTerminalEvents}, ` +
    `max time-to-terminal ${seconds(r.maxTimeToTerminalMs)}, recovery ${seconds(r.recoveryMs)} — ${r.passed ? 'PASS' : 'FAIL'}`
  );
}

/** The details under the line: scenario figures, then any failed check. */
export function formatDetails(r: ScenarioResult): string[] {
  const failed = r.checks.filter((c) => !c.ok).map((c) => `FAILED ${c.name}: ${c.detail}`);
  return [...r.notes, ...failed];
}

/** The README table of a run. */
export function formatTable(results: ScenarioResult[]): string {
  const header = '| # | scenario | accepted | terminal | completed | not as expected | lost | duplicate creates | duplicate terminal events | max time-to-terminal | recovery |';
  const rule = '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const rows = results.map(
    (r) =>
      `| ${r.id} | ${r.name} | ${r.accepted} | ${r.terminal} | ${r.completed} | ${r.wrongOutcomes} | ${r.lost} | ${r.duplicateCreates} | ${r.duplicateTerminalEvents} | ${seconds(r.maxTimeToTerminalMs)} | ${seconds(r.recoveryMs)} |`,
  );
  return [header, rule, ...rows].join('\n');
}
