/**
 * An isolated Longhaul deployment for one benchmark run: a fresh database cloned from the
 * migrated template, a unique Redis key prefix, and the simulator, API and worker as separate
 * child processes on free ports. `stop()` kills the children, drops the database and deletes the
 * prefix's Redis keys; `stopAllStacks()` does the same for every live stack (Ctrl-C, crashes).
 */
import { randomBytes } from 'node:crypto';
import { Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '@longhaul/db/testing';
import { queueCatalog } from '@longhaul/queue';
import { spawnApp, type Child } from './children.ts';
import { sleep } from './pool.ts';
import { freePort } from '../chaos/servers.ts';

/** Where Postgres (any database the role can connect to) and Redis are. */
export function servicesFromEnv(env: NodeJS.ProcessEnv = process.env): { databaseBaseUrl: string; redisUrl: string } {
  return {
    databaseBaseUrl: env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  };
}

export interface StackOptions {
  /** Worker knobs (SUBMIT_CONCURRENCY, POLL_INITIAL_MS, ...), passed as environment variables. */
  workerEnv: Record<string, string>;
  /** Extra node flags for every child, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  /** Extra environment of the simulator (e.g. SIM_TIME_SCALE) and of the API (e.g. OPENAI_WEBHOOK_SECRET). */
  simEnv?: Record<string, string>;
  apiEnv?: Record<string, string>;
  /** Redis prefix kind, for telling runs apart (default `e2e`). */
  kind?: string;
  /** Worker processes (default 1). */
  workers?: number;
  /** LOG_LEVEL of the API and the worker (default `warn`: the scenarios measure the pipeline, not logging). */
  logLevel?: string;
}

/** The first child that exited (a crash: children only stop when the stack stops them). */
export function deadChild(stack: Pick<Stack, 'children'>): Child | undefined {
  return stack.children.find((c) => c.exitCode() !== null);
}

export interface Stack {
  apiUrl: string;
  /** The simulator's base URL (the OpenAI base URL is `${simUrl}/v1`; control endpoints under /sim). */
  simUrl: string;
  apiKey: string;
  prefix: string;
  database: TestDatabase;
  /** A small pool on the run's database, for the benchmark's own queries. */
  pool: pg.Pool;
  /** The benchmark's own Redis connection (cleanup, worker discovery, INFO). */
  redis: Redis;
  children: Child[];
  /** Stop the worker child (drains in-flight work); the API and simulator keep running. */
  stopWorker(): Promise<void>;
  stop(): Promise<void>;
}

const pendingCleanups = new Set<() => Promise<unknown>>();

/** Register what must run if the benchmark is interrupted; call the returned function once it ran normally. */
export function trackCleanup(cleanup: () => Promise<unknown>): () => void {
  pendingCleanups.add(cleanup);
  return () => pendingCleanups.delete(cleanup);
}

/** Run every registered cleanup (Ctrl-C, crashes): stacks, baseline prefixes, ops databases. */
export async function runPendingCleanups(): Promise<void> {
  await Promise.allSettled([...pendingCleanups].map((cleanup) => cleanup()));
}

export function uniquePrefix(kind: string): string {
  return `lhbench_${kind}_${randomBytes(5).toString('hex')}`;
}

/** Remove every Redis key of a queue prefix. */
export async function deletePrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** Poll `check` every 100 ms until it answers true; fail early if a child died. */
async function waitUntil(what: string, check: () => Promise<boolean>, children: Child[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = children.find((c) => c.exitCode() !== null);
    if (dead) throw new Error(`${dead.name} exited (${dead.exitCode()}) while waiting for ${what}\n${dead.output()}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${children.map((c) => `--- ${c.name}\n${c.output()}`).join('\n')}`);
    await sleep(100);
  }
}

const httpOk = (url: string) => async () => (await fetch(url)).ok;

export async function startStack(options: StackOptions): Promise<Stack> {
  const { databaseBaseUrl, redisUrl } = servicesFromEnv();
  const database = await createTestDatabase(databaseBaseUrl);
  const prefix = uniquePrefix(options.kind ?? 'e2e');
  const apiKey = `lh_bench_${randomBytes(16).toString('hex')}`;
  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const children: Child[] = [];
  const nodeArgs = options.nodeArgs ?? [];
  const common = {
    DATABASE_URL: database.url,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: options.logLevel ?? 'warn',
    LONGHAUL_MIGRATE_ON_START: 'false',
    SHUTDOWN_TIMEOUT_MS: '5000',
  };

  let stopping: Promise<void> | undefined;
  const stack: Stack = {
    apiUrl: '',
    simUrl: '',
    apiKey,
    prefix,
    database,
    pool,
    redis,
    children,
    stopWorker: async () => {
      await Promise.all(children.filter((c) => c.name === 'worker').map((c) => c.stop()));
    },
    stop: () =>
      (stopping ??= (async () => {
        // Worker first (it drains), then the API, then the simulator the worker was calling.
        for (const name of ['worker', 'api', 'sim']) await Promise.all(children.filter((c) => c.name === name).map((c) => c.stop()));
        await pool.end().catch(() => {});
        const results = await Promise.allSettled([database.drop(), deletePrefix(redis, prefix)]);
        redis.disconnect();
        untrack();
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      })()),
  };
  const untrack = trackCleanup(() => stack.stop());

  try {
    const sim = spawnApp('sim', { SIM_PORT: '0', SIM_HOST: '127.0.0.1', SIM_LOG_LEVEL: 'info', SIM_TIME_SCALE: '1', ...options.simEnv }, nodeArgs);
    children.push(sim);
    const listening = await sim.waitForLine((line) => line.includes('"simulator listening"'), 30_000);
    const simUrl = (JSON.parse(listening) as { url: string }).url;
    stack.simUrl = simUrl;

    const apiPort = await freePort();
    // One bench tenant sends thousands of requests a minute: the per-tenant request limit is off
    // here (it has its own tests), or the benches would measure 429s. API_RPM_LIMIT in the
    // environment (e.g. a huge limit) measures what counting costs.
    children.push(
      spawnApp(
        'api',
        // API_METRICS_PORT 0: the API's metrics listener on any free port (9465 may be taken).
        {
          ...common,
          HOST: '127.0.0.1',
          PORT: String(apiPort),
          API_METRICS_PORT: '0',
          LONGHAUL_BOOTSTRAP_API_KEY: apiKey,
          API_RPM_LIMIT: process.env.API_RPM_LIMIT ?? '0',
          ...options.apiEnv,
        },
        nodeArgs,
      ),
    );
    // METRICS_PORT 0: the worker's probe/metrics server on any free port (9464 may be taken).
    for (let i = 0; i < (options.workers ?? 1); i++)
      children.push(spawnApp('worker', { ...common, OPENAI_BASE_URL: `${simUrl}/v1`, METRICS_PORT: '0', ...options.workerEnv }, nodeArgs));
    stack.apiUrl = `http://127.0.0.1:${apiPort}`;

    await waitUntil('the API', httpOk(`${stack.apiUrl}/healthz`), children);
    await waitUntil('the worker', workersRegistered(redis, prefix), children);
    return stack;
  } catch (err) {
    await stack.stop().catch(() => {});
    throw err;
  }
}

/** True once a BullMQ worker consumes both the submit and the poll queue of `prefix`. */
function workersRegistered(redis: Redis, prefix: string): () => Promise<boolean> {
  return async () => {
    const queues = [queueCatalog.submit.name, queueCatalog.poll.name].map((name) => new Queue(name, { connection: redis as ConnectionOptions, prefix }));
    try {
      const counts = await Promise.all(queues.map((q) => q.getWorkersCount()));
      return counts.every((n) => n > 0);
    } finally {
      await Promise.all(queues.map((q) => q.close()));
    }
  };
}
