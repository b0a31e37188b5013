/**
 * Process orchestration for the chaos suite.
 *
 * A `Cluster` is one run: a temp directory holding our own Postgres and Redis (see servers.ts)
 * and every log. `cluster.deploy()` puts one Longhaul deployment on it for a scenario: a fresh
 * migrated database with one tenant, its own Redis key prefix, and the simulator, N API and M
 * worker processes, all time-scaled so minutes of production behaviour take seconds. Scenarios
 * then break things (kill, stop, restart) through the handles returned here.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createDb, createTenant, runMigrations } from '@longhaul/db';
import { QUEUE_KEYS, createQueues, queueCatalog, queueDepths, type Queues } from '@longhaul/queue';
import { type AppProcess, describeExit, spawnApp } from './processes.ts';
import { startTcpProxy, type TcpProxy } from './proxy.ts';
import { type PostgresServer, type RedisServer, freePort, startPostgres, startRedis, waitFor } from './servers.ts';

/** Worker knobs for every scenario: the production mechanisms, on a seconds-long clock. */
export const CHAOS_WORKER_ENV: Record<string, string> = {
  COMPLETION_MODE: 'hybrid',
  POLL_INITIAL_MS: '200',
  POLL_FACTOR: '2',
  POLL_MAX_MS: '1000',
  RETRY_BASE_MS: '100',
  RETRY_MAX_MS: '2000',
  // A crashed worker's work is retried within LOCK_DURATION_MS + STALLED_INTERVAL_MS (≈ 4.5 s).
  LOCK_DURATION_MS: '3000',
  STALLED_INTERVAL_MS: '1500',
  SWEEP_INTERVAL_MS: '500',
  SWEEP_OVERDUE_GRACE_MS: '2000',
  SAFETY_POLL_MS: '2000',
  CALLBACK_TIME_SCALE: '0.001',
  CALLBACK_TIMEOUT_MS: '5000',
  CALLBACK_ALLOWED_CIDRS: '127.0.0.0/8',
  PROVIDER_TIMEOUT_MS: '10000',
  SUBMIT_CONCURRENCY: '20',
  DATABASE_POOL_SIZE: '10',
  SHUTDOWN_TIMEOUT_MS: '5000',
  LONGHAUL_MIGRATE_ON_START: 'false',
  LOG_LEVEL: 'info',
};

export const CHAOS_API_ENV: Record<string, string> = {
  DATABASE_POOL_SIZE: '5',
  CALLBACK_ALLOWED_CIDRS: '127.0.0.0/8',
  SHUTDOWN_TIMEOUT_MS: '5000',
  LONGHAUL_MIGRATE_ON_START: 'false',
  LOG_LEVEL: 'info',
  // The chaos client is one tenant retrying hard through outages: the per-tenant request limit
  // (tested on its own) would turn its retries into 429s.
  API_RPM_LIMIT: '0',
};

/** SIM_TIME_SCALE 0.01: a job's `sim_duration_ms` of 100 000 (100 simulated seconds) takes 1 s. */
export const SIM_TIME_SCALE = 0.01;

export interface ClusterOptions {
  /** Keep the run directory (logs, Postgres data, Redis AOF) after `stop()`. */
  keep?: boolean;
}

export interface Cluster {
  dir: string;
  postgres: PostgresServer;
  redis: RedisServer;
  deploy(options: DeployOptions): Promise<Deployment>;
  /** Stop every deployment still running, Postgres and Redis; remove the run directory unless kept. */
  stop(options?: { keep?: boolean }): Promise<void>;
}

export interface DeployOptions {
  /** Names the database, the Redis prefix and the log directory. */
  name: string;
  apis?: number;
  workers?: number;
  workerEnv?: Record<string, string>;
  apiEnv?: Record<string, string>;
  simEnv?: Record<string, string>;
  /** Route the workers' provider traffic through a TCP proxy that can refuse connections. */
  providerProxy?: boolean;
  /** Which API processes the simulator sends its OpenAI webhooks to. Default the first. */
  webhooks?: 'first' | 'all';
}

