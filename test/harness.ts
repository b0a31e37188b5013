/**
 * An isolated Longhaul stack for one test file: its own database (cloned from the migrated
 * template), its own Redis key prefix, a simulator on a random port, the API on a random port and
 * an in-process worker. Everything is real; nothing is mocked.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Redis } from 'ioredis';
import { createServer, createStreamHub, type ApiConfig } from '@longhaul/api';
import { createAddressPolicy } from '@longhaul/callbacks';
import { createDb, createTenant, type DbHandle } from '@longhaul/db';
import { createTestDatabase, type TestDatabase } from '@longhaul/db/testing';
import { createProvider } from '@longhaul/provider';
import { Cluster } from 'ioredis';
import { type RedisClient, createJobStreams, createQueues, createRedis, type Queues } from '@longhaul/queue';
import { createLogger, type LoggerConfig } from '@longhaul/runtime';
import { DEFAULT_MODEL_PRICES } from '@longhaul/core';
import { Registry, callbackAttemptObserver, createMetrics, type Metrics } from '@longhaul/metrics';
import { createProviderObserver } from '@longhaul/worker/provider-observer';
import { createSimServer, type ListeningSim, type SimOptions } from '@longhaul/sim';
import { createWorker, type LonghaulWorker, type WorkerConfig } from '@longhaul/worker';
import { type ApiExchange, assertContract } from './contract.ts';
import { testDatabaseBaseUrl, testRedisUrl } from './env.ts';

export const FAST_WORKER_CONFIG: WorkerConfig = {
  submitConcurrency: 20,
  pollConcurrency: 50,
  cancelConcurrency: 10,
  webhookConcurrency: 20,
  completionMode: 'poll',
  poll: { initialMs: 50, factor: 2, maxMs: 400 },
  retry: { baseMs: 50, maxMs: 500, maxAttempts: 20, maxElapsedMs: 60_000 },
  sweep: { intervalMs: 500, overdueGraceMs: 1_000, batchSize: 500, webhookWaitMs: 60_000 },
  callbacks: {
    concurrency: 50,
    schedule: { timeScale: 0.0001 },
    timeoutMs: 2_000,
    disableAfterMs: 5 * 86_400_000,
    // Test receivers listen on loopback.
    policy: createAddressPolicy(['127.0.0.0/8', '::1/128']),
  },
  streamRetentionSeconds: 3600,
  streamConcurrency: 50,
  lockDurationMs: 5_000,
  stalledIntervalMs: 5_000,
  prices: DEFAULT_MODEL_PRICES,
  evalLoop: { tickMs: 100, evalsPerTick: 10 },
  rolloutLoop: { tickMs: 100, checkMs: 200, rolloutsPerTick: 20 },
};

/**
 * The batch loop on a test's clock: ticks every 50 ms, batches of up to 50 jobs sent 300 ms after
 * their first, polled only every 10 s (a batch's end is learnt from its webhook), files kept so a
 * test can read them.
 */
export const FAST_BATCHING: NonNullable<WorkerConfig['batching']> = {
  tickMs: 50,
  limits: { maxJobs: 50, maxBytes: 10 * 1024 * 1024, maxWaitMs: 300 },
  pollMs: 10_000,
  leaseMs: 5_000,
  expiredPolicy: 'resubmit',
  reconcileConcurrency: 4,
  batchesPerTick: 10,
  deleteFiles: false,
};

export interface StackOptions {
  sim?: SimOptions;
  worker?: Partial<WorkerConfig>;
  api?: Partial<ApiConfig>;
  /** Start the in-process worker (default true). */
  startWorker?: boolean;
  /** Default: the machine's Redis (REDIS_URL). */
  redisUrl?: string;
  /** `redisUrl` is a seed node of a Redis Cluster: cluster clients everywhere, and a hash-tagged prefix (default false). */
  redisCluster?: boolean;
  /** Wire the simulator's signed webhooks to the API's receiver (default false). */
  webhooks?: boolean;
  /** Where the API's and the worker's log lines go, and from which level (default: TEST_LOG_LEVEL or silent). */
  logDestination?: LoggerConfig['destination'];
  logLevel?: string;
  /**
   * Called with every answer `stack.api()` gets. Default: `assertContract` (test/contract.ts), which
   * throws when the answer does not match the OpenAPI document, so every test is a contract test.
   */
  onResponse?: (exchange: ApiExchange) => void;
}

