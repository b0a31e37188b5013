/**
 * A batch's jobs for operators (the admin UI's batch page): what a row of its job list needs,
 * oldest first. A batch holds up to the collector's `maxJobs` (50,000 at the provider's limit),
 * so the page asks for a bounded number and says when there were more.
 */
import type { JobStatus } from '@longhaul/core';
import { asc, eq } from 'drizzle-orm';
import type { Database } from './client.ts';
import { jobs } from './schema.ts';

export interface BatchJobRow {
  id: string;
  status: JobStatus;
  model: string;
  costUsd: number | null;
}

/** Up to `limit` of a batch's jobs, oldest first (the order they were collected in). */
export async function listBatchJobsPage(db: Database, batchId: string, limit: number): Promise<BatchJobRow[]> {
  return db
    .select({ id: jobs.id, status: jobs.status, model: jobs.model, costUsd: jobs.costUsd })
    .from(jobs)
    .where(eq(jobs.batchId, batchId))
    .orderBy(asc(jobs.createdAt), asc(jobs.id))
    .limit(limit);
}
