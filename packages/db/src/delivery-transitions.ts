/**
 * The one place a callback delivery's state changes (the deliveries' changeJobState).
 *
 * `changeDeliveryStates` asks the pure `deliveryTransition` from @longhaul/core what each
 * delivery's next state is, on the row in hand, and writes every decision in one statement, each
 * row guarded by the status it was decided on. A row whose status moved meanwhile is read again
 * and decided again. The writers are the worker (an attempt's answer, an endpoint found disabled),
 * the API (an endpoint deleted or disabled, a redelivery, an endpoint recovery) and the worker
 * disabling a failing endpoint; none writes a delivery's status any other way. That is what makes
 * a cancellation win over an attempt still in flight: its answer is decided on the cancelled row
 * and refused, because terminal states are sticky.
 *
 * Attempts' answers (`recordAttempts`, the deliver processor's hot path) are decided the same way
 * and written with their attempt log rows in one statement for a whole batch; a row that moved
 * takes the careful path (`recordAttempt`: read again, decide again, log).
 */
import { eq, inArray, sql } from 'drizzle-orm';
import { type DeliveryEvent, type DeliveryState, type DeliveryStatus, type DeliveryTransitionError, deliveryTransition } from '@longhaul/core';
import type { Database } from './client.ts';
import { callbackAttempts, callbackDeliveries, type CallbackDelivery } from './schema.ts';
import { compiledStatement } from './sql-values.ts';

/** The pool or an open transaction: a change joins the caller's transaction when it has one. */
export type DbExecutor = Database | Parameters<Parameters<Database['transaction']>[0]>[0];

export type DeliveryChangeResult =
  | { ok: true; changed: boolean; from: DeliveryStatus; delivery: CallbackDelivery }
  | { ok: false; error: DeliveryTransitionError | { code: 'delivery_not_found'; message: string }; delivery: CallbackDelivery | null };

/** Statuses move forward (or back to pending on a redelivery): a few rounds always settle. */
const MAX_ROUNDS = 10;

/**
 * Change one delivery's state. `target` is its id, or the row the caller has in hand (then a
 * refusal is checked against a fresh read before it is believed, as changeJobState does).
 */
export async function changeDeliveryState(db: DbExecutor, target: string | CallbackDelivery, event: DeliveryEvent, now: Date): Promise<DeliveryChangeResult> {
  const [result] = await changeDeliveryStates(db, [target], event, now);
  return result!;
}

/**
 * Apply one event to several deliveries (an endpoint's pending deliveries on its removal, the
 * failed ones on a recovery), in one guarded statement per round. Results are in input order.
 */
export async function changeDeliveryStates(db: DbExecutor, targets: readonly (string | CallbackDelivery)[], event: DeliveryEvent, now: Date): Promise<DeliveryChangeResult[]> {
  const results = new Map<string, DeliveryChangeResult>();
  const ids = targets.map((t) => (typeof t === 'string' ? t : t.id));
  let inHand = targets.filter((t): t is CallbackDelivery => typeof t !== 'string');
  let fresh = false;
  const unread = ids.filter((id) => !inHand.some((row) => row.id === id));
  if (unread.length > 0) inHand = [...inHand, ...(await readDeliveries(db, unread))];

  for (let round = 0; ; round++) {
    const again: string[] = [];
    const writes: { row: CallbackDelivery; next: CallbackDelivery }[] = [];
    for (const row of inHand) {
      const decision = deliveryTransition(row, event, now);
      if (!decision.ok) {
        // A refusal is only trusted on a row read in this call.
        if (fresh || unread.includes(row.id)) results.set(row.id, { ok: false, error: decision.error, delivery: row });
        else again.push(row.id);
      } else if (!decision.changed) {
        results.set(row.id, { ok: true, changed: false, from: row.status, delivery: row });
      } else {
        writes.push({ row, next: { ...row, ...pickState(decision.next), updatedAt: now } });
      }
    }
    const written = await writeDecisions(db, writes, now);
    for (const { row, next } of writes) {
      if (written.has(row.id)) results.set(row.id, { ok: true, changed: true, from: row.status, delivery: next });
      else again.push(row.id);
    }
    if (again.length === 0) break;
    if (round >= MAX_ROUNDS) throw new Error(`deliveries ${again.join(', ')}: state kept changing under concurrent updates`);
    inHand = await readDeliveries(db, again);
    fresh = true;
    for (const id of again) if (!inHand.some((row) => row.id === id)) results.set(id, notFound(id));
  }
  return ids.map((id) => results.get(id) ?? notFound(id));
}

