/**
 * Response cache entries (the rules: @longhaul/core response-cache.ts). An entry names, per tenant
 * and request key, the job whose result answers identical requests; the result stays on that job's
 * row, so an entry is a few dozen bytes and erasing the job (job-erasure.ts) erases the entry.
 *
 * Life of an entry:
 *   claim (a new job, no usable entry)  → `running`, the job is its source
 *   the source completes                → `ready` until finished_at + ttl
 *   the source ends any other way       → removed (the next identical request runs again)
 *   expired                              → taken over by the next claim, or removed by the sweeper
 *
 * Single flight: an identical job submitted while the source runs waits for it (`jobs.cached_from`
 * set, status `pending`, no work item) and is answered when the source completes, or runs itself
 * when the source did not complete.
 */
import { and, eq, sql } from 'drizzle-orm';
import { JobStatus, TERMINAL_STATUSES } from '@longhaul/core';
import type { Database } from './client.ts';
import { type ChangeContext, type ChangeResult, applyJobEvent } from './job-transitions.ts';
import { type Job, jobs, responseCache } from './schema.ts';

export interface CacheClaim {
  tenantId: string;
  key: string;
  sourceJobId: string;
  ttlSeconds: number;
  promptId: string | null;
  promptVersion: number | null;
}

/** What an identical request finds: a result to answer with, a source to wait for, or nothing (it becomes the source). */
export type CacheLookup = { kind: 'hit'; source: Job } | { kind: 'wait'; source: Job } | { kind: 'none' };

/** The tenant's entry for `key`, usable at `now`, with its source job. */
export async function lookupCacheEntry(db: Database, tenantId: string, key: string, now: Date): Promise<CacheLookup> {
  const [row] = await db
    .select({ entry: responseCache, source: jobs })
    .from(responseCache)
    .innerJoin(jobs, eq(jobs.id, responseCache.sourceJobId))
    .where(and(eq(responseCache.tenantId, tenantId), eq(responseCache.key, key)));
  if (!row || row.source.erasedAt !== null) return { kind: 'none' };
  const { entry, source } = row;
  if (entry.status === 'ready') {
    return source.status === JobStatus.Completed && entry.expiresAt !== null && entry.expiresAt > now ? { kind: 'hit', source } : { kind: 'none' };
  }
  if (!TERMINAL_STATUSES.includes(source.status)) return { kind: 'wait', source };
  // The source completed and its entry is not settled yet (a moment, or a crash in between): it answers as a ready one would.
  const answersUntil = source.finishedAt ? source.finishedAt.getTime() + entry.ttlSeconds * 1000 : 0;
  return source.status === JobStatus.Completed && answersUntil > now.getTime() ? { kind: 'hit', source } : { kind: 'none' };
}

/**
 * Make `claim.sourceJobId` the source for its key: a new entry, or one that can no longer answer
 * (expired, its source ended without completing, or left `running` by a crash after its source
 * finished) taken over. False when another job holds it:
 * the caller looks again (and waits, or is answered).
 */
export async function claimCacheEntry(db: Database, claim: CacheClaim, now: Date): Promise<boolean> {
  const at = now.toISOString();
  const result = await db.execute<{ source_job_id: string }>(sql`
    insert into ${responseCache} (tenant_id, key, source_job_id, status, ttl_seconds, prompt_id, prompt_version, created_at, expires_at)
    values (${claim.tenantId}, ${claim.key}, ${claim.sourceJobId}, 'running', ${claim.ttlSeconds}, ${claim.promptId}, ${claim.promptVersion}, ${at}::timestamptz, null)
    on conflict (tenant_id, key) do update
      set source_job_id = excluded.source_job_id, status = 'running', ttl_seconds = excluded.ttl_seconds,
          prompt_id = excluded.prompt_id, prompt_version = excluded.prompt_version, created_at = excluded.created_at, expires_at = null
      where (${responseCache.status} = 'ready' and ${responseCache.expiresAt} <= ${at}::timestamptz)
         or exists (select 1 from ${jobs} s where s.id = ${responseCache.sourceJobId}
                     and (s.erased_at is not null or s.status in ('failed', 'cancelled', 'incomplete', 'expired')
                          -- left running by a crash after its source finished, and past its time
                          or (${responseCache.status} = 'running' and s.finished_at + make_interval(secs => ${responseCache.ttlSeconds}) <= ${at}::timestamptz)))
    returning source_job_id`);
  return result.rows[0]?.source_job_id === claim.sourceJobId;
}

