/** Queries of the OpenAI webhook inbox (see `webhookInbox` in schema.ts). */
import { and, eq, getTableColumns, inArray, lt, or, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { jobs, webhookInbox, type Job, type WebhookInboxRow, type WebhookInboxStatus } from './schema.ts';

export interface InboxInput {
  webhookId: string;
  eventId: string | null;
  eventType: string;
  responseId: string | null;
  payload: Record<string, unknown>;
  receivedAt: Date;
}

/**
 * Record a delivery; `null` when this `webhook-id` was seen before (a redelivery). In the same
 * statement, the job whose response it names (null when none has committed that response id yet),
 * so the work item can carry it and the worker need not read it again.
 */
export async function recordWebhook(db: Database, input: InboxInput): Promise<{ id: number; job: Job | null } | null> {
  let statement = recordStatements.get(db);
  if (!statement) {
    statement = prepareRecord(db);
    recordStatements.set(db, statement);
  }
  const [row] = await statement.execute({ ...input });
  return row ? { id: row.id, job: row.job } : null;
}

/** A prepared statement: one per webhook the API receives. */
const recordStatements = new WeakMap<Database, ReturnType<typeof prepareRecord>>();
function prepareRecord(db: Database) {
  const p = sql.placeholder;
  const inserted = db.$with('inserted').as(
    db
      .insert(webhookInbox)
      .values({ webhookId: p('webhookId'), eventId: p('eventId'), eventType: p('eventType'), responseId: p('responseId'), payload: p('payload'), receivedAt: p('receivedAt') })
      .onConflictDoNothing({ target: webhookInbox.webhookId })
      .returning({ id: webhookInbox.id }),
  );
  // A null response id matches no job (`= null` is never true).
  return db
    .with(inserted)
    .select({ id: inserted.id, job: getTableColumns(jobs) })
    .from(inserted)
    .leftJoin(jobs, eq(jobs.responseId, p('responseId')))
    .prepare('longhaul_record_webhook');
}

export async function getInboxRow(db: Database, id: number): Promise<WebhookInboxRow | null> {
  const [row] = await db.select().from(webhookInbox).where(eq(webhookInbox.id, id));
  return row ?? null;
}

/** Settle a row. Only open rows (received, waiting) move; settled ones stay as they are. */
export async function settleInboxRow(db: Database, id: number, status: WebhookInboxStatus, fields: { jobId?: string | null; note?: string | null; now: Date }): Promise<void> {
  await db
    .update(webhookInbox)
    .set({ status, jobId: fields.jobId, note: fields.note, processedAt: status === 'waiting' ? null : fields.now })
    .where(and(eq(webhookInbox.id, id), inArray(webhookInbox.status, ['received', 'waiting'])));
}

/** A webhook applied to its job, to be settled (`settleAppliedRows`). */
export interface AppliedInboxRow {
  id: number;
  jobId: string;
  note: string | null;
  at: Date;
}

/**
 * Settle many applied rows in one statement (the worker batches them). Guarded as
 * `settleInboxRow`: only open rows (received, waiting) move; a row's note is kept when none is given.
 */
export async function settleAppliedRows(db: Database, rows: readonly AppliedInboxRow[]): Promise<void> {
  if (rows.length === 0) return;
  const values = sql.join(
    rows.map((r) => sql`(${r.id}::bigint, ${r.jobId}::text, ${r.note}::text, ${r.at.toISOString()}::timestamptz)`),
    sql`, `,
  );
  await db.execute(sql`
    update ${webhookInbox} set status = 'applied', job_id = v.job_id, note = coalesce(v.note, ${webhookInbox.note}), processed_at = v.at
    from (values ${values}) as v(id, job_id, note, at)
    where ${webhookInbox.id} = v.id and ${webhookInbox.status} in ('received', 'waiting')`);
}

export async function findJobByResponseId(db: Database, responseId: string): Promise<Job | null> {
  const [job] = await db.select().from(jobs).where(eq(jobs.responseId, responseId));
  return job ?? null;
}

/**
 * Open rows the worker should have settled by `before`: `received` ones whose dispatch was lost,
 * and `waiting` ones whose job now has its response id.
 */
export async function findStaleInboxRows(db: Database, before: Date, limit: number): Promise<number[]> {
  const rows = await db
    .select({ id: webhookInbox.id })
    .from(webhookInbox)
    .where(
      and(
        lt(webhookInbox.receivedAt, before),
        sql`(${webhookInbox.status} = 'received' or (${webhookInbox.status} = 'waiting' and exists (select 1 from ${jobs} where ${jobs.responseId} = ${webhookInbox.responseId})))`,
      ),
    )
    .orderBy(webhookInbox.id)
    .limit(limit);
  return rows.map((r) => r.id);
}

/** Waiting rows older than `before` will never match a job: they are orphans. */
export async function orphanOldWaitingRows(db: Database, before: Date, now: Date): Promise<number> {
  const rows = await db
    .update(webhookInbox)
    .set({ status: 'orphan', note: 'no job claimed the response', processedAt: now })
    .where(and(eq(webhookInbox.status, 'waiting'), lt(webhookInbox.receivedAt, before)))
    .returning({ id: webhookInbox.id });
  return rows.length;
}

/** OpenAI webhooks about a job (matched to it, or naming its response), oldest first. */
export async function listWebhooksForJob(db: Database, job: { id: string; responseId: string | null }): Promise<WebhookInboxRow[]> {
  const about = job.responseId ? or(eq(webhookInbox.jobId, job.id), eq(webhookInbox.responseId, job.responseId)) : eq(webhookInbox.jobId, job.id);
  return db.select().from(webhookInbox).where(about).orderBy(webhookInbox.receivedAt, webhookInbox.id);
}
