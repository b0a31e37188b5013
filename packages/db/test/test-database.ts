/**
 * The database a db test file works on: its own, cloned from the migrated template before its
 * tests and dropped after them, with a small pool and one tenant.
 */
import { afterAll, beforeAll } from 'vitest';
import { createDb, createTenant, type DbHandle } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from '../src/testing.ts';

export interface TestDb {
  readonly handle: DbHandle;
  readonly tenantId: string;
}

/** Call at a test file's top level; read `handle` and `tenantId` inside its tests. */
export function useTestDatabase(tenantName: string): TestDb {
  const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  let database: TestDatabase | undefined;
  const state: { handle?: DbHandle; tenantId?: string } = {};
  beforeAll(async () => {
    database = await createTestDatabase(base);
    state.handle = createDb({ connectionString: database.url, max: 4 });
    ({ tenantId: state.tenantId } = await createTenant(state.handle.db, tenantName));
  });
  afterAll(async () => {
    await state.handle?.close();
    await database?.drop();
  });
  return {
    get handle() {
      return state.handle!;
    },
    get tenantId() {
      return state.tenantId!;
    },
  };
}
