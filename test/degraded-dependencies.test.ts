/**
 * What the API does when a dependency is down: Postgres unreachable → 503 with a clear error
 * (never a 500 or a hang); Redis unreachable → the job is still accepted (it is in Postgres) and
 * the sweeper dispatches it once a worker can reach Redis. And a Postgres connection lost while
 * a client is checked out of the pool (a transaction) does not crash the process.
 */
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '@longhaul/api';
import { createAddressPolicy } from '@longhaul/callbacks';
import { createDb } from '@longhaul/db';
import { createTestDatabase } from '@longhaul/db/testing';
import { createQueues } from '@longhaul/queue';
import { createLogger } from '@longhaul/runtime';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { freePort } from '../chaos/servers.ts';
import { testDatabaseBaseUrl } from './env.ts';

const logger = createLogger({ service: 'test', level: 'silent' });

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

describe('Postgres unreachable', () => {
  it('answers 503 database_unavailable with Retry-After (never a 500; a hang would fail the test by its timeout)', async () => {
    const deadPort = await freePort();
    const db = createDb({ connectionString: `postgres://postgres@127.0.0.1:${deadPort}/longhaul`, connectionTimeoutMillis: 1_000 });
    const queues = createQueues({ redisUrl: 'redis://127.0.0.1:6379', prefix: `lhtest_dead_${deadPort}`, role: 'producer' });
    const api = await listen(
      createServer({
        db: db.db,
        queues,
        logger,
        clock: () => new Date(),
        config: { bodyLimit: '1mb', jobDeadlineMs: 3_600_000, idempotencyTtlMs: 86_400_000, openaiWebhookSecrets: [], callbackPolicy: createAddressPolicy() },
      }),
    );
    try {
      for (const [method, path] of [
        ['POST', '/v1/jobs'],
        ['GET', '/v1/jobs'],
        ['GET', '/v1/jobs/job_abcdefghijklmnop'],
      ]) {
        const res = await fetch(api.url + path, {
          method,
          headers: { authorization: 'Bearer lh_sk_whatever', 'content-type': 'application/json' },
          body: method === 'POST' ? JSON.stringify(jobBody()) : undefined,
        });
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('5');
        expect((await res.json()).error).toMatchObject({ type: 'service_unavailable_error', code: 'database_unavailable' });
      }
    } finally {
      await api.close();
      await queues.close();
      await db.close();
    }
  });
});

describe('Redis unreachable from the API', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('still accepts the job, and the sweeper dispatches it later', async () => {
    const deadRedis = createQueues({ redisUrl: `redis://127.0.0.1:${await freePort()}`, prefix: stack.prefix, role: 'producer' });
    deadRedis.connection.on('error', () => {});
    const api = await listen(
      createServer({
        db: stack.db.db,
        queues: deadRedis,
        logger,
        clock: () => new Date(),
        config: { bodyLimit: '1mb', jobDeadlineMs: 3_600_000, idempotencyTtlMs: 86_400_000, openaiWebhookSecrets: [], callbackPolicy: createAddressPolicy() },
      }),
    );
    try {
      const res = await fetch(`${api.url}/v1/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(jobBody({}, 0)),
      });
      expect(res.status).toBe(202);
      const job = await res.json();
      expect(job.status).toBe('pending');

      // A worker that can reach Redis finds the job through the sweeper (nothing was enqueued).
      stack.startWorker();
      const done = await stack.waitForJob(job.id, isTerminalJob, 20_000);
      expect(done.status).toBe('completed');
    } finally {
      await api.close();
      await deadRedis.close();
    }
  });
});

describe('Postgres connection lost while a client is checked out', () => {
  it('does not crash the process: the client fails its next query and, released with that error, the pool discards it', async () => {
    const database = await createTestDatabase(testDatabaseBaseUrl());
    const db = createDb({ connectionString: database.url, max: 2 });
    const admin = createDb({ connectionString: database.url, max: 1 });
    try {
      // As in a transaction between two statements: checked out, no query running. pg-pool
      // removes its error listener from a checked-out client, so without one of our own the
      // server's "terminating connection" would be an unhandled 'error' event.
      const client = await db.pool.connect();
      const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
      await admin.pool.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
      // The backend sends its FATAL and exits; wait until Postgres no longer lists it.
      while ((await admin.pool.query('select 1 from pg_stat_activity where pid = $1', [rows[0]!.pid])).rowCount) await new Promise((r) => setTimeout(r, 10));
      // The FATAL may reach the client before or during this query; either way it fails, and a
      // client released with its error is closed by the pool instead of being handed out again.
      const lost = await client.query('select 1').then(
        () => null,
        (err: Error) => err,
      );
      expect(lost).toBeInstanceOf(Error);
      client.release(lost!);
      expect((await db.pool.query<{ ok: number }>('select 1 as ok')).rows[0]!.ok).toBe(1);
    } finally {
      await db.close();
      await admin.close();
      await database.drop();
    }
  });
});