export interface AttemptLog {
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  at: Date;
}

/**
 * Record an attempt's answer: the delivery moves as `event` decides on its current row, and the
 * attempt is appended to its log, in one transaction. An answer arriving after the delivery
 * finished (its endpoint was deleted while the request was in flight) is logged but moves nothing.
 */
export async function recordAttempt(
  db: Database,
  delivery: string | CallbackDelivery,
  attempt: AttemptLog,
  event: Extract<DeliveryEvent, { type: 'attempt_succeeded' | 'attempt_failed' }>,
): Promise<DeliveryChangeResult> {
  return db.transaction(async (tx) => {
    const result = await changeDeliveryState(tx, delivery, event, attempt.at);
    if (!result.delivery) return result;
    const applied = result.ok && result.changed;
    await tx.insert(callbackAttempts).values({
      deliveryId: result.delivery.id,
      attempt: applied ? result.delivery.attempts : result.delivery.attempts + 1,
      statusCode: attempt.statusCode,
      latencyMs: attempt.latencyMs,
      error: attempt.error,
      at: attempt.at,
      nextAttemptAt: applied ? result.delivery.nextAttemptAt : null,
    });
    return result;
  });
}

export interface AttemptRecord {
  /** The row the attempt was made on, as read before it. */
  delivery: CallbackDelivery;
  attempt: AttemptLog;
  event: Extract<DeliveryEvent, { type: 'attempt_succeeded' | 'attempt_failed' }>;
}

/**
 * Record the answers of several attempts (the deliver processor's concurrent attempts, batched):
 * what `recordAttempt` does for each, with the common case in ONE statement for all of them.
 * Each answer is decided on its row in hand; the decisions and their attempt log rows are
 * written together, each delivery guarded by the status its decision was taken on, and only a
 * delivery whose write applied gets its log row there. A delivery that moved meanwhile (its
 * endpoint removed during the attempt) goes through `recordAttempt`, which decides again on the
 * fresh row and logs the attempt. Results are in input order.
 */
export async function recordAttempts(db: Database, records: readonly AttemptRecord[]): Promise<DeliveryChangeResult[]> {
  const seen = new Set<string>();
  const decided = records.map(({ delivery, attempt, event }) => {
    // A delivery twice in one batch (a stalled work item run again) takes the careful path the second time.
    if (seen.has(delivery.id)) return null;
    seen.add(delivery.id);
    const decision = deliveryTransition(delivery, event, attempt.at);
    if (!decision.ok || !decision.changed) return null;
    return { row: delivery, next: { ...delivery, ...pickState(decision.next), updatedAt: attempt.at }, attempt };
  });
  const writes = decided.filter((w): w is NonNullable<typeof w> => w !== null);
  const written = writes.length > 0 ? await writeAttempts(db, writes) : new Set<string>();
  return Promise.all(
    records.map((record, i): DeliveryChangeResult | Promise<DeliveryChangeResult> => {
      const write = decided[i];
      if (write && written.has(write.row.id)) return { ok: true, changed: true, from: write.row.status, delivery: write.next };
      return recordAttempt(db, record.delivery, record.attempt, record.event);
    }),
  );
}

/** A decision as one row of the statements below: the delivery's new state, guarded by the status it was taken on. */
function decisionRow(row: CallbackDelivery, next: CallbackDelivery) {
  return {
    id: row.id,
    from_status: row.status,
    status: next.status,
    attempts: next.attempts,
    next_attempt_at: next.nextAttemptAt?.toISOString() ?? null,
    finished_at: next.finishedAt?.toISOString() ?? null,
    last_status_code: next.lastStatusCode,
    last_error: next.lastError,
  };
}

