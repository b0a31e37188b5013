/**
 * A tenant's offboarding erase (`tenant_erasures`): requested once (the CLI's `tenant erase`),
 * worked through by the worker's sweeper in batches (apps/worker/src/tenant-erasure.ts).
 *
 * Design note: a batch is one transaction that locks the erasure's row (`for update skip locked`:
 * two sweepers never work one erasure at once), does its work and records `cursor` (the last job
 * walked) and `counts` with it, so a crash loses the batch whole and the next sweep does it again:
 * nothing is done or counted twice. What a batch cannot put in its transaction is counted where it
 * is recorded: a response deleted at the provider when its job is marked (response-deletion.ts), a
 * file or conversation when it is marked deleted (markErasedTenantObject).
 *
 * The walk goes through the tenant's jobs oldest first by (created_at, id) on
 * `jobs_tenant_created_idx`, so jobs created while it runs (before the tenant's keys are revoked,
 * or by a key cached a moment longer) are still ahead of it; what changes behind it (a job it
 * cancelled that has since finished) is found again from the indexes before the erasure completes
 * (`tenantStragglers`).
 */
import { type SQL, and, asc, desc, eq, inArray, isNull, sql } from 'drizzle-orm';
import { ACTIVE_STATUSES } from '@longhaul/core';
import type { Database } from './client.ts';
import { newId } from './ids.ts';
import { eraseJobsStatement, runErase, type ErasedJob } from './job-erasure.ts';
import { type Job, type TenantErasure, type TenantErasureCounts, apiKeys, conversations, files, jobs, tenantErasures, tenants, webhookEndpoints } from './schema.ts';

export type { TenantErasure, TenantErasureCounts } from './schema.ts';

const ERASURE_ID_PREFIX = 'erasure';

const NO_COUNTS: TenantErasureCounts = {
  jobsCancelled: 0,
  jobsErased: 0,
  providerDeletes: 0,
  providerDeleteFailures: 0,
  filesDeleted: 0,
  conversationsDeleted: 0,
  keysRevoked: 0,
  endpointsDisabled: 0,
};

/** The endpoints' `disabled_reason` after an offboarding. */
export const TENANT_ERASED_REASON = 'tenant erased';

/**
 * Start erasing a tenant: a new running erasure, or the one already running. Null when there is no
 * such tenant. Two requests at once make one erasure (a transaction-scoped lock on the tenant).
 */
export async function requestTenantErasure(db: Database, tenantId: string, requestedBy: string, now: Date): Promise<{ erasure: TenantErasure; created: boolean } | null> {
  return db.transaction(async (tx) => {
    const [tenant] = await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId)).for('update');
    if (!tenant) return null;
    const [running] = await tx
      .select()
      .from(tenantErasures)
      .where(and(eq(tenantErasures.tenantId, tenantId), eq(tenantErasures.status, 'running')));
    if (running) return { erasure: running, created: false };
    const [erasure] = await tx
      .insert(tenantErasures)
      .values({ id: newId(ERASURE_ID_PREFIX, 16), tenantId, requestedBy, counts: NO_COUNTS, createdAt: now, updatedAt: now })
      .returning();
    return { erasure: erasure!, created: true };
  });
}

/** The tenant's erasures, newest first. */
export async function listTenantErasures(db: Database, tenantId: string): Promise<TenantErasure[]> {
  return db.select().from(tenantErasures).where(eq(tenantErasures.tenantId, tenantId)).orderBy(desc(tenantErasures.createdAt));
}

/** Running erasures, oldest first. */
export async function runningTenantErasures(db: Database, limit: number): Promise<TenantErasure[]> {
  return db.select().from(tenantErasures).where(eq(tenantErasures.status, 'running')).orderBy(asc(tenantErasures.createdAt)).limit(limit);
}

/** Within a batch's transaction: the erasure's row, locked; null when it is not running or another sweeper holds it. */
export async function lockRunningErasure(tx: Database, id: string): Promise<TenantErasure | null> {
  const [row] = await tx
    .select()
    .from(tenantErasures)
    .where(and(eq(tenantErasures.id, id), eq(tenantErasures.status, 'running')))
    .for('update', { skipLocked: true });
  return row ?? null;
}

/** Revoke every live API key of the tenant; how many. */
export async function revokeTenantApiKeys(tx: Database, tenantId: string, now: Date): Promise<number> {
  const rows = await tx
    .update(apiKeys)
    .set({ revokedAt: now })
    .where(and(eq(apiKeys.tenantId, tenantId), isNull(apiKeys.revokedAt)))
    .returning({ id: apiKeys.id });
  return rows.length;
}

/** Disable every enabled webhook endpoint of the tenant; how many. */
export async function disableTenantEndpoints(tx: Database, tenantId: string, now: Date): Promise<number> {
  const rows = await tx
    .update(webhookEndpoints)
    .set({ enabled: false, disabledReason: TENANT_ERASED_REASON, updatedAt: now })
    .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.enabled, true), isNull(webhookEndpoints.deletedAt)))
    .returning({ id: webhookEndpoints.id });
  return rows.length;
}

/** The next `limit` jobs of the walk after `cursor` (a job id; null: from the first). */
export async function nextTenantJobs(tx: Database, tenantId: string, cursor: string | null, limit: number): Promise<Job[]> {
  const after: SQL = cursor === null ? sql`true` : sql`(${jobs.createdAt}, ${jobs.id}) > (select c.created_at, c.id from ${jobs} c where c.id = ${cursor})`;
  return tx
    .select()
    .from(jobs)
    .where(and(eq(jobs.tenantId, tenantId), after))
    .orderBy(asc(jobs.createdAt), asc(jobs.id))
    .limit(limit);
}

