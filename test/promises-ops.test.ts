/**
 * What the README promises an operator, checked with the real API, worker and CLI processes and
 * judged from outside them: Postgres's own catalogues (locks, sessions, the migrations table),
 * HTTP answers and headers, scraped metrics, log lines.
 *
 * - the sweeper runs in every worker but one at a time does the work, and another takes over when
 *   that one dies;
 * - API and worker processes starting at once on an empty database all come up ready, the schema
 *   migrated once, and LONGHAUL_BOOTSTRAP_API_KEY makes one tenant however many start, or restart;
 * - the requests-per-minute limit fails open when Redis is unreachable;
 * - a tenant's limit changed with the CLI applies within 30 s;
 * - model, tenant and prompt-version label values are capped (100, 1000, 1000; the rest `other`);
 * - METRICS_ENABLED=false: no /metrics anywhere, the probes still answer.
 */
import { readFileSync } from 'node:fs';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS_FOLDER, createDb, createTenant, setTenantLimits } from '@longhaul/db';
import { adminUrl } from '@longhaul/db/testing';
import { type ListeningSim, createSimServer } from '@longhaul/sim';
import { freePort } from '../chaos/servers.ts';
import { type AppProcess, answering, killAll, spawnApp, until } from './app-process.ts';
import { testDatabaseBaseUrl, testRedisUrl } from './env.ts';
import { type Stack, deletePrefix, jobBody, startStack } from './harness.ts';
import { type PrivateRedis, startPrivateRedis } from './private-redis.ts';
import { type Sample, scrape, total } from './prometheus.ts';

const apps: AppProcess[] = [];
afterAll(async () => {
  await killAll(apps);
});

interface Deployment {
  databaseUrl: string;
  redisUrl: string;
  prefix: string;
  providerUrl: string;
}

const deploymentOf = (stack: Stack, overrides: Partial<Deployment> = {}): Deployment => ({
  databaseUrl: stack.database.url,
  redisUrl: stack.redisUrl,
  prefix: stack.prefix,
  providerUrl: `${stack.simUrl}/v1`,
  ...overrides,
});

interface RunningApi {
  app: AppProcess;
  url: string;
  metricsUrl: string;
}

/** Spawn the API on free ports, without waiting for it to answer (`startApi` waits). */
async function spawnApi(d: Deployment, env: Record<string, string> = {}): Promise<RunningApi> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const app = spawnApp('api', {
    DATABASE_URL: d.databaseUrl,
    REDIS_URL: d.redisUrl,
    QUEUE_PREFIX: d.prefix,
    OPENAI_BASE_URL: d.providerUrl,
    LONGHAUL_MIGRATE_ON_START: 'false',
    HOST: '127.0.0.1',
    PORT: String(port),
    METRICS_HOST: '127.0.0.1',
    API_METRICS_PORT: String(metricsPort),
    METRICS_TOKEN: '',
    ...env,
  });
  apps.push(app);
  return { app, url: `http://127.0.0.1:${port}`, metricsUrl: `http://127.0.0.1:${metricsPort}` };
}

async function startApi(d: Deployment, env: Record<string, string> = {}): Promise<RunningApi> {
  const api = await spawnApi(d, env);
  await answering(`${api.url}/healthz`, api.app);
  return api;
}

async function spawnWorker(d: Deployment, env: Record<string, string> = {}): Promise<{ app: AppProcess; metricsUrl: string }> {
  const metricsPort = await freePort();
  const app = spawnApp('worker', {
    DATABASE_URL: d.databaseUrl,
    REDIS_URL: d.redisUrl,
    QUEUE_PREFIX: d.prefix,
    OPENAI_BASE_URL: d.providerUrl,
    LONGHAUL_MIGRATE_ON_START: 'false',
    COMPLETION_MODE: 'poll',
    POLL_INITIAL_MS: '50',
    POLL_MAX_MS: '200',
    LOCK_DURATION_MS: '2000',
    STALLED_INTERVAL_MS: '1000',
    SWEEP_INTERVAL_MS: '500',
    SWEEP_OVERDUE_GRACE_MS: '1500',
    METRICS_HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
    METRICS_TOKEN: '',
    ...env,
  });
  apps.push(app);
  return { app, metricsUrl: `http://127.0.0.1:${metricsPort}` };
}

