import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIVE_STATUSES, DELIVERY_STATUSES, EVENT_SOURCES, JOB_STATUSES, TERMINAL_STATUSES } from '@longhaul/core';
import { createDb, migrationsApplied, type DbHandle } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from '../src/testing.ts';

const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
let database: TestDatabase;
let handle: DbHandle;
beforeAll(async () => {
  database = await createTestDatabase(base);
  handle = createDb({ connectionString: database.url, max: 2 });
});
afterAll(async () => {
  await handle?.close();
  await database?.drop();
});

async function enumValues(name: string): Promise<string[]> {
  const { rows } = await handle.pool.query<{ v: string }>(
    'select e.enumlabel as v from pg_enum e join pg_type t on t.oid = e.enumtypid where t.typname = $1 order by e.enumsortorder',
    [name],
  );
  return rows.map((r) => r.v);
}

describe('database schema', () => {
  it('has the job status enum of the core state machine, in order', async () => {
    expect(await enumValues('job_status')).toEqual([...JOB_STATUSES]);
  });

  it('has the event source enum of the core', async () => {
    expect(await enumValues('event_source')).toEqual([...EVENT_SOURCES]);
  });

  it('has the callback delivery status enum of the core delivery state machine, in order', async () => {
    expect(await enumValues('callback_delivery_status')).toEqual([...DELIVERY_STATUSES]);
  });

  it('indexes the active jobs of the core (non-terminal statuses) for the sweeper', async () => {
    const { rows } = await handle.pool.query<{ def: string }>("select indexdef as def from pg_indexes where indexname = 'jobs_active_next_check_idx'");
    // Written as "not terminal", so a status added later is in it without a new index.
    expect(rows[0]!.def).toMatch(/<> ALL/);
    const listed = [...rows[0]!.def.matchAll(/'(\w+)'::job_status/g)].map((m) => m[1]);
    expect(listed).toEqual([...TERMINAL_STATUSES]);
    // The sweeper's query names the active statuses: the planner still proves it fits the index.
    const client = await handle.pool.connect();
    try {
      await client.query('set enable_seqscan = off');
      const plan = await client.query<{ 'QUERY PLAN': string }>(
        `explain select id from jobs where status in (${ACTIVE_STATUSES.map((s) => `'${s}'`).join(', ')}) and next_check_at <= now()`,
      );
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('jobs_active_next_check_idx');
    } finally {
      client.release();
    }
  });

  it('reports every committed migration as applied', async () => {
    expect(await migrationsApplied(handle.db)).toBe(true);
  });
});
