/**
 * Child processes of the benchmark: each app runs from its sources (`node
 * --conditions=@longhaul/source --import tsx <entry>`), configured by environment only, so the
 * simulator, the API and the worker use separate cores, with the settings `npm start` gives apps
 * sharing a machine (scripts/start-defaults.mjs). A child's output is drained into a small ring
 * buffer, shown only when something goes wrong.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { COLOCATED_ENV } from '../scripts/start-defaults.mjs';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export const ENTRIES = {
  sim: 'apps/sim/src/index.ts',
  api: 'apps/api/src/index.ts',
  worker: 'apps/worker/src/index.ts',
  'baseline-worker': 'bench/baseline-worker.ts',
} as const;
export type AppName = keyof typeof ENTRIES;

export interface Child {
  name: AppName;
  pid: number;
  /** Set once the process has exited. */
  exitCode(): number | string | null;
  /** Last few KB of stdout+stderr. */
  output(): string;
  /** Resolves with the first line of stdout that satisfies `match`. */
  waitForLine(match: (line: string) => boolean, timeoutMs: number): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

const TAIL_BYTES = 8_192;

export function spawnApp(name: AppName, env: Record<string, string>, nodeArgs: string[] = []): Child {
  const proc: ChildProcess = spawn(process.execPath, [...nodeArgs, '--conditions=@longhaul/source', '--import', 'tsx', ENTRIES[name]], {
    cwd: ROOT,
    // LONGHAUL_PARENT_PID: an app exits by itself if the bench dies without stopping it. The apps
    // share the machine's cores as with `npm start`, and get its settings for that (the worker's CPU
    // priority): what users get is what is measured; the bench's environment or --worker K=V wins.
    env: { ...COLOCATED_ENV[name as keyof typeof COLOCATED_ENV], ...process.env, LONGHAUL_PARENT_PID: String(process.pid), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  let exit: number | string | null = null;
  const lineWaiters = new Set<(line: string) => void>();
  let partial = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
  };
  proc.stdout!.on('data', (chunk: Buffer) => {
    keep(chunk);
    if (lineWaiters.size === 0) return;
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) for (const waiter of lineWaiters) waiter(line);
  });
  proc.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    proc.on('exit', (code, signal) => {
      exit = code ?? signal ?? 'unknown';
      resolve();
    });
  });

  let stopping: Promise<void> | undefined;
  return {
    name,
    pid: proc.pid ?? -1,
    exitCode: () => exit,
    output: () => tail,
    waitForLine: (match, timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`${name}: no matching output line within ${timeoutMs} ms\n${tail}`)), timeoutMs);
        const waiter = (line: string) => {
          if (match(line)) done(undefined, line);
        };
        const done = (err?: Error, line?: string) => {
          clearTimeout(timer);
          lineWaiters.delete(waiter);
          if (err) reject(err);
          else resolve(line!);
        };
        lineWaiters.add(waiter);
        void exited.then(() => done(new Error(`${name} exited (${exit}) before it was ready\n${tail}`)));
      }),
    stop: (graceMs = 10_000) =>
      (stopping ??= (async () => {
        if (exit !== null) return;
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      })()),
  };
}