export interface WorkerProcess extends AppProcess {
  /** The worker's /metrics, /healthz, /readyz. */
  opsUrl: string;
}

export interface Deployment {
  name: string;
  databaseUrl: string;
  /** The orchestrator's own connections: Postgres (checks) and Redis (queue inspection). */
  pool: pg.Pool;
  queues: Queues;
  prefix: string;
  apiKey: string;
  tenantId: string;
  apiUrls: string[];
  simUrl: string;
  proxy: TcpProxy | null;
  sim: AppProcess;
  apis: AppProcess[];
  workers: WorkerProcess[];
  /** Start one more worker process; `wait` until it answers /readyz. */
  startWorker(wait?: boolean): Promise<WorkerProcess>;
  /** Start API processes again on the ports they had (after they were stopped). */
  restartApis(): Promise<void>;
  /** Note that a process is being stopped on purpose (it is then not reported as crashed). */
  expectExit(process: AppProcess): void;
  /** Processes that exited without being asked to. */
  crashed(): AppProcess[];
  simConfig(patch: Record<string, unknown>): Promise<void>;
  simStats(): Promise<SimStatsView>;
  /** Every /v1 request the simulator received (arrival time on its clock, the status it answered), oldest first. */
  simRequestLog(): Promise<SimArrival[]>;
  /** Work items per queue in the `active` state (read from Redis). */
  activeWorkItems(): Promise<Record<string, number>>;
  /**
   * Per queue, how many worker processes are connected to consume it: BullMQ names each worker's
   * blocking connection, so this counts the connections a worker fetches work on. A worker whose
   * blocking connection never came back after a Redis outage is missing here.
   */
  consumersPerQueue(): Promise<Record<string, number>>;
  /** Log tails of every process, for a failure report. */
  diagnostics(): string;
  stop(): Promise<void>;
}

export interface SimStatsView {
  creates: number;
  rate_limited: number;
  errors: number;
  creates_by_job: Record<string, number>;
  /** By response id: when it reached its terminal state (ms since the epoch). */
  terminal_at_ms: Record<string, number>;
  webhooks: { sent: number; delivered: number; dropped: number; duplicated: number; failed_attempts: number };
}

/** One entry of the simulator's `GET /sim/request-log`. */
export interface SimArrival {
  at_ms: number;
  method: string;
  path: string;
  /** Null while the answer was still being written. */
  status: number | null;
  /** The Longhaul job a create names. */
  job_id: string | null;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'longhaul-chaos-'));
  chmodSync(dir, 0o755); // the postgres OS user must reach its data directory inside
  const deployments = new Set<Deployment>();
  let postgres: PostgresServer | undefined;
  let redis: RedisServer | undefined;
  const stopServers = async (keep = options.keep ?? false) => {
    await Promise.allSettled([...deployments].map((d) => d.stop()));
    if (postgres?.running()) await postgres.stop('immediate').catch(() => {});
    await redis?.stop('SIGKILL').catch(() => {});
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };
  try {
    [postgres, redis] = await Promise.all([startPostgres(dir), startRedis(dir)]);
  } catch (err) {
    await stopServers();
    throw err;
  }
  const pgServer = postgres;
  const redisServer = redis;
  let stopping: Promise<void> | undefined;
  return {
    dir,
    postgres: pgServer,
    redis: redisServer,
    async deploy(deployOptions) {
      const deployment = await deploy(dir, pgServer, redisServer, deployOptions);
      deployments.add(deployment);
      const stop = deployment.stop;
      deployment.stop = async () => {
        deployments.delete(deployment);
        await stop();
      };
      return deployment;
    },
    stop: (stopOptions = {}) => (stopping ??= stopServers(stopOptions.keep ?? options.keep)),
  };
}

