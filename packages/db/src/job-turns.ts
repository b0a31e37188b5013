/**
 * The turns of a job's tool-call loop as recorded (job_turns; written by job-transitions.ts with
 * the change that ends or answers each turn).
 */
import { asc, eq } from 'drizzle-orm';
import type { Database } from './client.ts';
import { type JobTurn, jobTurns } from './schema.ts';

/** A job's ended turns, first to last. */
export function listJobTurns(db: Database, jobId: string): Promise<JobTurn[]> {
  return db.select().from(jobTurns).where(eq(jobTurns.jobId, jobId)).orderBy(asc(jobTurns.turn));
}
