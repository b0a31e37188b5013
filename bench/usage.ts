/**
 * Resource accounting for a scenario: CPU time of every process involved (from /proc, so it is
 * real CPU, not profiler wall time inflated by preemption on a busy 2-core machine) and
 * Postgres transaction counts of the run's database. Divided by the number of jobs, it shows
 * what one job costs each component and so the CPU ceiling on this machine.
 *
 * Redis's figure is the whole server's (shared with anything else using it): an upper bound.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import type { Stack } from './stack.ts';
import { sleep } from './pool.ts';

/** Linux's USER_HZ: /proc reports CPU time in 1/100 s on every mainstream kernel. */
const CLOCK_TICKS_PER_SECOND = 100;

export interface UsageSnapshot {
  cpuMs: Record<string, number>;
  /** Per backend pid: pools open and close connections, so deltas are taken per process. */
  pgBackendMs: Map<number, number>;
  pg: { commits: number; inserted: number; updated: number };
  /** CPU time of the whole machine (every process) and the wall clock when taken. */
  machineMs: number;
  atMs: number;
}

/** Busy CPU time of the whole machine (all cores) from /proc/stat, ms; NaN off Linux. */
function machineCpuMs(): number {
  try {
    const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    return ((user! + nice! + system! + irq! + softirq! + steal!) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** CPU time (user + system) a process has used so far, or undefined when /proc has no such process. */
export function procCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ", field 3 (state) is index 0; utime (14) and stime (15) are 11 and 12.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/**
 * `settle`: Postgres backends publish their counters at most once a second and when idle, so a
 * closing snapshot reads the CPU figures at once and the transaction counts a little later.
 */
export async function snapshotUsage(stack: Stack, settle = false): Promise<UsageSnapshot> {
  const machineMs = machineCpuMs();
  const atMs = performance.now();
  const cpuMs: Record<string, number> = {};
  for (const child of stack.children) {
    const ms = procCpuMs(child.pid);
    if (ms !== undefined) cpuMs[child.name] = (cpuMs[child.name] ?? 0) + ms; // summed over processes of one kind
  }
  const { rows: backends } = await stack.pool.query<{ pid: number }>('select pid from pg_stat_activity where datname = current_database()');
  const pgBackendMs = new Map(backends.map((b) => [b.pid, procCpuMs(b.pid) ?? 0]));
  const info = await stack.redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  cpuMs['redis*'] = (field('used_cpu_user') + field('used_cpu_sys')) * 1000;
  const own = process.cpuUsage();
  cpuMs.bench = (own.user + own.system) / 1000;
  if (settle) await sleep(1_200);
  const { rows } = await stack.pool.query<{ commits: string; inserted: string; updated: string }>(
    'select xact_commit as commits, tup_inserted as inserted, tup_updated as updated from pg_stat_database where datname = current_database()',
  );
  const row = rows[0]!;
  return { cpuMs, pgBackendMs, machineMs, atMs, pg: { commits: Number(row.commits), inserted: Number(row.inserted), updated: Number(row.updated) } };
}

export interface UsageReport {
  /** CPU ms per unit (job or request), by component, plus `total`. */
  perUnit: Record<string, number>;
  /** Units per second the machine's cores could sustain at that CPU cost. */
  cpuCeiling: number;
  pgPerUnit: { commits: number; inserted: number; updated: number };
  /** Share of all cores busy over the interval, and the CPU other processes (not this run's) used per unit. */
  machineBusy: number;
  othersPerUnit: number;
}

export function usageBetween(before: UsageSnapshot, after: UsageSnapshot, units: number): UsageReport {
  const perUnit: Record<string, number> = {};
  let total = 0;
  for (const [name, ms] of Object.entries(after.cpuMs)) {
    const delta = (ms - (before.cpuMs[name] ?? 0)) / units;
    perUnit[name] = delta;
    total += delta;
  }
  let pgMs = 0;
  for (const [pid, ms] of after.pgBackendMs) pgMs += ms - (before.pgBackendMs.get(pid) ?? 0);
  perUnit.postgres = pgMs / units;
  total += perUnit.postgres;
  perUnit.total = total;
  const pgPerUnit = {
    commits: (after.pg.commits - before.pg.commits) / units,
    inserted: (after.pg.inserted - before.pg.inserted) / units,
    updated: (after.pg.updated - before.pg.updated) / units,
  };
  const machineMs = after.machineMs - before.machineMs;
  return {
    perUnit,
    cpuCeiling: total > 0 ? (cpus().length * 1000) / total : Number.NaN,
    pgPerUnit,
    machineBusy: machineMs / ((after.atMs - before.atMs) * cpus().length),
    // `total` counts the whole Redis server, so other users' Redis work is not in this figure.
    othersPerUnit: Math.max(0, machineMs / units - total),
  };
}

export function formatUsage(report: UsageReport, unit: string): string[] {
  const parts = Object.entries(report.perUnit).map(([name, ms]) => `${name} ${ms.toFixed(2)}`);
  const pg = report.pgPerUnit;
  return [
    `  CPU ms per ${unit}: ${parts.join(', ')} -> ceiling on ${cpus().length} cores ~${report.cpuCeiling.toFixed(0)} ${unit}s/s (*redis: whole server)`,
    `  Postgres per ${unit}: ~${pg.commits.toFixed(1)} transactions, ${pg.inserted.toFixed(1)} rows inserted, ${pg.updated.toFixed(1)} rows updated`,
    `  machine: ${(report.machineBusy * 100).toFixed(0)}% of ${cpus().length} cores busy; processes outside this run used ${report.othersPerUnit.toFixed(2)} ms CPU per ${unit}`,
  ];
}

export function loadLine(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** CPU per unit over several phases of one mode: the phases' figures averaged (every phase of a mode has nearly the same count). */
export function mergeUsage(reports: UsageReport[]): UsageReport {
  if (reports.length === 1) return reports[0]!;
  const mean = (pick: (r: UsageReport) => number) => reports.reduce((n, r) => n + pick(r), 0) / reports.length;
  const perUnit: Record<string, number> = {};
  for (const name of Object.keys(reports[0]!.perUnit)) perUnit[name] = mean((r) => r.perUnit[name] ?? 0);
  return {
    perUnit,
    cpuCeiling: mean((r) => r.cpuCeiling),
    pgPerUnit: { commits: mean((r) => r.pgPerUnit.commits), inserted: mean((r) => r.pgPerUnit.inserted), updated: mean((r) => r.pgPerUnit.updated) },
    machineBusy: mean((r) => r.machineBusy),
    othersPerUnit: mean((r) => r.othersPerUnit),
  };
}
