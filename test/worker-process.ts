/** A worker as a real child process (for SIGKILL / SIGTERM scenarios), wired to a test stack. */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Stack } from './harness.ts';

/** A test worker's settings on `stack`: poll mode, short locks, polls and sweeps, loopback callbacks. */
export function workerTestEnv(stack: Stack, redisUrl: string = stack.redisUrl): Record<string, string> {
  return {
    DATABASE_URL: stack.database.url,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: stack.prefix,
    OPENAI_BASE_URL: `${stack.simUrl}/v1`,
    LONGHAUL_MIGRATE_ON_START: 'false',
    COMPLETION_MODE: 'poll',
    POLL_INITIAL_MS: '100',
    POLL_MAX_MS: '500',
    LOCK_DURATION_MS: '2000',
    STALLED_INTERVAL_MS: '1000',
    SWEEP_INTERVAL_MS: '500',
    SWEEP_OVERDUE_GRACE_MS: '1500',
    CALLBACK_ALLOWED_CIDRS: '127.0.0.0/8',
    METRICS_PORT: '0',
  };
}

/** A spawned worker; a crash at start-up is reported on the test's stderr. */
export function spawnWorker(stack: Stack, redisUrl: string, env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, ['--conditions=@longhaul/source', '--import', 'tsx', 'apps/worker/src/index.ts'], {
    cwd: new URL('..', import.meta.url).pathname,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      // The worker exits by itself if the test process dies without stopping it.
      LONGHAUL_PARENT_PID: String(process.pid),
      ...workerTestEnv(stack, redisUrl),
      RETRY_BASE_MS: '100',
      LOG_LEVEL: 'silent',
      ...env,
    },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal === null) console.error(`[worker ${child.pid}] exited with ${code}: ${stderr}`);
  });
  return child;
}

export async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((r) => child.once('exit', r));
}
