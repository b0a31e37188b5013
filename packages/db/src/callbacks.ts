/**
 * Queries for outgoing callbacks: tenant endpoints, deliveries (one event to one destination)
 * and their attempt log. Every tenant-facing query is scoped by tenant.
 */
import { and, desc, eq, gte, isNull, lt, lte, or, sql } from 'drizzle-orm';
import { type DeliveryStatus, ID_PREFIX, DeliveryStatus as Status } from '@longhaul/core';
import type { Database } from './client.ts';
import { type DbExecutor, type DeliveryChangeResult, changeDeliveryState, changeDeliveryStates } from './delivery-transitions.ts';
import { newId } from './ids.ts';
import { compiledStatement } from './sql-values.ts';
import {
  callbackAttempts,
  callbackDeliveries,
  callbackEvents,
  tenants,
  webhookEndpoints,
  type CallbackAttempt,
  type CallbackDelivery,
  type SigningSecret,
  type WebhookEndpoint,
} from './schema.ts';

export interface NewEndpoint {
  tenantId: string;
  url: string;
  description: string | null;
  eventTypes: string[];
  enabled: boolean;
  thinPayload: boolean;
  secret: string;
}

export async function createEndpoint(db: Database, input: NewEndpoint, now: Date): Promise<WebhookEndpoint> {
  const { secret, ...rest } = input;
  const [row] = await db
    .insert(webhookEndpoints)
    .values({ id: newId(ID_PREFIX.webhookEndpoint, 20), ...rest, secrets: [{ secret, createdAt: now.toISOString(), expiresAt: null }], createdAt: now, updatedAt: now })
    .returning();
  return row!;
}

const liveEndpoint = (tenantId: string, id: string) => and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id), isNull(webhookEndpoints.deletedAt));

export async function getEndpoint(db: Database, tenantId: string, id: string): Promise<WebhookEndpoint | null> {
  const [row] = await db.select().from(webhookEndpoints).where(liveEndpoint(tenantId, id));
  return row ?? null;
}

export async function listEndpoints(db: Database, tenantId: string): Promise<WebhookEndpoint[]> {
  return db
    .select()
    .from(webhookEndpoints)
    .where(and(eq(webhookEndpoints.tenantId, tenantId), isNull(webhookEndpoints.deletedAt)))
    .orderBy(desc(webhookEndpoints.createdAt), desc(webhookEndpoints.id));
}

export interface EndpointPatch {
  url?: string;
  description?: string | null;
  eventTypes?: string[];
  enabled?: boolean;
  thinPayload?: boolean;
}

/**
 * Re-enabling an endpoint clears its failure streak and disabled reason; disabling it cancels its
 * pending deliveries (an attempt in flight is logged when it ends but cannot revive them).
 */
export async function updateEndpoint(db: Database, tenantId: string, id: string, patch: EndpointPatch, now: Date): Promise<WebhookEndpoint | null> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(webhookEndpoints)
      .set({ ...patch, ...(patch.enabled === true ? { failingSince: null, disabledReason: null } : {}), updatedAt: now })
      .where(liveEndpoint(tenantId, id))
      .returning();
    if (row && patch.enabled === false) await cancelPendingDeliveries(tx, id, 'endpoint disabled', now);
    return row ?? null;
  });
}

/** Soft delete (the delivery history stays); pending deliveries to it are cancelled. */
export async function deleteEndpoint(db: Database, tenantId: string, id: string, now: Date): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(webhookEndpoints)
      .set({ deletedAt: now, enabled: false, updatedAt: now })
      .where(liveEndpoint(tenantId, id))
      .returning({ id: webhookEndpoints.id });
    if (!row) return false;
    await cancelPendingDeliveries(tx, id, 'endpoint deleted', now);
    return true;
  });
}

/** An endpoint was deleted or disabled: its pending deliveries are cancelled, a page at a time. */
async function cancelPendingDeliveries(db: DbExecutor, endpointId: string, reason: string, now: Date): Promise<void> {
  for (;;) {
    const pending = await db
      .select()
      .from(callbackDeliveries)
      .where(and(eq(callbackDeliveries.endpointId, endpointId), eq(callbackDeliveries.status, Status.Pending)))
      .limit(500);
    if (pending.length === 0) return;
    await changeDeliveryStates(db, pending, { type: 'endpoint_removed', reason }, now);
  }
}

