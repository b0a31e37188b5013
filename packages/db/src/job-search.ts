/**
 * Job search for operators (the admin UI): across tenants unless a tenant is given, by status,
 * model, metadata key/value, creation time range, response id or job id. Newest first, paginated
 * on (created_at, id) like the tenant listing.
 */
import { type SQL, and, desc, eq, gte, lt, or, sql } from 'drizzle-orm';
import type { JobStatus } from '@longhaul/core';
import type { Database } from './client.ts';
import { jobs } from './schema.ts';

export interface JobSearch {
  tenantId?: string;
  status?: JobStatus;
  model?: string;
  /** A metadata key; with `metadataValue`, jobs whose metadata has exactly that pair. */
  metadataKey?: string;
  metadataValue?: string;
  /** Created at or after... */
  from?: Date;
  /** ...and before. */
  to?: Date;
  responseId?: string;
  jobId?: string;
  limit: number;
  /** Cursor: the id of the last job of the previous page. */
  after?: string;
}

const summaryColumns = {
  id: jobs.id,
  tenantId: jobs.tenantId,
  status: jobs.status,
  model: jobs.model,
  responseId: jobs.responseId,
  metadata: jobs.metadata,
  costUsd: jobs.costUsd,
  createdAt: jobs.createdAt,
  finishedAt: jobs.finishedAt,
};

export async function searchJobs(db: Database, search: JobSearch) {
  const conditions: SQL[] = [];
  if (search.tenantId) conditions.push(eq(jobs.tenantId, search.tenantId));
  if (search.status) conditions.push(eq(jobs.status, search.status));
  if (search.model) conditions.push(eq(jobs.model, search.model));
  if (search.responseId) conditions.push(eq(jobs.responseId, search.responseId));
  if (search.jobId) conditions.push(eq(jobs.id, search.jobId));
  if (search.metadataKey) {
    conditions.push(
      search.metadataValue !== undefined
        ? sql`${jobs.metadata} @> ${JSON.stringify({ [search.metadataKey]: search.metadataValue })}::jsonb`
        : sql`${jobs.metadata} ? ${search.metadataKey}`,
    );
  }
  if (search.from) conditions.push(gte(jobs.createdAt, search.from));
  if (search.to) conditions.push(lt(jobs.createdAt, search.to));
  if (search.after) {
    const [cursor] = await db.select({ createdAt: jobs.createdAt, id: jobs.id }).from(jobs).where(eq(jobs.id, search.after));
    if (!cursor) return { data: [], hasMore: false };
    conditions.push(or(lt(jobs.createdAt, cursor.createdAt), and(eq(jobs.createdAt, cursor.createdAt), lt(jobs.id, cursor.id)))!);
  }
  const rows = await db
    .select(summaryColumns)
    .from(jobs)
    .where(and(...conditions))
    .orderBy(desc(jobs.createdAt), desc(jobs.id))
    .limit(search.limit + 1);
  return { data: rows.slice(0, search.limit), hasMore: rows.length > search.limit };
}
