/**
 * The worker's CPU priority (WORKER_CPU_PRIORITY). On cores it shares with the API, Postgres and
 * Redis, the worker is the part that can wait: a job taken up a few milliseconds later costs
 * nothing, while a slow `POST /v1/jobs` is what a client sees. So the worker lowers its own
 * priority once at start, and only lowers it: raising it back takes privileges a worker should not
 * have.
 *
 * - `low`: niceness 10. The kernel still gives the worker about a tenth of a busy core, and lets it
 *   finish its time slice before a woken API thread runs.
 * - `idle` (Linux): the SCHED_IDLE policy. A core running only the worker counts as free for the
 *   scheduler, and any other thread that wakes up takes it at once, so the API never queues
 *   behind the worker; the worker still gets every cycle nothing else wants. Set with util-linux's
 *   `chrt`, which Node cannot do by itself; without it, niceness 19.
 *
 * On Linux `setpriority(PRIO_PROCESS, pid)` (and `chrt -p` without `-a`) changes one thread, not the
 * process: V8's helper threads (GC, compilation), started before any of our code ran, would keep
 * the old priority. So every thread is changed; threads started later (libuv's pool) inherit the
 * main thread's. With the kernel's autogroup scheduling (the default on most distributions),
 * niceness and policy only divide CPU among the processes of one session, and each session
 * competes as a whole: a worker that leads its own session (as `npm start` launches it) also lowers
 * its session's autogroup, which holds only itself. A worker sharing a session (started from a
 * shell, the bench, tests) leaves the autogroup alone, or it would slow its neighbours too. In a
 * container the CPU cgroup decides between containers instead (compose's `cpu_shares`).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

export const CPU_PRIORITIES = ['normal', 'low', 'idle'] as const;
export type CpuPriority = (typeof CPU_PRIORITIES)[number];

const LOW_NICENESS = 10;
const LOWEST_NICENESS = 19;

export interface CpuPriorityReport {
  requested: CpuPriority;
  /** The scheduling policy in force now: `idle` (SCHED_IDLE) or `other` (the default, with a niceness). */
  policy: 'idle' | 'other';
  /** The process's niceness before (what it inherited) and now. */
  inherited: number;
  niceness: number;
  /** Threads whose niceness was lowered. */
  threads: number;
  /** Whether its session's autogroup was lowered too (Linux, session leader only). */
  autogroup: boolean;
  /** Why `idle` fell back to niceness 19, if it did. */
  fallback?: string;
}

/** Lower this process's CPU priority to `requested`; never raises it. */
export function lowerCpuPriority(requested: CpuPriority): CpuPriorityReport {
  const inherited = getPriority(0);
  const report: CpuPriorityReport = { requested, policy: 'other', inherited, niceness: inherited, threads: 0, autogroup: false };
  if (requested === 'normal') return report;
  if (requested === 'idle' && process.platform === 'linux') {
    const failure = setIdlePolicy();
    if (failure === undefined) report.policy = 'idle';
    else report.fallback = failure;
  }
  // Under SCHED_IDLE niceness no longer counts, but is lowered all the same: it is what `ps`
  // shows, and what the autogroup gets.
  const niceness = requested === 'low' ? LOW_NICENESS : LOWEST_NICENESS;
  if (niceness > inherited) report.threads = lowerNiceness(niceness);
  report.niceness = getPriority(0);
  report.autogroup = process.platform === 'linux' && niceness > inherited && leadsOwnSession() && setAutogroupNice(niceness);
  return report;
}

/** Every thread of this process to `niceness`; returns how many were changed. */
function lowerNiceness(niceness: number): number {
  if (process.platform !== 'linux') {
    setPriority(0, niceness);
    return 1;
  }
  let threads = 0;
  for (const tid of readdirSync('/proc/self/task').map(Number)) {
    try {
      if (getPriority(tid) >= niceness) continue;
      setPriority(tid, niceness);
      threads++;
    } catch (err) {
      // A helper thread that ended between the listing and here.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  return threads;
}

/** SCHED_IDLE for every thread (`chrt --all-tasks --idle -p 0 <pid>`); the reason on failure. */
function setIdlePolicy(): string | undefined {
  const result = spawnSync('chrt', ['--all-tasks', '--idle', '-p', '0', String(process.pid)], { encoding: 'utf8', timeout: 5_000 });
  if (result.error) return `chrt: ${result.error.message}`;
  if (result.status !== 0) return `chrt exited ${result.status ?? result.signal}: ${result.stderr.trim()}`;
  return undefined;
}

/** Field 6 of /proc/self/stat is the session id (fields after the parenthesised command name). */
function leadsOwnSession(): boolean {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[3]) === process.pid;
}

/** False where the kernel has no autogroups (or they are off), or the write was refused. */
function setAutogroupNice(niceness: number): boolean {
  try {
    if (readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() !== '1') return false;
    writeFileSync('/proc/self/autogroup', String(niceness));
    return true;
  } catch {
    return false;
  }
}