/**
 * Start signing with a new secret. The previous ones keep signing (several signatures per
 * request, as Standard Webhooks allows) until `overlapMs` from now, so receivers can switch over.
 */
export async function rotateEndpointSecret(db: Database, tenantId: string, id: string, secret: string, overlapMs: number, now: Date): Promise<WebhookEndpoint | null> {
  const endpoint = await getEndpoint(db, tenantId, id);
  if (!endpoint) return null;
  const until = new Date(now.getTime() + overlapMs).toISOString();
  const kept = activeSecrets(endpoint.secrets, now).map((s) => ({ ...s, expiresAt: s.expiresAt && s.expiresAt < until ? s.expiresAt : until }));
  const [row] = await db
    .update(webhookEndpoints)
    .set({ secrets: [{ secret, createdAt: now.toISOString(), expiresAt: null }, ...kept], updatedAt: now })
    .where(liveEndpoint(tenantId, id))
    .returning();
  return row ?? null;
}

export function activeSecrets(secrets: readonly SigningSecret[], now: Date): SigningSecret[] {
  return secrets.filter((s) => s.expiresAt === null || new Date(s.expiresAt) > now);
}

/** The secret that signs callbacks to a tenant's job-level `callback_url`s, created on first use. */
export async function tenantCallbackSecret(db: Database, tenantId: string, generate: () => string): Promise<string> {
  const [row] = await db.select({ secret: tenants.callbackSecret }).from(tenants).where(eq(tenants.id, tenantId));
  if (row?.secret) return row.secret;
  const [updated] = await db
    .update(tenants)
    .set({ callbackSecret: sql`coalesce(${tenants.callbackSecret}, ${generate()})` })
    .where(eq(tenants.id, tenantId))
    .returning({ secret: tenants.callbackSecret });
  return updated!.secret!;
}

/** What the deliver processor needs of an endpoint. */
export type DeliveryEndpoint = Pick<WebhookEndpoint, 'id' | 'enabled' | 'deletedAt' | 'secrets' | 'failingSince'>;

export interface DeliveryWork {
  delivery: CallbackDelivery;
  event: {
    id: string;
    createdAt: Date;
    /** The stored payload as JSON text; null when the caller named this event as one it holds. */
    payloadJson: string | null;
  };
  /** Null for a delivery to a job's own callback_url. */
  endpoint: DeliveryEndpoint | null;
  /** The tenant's callback secret, for a delivery to a job's own callback_url (null: not created yet). */
  tenantSecret: string | null;
}

interface DeliveryWorkRow extends Record<string, unknown> {
  id: string;
  tenant_id: string;
  event_id: string;
  job_id: string | null;
  endpoint_id: string | null;
  url: string;
  thin_payload: boolean;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  event_created_at: string;
  event_payload: string | null;
  endpoint_enabled: boolean | null;
  endpoint_deleted_at: string | null;
  endpoint_secrets: SigningSecret[] | null;
  endpoint_failing_since: string | null;
  tenant_secret: string | null;
}

/** node-postgres hands timestamps to drizzle's sessions as Postgres text; drizzle maps them the same way. */
const toDate = (value: string) => new Date(value);
const toDateOrNull = (value: string | null) => (value === null ? null : new Date(value));

/** getDeliveryWork's statement (its text never varies). */
const deliveryWorkStatement = compiledStatement<DeliveryWorkRow>(
  () => sql`
    select d.id, d.tenant_id, d.event_id, d.job_id, d.endpoint_id, d.url, d.thin_payload, d.status, d.attempts, d.next_attempt_at,
           d.last_status_code, d.last_error, d.created_at, d.updated_at, d.finished_at,
           e.created_at as event_created_at,
           case when e.id = any(${sql.placeholder('known')}::text[]) then null else e.payload::text end as event_payload,
           w.enabled as endpoint_enabled, w.deleted_at as endpoint_deleted_at, w.secrets as endpoint_secrets, w.failing_since as endpoint_failing_since,
           t.callback_secret as tenant_secret
    from ${callbackDeliveries} d
    join ${callbackEvents} e on e.id = d.event_id
    left join ${webhookEndpoints} w on w.id = d.endpoint_id
    left join ${tenants} t on d.endpoint_id is null and t.id = d.tenant_id
    where d.id = any(${sql.placeholder('ids')}::text[])`,
);

