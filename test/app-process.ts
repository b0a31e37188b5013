/**
 * Longhaul's apps as real child processes, run from source as `npm start` runs them (`node
 * --conditions=@longhaul/source --import tsx apps/<app>/src/index.ts`), for tests that judge what
 * an operator sees: exit codes, log lines, ports. Each is given the test's pid as
 * LONGHAUL_PARENT_PID, so it exits by itself if the test process dies without stopping it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { ROOT } from '../chaos/processes.ts';

export interface AppProcess {
  child: ChildProcess;
  pid: number;
  /** Every JSON log line written to stdout so far (pino: `msg`, `level`, `time`, `code`, ...). */
  logs: Array<Record<string, any>>;
  /** The last few KB of stdout and stderr, for failure messages. */
  tail(): string;
  /** Resolves with how the process ended (at once if it already has). */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Wait for a log line matching `match`; throws after `timeoutMs` or if the process exits first. */
  waitForLog(what: string, match: (line: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  alive(): boolean;
}

const ENTRIES = { api: 'apps/api/src/index.ts', worker: 'apps/worker/src/index.ts', cli: 'apps/cli/src/index.ts' } as const;

export function spawnApp(app: keyof typeof ENTRIES, env: Record<string, string>, args: string[] = []): AppProcess {
  const child = spawn(process.execPath, ['--conditions=@longhaul/source', '--import', 'tsx', ENTRIES[app], ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LONGHAUL_PARENT_PID: String(process.pid), LOG_LEVEL: 'info', ...env },
  });
  const logs: Array<Record<string, any>> = [];
  let output = '';
  let partial = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    output = (output + text).slice(-8000);
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line));
      } catch {
        // Not a log line (a CLI's output): kept in the tail only.
      }
    }
    for (const wake of waiters) wake();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.once('exit', () => {
    for (const wake of waiters) wake();
  });
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    pid: child.pid!,
    logs,
    tail: () => output,
    exited: () => exit,
    alive,
    waitForLog: (what, match, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = logs.find(match);
          if (found) done(() => resolve(found));
          else if (!alive()) done(() => reject(new Error(`${app} exited (${child.exitCode ?? child.signalCode}) before logging ${what}:\n${output}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no log line ${what} from ${app} within ${timeoutMs} ms:\n${output}`))), timeoutMs);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      }),
  };
}

/** Poll `probe` until it returns something truthy; throws `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 20_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(probe)
      .catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Wait until `url` answers 200 (the process started), failing at once if `app` exits first. */
export async function answering(url: string, app: AppProcess, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!app.alive()) throw new Error(`exited (${app.child.exitCode ?? app.child.signalCode}) before ${url} answered:\n${app.tail()}`);
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms:\n${app.tail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGKILL whatever is still running (a failed case must not leave processes behind). */
export async function killAll(apps: AppProcess[]): Promise<void> {
  for (const app of apps) if (app.alive()) app.child.kill('SIGKILL');
  await Promise.all(apps.map((a) => a.exited()));
}
