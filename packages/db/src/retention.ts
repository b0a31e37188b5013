/**
 * Retention: a finished job's content is kept for its tenant's `retention_days` (null: the
 * deployment's default, RETENTION_DAYS; 0: until erased), counted from when it finished; then the
 * sweeper erases it (job-erasure.ts, reason `retention`), a bounded batch per statement.
 *
 * The candidates come from `jobs_retention_idx` (tenant_id, finished_at) where finished_at is not
 * null and erased_at is null: per tenant that keeps content, its oldest finished jobs past the
 * cut-off, so a batch reads about as many index entries as it erases and an erased job leaves the
 * index. Active jobs (finished_at null) and tenants keeping everything are never read. The rows
 * are locked `for update skip locked`, so two sweepers (or a tenant's DELETE racing the sweeper)
 * never wait on each other: a row one of them holds is simply left for the next batch. A tenant
 * being offboarded (a running tenant erasure) is left to that erasure, which deletes at the
 * provider too.
 */
import { sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { eraseJobsStatement, runErase } from './job-erasure.ts';
import { jobs, tenantErasures, tenants } from './schema.ts';

export interface RetentionBatch {
  now: Date;
  /** Days for tenants without their own `retention_days`; 0 keeps their jobs. */
  defaultDays: number;
  /** Most jobs erased by the statement. */
  limit: number;
}

/** Erase up to `limit` jobs past their tenant's retention, in one statement; how many were erased. */
export async function eraseJobsPastRetention(db: Database, batch: RetentionBatch): Promise<number> {
  const { now, defaultDays, limit } = batch;
  const days = sql`coalesce(${tenants.retentionDays}, ${defaultDays}::int)`;
  const targets = sql`
    select due.id from ${tenants}
    cross join lateral (
      select ${jobs.id} as id from ${jobs}
       where ${jobs.tenantId} = ${tenants.id} and ${jobs.finishedAt} is not null and ${jobs.erasedAt} is null
         and ${jobs.finishedAt} < ${now.toISOString()}::timestamptz - make_interval(days => ${days})
       order by ${jobs.finishedAt}
       limit ${limit}
       for update of ${jobs} skip locked
    ) due
    where ${days} > 0
      and not exists (select 1 from ${tenantErasures} where ${tenantErasures.tenantId} = ${tenants.id} and ${tenantErasures.status} = 'running')
    limit ${limit}`;
  return (await runErase(db, eraseJobsStatement(targets, 'retention', now))).length;
}
