/** The log of provider requests per job (see `providerCalls` in schema.ts). */
import { asc, eq } from 'drizzle-orm';
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
