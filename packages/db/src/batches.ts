/**
 * Batch API batches (@longhaul/core batch.ts): collecting batch jobs into batches, and every
 * change of a batch's state.
 *
 * A job joins a batch in `claimBatch`, one transaction: the waiting jobs are locked (`for update
 * skip locked`: two collectors never take the same job), the batch row inserted and each job
 * tagged with it; so a job is in one batch at most. A batch changes only in `changeBatchState`:
 * its row locked, the core's `batchTransition` decides, the row and its batch_events row are
 * written together. Workers take a batch to work on with `leaseDueBatch`, which pushes its next
 * check past a lease: a worker that dies holding it leaves it due again when the lease runs out.
 */
import { type BatchEvent, type BatchStatus, type JobError, ID_PREFIX, batchTransition } from '@longhaul/core';
import { and, asc, desc, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { newId } from './ids.ts';
import { batchEvents, batches, jobs, type Batch, type Job } from './schema.ts';

/** Batch jobs waiting for a batch, by tenant and model: how many, their requests' bytes, the oldest's creation. */
export interface WaitingBatchGroup {
  tenantId: string;
  model: string;
  count: number;
  bytes: number;
  oldestAt: Date;
}

/** Every group of batch jobs waiting for a batch (the partial index jobs_batch_waiting_idx holds exactly these). */
export async function waitingBatchGroups(db: Database): Promise<WaitingBatchGroup[]> {
  const rows = await db
    .select({
      tenantId: jobs.tenantId,
      model: jobs.model,
      count: sql<number>`count(*)::int`,
      bytes: sql<number>`coalesce(sum(octet_length(${jobs.request}::text)), 0)::bigint`,
      oldestAt: sql<Date>`min(${jobs.createdAt})`,
    })
    .from(jobs)
    .where(waitingForBatch())
    .groupBy(jobs.tenantId, jobs.model);
  return rows.map((r) => ({ ...r, bytes: Number(r.bytes), oldestAt: new Date(r.oldestAt) }));
}

const waitingForBatch = () => and(eq(jobs.processing, 'batch'), isNull(jobs.batchId), eq(jobs.status, 'pending'));

/**
 * Collect up to `maxJobs` of a group's waiting jobs, oldest first, into a new batch (status
 * `building`), staying under `maxBytes` of requests (at least one job). Null when another
 * collector took them first.
 */
export async function claimBatch(
  db: Database,
  group: { tenantId: string; model: string },
  limits: { maxJobs: number; maxBytes: number },
  now: Date,
): Promise<{ batch: Batch; jobIds: string[] } | null> {
  return db.transaction(async (tx) => {
    const candidates = await tx
      .select({ id: jobs.id, bytes: sql<number>`octet_length(${jobs.request}::text)` })
      .from(jobs)
      .where(and(waitingForBatch(), eq(jobs.tenantId, group.tenantId), eq(jobs.model, group.model)))
      .orderBy(asc(jobs.createdAt), asc(jobs.id))
      .limit(limits.maxJobs)
      .for('update', { skipLocked: true });
    const picked: string[] = [];
    let bytes = 0;
    for (const c of candidates) {
      // A line is the request plus its envelope (custom_id, method, url): about 100 bytes more.
      const size = Number(c.bytes) + 100;
      if (picked.length > 0 && bytes + size > limits.maxBytes) break;
      picked.push(c.id);
      bytes += size;
    }
    if (picked.length === 0) return null;
    const [batch] = await tx
      .insert(batches)
      .values({
        id: newId(ID_PREFIX.batch),
        tenantId: group.tenantId,
        model: group.model,
        status: 'building',
        jobCount: picked.length,
        bytes,
        nextCheckAt: now,
        createdAt: now,
        updatedAt: now,
      })
      .returning();
    await tx.insert(batchEvents).values({ batchId: batch!.id, fromStatus: null, toStatus: 'building', at: now, details: { jobs: picked.length, bytes } });
    await tx.update(jobs).set({ batchId: batch!.id, updatedAt: now }).where(inArray(jobs.id, picked));
    return { batch: batch!, jobIds: picked };
  });
}

/** Columns a batch change may set beside its status. */
export type BatchFields = Partial<
  Pick<
    Batch,
    | 'providerBatchId'
    | 'inputFileId'
    | 'providerKeyId'
    | 'outputFileId'
    | 'errorFileId'
    | 'requestCounts'
    | 'error'
    | 'createAttempts'
    | 'nextCheckAt'
    | 'submittedAt'
    | 'reconciledAt'
  >
>;

export type BatchChange = { ok: true; changed: boolean; batch: Batch } | { ok: false; error: JobError; batch: Batch | null };

/**
 * The one way a batch's state changes: under its row lock, `batchTransition` decides; the row
 * (status and `fields`) and, for a change of status, its batch_events row are written together.
 * `event` null: only `fields` change (a poll's request counts, a lease).
 */
export async function changeBatchState(
  db: Database,
  batchId: string,
  event: BatchEvent | null,
  fields: BatchFields,
  now: Date,
  details: Record<string, unknown> = {},
  options: { leasedUntil?: Date | null } = {},
): Promise<BatchChange> {
  return db.transaction(async (tx) => {
    const [batch] = await tx.select().from(batches).where(eq(batches.id, batchId)).for('update');
    if (!batch) return { ok: false, error: { code: 'batch_not_found', message: `batch ${batchId} not found` }, batch: null };
    const decision = event ? batchTransition(batch, event) : { ok: true as const, status: batch.status, changed: false };
    if (!decision.ok) return { ok: false, error: decision.error, batch };
    const ended = decision.changed && ['completed', 'failed', 'expired', 'cancelled'].includes(decision.status);
    // A worker holding the batch's lease (`leasedUntil`, the next check its lease set) does not push
    // back a check that was brought forward meanwhile (markBatchDue: one of its jobs was
    // cancelled): that wake-up would be lost, and the cancel not seen until the next poll.
    const set = { ...fields };
    const current = batch.nextCheckAt;
    if (options.leasedUntil !== undefined && set.nextCheckAt && current && current.getTime() !== options.leasedUntil?.getTime() && current < set.nextCheckAt) {
      delete set.nextCheckAt;
    }
    const [updated] = await tx
      .update(batches)
      .set({ ...set, status: decision.status, updatedAt: now, ...(ended ? { finishedAt: now } : {}) })
      .where(eq(batches.id, batchId))
      .returning();
    if (decision.changed)
      await tx.insert(batchEvents).values({ batchId, fromStatus: batch.status, toStatus: decision.status, at: now, details: { event: event!.type, ...details } });
    return { ok: true, changed: decision.changed, batch: updated! };
  });
}

/**
 * Take a batch that is due (not reconciled, its next check passed) to work on: its next check
 * moves `leaseMs` ahead, so other workers leave it alone while this one works, and take it again
 * if this one dies. Null when none is due.
 */
export async function leaseDueBatch(db: Database, now: Date, leaseMs: number): Promise<Batch | null> {
  const rows = await db.execute<{ id: string }>(sql`
    update ${batches} set next_check_at = ${new Date(now.getTime() + leaseMs).toISOString()}::timestamptz
    where id = (
      select id from ${batches}
      where reconciled_at is null and next_check_at <= ${now.toISOString()}::timestamptz
      order by next_check_at limit 1 for update skip locked
    )
    returning id`);
  const id = rows.rows[0]?.id;
  return id ? getBatch(db, id) : null;
}

export async function getBatch(db: Database, batchId: string): Promise<Batch | null> {
  const [batch] = await db.select().from(batches).where(eq(batches.id, batchId));
  return batch ?? null;
}

/**
 * A `batch.*` webhook named this provider batch: it is due now, so the next worker tick reads it
 * (a batch already reconciled, or not Longhaul's, is left alone). Returns the batch's id, or null.
 */
export async function markProviderBatchDue(db: Database, providerBatchId: string, now: Date): Promise<string | null> {
  const rows = await db
    .update(batches)
    .set({ nextCheckAt: now })
    .where(and(eq(batches.providerBatchId, providerBatchId), isNull(batches.reconciledAt)))
    .returning({ id: batches.id });
  return rows[0]?.id ?? null;
}

/** Something changed that the batch's worker should see (a job of it cancelled): it is due now. */
export async function markBatchDue(db: Database, batchId: string, now: Date): Promise<void> {
  await db
    .update(batches)
    .set({ nextCheckAt: now })
    .where(and(eq(batches.id, batchId), isNull(batches.reconciledAt)));
}

/** A batch's jobs, whole (their requests make its input file; their states decide what its lines do). */
export async function batchJobs(db: Database, batchId: string): Promise<Job[]> {
  return db.select().from(jobs).where(eq(jobs.batchId, batchId));
}

/** What the job objects of these batches show of them: status and the provider's id. */
export async function batchViews(db: Database, batchIds: readonly string[]): Promise<Map<string, { status: BatchStatus; providerBatchId: string | null }>> {
  if (batchIds.length === 0) return new Map();
  const rows = await db
    .select({ id: batches.id, status: batches.status, providerBatchId: batches.providerBatchId })
    .from(batches)
    .where(inArray(batches.id, [...new Set(batchIds)]));
  return new Map(rows.map((r) => [r.id, { status: r.status, providerBatchId: r.providerBatchId }]));
}

/** A tenant's batches, newest first, keyset-paged by (created_at, id). */
export async function listBatchesForTenant(db: Database, tenantId: string | null, options: { limit: number; before?: { createdAt: Date; id: string } }): Promise<Batch[]> {
  const before = options.before;
  return db
    .select()
    .from(batches)
    .where(
      and(
        tenantId === null ? undefined : eq(batches.tenantId, tenantId),
        before ? or(lt(batches.createdAt, before.createdAt), and(eq(batches.createdAt, before.createdAt), lt(batches.id, before.id))) : undefined,
      ),
    )
    .orderBy(desc(batches.createdAt), desc(batches.id))
    .limit(options.limit);
}

/** A batch's recorded changes, oldest first. */
export async function listBatchEvents(db: Database, batchId: string) {
  return db.select().from(batchEvents).where(eq(batchEvents.batchId, batchId)).orderBy(asc(batchEvents.id));
}

/** Counts of a batch's jobs by status (the admin UI). */
export async function batchJobCounts(db: Database, batchId: string): Promise<Record<string, number>> {
  const rows = await db.select({ status: jobs.status, n: sql<number>`count(*)::int` }).from(jobs).where(eq(jobs.batchId, batchId)).groupBy(jobs.status);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}