/**
 * Everything the deliver processor needs for each of `ids`, in one prepared statement (the
 * delivery, its event, its endpoint, the tenant's callback secret), whatever the number of ids.
 * Rows are in no particular order; an unknown id has none. An event named in
 * `knownEventIds` comes without its payload: the caller already holds it (an event fanned out
 * to many endpoints is read and parsed once, not once per delivery).
 */
export async function getDeliveryWork(db: Database, ids: readonly string[], knownEventIds: readonly string[] = []): Promise<DeliveryWork[]> {
  const rows = await deliveryWorkStatement(db, '', { ids, known: knownEventIds });
  return rows.map((r) => ({
    delivery: {
      id: r.id,
      tenantId: r.tenant_id,
      eventId: r.event_id,
      jobId: r.job_id,
      endpointId: r.endpoint_id,
      url: r.url,
      thinPayload: r.thin_payload,
      status: r.status,
      attempts: r.attempts,
      nextAttemptAt: toDateOrNull(r.next_attempt_at),
      lastStatusCode: r.last_status_code,
      lastError: r.last_error,
      createdAt: toDate(r.created_at),
      updatedAt: toDate(r.updated_at),
      finishedAt: toDateOrNull(r.finished_at),
    },
    event: { id: r.event_id, createdAt: toDate(r.event_created_at), payloadJson: r.event_payload },
    endpoint:
      r.endpoint_id === null || r.endpoint_enabled === null
        ? null
        : {
            id: r.endpoint_id,
            enabled: r.endpoint_enabled,
            deletedAt: toDateOrNull(r.endpoint_deleted_at),
            secrets: r.endpoint_secrets ?? [],
            failingSince: toDateOrNull(r.endpoint_failing_since),
          },
    tenantSecret: r.tenant_secret,
  }));
}

/** A successful attempt ends the endpoint's failure streak. */
export async function markEndpointHealthy(db: Database, endpointId: string): Promise<void> {
  await db
    .update(webhookEndpoints)
    .set({ failingSince: null })
    .where(and(eq(webhookEndpoints.id, endpointId), sql`${webhookEndpoints.failingSince} is not null`));
}

/** A failed attempt starts (or continues) the streak; returns when it started. */
export async function markEndpointFailing(db: Database, endpointId: string, now: Date): Promise<Date> {
  const [row] = await db
    .update(webhookEndpoints)
    .set({ failingSince: sql`coalesce(${webhookEndpoints.failingSince}, ${now.toISOString()}::timestamptz)` })
    .where(eq(webhookEndpoints.id, endpointId))
    .returning({ failingSince: webhookEndpoints.failingSince });
  return row?.failingSince ?? now;
}

/**
 * Disable an endpoint (410 Gone, or failing for too long): records a `webhook_endpoint.disabled`
 * event and cancels its pending deliveries, in one transaction. Returns false when it already was.
 */
export async function disableEndpoint(db: Database, endpointId: string, reason: string, now: Date): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .update(webhookEndpoints)
      .set({ enabled: false, disabledReason: reason, updatedAt: now })
      .where(and(eq(webhookEndpoints.id, endpointId), eq(webhookEndpoints.enabled, true)))
      .returning();
    if (!row) return false;
    const eventId = newId(ID_PREFIX.event);
    await tx.insert(callbackEvents).values({
      id: eventId,
      tenantId: row.tenantId,
      jobId: null,
      endpointId,
      type: 'webhook_endpoint.disabled',
      sequence: 0,
      payload: { id: eventId, type: 'webhook_endpoint.disabled', created_at: Math.floor(now.getTime() / 1000), data: { id: endpointId, url: row.url, reason } },
      createdAt: now,
    });
    await cancelPendingDeliveries(tx, endpointId, `endpoint disabled: ${reason}`, now);
    return true;
  });
}

export interface ListDeliveriesOptions {
  tenantId: string;
  limit: number;
  after?: string;
  status?: DeliveryStatus;
  endpointId?: string;
  jobId?: string;
}