export type { ApiExchange } from './contract.ts';

export interface Stack {
  apiUrl: string;
  apiKey: string;
  tenantId: string;
  simUrl: string;
  sim: ListeningSim;
  /** The `whsec_` secret shared by the simulator and the receiver when `webhooks` is on. */
  webhookSecret: string;
  db: DbHandle;
  database: TestDatabase;
  queues: Queues;
  prefix: string;
  redisUrl: string;
  /** A connection of the test's own (a cluster client with `redisCluster`). */
  redis: RedisClient;
  worker: LonghaulWorker | null;
  /** The API's and the workers' metrics (separate registries, as in separate processes). */
  apiMetrics: Metrics;
  workerMetrics: Metrics;
  startWorker(config?: Partial<WorkerConfig>): LonghaulWorker;
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
  simApi(method: string, path: string, body?: unknown): Promise<any>;
  waitForJob(jobId: string, predicate: (job: any) => boolean, timeoutMs?: number): Promise<any>;
  waitForAll(jobIds: string[], predicate: (job: any) => boolean, timeoutMs?: number): Promise<any[]>;
  stop(): Promise<void>;
}

export const TERMINAL = ['completed', 'failed', 'cancelled', 'incomplete', 'expired'];
export const isTerminalJob = (job: any) => TERMINAL.includes(job.status);

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const database = await createTestDatabase(testDatabaseBaseUrl());
  const redisUrl = options.redisUrl ?? testRedisUrl();
  const cluster = options.redisCluster ? {} : undefined;
  const tag = `lhtest_${randomBytes(6).toString('hex')}`;
  const prefix = cluster ? `{${tag}}` : tag;
  const logger = createLogger({ service: 'test', level: options.logLevel ?? process.env.TEST_LOG_LEVEL ?? 'silent', destination: options.logDestination });
  const apiMetrics = createMetrics(new Registry());
  const workerMetrics = createMetrics(new Registry());
  const sim = await createSimServer({ time_scale: 0.01, ...options.sim }).listen(0);
  const db = createDb({ connectionString: database.url, max: 20 });
  const queues = createQueues({ redisUrl, cluster, prefix, role: 'producer' });
  const workerQueues = createQueues({ redisUrl, cluster, prefix, role: 'worker' });
  const redis = cluster ? createRedis({ redisUrl, cluster, role: 'worker' }) : new Redis(redisUrl);
  const { apiKey, tenantId } = await createTenant(db.db, 'test tenant');
  const clock = () => new Date();
  const webhookSecret = `whsec_${randomBytes(32).toString('base64')}`;

  const providerObserver = createProviderObserver({ db, metrics: workerMetrics, logger, flushIntervalMs: 100 });
  const provider = createProvider({ apiKey: 'sk-test', baseURL: `${sim.url}/v1`, timeoutMs: 10_000, readRetries: 0, onRequest: providerObserver.onRequest });
  const streamHub = createStreamHub({ queues, logger, heartbeatMs: 1_000 });
  const app = createServer({
    db: db.db,
    queues,
    provider,
    streamHub,
    logger,
    clock,
    metrics: apiMetrics,
    config: {
      bodyLimit: '1mb',
      jobDeadlineMs: 3_600_000,
      idempotencyTtlMs: 86_400_000,
      openaiWebhookSecrets: options.webhooks ? [webhookSecret] : [],
      callbackPolicy: createAddressPolicy(['127.0.0.0/8', '::1/128']),
      ...options.api,
    },
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (options.webhooks) {
    await fetch(`${sim.url}/sim/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ webhook_urls: [`${apiUrl}/webhooks/openai`], webhook_secret: webhookSecret }),
    });
  }

  const workers: LonghaulWorker[] = [];
  const startWorker = (config: Partial<WorkerConfig> = {}) => {
    const merged = { ...FAST_WORKER_CONFIG, ...options.worker, ...config };
    const callbacks = { onAttempt: callbackAttemptObserver(workerMetrics), ...merged.callbacks };
    const jobStreams = createJobStreams(workerQueues.connection, { prefix });
    const w = createWorker({ db, queues: workerQueues, jobStreams, provider, logger, clock, metrics: workerMetrics, config: { ...merged, callbacks } });
    workers.push(w);
    return w;
  };

  const api: Stack['api'] = async (method, path, body, headers = {}) => {
    const res = await fetch(apiUrl + path, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {}
    (options.onResponse ?? assertContract)({ method, path, status: res.status, contentType: res.headers.get('content-type'), body: parsed });
    return { status: res.status, body: parsed, headers: res.headers };
  };

  const waitForAll: Stack['waitForAll'] = async (jobIds, predicate, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    const done = new Map<string, any>();
    while (Date.now() < deadline) {
      for (const id of jobIds) {
        if (done.has(id)) continue;
        const { body } = await api('GET', `/v1/jobs/${id}`);
        if (predicate(body)) done.set(id, body);
      }
      if (done.size === jobIds.length) return jobIds.map((id) => done.get(id));
      await new Promise((r) => setTimeout(r, 100));
    }
    const pending = jobIds.filter((id) => !done.has(id));
    const sample = await api('GET', `/v1/jobs/${pending[0]}`);
    throw new Error(`${pending.length} of ${jobIds.length} jobs did not reach the expected state in ${timeoutMs} ms; e.g. ${JSON.stringify(sample.body)}`);
  };

  const stack: Stack = {
    apiUrl,
    apiKey,
    tenantId,
    simUrl: sim.url,
    sim,
    webhookSecret,
    db,
    database,
    queues,
    prefix,
    redisUrl,
    redis,
    worker: null,
    apiMetrics,
    workerMetrics,
    startWorker,
    api,
    simApi: async (method, path, body) => {
      const res = await fetch(sim.url + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      return res.json();
    },
    waitForJob: async (jobId, predicate, timeoutMs) => (await waitForAll([jobId], predicate, timeoutMs))[0],
    waitForAll,
    async stop() {
      await streamHub.close();
      await Promise.all(workers.map((w) => w.close(2_000)));
      await providerObserver.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await queues.close();
      await workerQueues.close();
      await deletePrefix(redis, prefix);
      redis.disconnect();
      await db.close();
      await database.drop();
      await sim.close();
    },
  };
  if (options.startWorker !== false) stack.worker = startWorker();
  return stack;
}

/** Remove every Redis key of a test's queue prefix (on a cluster, from every master: SCAN sees one node's keys). */
export async function deletePrefix(redis: RedisClient, prefix: string): Promise<void> {
  const pattern = `${prefix.replace(/[{}[\]*?\\]/g, '\\$&')}:*`;
  for (const node of redis instanceof Cluster ? redis.nodes('master') : [redis]) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      // One DEL per key on a cluster: a multi-key DEL must stay in one slot.
      if (keys.length) await (redis instanceof Cluster ? Promise.all(keys.map((k) => node.del(k))) : node.del(...keys));
    } while (cursor !== '0');
  }
}

export function jobBody(overrides: Record<string, unknown> = {}, simDurationMs = 200): Record<string, unknown> {
  return {
    model: 'o3',
    input: 'Write a long novel about otters in space.',
    reasoning: { effort: 'high' },
    metadata: { sim_duration_ms: String(simDurationMs) },
    ...overrides,
  };
}