/**
 * Jobs the walk left behind: active ones without a cancel request, and finished ones whose content
 * is still there (up to `limit` of each).
 */
export async function tenantStragglers(tx: Database, tenantId: string, limit: number): Promise<{ toCancel: Job[]; toErase: Job[] }> {
  const toCancel = await tx
    .select()
    .from(jobs)
    .where(and(eq(jobs.tenantId, tenantId), inArray(jobs.status, [...ACTIVE_STATUSES]), isNull(jobs.cancelRequestedAt)))
    .limit(limit);
  const toErase = await tx
    .select()
    .from(jobs)
    .where(and(eq(jobs.tenantId, tenantId), sql`${jobs.finishedAt} is not null`, isNull(jobs.erasedAt)))
    .limit(limit);
  return { toCancel, toErase };
}

/** How many of the tenant's jobs are still active (a cancel under way). */
export async function countActiveTenantJobs(db: Database, tenantId: string): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(jobs)
    .where(and(eq(jobs.tenantId, tenantId), inArray(jobs.status, [...ACTIVE_STATUSES])));
  return row?.n ?? 0;
}

/**
 * Erase the tenant's finished jobs among `ids` with reason `tenant`; jobs already erased for a
 * reason that deletes at the provider (`request`, `tenant`) are left as they are.
 */
export async function eraseTenantJobs(tx: Database, tenantId: string, ids: string[], now: Date): Promise<ErasedJob[]> {
  if (ids.length === 0) return [];
  const targets = sql`select ${jobs.id} from ${jobs}
    where ${jobs.tenantId} = ${tenantId} and ${jobs.id} in (${sql.join(
      ids.map((id) => sql`${id}`),
      sql`, `,
    )}) and ${jobs.erasedReason} is distinct from 'request' and ${jobs.erasedReason} is distinct from 'tenant'`;
  return runErase(tx, eraseJobsStatement(targets, 'tenant', now));
}

/** Within the batch's transaction: what it did, added to the counts, and where the walk is. */
export async function recordErasureProgress(
  tx: Database,
  erasure: TenantErasure,
  progress: { cursor?: string; add: Partial<TenantErasureCounts> },
  now: Date,
): Promise<TenantErasureCounts> {
  const counts = { ...NO_COUNTS, ...erasure.counts };
  for (const [key, n] of Object.entries(progress.add) as [keyof TenantErasureCounts, number][]) counts[key] += n;
  await tx
    .update(tenantErasures)
    .set({ counts, cursor: progress.cursor ?? erasure.cursor, updatedAt: now })
    .where(eq(tenantErasures.id, erasure.id));
  return counts;
}

/** Mark the erasure completed with its final count of provider deletes given up on. */
export async function completeTenantErasure(tx: Database, erasure: TenantErasure, providerDeleteFailures: number, now: Date): Promise<TenantErasureCounts> {
  const counts = { ...NO_COUNTS, ...erasure.counts, providerDeleteFailures };
  await tx.update(tenantErasures).set({ counts, status: 'completed', finishedAt: now, updatedAt: now }).where(eq(tenantErasures.id, erasure.id));
  return counts;
}

/** What a tenant holds at the provider besides its jobs' responses: deleted there when it is erased. */
export type StoredObjectKind = 'file' | 'conversation';

/** One of them, with the provider key it was created with. */
export interface StoredObject {
  kind: StoredObjectKind;
  id: string;
  providerKeyId: string | null;
}

const STORED = {
  file: { table: files, count: 'filesDeleted' },
  conversation: { table: conversations, count: 'conversationsDeleted' },
} as const;

/** The tenant's files and conversations still held at the provider, up to `limit` of each kind. */
export async function liveTenantObjects(db: Database, tenantId: string, limit: number): Promise<StoredObject[]> {
  const live: StoredObject[] = [];
  for (const kind of Object.keys(STORED) as StoredObjectKind[]) {
    const { table } = STORED[kind];
    const rows = await db
      .select({ id: table.id, providerKeyId: table.providerKeyId })
      .from(table)
      .where(and(eq(table.tenantId, tenantId), isNull(table.deletedAt)))
      .limit(limit);
    live.push(...rows.map((r) => ({ kind, ...r })));
  }
  return live;
}

/**
 * A file or conversation of an erased tenant deleted at the provider: marked deleted (a
 * conversation's metadata, the tenant's own strings, goes with it), and counted by its running
 * erasure; false when it was marked already.
 */
export async function markErasedTenantObject(db: Database, tenantId: string, object: Pick<StoredObject, 'kind' | 'id'>, now: Date): Promise<boolean> {
  const { table, count } = STORED[object.kind];
  const at = sql`${now.toISOString()}::timestamptz`;
  const metadata = object.kind === 'conversation' ? sql`, metadata = '{}'::jsonb` : sql``;
  const result = await db.execute<{ marked: number }>(sql`
    with marked as (
      update ${table} set deleted_at = ${at}${metadata}
       where ${table.id} = ${object.id} and ${table.tenantId} = ${tenantId} and ${table.deletedAt} is null
       returning ${table.id}
    ), counted as (
      update ${tenantErasures}
         set counts = jsonb_set(${tenantErasures.counts}, ${`{${count}}`}::text[], to_jsonb(coalesce((${tenantErasures.counts} ->> ${count})::int, 0) + 1)),
             updated_at = ${at}
       where ${tenantErasures.status} = 'running' and ${tenantErasures.tenantId} = ${tenantId} and exists (select 1 from marked)
    )
    select count(*)::int as marked from marked`);
  return (result.rows[0]?.marked ?? 0) > 0;
}
