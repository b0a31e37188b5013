/**
 * A Redis server of a test's own, on a free port, for scenarios that must not disturb other test
 * files sharing the machine's Redis (FLUSHALL, restarts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from '../chaos/servers.ts';

export interface PrivateRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** Start a redis-server on a free port, or on `port` (to bring a stopped one back where it was). */
export async function startPrivateRedis(args: string[] = [], port?: number): Promise<PrivateRedis> {
  port ??= await freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => 100, maxRetriesPerRequest: null });
  probe.on('error', () => {}); // refused until the server is up
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await probe.connect().catch(() => {});
      if ((await probe.ping()) === 'PONG') break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`redis-server did not start on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  probe.disconnect();
  return {
    url,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(); // already exited (a signal leaves exitCode null)
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