async function call(url: string, key: string, method: string, path: string, body?: unknown) {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body: parsed };
}

/** Run `items` through `fn`, `width` at a time. */
async function inBatches<T, R>(items: T[], width: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

// ---- the sweeper's single runner -------------------------------------------------------------

describe('the sweeper', () => {
  let stack: Stack;
  const workerPrefix = `lhtest_sweep_${randomBytes(4).toString('hex')}`;
  beforeAll(async () => {
    // Every job's deadline passes at once: only the sweeper ever touches these jobs (the workers
    // below use a queue prefix of their own, so no submit reaches them).
    stack = await startStack({ startWorker: false, api: { jobDeadlineMs: 1 } });
  });
  afterAll(async () => {
    await deletePrefix(stack.redis, workerPrefix);
    await stack?.stop();
  });

  it('does its work in one worker at a time, and another worker takes over when that one dies', async () => {
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody());
    expect(job.status).toBe('pending');
    const d = deploymentOf(stack, { prefix: workerPrefix });
    const database = stack.database.name;

    // The test holds the job's row: a sweep that tries to expire it waits on the test, in plain
    // view in Postgres's lock tables, for as long as the test likes.
    const holder = await stack.db.pool.connect();
    try {
      await holder.query('begin');
      await holder.query('select id from jobs where id = $1 for update', [job.id]);
      /**
       * Worker backends waiting on a lock: sweeps stuck behind the test's row lock (directly, or
       * queued behind another waiter for the same row).
       */
      const waiting = async () =>
        (
          await stack.db.pool.query<{ pid: number }>(
            "select pid from pg_stat_activity where datname = $1 and application_name = 'longhaul-worker' and wait_event_type = 'Lock' and cardinality(pg_blocking_pids(pid)) > 0",
            [database],
          )
        ).rows.map((r) => r.pid);
      /** The backend holding a session advisory lock in this database: the sweep lock's owner. */
      const lockOwner = async () =>
        (
          await stack.db.pool.query<{ pid: number }>(
            "select l.pid from pg_locks l join pg_database d on d.oid = l.database where l.locktype = 'advisory' and l.granted and d.datname = $1",
            [database],
          )
        ).rows.map((r) => r.pid);

      const first = await spawnWorker(d, { SWEEP_INTERVAL_MS: '200' });
      const [owner] = await until('the first worker to sweep, holding the sweep lock, blocked on the row', async () => {
        const owners = await lockOwner();
        return owners.length === 1 && (await waiting()).length === 1 ? owners : undefined;
      });

      // A second worker sweeps every 200 ms too. Seen from Postgres, each of its attempts is a
      // try-lock query (a new query_start) from a backend other than the owner; it must never
      // get as far as the row.
      const second = await spawnWorker(d, { SWEEP_INTERVAL_MS: '200' });
      const attempts = new Set<string>();
      let mostWaiting = 0;
      await until(
        'the second worker to try the sweep lock three times',
        async () => {
          const { rows } = await stack.db.pool.query<{ pid: number; started: string }>(
            "select pid, query_start::text as started from pg_stat_activity where datname = $1 and application_name = 'longhaul-worker' and pid <> $2 and query like '%pg_try_advisory_lock%'",
            [database, owner],
          );
          for (const r of rows) attempts.add(`${r.pid}@${r.started}`);
          mostWaiting = Math.max(mostWaiting, (await waiting()).length);
          return attempts.size >= 3 || mostWaiting > 1;
        },
        30_000,
        20,
      );
      expect(mostWaiting, 'sweeps waiting on the row at once').toBe(1);
      expect(await lockOwner()).toEqual([owner]);

      // The owner dies mid-sweep; its session ends and the other worker takes the lock.
      first.app.child.kill('SIGKILL');
      await first.app.exited();
      const [successor] = await until('the second worker to take the sweep lock over', async () => {
        const owners = await lockOwner();
        return owners.length === 1 && owners[0] !== owner ? owners : undefined;
      });
      expect(successor).not.toBe(owner);
      await holder.query('rollback');

      const expired = await stack.waitForJob(job.id, (j) => j.status === 'expired', 20_000);
      expect(expired.error).toMatchObject({ code: 'job_expired' });
      const events = await stack.api('GET', `/v1/jobs/${job.id}/events`);
      expect(events.body.data.filter((e: any) => e.to === 'expired')).toMatchObject([{ source: 'sweeper' }]);
      expect(second.app.alive()).toBe(true);
    } finally {
      await holder.query('rollback').catch(() => {});
      holder.release();
    }
  });
});

