/**
 * What every scenario shares: its options, and how it concludes (wait for every accepted job to
 * be terminal, measure, and add the checks that hold in every scenario: every submitted job was
 * accepted, every accepted job reached the outcome the scenario expects, no process crashed, the
 * API never answered a 500, an unexpected 4xx or hung, one terminal callback event per job).
 *
 * A scenario's own checks come in two kinds: that its fault really happened, measured from
 * outside the code under test (the simulator's counters and request log, the callback receiver's
 * log, the load client's record, the orchestrator's own connections), so that a scenario whose
 * fault did not bite cannot pass; and that recovery held. Checks that depend on every job having
 * settled are computed in `settled`, after the wait.
 */
import type { Cluster, DeployOptions, Deployment, SimArrival } from './cluster.ts';
import type { Load } from './load.ts';
import { type Check, type ExpectedOutcome, type Measured, type ScenarioResult, type WrongOutcome, measure, waitForTerminal } from './report.ts';
import { describeExit } from './processes.ts';
import { sleep, unitRandom } from './time.ts';

export interface ScenarioOptions {
  /** The shortened variant that `npm test` runs. */
  fast: boolean;
  /** Jobs to drive through the scenario (default: the scenario's own, a few hundred in a full run). */
  jobs?: number;
  /** API and worker processes per deployment (default 2 and 3). */
  apis?: number;
  workers?: number;
  /** Progress lines. */
  log: (line: string) => void;
}

export interface Scenario {
  id: number;
  name: string;
  run(cluster: Cluster, options: ScenarioOptions): Promise<ScenarioResult>;
}

export interface Conclusion {
  load: Load;
  /** When the (last) fault ended; recovery is measured from it. Null: no recovery figure. */
  faultEndedAt: number | null;
  settleTimeoutMs: number;
  /** The status every accepted job must end in (per job, or one for all). Default `completed`. */
  expect?: ExpectedOutcome | ((jobId: string) => ExpectedOutcome);
  checks?: Check[];
  /** Checks and figures measured after the settle wait (every accepted job terminal, or the deadline). */
  settled?: (m: Measured) => Promise<{ checks?: Check[]; notes?: string[] }>;
  notes?: string[];
  /** A scenario-specific recovery figure, instead of "until every job was terminal". */
  recoveryMs?: number | null;
}

export function check(name: string, ok: boolean, detail: string): Check {
  return { name, ok, detail };
}

/** A check that the scenario's fault really happened (so recovery was exercised), measured from outside. */
export function faultCheck(name: string, ok: boolean, detail: string): Check {
  return { name: `fault injected: ${name}`, ok, detail };
}

/** `job_a failed, job_b in_progress, …` for the first few. */
export function describeWrongOutcomes(wrong: WrongOutcome[], limit = 5): string {
  const listed = wrong.slice(0, limit).map((w) => `${w.id} ${w.status}`);
  return `${listed.join(', ')}${wrong.length > limit ? `, … (${wrong.length - limit} more)` : ''}`;
}

/** The first few items of a list for a check's detail. */
export function firstFew<T>(items: T[], show: (item: T) => string, limit = 5): string {
  return `${items.slice(0, limit).map(show).join('; ')}${items.length > limit ? `; … (${items.length - limit} more)` : ''}`;
}

/** Deploy (with the run's process counts), run the scenario's body, and always stop the deployment. */
export async function withDeployment(
  cluster: Cluster,
  options: ScenarioOptions,
  deploy: DeployOptions,
  body: (deployment: Deployment) => Promise<ScenarioResult>,
): Promise<ScenarioResult> {
  const deployment = await cluster.deploy({ apis: options.apis ?? 2, workers: options.workers ?? 3, ...deploy });
  try {
    const result = await body(deployment);
    if (!result.passed) result.notes.push(`logs: ${cluster.dir}/logs/${deployment.name}/`);
    return result;
  } finally {
    await deployment.stop();
  }
}

