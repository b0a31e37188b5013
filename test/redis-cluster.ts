/**
 * A real Redis Cluster of a test's own: three masters (no replicas) on free loopback ports, each
 * a `redis-server --cluster-enabled yes` with its node file in a temporary directory, joined by
 * `redis-cli --cluster create`. Torn down (processes killed, directory removed) by `stop()`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from '../chaos/servers.ts';

export interface LocalRedisCluster {
  /** One seed node, as REDIS_URL names it (`redis://[:password@]127.0.0.1:<port>`). */
  url: string;
  ports: number[];
  /** A plain connection to each master (CLUSTER KEYSLOT, SCAN of that node alone). */
  masters: Redis[];
  /** The master serving `slot`. */
  masterForSlot(slot: number): Promise<Redis>;
  stop(): Promise<void>;
}

const run = promisify(execFile);

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`redis cluster: ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface RedisClusterOptions {
  /** Masters (default 3). */
  masters?: number;
  /** `requirepass` (and `masterauth`) of every node; the url then carries it. */
  password?: string;
}

export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<LocalRedisCluster> {
  const masterCount = options.masters ?? 3;
  const auth = options.password === undefined ? [] : ['--requirepass', options.password, '--masterauth', options.password];
  const dir = await mkdtemp(join(tmpdir(), 'longhaul-cluster-'));
  const children: ChildProcess[] = [];
  const masters: Redis[] = [];
  const ports: number[] = [];
  const stop = async () => {
    for (const m of masters) m.disconnect();
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masterCount; i++) {
      // The cluster bus port is named too: port + 10000 (Redis's default) may be out of range.
      const [port, busPort] = [await freePort(), await freePort()];
      ports.push(port);
      // biome-ignore format: one redis-server option per pair
      const args = [
        '--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir, ...auth,
      ];
      children.push(spawn('redis-server', args, { stdio: 'ignore' }));
      const master = new Redis(port, '127.0.0.1', { password: options.password, retryStrategy: () => 50, maxRetriesPerRequest: null });
      master.on('error', () => {}); // refused until the server is up
      masters.push(master);
    }
    await Promise.all(masters.map((m, i) => waitUntil(`node ${ports[i]} did not answer PING`, async () => (await m.ping()) === 'PONG')));
    const cliAuth = options.password === undefined ? [] : ['--no-auth-warning', '-a', options.password];
    await run('redis-cli', [...cliAuth, '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    const clusterOk = async (m: Redis) => {
      const info = await m.cluster('INFO');
      return /cluster_state:ok/.test(info) && new RegExp(`cluster_known_nodes:${masterCount}\\b`).test(info) && /cluster_slots_ok:16384\b/.test(info);
    };
    await Promise.all(masters.map((m, i) => waitUntil(`node ${ports[i]} did not report cluster_state:ok`, () => clusterOk(m))));
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `redis://${options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`}127.0.0.1:${ports[0]}`,
    ports,
    masters,
    async masterForSlot(slot) {
      const ranges = await masters[0]!.cluster('SLOTS');
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1];
      const master = masters[ports.indexOf(Number(owner))];
      if (!master) throw new Error(`no master serves slot ${slot}`);
      return master;
    },
    stop,
  };
}
