import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIVE_STATUSES, DELIVERY_STATUSES, EVENT_SOURCES, JOB_STATUSES } from '@longhaul/core';
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
    const listed = [...rows[0]!.def.matchAll(/'(\w+)'::job_status/g)].map((m) => m[1]);
    expect(listed).toEqual([...ACTIVE_STATUSES]);
  });

  it('reports every committed migration as applied', async () => {
    expect(await migrationsApplied(handle.db)).toBe(true);
  });
});