// ---- migrate on start, bootstrap key ---------------------------------------------------------

/**
 * A TCP proxy in front of Postgres that holds every connection until `count` have arrived, then
 * lets them all through at once: the processes behind it start their first query (the
 * migrations) together, as processes started together on an empty database would at best.
 */
async function gatedProxy(target: URL, count: number): Promise<{ port: number; close(): Promise<void> }> {
  const held: Array<() => void> = [];
  const sockets = new Set<Socket>();
  let open = false;
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.pause();
    const through = () => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      sockets.add(upstream);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    };
    if (open) return through();
    held.push(through);
    if (held.length >= count) {
      open = true;
      for (const go of held) go();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('start-up on an empty database', () => {
  const name = `lh_fresh_${randomBytes(6).toString('hex')}`;
  const base = new URL(testDatabaseBaseUrl());
  const admin = createDb({ connectionString: adminUrl(testDatabaseBaseUrl()), max: 1 });
  const prefix = `lhtest_fresh_${randomBytes(4).toString('hex')}`;
  const bootstrapKey = `lh_sk_${randomBytes(24).toString('hex')}`;
  let sim: ListeningSim;
  let proxy: Awaited<ReturnType<typeof gatedProxy>>;
  const direct = new URL(base);
  direct.pathname = `/${name}`;
  let db: ReturnType<typeof createDb>;
  beforeAll(async () => {
    await admin.pool.query(`create database "${name}"`);
    db = createDb({ connectionString: direct.toString(), max: 2 });
    sim = await createSimServer({ time_scale: 0.01 }).listen(0);
  });
  afterAll(async () => {
    await proxy?.close();
    await sim?.close();
    await db?.close();
    await admin.pool.query(`drop database if exists "${name}" with (force)`);
    await admin.close();
    const redis = new Redis(testRedisUrl());
    await deletePrefix(redis, prefix);
    redis.disconnect();
  });

  const journal = JSON.parse(readFileSync(`${MIGRATIONS_FOLDER}/meta/_journal.json`, 'utf8')) as { entries: unknown[] };
  let apis: RunningApi[] = [];

  it('two APIs and a worker starting together all come up ready, the schema migrated once and one tenant for the bootstrap key', async () => {
    proxy = await gatedProxy(base, 3);
    const gated = new URL(direct);
    gated.port = String(proxy.port);
    gated.hostname = '127.0.0.1';
    const d: Deployment = { databaseUrl: gated.toString(), redisUrl: testRedisUrl(), prefix, providerUrl: `${sim.url}/v1` };
    const env = { LONGHAUL_MIGRATE_ON_START: 'true', LONGHAUL_BOOTSTRAP_API_KEY: bootstrapKey };
    const started = await Promise.all([spawnApi(d, env), spawnApi(d, env), spawnWorker(d, { LONGHAUL_MIGRATE_ON_START: 'true' })]);
    apis = started.slice(0, 2) as RunningApi[];
    const worker = started[2] as Awaited<ReturnType<typeof spawnWorker>>;
    // Ready means Postgres and Redis answer and every migration is applied.
    for (const api of apis) await answering(`${api.url}/readyz`, api.app, 60_000);
    await answering(`${worker.metricsUrl}/readyz`, worker.app, 60_000);

    // Each committed migration applied once, none twice.
    const applied = await db.pool.query<{ hash: string }>('select hash from drizzle.__drizzle_migrations');
    expect(applied.rows).toHaveLength(journal.entries.length);
    expect(new Set(applied.rows.map((r) => r.hash)).size).toBe(journal.entries.length);

    // One tenant owns the bootstrap key, whichever API made it; the key works on both.
    expect((await db.pool.query('select id from tenants')).rows).toHaveLength(1);
    expect((await db.pool.query('select id from api_keys')).rows).toHaveLength(1);
    const ensured = apis.map((api) => api.app.logs.find((l) => l.msg === 'bootstrap API key ensured'));
    expect(ensured.map((l) => l?.created).sort()).toEqual([false, true]);
    expect(ensured[0]!.tenant_id).toBe(ensured[1]!.tenant_id);
    for (const api of apis) expect((await call(api.url, bootstrapKey, 'GET', '/v1/jobs')).status).toBe(200);
    for (const app of [...apis.map((a) => a.app), worker.app]) expect(app.alive(), app.tail()).toBe(true);
  });

  it('a restart with the same LONGHAUL_BOOTSTRAP_API_KEY creates no second tenant or key, and the key still works', async () => {
    const [first] = apis;
    expect(first).toBeDefined();
    const before = (await db.pool.query<{ id: string }>('select id from tenants')).rows;
    first!.app.child.kill('SIGTERM');
    expect((await first!.app.exited()).code).toBe(0);

    const d: Deployment = { databaseUrl: direct.toString(), redisUrl: testRedisUrl(), prefix, providerUrl: `${sim.url}/v1` };
    const again = await startApi(d, { LONGHAUL_MIGRATE_ON_START: 'true', LONGHAUL_BOOTSTRAP_API_KEY: bootstrapKey });
    const ensured = await again.app.waitForLog('"bootstrap API key ensured"', (l) => l.msg === 'bootstrap API key ensured');
    expect(ensured).toMatchObject({ created: false, tenant_id: before[0]!.id });
    expect((await db.pool.query('select id from tenants')).rows).toEqual(before);
    expect((await db.pool.query('select id from api_keys')).rows).toHaveLength(1);
    const submitted = await call(again.url, bootstrapKey, 'POST', '/v1/jobs', jobBody());
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
  });
});

// ---- tenant request limits -------------------------------------------------------------------

describe('the requests-per-minute limit', () => {
  let stack: Stack;
  let redis: PrivateRedis;
  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
    redis = await startPrivateRedis();
  });
  afterAll(async () => {
    await redis?.stop();
    await stack?.stop();
  });

  it('is not enforced while Redis is unreachable (fail open): jobs are still accepted and read, with a rate_limit_unavailable warning', async () => {
    const { tenantId, apiKey } = await createTenant(stack.db.db, 'limited');
    await setTenantLimits(stack.db.db, tenantId, { rpmLimit: 2 });
    // This API counts requests in a Redis of the test's own, which the test then stops.
    const api = await startApi(deploymentOf(stack, { redisUrl: redis.url }));
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await call(api.url, apiKey, 'GET', '/v1/jobs'));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 429]);
    expect(answers[2]!.body.error).toMatchObject({ code: 'rate_limit_exceeded' });

    await redis.stop();
    await until('the API to see Redis gone', async () => (await fetch(`${api.url}/readyz`)).status === 503, 15_000);
    // Still the same minute, already over the limit: every request goes through uncounted.
    const submitted = await call(api.url, apiKey, 'POST', '/v1/jobs', jobBody());
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    expect(submitted.headers.get('x-ratelimit-limit-requests')).toBeNull();
    for (let i = 0; i < 3; i++) {
      const read = await call(api.url, apiKey, 'GET', `/v1/jobs/${submitted.body.id}`);
      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({ id: submitted.body.id, status: 'pending' });
    }
    await api.app.waitForLog('code rate_limit_unavailable', (l) => l.code === 'rate_limit_unavailable' && l.level === 'warn', 5_000);
  });

  it("applies a tenant's limit changed with the CLI within 30 s", async () => {
    const { tenantId, apiKey } = await createTenant(stack.db.db, 'changing');
    const api = await startApi(deploymentOf(stack));
    const cli = async (...args: string[]) => {
      const run = spawnApp('cli', { DATABASE_URL: stack.database.url }, ['tenant', 'limits', tenantId, ...args]);
      expect(await run.exited(), run.tail()).toEqual({ code: 0, signal: null });
      return JSON.parse(run.tail().trim().split('\n').at(-1)!);
    };
    expect(await cli('--rpm', '1000')).toEqual({ tenant_id: tenantId, rpm_limit: 1000, tpm_limit: null, cache_ttl_seconds: null, retention_days: null });
    expect(await cli('--cache-ttl', '86400')).toMatchObject({ rpm_limit: 1000, cache_ttl_seconds: 86400 });
    const limitNow = async () => (await call(api.url, apiKey, 'GET', '/v1/jobs?limit=1')).headers.get('x-ratelimit-limit-requests');
    // The API has read the limit (and remembers it from now on).
    expect(await limitNow()).toBe('1000');

    expect(await cli('--rpm', '3')).toMatchObject({ rpm_limit: 3 });
    const changedAt = Date.now();
    // The promise is a bound: within 30 s of the change. The 2 s over it cover the polling
    // interval and a request's round trip on a loaded machine.
    await until('the new limit to be applied', async () => (await limitNow()) === '3', 32_000, 250);
    const tookMs = Date.now() - changedAt;
    // Applied, not just shown: this minute's count is far past 3.
    const refused = await call(api.url, apiKey, 'GET', '/v1/jobs?limit=1');
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    console.info(`[limits] a limit changed with the CLI applied ${tookMs} ms after the change`);
  });
});

