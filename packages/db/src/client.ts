import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import * as schema from './schema.ts';

export type Database = NodePgDatabase<typeof schema>;

export interface DbOptions {
  connectionString: string;
  /** Pool size. Default 10. */
  max?: number;
  /** Name reported to Postgres (pg_stat_activity). */
  applicationName?: string;
  /** Fail a checkout that waits longer than this. Default 5 000 ms. */
  connectionTimeoutMillis?: number;
  /** Abort statements running longer than this. Default 30 000 ms. */
  statementTimeoutMillis?: number;
}

export interface DbHandle {
  db: Database;
  /** For connections outside the pool (LISTEN). */
  connectionString: string;
  pool: pg.Pool;
  /** Idempotent. */
  close(): Promise<void>;
}

export function createDb(options: DbOptions): DbHandle {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'longhaul',
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 5_000,
    statement_timeout: options.statementTimeoutMillis ?? 30_000,
  });
  // An idle client losing its connection (Postgres restart) must not crash the process; the pool
  // discards it and the next query reconnects.
  pool.on('error', () => {});
  // A client checked out of the pool (a transaction, the sweeper's lock session) has no error
  // listener while it is out: pg-pool removes its idle listener, so a connection lost between two
  // queries (Postgres restarting) would be an unhandled 'error' event and crash the process. The
  // lost client is unusable anyway: its next query fails (the API answers 503, a worker retries)
  // and the pool discards it when it is released.
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = drizzle(pool, { schema });
  let closing: Promise<void> | undefined;
  return {
    db,
    connectionString: options.connectionString,
    pool,
    close: () => (closing ??= pool.end()),
  };
}