/** Mark `jobId` (pending) as waiting for `sourceId`'s result. */
export async function waitForCacheSource(db: Database, jobId: string, sourceId: string): Promise<void> {
  await db
    .update(jobs)
    .set({ cachedFrom: sourceId })
    .where(and(eq(jobs.id, jobId), eq(jobs.status, JobStatus.Pending)));
}

/** A waiter whose source did not complete runs itself: it no longer waits. */
export async function releaseCacheWaiter(db: Database, jobId: string): Promise<Job | null> {
  const [job] = await db
    .update(jobs)
    .set({ cachedFrom: null })
    .where(and(eq(jobs.id, jobId), eq(jobs.status, JobStatus.Pending)))
    .returning();
  return job ?? null;
}

/** The jobs waiting for `sourceId`'s result. */
export function cacheWaiters(db: Database, sourceId: string): Promise<Job[]> {
  return db
    .select()
    .from(jobs)
    .where(and(eq(jobs.cachedFrom, sourceId), eq(jobs.status, JobStatus.Pending)));
}

/** The source ended: a completed one answers until finished + ttl; any other end removes its entry. */
export async function settleCacheEntry(db: Database, source: Job): Promise<void> {
  if (!source.cacheKey) return;
  if (source.status === JobStatus.Completed && source.finishedAt) {
    await db
      .update(responseCache)
      .set({ status: 'ready', expiresAt: sql`${source.finishedAt.toISOString()}::timestamptz + make_interval(secs => ${responseCache.ttlSeconds})` })
      .where(and(eq(responseCache.tenantId, source.tenantId), eq(responseCache.key, source.cacheKey), eq(responseCache.sourceJobId, source.id)));
    return;
  }
  await db.delete(responseCache).where(and(eq(responseCache.tenantId, source.tenantId), eq(responseCache.key, source.cacheKey), eq(responseCache.sourceJobId, source.id)));
}

/** Answer a pending job with a completed source's result: no provider call, no cost, what it saved recorded. */
export function applyCacheHit(db: Database, job: Job, source: Job, ctx: ChangeContext): Promise<ChangeResult> {
  return applyJobEvent(
    db,
    job,
    { type: 'cache_hit' },
    { ...ctx, details: { cached_from: source.id, ...ctx.details } },
    {
      output: source.output,
      outputText: source.outputText,
      usage: source.usage,
      reasoningSummary: source.reasoningSummary,
      costUsd: 0,
      savedUsd: source.costUsd,
      cachedFrom: source.id,
    },
  );
}

/** `DELETE /v1/cache`: the tenant's entries (of one prompt, or one prompt version, when given). */
export async function clearResponseCache(db: Database, tenantId: string, filter: { promptId?: string; promptVersion?: number } = {}): Promise<number> {
  const conditions = [eq(responseCache.tenantId, tenantId)];
  if (filter.promptId !== undefined) conditions.push(eq(responseCache.promptId, filter.promptId));
  if (filter.promptVersion !== undefined) conditions.push(eq(responseCache.promptVersion, filter.promptVersion));
  const deleted = await db
    .delete(responseCache)
    .where(and(...conditions))
    .returning({ key: responseCache.key });
  return deleted.length;
}

/** The sweeper: remove up to `limit` expired entries. */
export async function deleteExpiredCacheEntries(db: Database, now: Date, limit: number): Promise<number> {
  const result = await db.execute(sql`
    delete from ${responseCache} where ctid in (
      select ctid from ${responseCache} where ${responseCache.expiresAt} <= ${now.toISOString()}::timestamptz limit ${limit})`);
  return result.rowCount ?? 0;
}

/** The sweeper: waiters whose source has ended (a crash between the source's end and its waiters being settled). */
export function staleCacheWaiters(db: Database, limit: number): Promise<Job[]> {
  return db
    .select()
    .from(jobs)
    .where(
      and(
        eq(jobs.status, JobStatus.Pending),
        sql`${jobs.cachedFrom} is not null`,
        sql`exists (select 1 from ${jobs} s where s.id = ${jobs.cachedFrom} and (s.finished_at is not null or s.erased_at is not null))`,
      ),
    )
    .limit(limit);
}