// ---- metrics ---------------------------------------------------------------------------------

/** The distinct values of `label` on `name`'s samples. */
const labelValues = (samples: Sample[], name: string, label: string) => new Set(samples.filter((s) => s.name === name).map((s) => s.labels[label]));

describe('metric label values', () => {
  // One past each cap: 100 models, 1000 tenants, 1000 prompt versions.
  const TENANTS = 1_005;
  const MODELS = 105;
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('are capped as wired in the real processes: 100 models, 1000 tenants, 1000 prompt versions, the rest counted as other', { timeout: 240_000 }, async () => {
    const d = deploymentOf(stack);
    const [api, worker] = await Promise.all([startApi(d, { API_RPM_LIMIT: '0' }), spawnWorker(d, { SUBMIT_CONCURRENCY: '50' })]);
    await answering(`${worker.metricsUrl}/readyz`, worker.app);

    // Each tenant runs one job from a prompt of its own, on one of 105 models.
    const tenants = await inBatches(Array.from({ length: TENANTS }), 20, (_, i) => createTenant(stack.db.db, `cap tenant ${i}`));
    const started = Date.now();
    await inBatches(tenants, 20, async ({ apiKey }, i) => {
      const prompt = await call(api.url, apiKey, 'POST', '/v1/prompts', { name: `cap-${i}`, template: { model: `cap-model-${i % MODELS}`, input: 'Say hello.' } });
      expect(prompt.status, JSON.stringify(prompt.body)).toBe(201);
      const job = await call(api.url, apiKey, 'POST', '/v1/jobs', { prompt: { id: prompt.body.id }, metadata: { sim_duration_ms: '0' } });
      expect(job.status, JSON.stringify(job.body)).toBe(202);
    });
    const finished = async () => (await stack.db.pool.query<{ n: number }>("select count(*)::int as n from jobs where status = 'completed'")).rows[0]!.n;
    await until(`all ${TENANTS} jobs to complete`, async () => (await finished()) === TENANTS, 180_000, 500);
    const workerSamples = await until(
      'the worker to have counted every finished job',
      async () => {
        const s = await scrape(worker.metricsUrl);
        return total(s, 'longhaul_jobs_finished_total') === TENANTS ? s : undefined;
      },
      10_000,
    );
    const apiSamples = await scrape(api.metricsUrl);
    console.info(`[label caps] ${TENANTS} tenants, prompts and jobs on ${MODELS} models in ${Date.now() - started} ms`);

    const expectCapped = (samples: Sample[], name: string, label: string, cap: number) => {
      const values = labelValues(samples, name, label);
      expect(values.has('other'), `${name}{${label}} has an "other" series`).toBe(true);
      expect(values.size - 1, `${name}{${label}} distinct values besides "other"`).toBe(cap);
    };
    // The API: jobs accepted, by model.
    expectCapped(apiSamples, 'longhaul_jobs_created_total', 'model', 100);
    expect(total(apiSamples, 'longhaul_jobs_created_total')).toBe(TENANTS);
    // The worker: finished jobs by model; tokens by tenant (and model); tokens by prompt version.
    expectCapped(workerSamples, 'longhaul_jobs_finished_total', 'model', 100);
    expectCapped(workerSamples, 'longhaul_tokens_total', 'tenant', 1_000);
    expectCapped(workerSamples, 'longhaul_tokens_total', 'model', 100);
    expectCapped(workerSamples, 'longhaul_prompt_input_tokens_total', 'prompt', 1_000);
    // Folded, not dropped: the counters still add up to what the jobs recorded.
    const { rows } = await stack.db.pool.query<{ input: number }>("select sum((usage->>'input_tokens')::int)::int as input from jobs");
    expect(rows[0]!.input).toBeGreaterThan(0);
    expect(total(workerSamples, 'longhaul_tokens_total', { kind: 'input' })).toBe(rows[0]!.input);
    expect(total(workerSamples, 'longhaul_prompt_input_tokens_total')).toBe(rows[0]!.input);
  });
});

