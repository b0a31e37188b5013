/**
 * /healthz and /readyz on the API and the worker: readiness flips to 503 (naming Redis) when a
 * private redis-server is stopped, and back to 200 when it returns on the same port; a database
 * without migrations or an unreachable Postgres is not ready either.
 */
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '@longhaul/api';
import { createAddressPolicy } from '@longhaul/callbacks';
import { createDb } from '@longhaul/db';
import { adminUrl } from '@longhaul/db/testing';
import { createQueues } from '@longhaul/queue';
import { createLogger } from '@longhaul/runtime';
import { type OpsServer, startOpsServer, workerReadinessChecks } from '@longhaul/worker/http';
import { testDatabaseBaseUrl, testRedisUrl } from './env.ts';
import { type Stack, startStack } from './harness.ts';
import { type PrivateRedis, startPrivateRedis } from './private-redis.ts';
import { freePort } from '../chaos/servers.ts';

const logger = createLogger({ service: 'test', level: 'silent' });

async function readyz(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: await res.json() };
}

async function until(url: string, status: number, timeoutMs = 20_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await readyz(url);
    if (r.status === status) return r.body;
    if (Date.now() > deadline) throw new Error(`${url}/readyz stayed ${r.status} (${JSON.stringify(r.body)}), expected ${status}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

async function listen(app: ReturnType<typeof createServer>) {
  const server = await new Promise<import('node:http').Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

const apiConfig = { bodyLimit: '1mb', jobDeadlineMs: 3_600_000, idempotencyTtlMs: 86_400_000, openaiWebhookSecrets: [], callbackPolicy: createAddressPolicy(['127.0.0.0/8']) };

describe('readiness follows Redis', () => {
  let redis: PrivateRedis;
  let stack: Stack;
  let ops: OpsServer;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    stack = await startStack({ redisUrl: redis.url });
    ops = await startOpsServer({ host: '127.0.0.1', port: 0, metrics: stack.workerMetrics, checks: workerReadinessChecks({ db: stack.db, queues: stack.queues }), logger });
  });
  afterAll(async () => {
    await ops?.close();
    // Redis must be up for the stack to clean its keys.
    await stack?.stop();
    await redis?.stop();
  });

  it('answers /healthz and /readyz 200 when everything is reachable', async () => {
    for (const url of [stack.apiUrl, ops.url]) {
      expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
      const r = await readyz(url);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ status: 'ready', checks: { postgres: { ok: true }, redis: { ok: true }, migrations: { ok: true } } });
    }
  });

  it('flips to 503 naming Redis when it stops, and back to 200 when it returns', async () => {
    const port = redis.port;
    await redis.stop();
    for (const url of [stack.apiUrl, ops.url]) {
      const body = await until(url, 503);
      expect(body.status).toBe('not_ready');
      expect(body.reason).toMatch(/^redis: /);
      expect(body.checks.redis.ok).toBe(false);
      expect(body.checks.postgres.ok).toBe(true);
      // The process itself is fine.
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    }
    // Scraping metrics still works while Redis is down (queue gauges are just left out).
    expect((await fetch(`${ops.url}/metrics`)).status).toBe(200);

    redis = await startPrivateRedis([], port);
    for (const url of [stack.apiUrl, ops.url]) expect((await until(url, 200)).status).toBe('ready');
  });
});

describe('readiness follows Postgres and migrations', () => {
  it('is not ready on a database without migrations, nor with Postgres unreachable', async () => {
    const base = testDatabaseBaseUrl();
    const name = `lh_test_blank_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: adminUrl(base) });
    await admin.connect();
    await admin.query(`create database "${name}"`);
    const blankUrl = new URL(base);
    blankUrl.pathname = `/${name}`;
    const blank = createDb({ connectionString: blankUrl.toString(), max: 2 });
    const dead = createDb({ connectionString: `postgres://postgres@127.0.0.1:${await freePort()}/longhaul`, connectionTimeoutMillis: 500, max: 1 });
    const queues = createQueues({ redisUrl: testRedisUrl(), prefix: `lhtest_ready_${name}`, role: 'producer' });
    const apis = await Promise.all([blank, dead].map((db) => listen(createServer({ db: db.db, queues, logger, clock: () => new Date(), config: apiConfig }))));
    try {
      await new Promise((r) => setTimeout(r, 200)); // let the producer connect
      const unmigrated = await readyz(apis[0]!.url);
      const unreachable = await readyz(apis[1]!.url);
      expect(unmigrated.status).toBe(503);
      expect(unmigrated.body.reason).toMatch(/^migrations: migrations are not applied/);
      expect(unmigrated.body.checks.postgres.ok).toBe(true);
      expect(unreachable.status).toBe(503);
      expect(unreachable.body.checks.postgres.ok).toBe(false);
      expect(unreachable.body.reason).toMatch(/postgres: /);
    } finally {
      await Promise.all(apis.map((a) => a.close()));
      await queues.close();
      await blank.close();
      await dead.close();
      await admin.query(`drop database if exists "${name}" with (force)`);
      await admin.end();
    }
  });
});
