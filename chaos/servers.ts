/**
 * The chaos run's own Postgres and Redis, on spare ports under one temp directory, so scenarios
 * can stop, restart and FLUSHALL them without touching anything else on the machine.
 *
 * - Postgres: `initdb` + `pg_ctl` from the newest installed server (or `PG_BIN`), trust auth on
 *   127.0.0.1 only. Run as the `postgres` OS user when we are root (the server refuses root).
 *   `fsync=off`: a scenario restarts the server *process*; the OS page cache survives that, so no
 *   committed row can be lost by it (it would on a power cut, which no scenario simulates).
 * - Redis: configured as the README recommends for BullMQ: AOF with `appendfsync everysec` and
 *   `maxmemory-policy noeviction`. A restart reuses the same port and data directory, so the AOF
 *   is replayed, as it would be in production.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { chownSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { sleep } from './time.ts';

const execFileAsync = promisify(execFile);

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Poll `check` until it resolves true, or throw `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

const asRoot = process.getuid?.() === 0;

/**
 * Run a Postgres tool as the `postgres` user when we are root. Asynchronous, so the scenario's
 * clients keep running (and timing) while the server stops or starts. Throws with its output.
 */
async function runPgTool(bin: string, args: string[]): Promise<void> {
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  try {
    await execFileAsync(cmd, argv, { encoding: 'utf8', timeout: 120_000 });
  } catch (err) {
    const e = err as { code?: number; stderr?: string; stdout?: string; message: string };
    throw new Error(`${bin} ${args.join(' ')} failed (${e.code}): ${e.stderr || e.stdout || e.message}`);
  }
}

/** The directory holding initdb/pg_ctl: PG_BIN, else the newest /usr/lib/postgresql/<v>/bin. */
export function postgresBinDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PG_BIN) return env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error('no Postgres server found under /usr/lib/postgresql; install postgresql or set PG_BIN to the directory holding initdb and pg_ctl');
  return join(root, versions[0], 'bin');
}

export interface PostgresServer {
  port: number;
  /** Connection URL of `database` (superuser `postgres`, trust auth). */
  url(database: string): string;
  /** `pg_ctl stop`: `fast` disconnects clients and shuts down cleanly, `immediate` is a crash. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Start again on the same port and data directory. */
  start(): Promise<void>;
  running(): boolean;
}

export async function startPostgres(dir: string): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const data = join(dir, 'pgdata');
  mkdirSync(data, { recursive: true, mode: 0o700 });
  if (asRoot) chownSync(data, uid('postgres'), gid('postgres'));
  await runPgTool(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const port = await freePort();
  const options = [
    `-p ${port}`,
    `-k ${data}`,
    "-c listen_addresses='127.0.0.1'",
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c max_connections=400',
    '-c log_min_messages=warning',
  ].join(' ');
  let running = false;
  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  const server: PostgresServer = {
    port,
    url,
    running: () => running,
    async start() {
      await runPgTool(join(bin, 'pg_ctl'), ['-D', data, '-l', join(data, 'server.log'), '-w', '-t', '60', '-o', options, 'start']);
      running = true;
      await waitFor(
        `Postgres on ${port}`,
        async () => {
          const client = new pg.Client({ connectionString: url('postgres') });
          try {
            await client.connect();
            await client.query('select 1');
            return true;
          } finally {
            await client.end().catch(() => {});
          }
        },
        30_000,
      );
    },
    async stop(mode = 'fast') {
      await runPgTool(join(bin, 'pg_ctl'), ['-D', data, '-m', mode, '-w', '-t', '60', 'stop']);
      running = false;
    },
  };
  await server.start();
  return server;
}

function idOf(flag: '-u' | '-g', user: string): number {
  const out = spawnSync('id', [flag, user], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`no '${user}' OS user to run Postgres as (we are root, and Postgres refuses to run as root)`);
  return Number(out.stdout.trim());
}
const uid = (user: string) => idOf('-u', user);
const gid = (user: string) => idOf('-g', user);

export interface RedisServer {
  port: number;
  url: string;
  /** SIGTERM: Redis fsyncs its AOF and exits. SIGKILL: a crash (up to 1 s of writes lost). */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Start again on the same port and directory (the AOF is replayed). */
  start(): Promise<void>;
  flushAll(): Promise<void>;
  running(): boolean;
}

export async function startRedis(dir: string): Promise<RedisServer> {
  const data = join(dir, 'redis');
  mkdirSync(data, { recursive: true });
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    data,
    '--save',
    '',
    '--appendonly',
    'yes',
    '--appendfsync',
    'everysec',
    '--maxmemory-policy',
    'noeviction',
    '--logfile',
    join(data, 'redis.log'),
  ];
  let child: ChildProcess | null = null;
  const ping = async () => {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000 });
    probe.on('error', () => {});
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } finally {
      probe.disconnect();
    }
  };
  const server: RedisServer = {
    port,
    url,
    running: () => child !== null,
    async start() {
      child = spawn('redis-server', args, { stdio: 'ignore' });
      const started = child;
      started.once('exit', () => {
        if (child === started) child = null;
      });
      await waitFor(`Redis on ${port}`, ping, 30_000, 50);
    },
    async stop(signal = 'SIGTERM') {
      const running = child;
      if (!running) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill(signal);
      await exited;
      child = null;
    },
    async flushAll() {
      const client = new Redis(url, { maxRetriesPerRequest: 1 });
      try {
        await client.flushall();
      } finally {
        client.disconnect();
      }
    },
  };
  await server.start();
  return server;
}