export async function conclude(meta: { id: number; name: string }, deployment: Deployment, startedAt: number, c: Conclusion): Promise<ScenarioResult> {
  const accepted = c.load.accepted();
  const allTerminalAt = await waitForTerminal(deployment, accepted, c.settleTimeoutMs);
  const expected = c.expect ?? 'completed';
  const expectedFor = typeof expected === 'function' ? expected : () => expected;
  const m = await measure(deployment, accepted, expectedFor);
  const after = (await c.settled?.(m)) ?? {};
  const counts = c.load.counts;
  const crashed = deployment.crashed();
  const outcomeName = typeof expected === 'function' ? 'every accepted job reached its expected outcome' : `every accepted job ${expected}`;
  const checks: Check[] = [
    check('every submitted job was accepted (202)', accepted.length === c.load.submitted(), `${accepted.length} of ${c.load.submitted()} accepted`),
    check(outcomeName, m.wrongOutcomes.length === 0, `${m.wrongOutcomes.length} of ${accepted.length} did not: ${describeWrongOutcomes(m.wrongOutcomes)}`),
    ...(c.checks ?? []),
    ...(after.checks ?? []),
    check('no process crashed', crashed.length === 0, crashed.map((p) => `${p.name} ${describeExit(p.exitStatus())}`).join(', ')),
    check('the API never answered 500, an unexpected 4xx, or hung', counts.serverErrors + counts.unexpected + counts.hangs === 0, c.load.violations.join('; ')),
    check('one terminal callback event per job', m.duplicateTerminalCallbacks === 0, `${m.duplicateTerminalCallbacks} duplicate terminal callback events`),
  ];
  const notes = [...(c.notes ?? []), ...(after.notes ?? [])];
  if (m.wrongOutcomes.length > 0 || m.unacknowledged > 0)
    notes.push(`statuses of accepted jobs: ${JSON.stringify(m.byStatus)}; jobs in Postgres never acknowledged to the client: ${m.unacknowledged}`);
  const recoveryMs = c.recoveryMs !== undefined ? c.recoveryMs : c.faultEndedAt !== null && allTerminalAt !== null ? Math.max(0, allTerminalAt - c.faultEndedAt) : null;
  return {
    id: meta.id,
    name: meta.name,
    accepted: m.accepted,
    terminal: m.terminal,
    completed: m.completed,
    wrongOutcomes: m.wrongOutcomes.length,
    lost: m.lost,
    duplicateCreates: m.duplicateCreates,
    duplicateTerminalEvents: m.duplicateTerminalEvents,
    duplicateTerminalCallbacks: m.duplicateTerminalCallbacks,
    maxTimeToTerminalMs: m.maxTimeToTerminalMs,
    recoveryMs,
    checks,
    notes,
    durationMs: Date.now() - startedAt,
    passed: m.lost === 0 && m.wrongOutcomes.length === 0 && m.duplicateTerminalEvents === 0 && checks.every((x) => x.ok),
  };
}

/** What `killWorkers` did: when each kill happened, and victims that did not die of SIGKILL. */
export interface Kills {
  killedAt: number[];
  notKilledBySigkill: string[];
}

/**
 * SIGKILL a random live worker every 2–4 s until `untilMs` (after a 1.5 s start), starting a
 * replacement at once, as an orchestrator would. `salts` pick the victims and the pauses
 * (deterministic per scenario, see unitRandom).
 */
export async function killWorkers(d: Deployment, options: ScenarioOptions, untilMs: number, salts: { victim: number; pause: number }): Promise<Kills> {
  const killedAt: number[] = [];
  const notKilledBySigkill: string[] = [];
  await sleep(1_500);
  while (Date.now() < untilMs) {
    const live = d.workers.filter((w) => w.exitStatus() === null);
    const victim = live[Math.floor(unitRandom(killedAt.length, salts.victim) * live.length)];
    if (victim) {
      d.expectExit(victim);
      const at = Date.now();
      victim.signal('SIGKILL');
      const status = await victim.exited;
      if (status.signal !== 'SIGKILL') notKilledBySigkill.push(`${victim.name} exited ${JSON.stringify(status)}`);
      killedAt.push(at);
      options.log(`  SIGKILL ${victim.name} (${killedAt.length}); starting a replacement`);
      d.startWorker(false).catch((err: unknown) => options.log(`  could not start a replacement worker: ${String(err)}`));
    }
    await sleep(2_000 + unitRandom(killedAt.length, salts.pause) * 2_000);
  }
  return { killedAt, notKilledBySigkill };
}

/** From the provider's answer to the response id committed in Postgres, on a loaded 2-core machine. */
const COMMIT_SLACK_MS = 1_500;
/** A request written just before the kill may reach the simulator a moment after it. */
const ARRIVAL_SLACK_MS = 100;

/**
 * Per job: how many kills happened while one of its creates was in flight at the simulator (it
 * arrived at most `answerDelayMs` + the commit slack before the kill, or just after it): the one
 * window in which a create may be made twice.
 */
export function killsDuringCreates(creates: SimArrival[], kills: number[], answerDelayMs = 0): Map<string, number> {
  const byJob = new Map<string, number>();
  for (const killAt of kills) {
    const hit = new Set<string>();
    for (const c of creates) if (c.job_id && c.at_ms >= killAt - answerDelayMs - COMMIT_SLACK_MS && c.at_ms <= killAt + ARRIVAL_SLACK_MS) hit.add(c.job_id);
    for (const job of hit) byJob.set(job, (byJob.get(job) ?? 0) + 1);
  }
  return byJob;
}
