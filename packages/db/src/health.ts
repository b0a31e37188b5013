import { sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { migrationsApplied } from './migrate.ts';

/** Resolves when Postgres answers a trivial query (readiness checks). */
export async function pingDatabase(db: Database): Promise<void> {
  await db.execute(sql`select 1`);
}

/**
 * A readiness check that every committed migration is applied. Once it has passed it stays
 * passed (migrations only move forward), so probes do not re-read the migration files.
 */
export function migrationsCheck(db: Database): () => Promise<void> {
  let applied = false;
  return async () => {
    if (applied) return;
    await pingDatabase(db); // unreachable: say so, not "not applied"
    applied = await migrationsApplied(db);
    if (!applied) throw new Error('migrations are not applied (run `npm run migrate`)');
  };
}
