/**
 * Longhaul's apps as real child processes, started from their TypeScript sources (`node
 * --conditions=@longhaul/source --import tsx <entrypoint>`), configured by environment only. Each
 * one's stdout and stderr go straight to a log file in the run directory (no CPU spent in the
 * orchestrator relaying them); the tail is shown when something goes wrong.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export const ENTRIES = {
  sim: 'apps/sim/src/index.ts',
  api: 'apps/api/src/index.ts',
  worker: 'apps/worker/src/index.ts',
} as const;
export type AppName = keyof typeof ENTRIES;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface AppProcess {
  name: string;
  kind: AppName;
  pid: number;
  logFile: string;
  /** Resolves when the process has exited. */
  exited: Promise<ExitStatus>;
  /** Null while running. */
  exitStatus(): ExitStatus | null;
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it exited. Idempotent. */
  stop(graceMs?: number): Promise<ExitStatus>;
  /** The last `bytes` of its log. */
  tail(bytes?: number): string;
}

export function spawnApp(kind: AppName, name: string, env: Record<string, string>, logFile: string): AppProcess {
  const fd = openSync(logFile, 'a');
  const child: ChildProcess = spawn(process.execPath, ['--conditions=@longhaul/source', '--import', 'tsx', ENTRIES[kind]], {
    cwd: ROOT,
    // LONGHAUL_PARENT_PID: an app exits by itself if the chaos run dies without stopping it.
    env: { ...process.env, LONGHAUL_PARENT_PID: String(process.pid), ...env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  let status: ExitStatus | null = null;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      status = { code, signal };
      resolve(status);
    });
  });
  let stopping: Promise<ExitStatus> | undefined;
  return {
    name,
    kind,
    pid: child.pid ?? -1,
    logFile,
    exited,
    exitStatus: () => status,
    signal: (signal) => {
      if (status === null) child.kill(signal);
    },
    stop: (graceMs = 15_000) =>
      (stopping ??= (async () => {
        if (status !== null) return status;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const result = await exited;
        clearTimeout(timer);
        return result;
      })()),
    tail: (bytes = 3_000) => readTail(logFile, bytes),
  };
}

export function readTail(file: string, bytes: number): string {
  try {
    const size = statSync(file).size;
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    const fd = openSync(file, 'r');
    try {
      readSync(fd, buffer, 0, length, size - length);
    } finally {
      closeSync(fd);
    }
    return buffer.toString('utf8');
  } catch {
    return '';
  }
}

export function describeExit(status: ExitStatus | null): string {
  if (!status) return 'running';
  return status.signal ? `killed by ${status.signal}` : `exit ${status.code}`;
}
