/**
 * What every scenario shares: its options, and how it concludes (wait for every accepted job to
 * be terminal, measure, and add the checks that hold in every scenario: no process crashed, the
 * API never answered a 500, an unexpected 4xx or hung, one terminal callback event per job).
 */
import type { Cluster, DeployOptions, Deployment } from './cluster.ts';
import type { Load } from './load.ts';
import { type Check, type ScenarioResult, measure, waitForTerminal } from './report.ts';
import { describeExit } from './processes.ts';

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
  checks?: Check[];
  notes?: string[];
  /** A scenario-specific recovery figure, instead of "until every job was terminal". */
  recoveryMs?: number | null;
}

export function check(name: string, ok: boolean, detail: string): Check {
  return { name, ok, detail };
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
  const m = await measure(deployment, accepted);
  const counts = c.load.counts;
  const crashed = deployment.crashed();
  const checks: Check[] = [
    ...(c.checks ?? []),
    check('no process crashed', crashed.length === 0, crashed.map((p) => `${p.name} ${describeExit(p.exitStatus())}`).join(', ')),
    check('the API never answered 500, an unexpected 4xx, or hung', counts.serverErrors + counts.unexpected + counts.hangs === 0, c.load.violations.join('; ')),
    check('one terminal callback event per job', m.duplicateTerminalCallbacks === 0, `${m.duplicateTerminalCallbacks} duplicate terminal callback events`),
  ];
  const notes = [...(c.notes ?? [])];
  if (m.lost > 0 || m.unacknowledged > 0)
    notes.push(`statuses of accepted jobs: ${JSON.stringify(m.byStatus)}; jobs in Postgres never acknowledged to the client: ${m.unacknowledged}`);
  const recoveryMs = c.recoveryMs !== undefined ? c.recoveryMs : c.faultEndedAt !== null && allTerminalAt !== null ? Math.max(0, allTerminalAt - c.faultEndedAt) : null;
  return {
    id: meta.id,
    name: meta.name,
    accepted: m.accepted,
    terminal: m.terminal,
    completed: m.completed,
    lost: m.lost,
    duplicateCreates: m.duplicateCreates,
    duplicateTerminalEvents: m.duplicateTerminalEvents,
    duplicateTerminalCallbacks: m.duplicateTerminalCallbacks,
    maxTimeToTerminalMs: m.maxTimeToTerminalMs,
    recoveryMs,
    checks,
    notes,
    durationMs: Date.now() - startedAt,
    passed: m.lost === 0 && m.duplicateTerminalEvents === 0 && checks.every((x) => x.ok),
  };
}
