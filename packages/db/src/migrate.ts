import { fileURLToPath } from 'node:url';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { sql } from 'drizzle-orm';
import type { Database } from './client.ts';

/**
 * The committed drizzle-kit migrations at the repository root. Resolved from this module's own
 * location, which is one level below the package whether it runs as src/migrate.ts or as the
 * compiled dist/migrate.js; the Docker image keeps the repository layout (migrations/ at its root).
 */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../../migrations', import.meta.url));

/**
 * Apply pending migrations. Safe to call from several processes at once: a session advisory lock
 * serialises them.
 */
export async function runMigrations(db: Database, migrationsFolder = MIGRATIONS_FOLDER): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(7301972450113)`);
    await migrate(tx as unknown as Database, { migrationsFolder });
  });
}

/** Whether every committed migration has been applied (for readiness checks). */
export async function migrationsApplied(db: Database, migrationsFolder = MIGRATIONS_FOLDER): Promise<boolean> {
  const { readMigrationFiles } = await import('drizzle-orm/migrator');
  const expected = readMigrationFiles({ migrationsFolder });
  try {
    const result = await db.execute<{ hash: string }>(sql`select hash from drizzle.__drizzle_migrations`);
    const applied = new Set(result.rows.map((r) => r.hash));
    return expected.every((m) => applied.has(m.hash));
  } catch {
    return false;
  }
}