/** writeAttempts' statement (its text never varies). */
const writeAttemptsStatement = compiledStatement<{ id: string }>(
  () => sql`
    with v as (
      select * from jsonb_to_recordset(${sql.placeholder('rows')}::jsonb) as v(
        id text, from_status callback_delivery_status, status callback_delivery_status, attempts int,
        next_attempt_at timestamptz, finished_at timestamptz, last_status_code int, last_error text, updated_at timestamptz,
        status_code int, latency_ms int, error text, at timestamptz)
    ), upd as (
      update ${callbackDeliveries} d set
        status = v.status, attempts = v.attempts, next_attempt_at = v.next_attempt_at, finished_at = v.finished_at,
        last_status_code = v.last_status_code, last_error = v.last_error, updated_at = v.updated_at
      from v where d.id = v.id and d.status = v.from_status
      returning d.id
    ), logged as (
      insert into ${callbackAttempts} (delivery_id, attempt, status_code, latency_ms, error, at, next_attempt_at)
      select v.id, v.attempts, v.status_code, v.latency_ms, v.error, v.at, v.next_attempt_at from v join upd on upd.id = v.id
    )
    select id from upd`,
);

/**
 * Decisions and their attempt log rows in one statement; returns the ids written (a missing id
 * had moved meanwhile: neither its state nor its log row was written).
 */
async function writeAttempts(db: Database, writes: { row: CallbackDelivery; next: CallbackDelivery; attempt: AttemptLog }[]): Promise<Set<string>> {
  const rows = writes.map(({ row, next, attempt }) => ({
    ...decisionRow(row, next),
    updated_at: next.updatedAt.toISOString(),
    status_code: attempt.statusCode,
    latency_ms: attempt.latencyMs,
    error: attempt.error,
    at: attempt.at.toISOString(),
  }));
  const result = await writeAttemptsStatement(db, '', { rows: JSON.stringify(rows) });
  return new Set(result.map((r) => r.id));
}

function pickState(s: DeliveryState): DeliveryState {
  return { status: s.status, attempts: s.attempts, nextAttemptAt: s.nextAttemptAt, finishedAt: s.finishedAt, lastStatusCode: s.lastStatusCode, lastError: s.lastError };
}

const notFound = (id: string): DeliveryChangeResult => ({ ok: false, error: { code: 'delivery_not_found', message: `delivery ${id} not found` }, delivery: null });

function readDeliveries(db: DbExecutor, ids: string[]): Promise<CallbackDelivery[]> {
  if (ids.length === 1) return db.select().from(callbackDeliveries).where(eq(callbackDeliveries.id, ids[0]!));
  return db.select().from(callbackDeliveries).where(inArray(callbackDeliveries.id, ids));
}

/**
 * Write decisions in ONE statement, each row guarded by the status its decision was taken on.
 * Returns the ids written; a missing id had moved meanwhile.
 */
async function writeDecisions(db: DbExecutor, writes: { row: CallbackDelivery; next: CallbackDelivery }[], now: Date): Promise<Set<string>> {
  if (writes.length === 0) return new Set();
  const rows = writes.map(({ row, next }) => decisionRow(row, next));
  const result = await db.execute<{ id: string }>(sql`
    update ${callbackDeliveries} d set
      status = v.status, attempts = v.attempts, next_attempt_at = v.next_attempt_at, finished_at = v.finished_at,
      last_status_code = v.last_status_code, last_error = v.last_error, updated_at = ${now.toISOString()}::timestamptz
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as v(
      id text, from_status callback_delivery_status, status callback_delivery_status, attempts int,
      next_attempt_at timestamptz, finished_at timestamptz, last_status_code int, last_error text)
    where d.id = v.id and d.status = v.from_status
    returning d.id`);
  return new Set(result.rows.map((r) => r.id));
}
