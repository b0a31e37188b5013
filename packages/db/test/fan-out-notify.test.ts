/**
 * A state change announced to many endpoints, against a real Postgres: every delivery is written
 * with the change and announced to listening workers, however many there are (a pg_notify payload
 * must stay under 8,000 bytes, so the ids are announced in several notifications).
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CALLBACK_NOTIFY_CHANNEL, applyJobEvent, createDb, createEndpoint, createJob, createTenant, type DbHandle } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from '../src/testing.ts';

const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const now = new Date('2026-01-01T00:00:00Z');
const ENDPOINTS = 400;
let database: TestDatabase;
let handle: DbHandle;
let listener: pg.Client;
const announced: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase(base);
  handle = createDb({ connectionString: database.url, max: 4 });
  listener = new pg.Client({ connectionString: database.url });
  await listener.connect();
  listener.on('notification', (n) => announced.push(...(n.payload ?? '').split(',').filter(Boolean)));
  await listener.query(`listen ${CALLBACK_NOTIFY_CHANNEL}`);
});
afterAll(async () => {
  await listener?.end();
  await handle?.close();
  await database?.drop();
});

it(`announces a change to ${ENDPOINTS} endpoints: every delivery written and notified`, async () => {
  const { tenantId } = await createTenant(handle.db, 'fan-out');
  for (let i = 0; i < ENDPOINTS; i++) {
    await createEndpoint(
      handle.db,
      { tenantId, url: `https://example.com/hook/${i}`, description: null, eventTypes: [], enabled: true, thinPayload: false, secret: 'whsec_test' },
      now,
    );
  }
  const { job } = await createJob(
    handle.db,
    { tenantId, model: 'o3', request: { model: 'o3', input: 'x' }, metadata: {}, callbackUrl: null, deadlineAt: new Date(now.getTime() + 60_000) },
    now,
  );
  const error = { code: 'rejected', message: 'no' };
  const result = await applyJobEvent(handle.db, job.id, { type: 'submit_failed', error }, { source: 'submit', now }, { error });
  expect(result).toMatchObject({ ok: true, changed: true, job: { status: 'failed' } });

  const { rows } = await handle.pool.query<{ id: string }>('select id from callback_deliveries where job_id = $1', [job.id]);
  expect(rows).toHaveLength(ENDPOINTS);
  for (let i = 0; i < 100 && announced.length < ENDPOINTS; i++) await new Promise((r) => setTimeout(r, 20));
  expect(new Set(announced)).toEqual(new Set(rows.map((r) => r.id)));
});