describe('METRICS_ENABLED=false', () => {
  let stack: Stack;
  const TOKEN = 'metrics_token_0123456789abcdef';
  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** Whether anything accepts a connection on `url`'s port. */
  const listening = (url: string) =>
    new Promise<boolean>((resolve) => {
      const socket = connect(Number(new URL(url).port), '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });

  it('the API serves no /metrics anywhere and opens no metrics listener; its probes and the API still answer', async () => {
    // A token configured too: it would otherwise open /metrics on the tenant-facing port.
    const api = await startApi(deploymentOf(stack), { METRICS_ENABLED: 'false', METRICS_TOKEN: TOKEN });
    for (const headers of [{}, { authorization: `Bearer ${TOKEN}` }] as Array<Record<string, string>>) {
      const res = await fetch(`${api.url}/metrics`, { headers });
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ error: { type: 'not_found_error', code: 'not_found' } });
    }
    expect(await listening(api.metricsUrl), 'nothing listens on API_METRICS_PORT').toBe(false);
    expect(await (await fetch(`${api.url}/healthz`)).json()).toEqual({ status: 'ok' });
    expect((await fetch(`${api.url}/readyz`)).status).toBe(200);
    expect((await call(api.url, stack.apiKey, 'GET', '/v1/jobs')).status).toBe(200);
    expect((await call(api.url, stack.apiKey, 'POST', '/v1/jobs', jobBody())).status).toBe(202);
  });

  it('the worker serves no /metrics; its /healthz and /readyz still answer', async () => {
    const worker = await spawnWorker(deploymentOf(stack), { METRICS_ENABLED: 'false', METRICS_TOKEN: TOKEN });
    await answering(`${worker.metricsUrl}/healthz`, worker.app);
    expect((await fetch(`${worker.metricsUrl}/readyz`)).status).toBe(200);
    for (const headers of [{}, { authorization: `Bearer ${TOKEN}` }] as Array<Record<string, string>>) {
      const res = await fetch(`${worker.metricsUrl}/metrics`, { headers });
      expect(res.status).toBe(404);
      expect(await res.text()).not.toContain('longhaul_');
    }
    // It works all the same.
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
    expect((await stack.waitForJob(job.id, (j) => j.status === 'completed', 30_000)).status).toBe('completed');
  });
});
