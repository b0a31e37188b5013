/**
 * The admin audit log: who did what in the admin UI (logins, logouts, wrong credentials, and every
 * action that changes something: a job cancelled, work items retried, a queue cleaned, ...).
 *
 * An action that changes something is written before it runs, without a status, and settled with
 * the status it was answered with (`settleAdminAction`): a row without a status is an action whose
 * outcome is unknown (the process stopped in between). Operator data across tenants, so not
 * scoped by tenant. Newest first, paginated on (at, id).
 */
import { type SQL, and, desc, eq, lt, or, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { type AdminAction, adminActions } from './schema.ts';

export type { AdminAction };

export interface AdminActionRecord {
  at: Date;
  /** The admin: a name of ADMIN_USERS, `admin` (the token), `basic:<user>`, `anonymous`; for a wrong credential, the name tried. */
  actor: string;
  action: string;
  target?: string | null;
  address?: string | null;
  /** The HTTP status the action was answered with; null until it is known. */
  statusCode?: number | null;
  details?: Record<string, unknown>;
}

/** Write one row; returns its id. */
export async function recordAdminAction(db: Database, record: AdminActionRecord): Promise<number> {
  const [row] = await db
    .insert(adminActions)
    .values({
      at: record.at,
      actor: record.actor,
      action: record.action,
      target: record.target ?? null,
      address: record.address ?? null,
      statusCode: record.statusCode ?? null,
      details: record.details ?? {},
    })
    .returning({ id: adminActions.id });
  return row!.id;
}

/** The outcome of an action written before it ran; `details` are added to the row's. */
export async function settleAdminAction(db: Database, id: number, outcome: { statusCode: number; details?: Record<string, unknown> }): Promise<void> {
  await db
    .update(adminActions)
    .set({ statusCode: outcome.statusCode, details: sql`${adminActions.details} || ${JSON.stringify(outcome.details ?? {})}::jsonb` })
    .where(eq(adminActions.id, id));
}

export interface AdminActionSearch {
  actor?: string;
  action?: string;
  limit: number;
  /** Cursor: the id of the last row of the previous page. */
  after?: number;
}

export async function listAdminActions(db: Database, search: AdminActionSearch): Promise<{ data: AdminAction[]; hasMore: boolean }> {
  const conditions: SQL[] = [];
  if (search.actor) conditions.push(eq(adminActions.actor, search.actor));
  if (search.action) conditions.push(eq(adminActions.action, search.action));
  if (search.after !== undefined) {
    const [cursor] = await db.select({ at: adminActions.at, id: adminActions.id }).from(adminActions).where(eq(adminActions.id, search.after));
    if (!cursor) return { data: [], hasMore: false };
    conditions.push(or(lt(adminActions.at, cursor.at), and(eq(adminActions.at, cursor.at), lt(adminActions.id, cursor.id)))!);
  }
  const rows = await db
    .select()
    .from(adminActions)
    .where(and(...conditions))
    .orderBy(desc(adminActions.at), desc(adminActions.id))
    .limit(search.limit + 1);
  return { data: rows.slice(0, search.limit), hasMore: rows.length > search.limit };
}

/** Delete up to `limit` of the oldest audit rows recorded before `before` (the sweeper's retention); how many. */
export async function deleteAdminActionsBefore(db: Database, before: Date, limit: number): Promise<number> {
  const result = await db.execute(sql`
    delete from ${adminActions} where ${adminActions.id} in (
      select ${adminActions.id} from ${adminActions} where ${adminActions.at} < ${before.toISOString()}::timestamptz order by ${adminActions.at} limit ${limit}
    )`);
  return result.rowCount ?? 0;
}
