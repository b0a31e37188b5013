/** The log of provider requests per job (see `providerCalls` in schema.ts). */
import { asc, eq, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { providerCalls, type ProviderCall } from './schema.ts';

export type NewProviderCall = Omit<ProviderCall, 'id'>;

/** Insert a batch of calls in one statement. */
export async function recordProviderCalls(db: Database, calls: NewProviderCall[]): Promise<void> {
  if (calls.length === 0) return;
  await db.insert(providerCalls).values(calls);
}

/** A job's provider calls, oldest first. */
export async function listProviderCallsForJob(db: Database, jobId: string): Promise<ProviderCall[]> {
  return db.select().from(providerCalls).where(eq(providerCalls.jobId, jobId)).orderBy(asc(providerCalls.at), asc(providerCalls.id));
}

/**
 * Delete up to `limit` calls made before `before`, oldest first. Walks the primary key from the
 * lowest id (ids grow with time), so no index on `at` is needed. Returns how many were deleted.
 */
export async function deleteProviderCallsBefore(db: Database, before: Date, limit: number): Promise<number> {
  const result = await db.execute(sql`
    delete from ${providerCalls} where id in (
      select id from ${providerCalls} where at < ${before.toISOString()}::timestamptz order by id limit ${limit}
    )`);
  return result.rowCount ?? 0;
}