async function deploy(dir: string, postgres: PostgresServer, redis: RedisServer, options: DeployOptions): Promise<Deployment> {
  const name = options.name.replace(/[^a-z0-9_]/gi, '_').toLowerCase();
  const logs = join(dir, 'logs', name);
  mkdirSync(logs, { recursive: true });

  // A fresh database, migrated once here (children skip migrations), with one tenant.
  const admin = new pg.Client({ connectionString: postgres.url('postgres') });
  await admin.connect();
  await admin.query(`drop database if exists "chaos_${name}" with (force)`);
  await admin.query(`create database "chaos_${name}"`);
  await admin.end();
  const databaseUrl = postgres.url(`chaos_${name}`);
  const setup = createDb({ connectionString: databaseUrl, max: 1 });
  await runMigrations(setup.db);
  const { apiKey, tenantId } = await createTenant(setup.db, `chaos ${name}`);
  await setup.close();

  const prefix = `chaos_${name}`;
  const webhookSecret = `whsec_${randomBytes(32).toString('base64')}`;
  const apiCount = options.apis ?? 2;
  // Every port of the deployment is chosen here, none left to the kernel (port 0), and no two
  // alike: a port is only free until someone binds it, and processes take seconds to boot, so a
  // metrics listener on port 0 (or a port handed out twice) could take an API's port and answer
  // its /readyz in its place.
  const taken = new Set<number>();
  const allocatePort = async (): Promise<number> => {
    for (;;) {
      const port = await freePort();
      if (taken.has(port)) continue;
      taken.add(port);
      return port;
    }
  };
  const apiPorts: number[] = [];
  const apiMetricsPorts: number[] = [];
  for (let i = 0; i < apiCount; i++) {
    apiPorts.push(await allocatePort());
    apiMetricsPorts.push(await allocatePort());
  }
  const apiUrls = apiPorts.map((port) => `http://127.0.0.1:${port}`);
  const simPort = await allocatePort();
  const simUrl = `http://127.0.0.1:${simPort}`;
  const proxy = options.providerProxy ? await startTcpProxy(simPort, await allocatePort()) : null;
  const providerUrl = `${proxy ? proxy.url : simUrl}/v1`;
  const hookTargets = (options.webhooks === 'all' ? apiUrls : apiUrls.slice(0, 1)).map((u) => `${u}/webhooks/openai`);

  const common = { DATABASE_URL: databaseUrl, REDIS_URL: redis.url, QUEUE_PREFIX: prefix };
  const expected = new Set<AppProcess>();
  const all: AppProcess[] = [];
  const counter = { api: 0, worker: 0 };

  const sim = spawnApp(
    'sim',
    'sim',
    {
      SIM_HOST: '127.0.0.1',
      SIM_PORT: String(simPort),
      SIM_TIME_SCALE: String(SIM_TIME_SCALE),
      SIM_LOG_LEVEL: 'warn',
      SIM_WEBHOOK_URLS: hookTargets.join(','),
      SIM_WEBHOOK_SECRET: webhookSecret,
      ...options.simEnv,
    },
    join(logs, 'sim.log'),
  );
  all.push(sim);

  const spawnApi = (i: number): AppProcess => {
    counter.api += 1;
    const n = counter.api;
    // Several APIs on one host: each with its metrics listener on a port of its own.
    const env = {
      ...CHAOS_API_ENV,
      ...common,
      HOST: '127.0.0.1',
      PORT: String(apiPorts[i]),
      API_METRICS_PORT: String(apiMetricsPorts[i]),
      OPENAI_WEBHOOK_SECRET: webhookSecret,
      ...options.apiEnv,
    };
    const p = spawnApp('api', `api-${n}`, env, join(logs, `api-${n}.log`));
    all.push(p);
    return p;
  };
  const spawnApis = () => apiPorts.map((_, i) => spawnApi(i));
  const apiReady = (p: AppProcess, url: string) => waitFor(`the API at ${url}`, async () => p.exitStatus() === null && (await fetch(`${url}/readyz`)).ok, 60_000, 200);

  const workers: WorkerProcess[] = [];
  const startWorker = async (wait = true): Promise<WorkerProcess> => {
    counter.worker += 1;
    const n = counter.worker;
    const port = await allocatePort();
    const env = { ...CHAOS_WORKER_ENV, ...common, OPENAI_BASE_URL: providerUrl, METRICS_HOST: '127.0.0.1', METRICS_PORT: String(port), ...options.workerEnv };
    const p: WorkerProcess = Object.assign(spawnApp('worker', `worker-${n}`, env, join(logs, `worker-${n}.log`)), { opsUrl: `http://127.0.0.1:${port}` });
    all.push(p);
    workers.push(p);
    if (wait) await waitFor(`${p.name} to be ready`, async () => p.exitStatus() === null && (await fetch(`${p.opsUrl}/readyz`)).ok, 60_000, 200);
    return p;
  };

  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4, connectionTimeoutMillis: 3_000 });
  pool.on('error', () => {}); // Postgres restarts are the point of some scenarios
  const queues = createQueues({ redisUrl: redis.url, prefix, role: 'producer', onError: () => {} });

  const deployment: Deployment = {
    name,
    databaseUrl,
    pool,
    queues,
    prefix,
    apiKey,
    tenantId,
    apiUrls,
    simUrl,
    proxy,
    sim,
    apis: [],
    workers,
    startWorker,
    async restartApis() {
      deployment.apis = spawnApis();
      await Promise.all(deployment.apis.map((p, i) => apiReady(p, apiUrls[i]!)));
    },
    expectExit: (p) => void expected.add(p),
    crashed: () => all.filter((p) => p.exitStatus() !== null && !expected.has(p)),
    async simConfig(patch) {
      const res = await fetch(`${simUrl}/sim/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(patch) });
      if (!res.ok) throw new Error(`POST /sim/config ${JSON.stringify(patch)}: ${res.status} ${await res.text()}`);
    },
    async simStats() {
      return (await (await fetch(`${simUrl}/sim/stats`)).json()) as SimStatsView;
    },
    async simRequestLog() {
      const log = (await (await fetch(`${simUrl}/sim/request-log`)).json()) as { data: SimArrival[]; dropped: number };
      if (log.dropped > 0) throw new Error(`the simulator dropped ${log.dropped} request-log entries: a check would read a partial log`);
      return log.data;
    },
    async activeWorkItems() {
      const depths = await queueDepths(queues);
      return Object.fromEntries(depths.filter((d) => d.state === 'active').map((d) => [d.queue, d.count]));
    },
    async consumersPerQueue() {
      const entries = await Promise.all(QUEUE_KEYS.map(async (key) => [queueCatalog[key].name, await queues.get(key).getWorkersCount()] as const));
      return Object.fromEntries(entries);
    },
    diagnostics: () => all.map((p) => `--- ${p.name} (pid ${p.pid}, ${describeExit(p.exitStatus())}) ${p.logFile}\n${p.tail(1_500)}`).join('\n'),
    async stop() {
      for (const p of all) expected.add(p);
      // Workers and APIs (they drain), then the simulator the workers were calling.
      await Promise.all([...workers, ...deployment.apis].map((p) => p.stop(8_000)));
      await sim.stop(5_000);
      await proxy?.close();
      await queues.close();
      await pool.end().catch(() => {});
    },
  };

  try {
    // Everything starts at once (two cores boot six processes faster together than in turn): the
    // workers only reach the simulator when they have work.
    deployment.apis = spawnApis();
    const workerCount = options.workers ?? 3;
    await Promise.all([
      waitFor('the simulator', async () => (await fetch(`${simUrl}/health`)).ok, 60_000, 200),
      ...deployment.apis.map((p, i) => apiReady(p, apiUrls[i]!)),
      ...Array.from({ length: workerCount }, () => startWorker(true)),
    ]);
  } catch (err) {
    const detail = deployment.diagnostics();
    await deployment.stop().catch(() => {});
    throw new Error(`${(err as Error).message}\n${detail}`);
  }
  return deployment;
}
