/**
 * A worker sharing its cores with the API yields them (WORKER_CPU_PRIORITY), seen from outside the
 * process as an operator would with `ps -L -o cls,ni`: every thread's scheduling policy and
 * niceness in /proc/<pid>/task, and the session's autogroup niceness.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { getPriority } from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from './harness.ts';
import { exited, workerTestEnv } from './worker-process.ts';

const linux = process.platform === 'linux';
const ROOT = new URL('..', import.meta.url).pathname;

let stack: Stack;
const children: ChildProcess[] = [];

beforeAll(async () => {
  stack = await startStack({ startWorker: false });
});
afterEach(async () => {
  for (const child of children.splice(0)) {
    child.kill('SIGKILL');
    await exited(child);
  }
});
afterAll(async () => {
  await stack.stop();
});

interface LogLine {
  msg: string;
  [key: string]: unknown;
}

/** A worker process on the test stack; its JSON log lines are collected. */
function startWorker(env: Record<string, string>, options: { detached?: boolean; nice?: number } = {}) {
  const node = [process.execPath, '--conditions=@longhaul/source', '--import', 'tsx', 'apps/worker/src/index.ts'];
  // `nice -n N node …`: the worker inherits niceness N, as from a launcher that lowered it already.
  const [command, ...args] = options.nice === undefined ? node : ['nice', '-n', String(options.nice), ...node];
  const child = spawn(command!, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
    env: { ...process.env, LONGHAUL_PARENT_PID: String(process.pid), ...workerTestEnv(stack), LOG_LEVEL: 'info', ...env },
  });
  children.push(child);
  const lines: LogLine[] = [];
  let partial = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const part of parts) {
      try {
        lines.push(JSON.parse(part) as LogLine);
      } catch {
        // Not a log line.
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  const waitForLine = async (match: (line: LogLine) => boolean, timeoutMs: number): Promise<LogLine> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = lines.find(match);
      if (found) return found;
      if (child.exitCode !== null) throw new Error(`worker exited (${child.exitCode}): ${stderr}`);
      if (Date.now() > deadline) throw new Error(`no such log line within ${timeoutMs} ms; got: ${lines.map((l) => l.msg).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { child, pid: child.pid!, lines, waitForLine };
}

/** Per thread: field 19 of /proc/<pid>/task/<tid>/stat is the niceness, field 41 the scheduling policy (counted from 1, the command name being field 2). */
function threads(pid: number): { nice: number; policy: number }[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return [{ nice: Number(fields[19 - 3]), policy: Number(fields[41 - 3]) }];
    } catch {
      return []; // a thread that ended meanwhile
    }
  });
}
const SCHED_OTHER = 0;
const SCHED_IDLE = 5;
const distinct = (values: number[]) => [...new Set(values)];

const autogroupEnabled = linux && existsSync('/proc/sys/kernel/sched_autogroup_enabled') && readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1';

describe.skipIf(!linux)('worker CPU priority', () => {
  it('low: every thread of the worker at niceness 10', { timeout: 30_000 }, async () => {
    const worker = startWorker({ WORKER_CPU_PRIORITY: 'low' });
    expect(await worker.waitForLine((l) => l.msg === 'worker cpu priority set', 15_000)).toMatchObject({ requested: 'low', policy: 'other', niceness: 10 });
    await worker.waitForLine((l) => l.msg === 'worker started', 15_000);
    // V8's helper threads, started before the worker's code ran, included.
    const all = threads(worker.pid);
    expect(all.length).toBeGreaterThan(4);
    expect(distinct(all.map((t) => t.nice))).toEqual([10]);
    expect(distinct(all.map((t) => t.policy))).toEqual([SCHED_OTHER]);
  });

  it('idle: every thread of the worker under SCHED_IDLE', { timeout: 30_000 }, async () => {
    const worker = startWorker({ WORKER_CPU_PRIORITY: 'idle' });
    expect(await worker.waitForLine((l) => l.msg === 'worker cpu priority set', 15_000)).toMatchObject({ requested: 'idle', policy: 'idle' });
    await worker.waitForLine((l) => l.msg === 'worker started', 15_000);
    const all = threads(worker.pid);
    expect(all.length).toBeGreaterThan(4);
    expect(distinct(all.map((t) => t.policy))).toEqual([SCHED_IDLE]);
    expect(distinct(all.map((t) => t.nice))).toEqual([19]);
  });

  it('normal (the default) keeps what the worker inherited, and a lower priority is never raised', { timeout: 30_000 }, async () => {
    const plain = startWorker({});
    await plain.waitForLine((l) => l.msg === 'worker started', 15_000);
    expect(plain.lines.some((l) => l.msg === 'worker cpu priority set')).toBe(false);
    expect(distinct(threads(plain.pid).map((t) => t.nice))).toEqual([getPriority(0)]);

    // Started at niceness 12 or more, `low` (10) leaves it there: raising a priority takes privileges.
    const inherited = Math.max(10, Math.min(19, getPriority(0) + 12));
    const niced = startWorker({ WORKER_CPU_PRIORITY: 'low' }, { nice: inherited - getPriority(0) });
    expect(await niced.waitForLine((l) => l.msg === 'worker cpu priority set', 15_000)).toMatchObject({ inherited, niceness: inherited, threads: 0 });
    await niced.waitForLine((l) => l.msg === 'worker started', 15_000);
    expect(distinct(threads(niced.pid).map((t) => t.nice))).toEqual([inherited]);
  });

  it.skipIf(!autogroupEnabled)(
    'a worker leading its own session (as npm start launches it) lowers its autogroup too; one sharing a session does not',
    { timeout: 30_000 },
    async () => {
      const ownSession = startWorker({ WORKER_CPU_PRIORITY: 'idle' }, { detached: true });
      await ownSession.waitForLine((l) => l.msg === 'worker started', 15_000);
      expect(readFileSync(`/proc/${ownSession.pid}/autogroup`, 'utf8')).toMatch(/ nice 19\s*$/);

      const before = readFileSync('/proc/self/autogroup', 'utf8');
      const shared = startWorker({ WORKER_CPU_PRIORITY: 'idle' });
      await shared.waitForLine((l) => l.msg === 'worker started', 15_000);
      expect(readFileSync(`/proc/${shared.pid}/autogroup`, 'utf8')).toBe(before);
    },
  );
});
