/**
 * Test isolation: every test file gets its own database, cloned from a template that the test
 * run's global setup migrates once. Cloning (CREATE DATABASE … TEMPLATE) takes a few tens of ms.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { createDb } from './client.ts';
import { newId } from './ids.ts';
import { MIGRATIONS_FOLDER, runMigrations } from './migrate.ts';

/** Admin connection (any database the test role can connect to). */
export function adminUrl(base: string): string {
  const url = new URL(base);
  url.pathname = '/postgres';
  return url.toString();
}

function withDatabase(base: string, name: string): string {
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

/** The template's name changes whenever a migration changes. */
export function templateName(): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(MIGRATIONS_FOLDER)
    .filter((f) => f.endsWith('.sql'))
    .sort()) {
    hash.update(file).update(readFileSync(`${MIGRATIONS_FOLDER}/${file}`));
  }
  return `longhaul_tpl_${hash.digest('hex').slice(0, 12)}`;
}

async function withAdmin<T>(base: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl(base) });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Create and migrate the template database if it does not exist yet. */
export async function ensureTemplateDatabase(base: string): Promise<string> {
  const name = templateName();
  await withAdmin(base, async (admin) => {
    await admin.query('select pg_advisory_lock(4242001)');
    try {
      const exists = await admin.query('select 1 from pg_database where datname = $1', [name]);
      if (exists.rowCount) return;
      await admin.query(`create database "${name}_build"`).catch(() => {});
      const handle = createDb({ connectionString: withDatabase(base, `${name}_build`), max: 1 });
      try {
        await runMigrations(handle.db);
      } finally {
        await handle.close();
      }
      await admin.query(`alter database "${name}_build" rename to "${name}"`);
    } finally {
      await admin.query('select pg_advisory_unlock(4242001)');
    }
  });
  return name;
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** A fresh, migrated database for one test file. */
export async function createTestDatabase(base: string): Promise<TestDatabase> {
  const template = await ensureTemplateDatabase(base);
  const name = newId('lh_test', 12).toLowerCase();
  await withAdmin(base, (admin) => admin.query(`create database "${name}" template "${template}"`));
  return {
    url: withDatabase(base, name),
    name,
    drop: () => withAdmin(base, (admin) => admin.query(`drop database if exists "${name}" with (force)`)).then(() => undefined),
  };
}