export async function listDeliveries(db: Database, o: ListDeliveriesOptions): Promise<{ data: CallbackDelivery[]; hasMore: boolean }> {
  const conditions = [eq(callbackDeliveries.tenantId, o.tenantId)];
  if (o.status) conditions.push(eq(callbackDeliveries.status, o.status));
  if (o.endpointId) conditions.push(eq(callbackDeliveries.endpointId, o.endpointId));
  if (o.jobId) conditions.push(eq(callbackDeliveries.jobId, o.jobId));
  if (o.after) {
    const [cursor] = await db
      .select({ createdAt: callbackDeliveries.createdAt, id: callbackDeliveries.id })
      .from(callbackDeliveries)
      .where(and(eq(callbackDeliveries.id, o.after), eq(callbackDeliveries.tenantId, o.tenantId)));
    if (!cursor) return { data: [], hasMore: false };
    conditions.push(or(lt(callbackDeliveries.createdAt, cursor.createdAt), and(eq(callbackDeliveries.createdAt, cursor.createdAt), lt(callbackDeliveries.id, cursor.id)))!);
  }
  const rows = await db
    .select()
    .from(callbackDeliveries)
    .where(and(...conditions))
    .orderBy(desc(callbackDeliveries.createdAt), desc(callbackDeliveries.id))
    .limit(o.limit + 1);
  return { data: rows.slice(0, o.limit), hasMore: rows.length > o.limit };
}

export async function getDelivery(db: Database, tenantId: string, id: string): Promise<{ delivery: CallbackDelivery; attempts: CallbackAttempt[] } | null> {
  const [delivery] = await db
    .select()
    .from(callbackDeliveries)
    .where(and(eq(callbackDeliveries.id, id), eq(callbackDeliveries.tenantId, tenantId)));
  if (!delivery) return null;
  const attempts = await db.select().from(callbackAttempts).where(eq(callbackAttempts.deliveryId, id)).orderBy(callbackAttempts.attempt, callbackAttempts.id);
  return { delivery, attempts };
}

/**
 * Send a dead letter (or a cancelled delivery) again: it becomes pending with a fresh schedule.
 * Refused (`delivery_not_retryable`) for a delivery that is pending or succeeded.
 */
export async function retryDelivery(db: Database, tenantId: string, id: string, now: Date): Promise<DeliveryChangeResult> {
  const [row] = await db
    .select()
    .from(callbackDeliveries)
    .where(and(eq(callbackDeliveries.id, id), eq(callbackDeliveries.tenantId, tenantId)));
  if (!row) return { ok: false, error: { code: 'delivery_not_found', message: `delivery ${id} not found` }, delivery: null };
  return changeDeliveryState(db, row, { type: 'redelivery_requested' }, now);
}

/** Re-send everything that failed for an endpoint since `since`; returns the delivery ids. */
export async function recoverEndpointDeliveries(db: Database, tenantId: string, endpointId: string, since: Date, now: Date): Promise<string[]> {
  const failed = await db
    .select()
    .from(callbackDeliveries)
    .where(
      and(
        eq(callbackDeliveries.tenantId, tenantId),
        eq(callbackDeliveries.endpointId, endpointId),
        eq(callbackDeliveries.status, Status.Failed),
        gte(callbackDeliveries.createdAt, since),
      ),
    );
  const results = await changeDeliveryStates(db, failed, { type: 'redelivery_requested' }, now);
  return results.flatMap((r) => (r.ok && r.changed ? [r.delivery.id] : []));
}

/** Pending deliveries whose attempt is overdue (their work item was lost). */
export async function findOverdueDeliveries(db: Database, before: Date, limit: number): Promise<string[]> {
  const rows = await db
    .select({ id: callbackDeliveries.id })
    .from(callbackDeliveries)
    .where(and(eq(callbackDeliveries.status, Status.Pending), lte(callbackDeliveries.nextAttemptAt, before)))
    .orderBy(callbackDeliveries.nextAttemptAt)
    .limit(limit);
  return rows.map((r) => r.id);
}

/** Every callback attempt about a job, oldest first (for the admin timeline). */
export async function listCallbackAttemptsForJob(db: Database, jobId: string) {
  return db
    .select({
      deliveryId: callbackDeliveries.id,
      eventId: callbackDeliveries.eventId,
      url: callbackDeliveries.url,
      endpointId: callbackDeliveries.endpointId,
      attempt: callbackAttempts.attempt,
      statusCode: callbackAttempts.statusCode,
      latencyMs: callbackAttempts.latencyMs,
      error: callbackAttempts.error,
      at: callbackAttempts.at,
      nextAttemptAt: callbackAttempts.nextAttemptAt,
    })
    .from(callbackAttempts)
    .innerJoin(callbackDeliveries, eq(callbackDeliveries.id, callbackAttempts.deliveryId))
    .where(eq(callbackDeliveries.jobId, jobId))
    .orderBy(callbackAttempts.at, callbackAttempts.id);
}
