/**
 * Queries for outgoing callbacks: tenant endpoints, deliveries (one event to one destination)
 * and their attempt log. Every tenant-facing query is scoped by tenant.
 */
import { and, desc, eq, gte, inArray, isNull, lt, lte, or, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { newId } from './ids.ts';
import {
  callbackAttempts,
  callbackDeliveries,
  callbackEvents,
  tenants,
  webhookEndpoints,
  type CallbackAttempt,
  type CallbackDelivery,
  type CallbackDeliveryStatus,
  type CallbackEvent,
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
    .values({ id: newId('we', 20), ...rest, secrets: [{ secret, createdAt: now.toISOString(), expiresAt: null }], createdAt: now, updatedAt: now })
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

/** Re-enabling an endpoint clears its failure streak and disabled reason. */
export async function updateEndpoint(db: Database, tenantId: string, id: string, patch: EndpointPatch, now: Date): Promise<WebhookEndpoint | null> {
  const [row] = await db
    .update(webhookEndpoints)
    .set({ ...patch, ...(patch.enabled === true ? { failingSince: null, disabledReason: null } : {}), updatedAt: now })
    .where(liveEndpoint(tenantId, id))
    .returning();
  return row ?? null;
}

/** Soft delete (the delivery history stays); pending deliveries to it are cancelled. */
export async function deleteEndpoint(db: Database, tenantId: string, id: string, now: Date): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [row] = await tx.update(webhookEndpoints).set({ deletedAt: now, enabled: false, updatedAt: now }).where(liveEndpoint(tenantId, id)).returning({ id: webhookEndpoints.id });
    if (!row) return false;
    await tx
      .update(callbackDeliveries)
      .set({ status: 'cancelled', finishedAt: now, updatedAt: now, lastError: 'endpoint deleted' })
      .where(and(eq(callbackDeliveries.endpointId, id), eq(callbackDeliveries.status, 'pending')));
    return true;
  });
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

export interface DeliveryWork {
  delivery: CallbackDelivery;
  event: CallbackEvent;
  endpoint: WebhookEndpoint | null;
}

export async function getDeliveryWork(db: Database, deliveryId: string): Promise<DeliveryWork | null> {
  const [row] = await db
    .select({ delivery: callbackDeliveries, event: callbackEvents, endpoint: webhookEndpoints })
    .from(callbackDeliveries)
    .innerJoin(callbackEvents, eq(callbackEvents.id, callbackDeliveries.eventId))
    .leftJoin(webhookEndpoints, eq(webhookEndpoints.id, callbackDeliveries.endpointId))
    .where(eq(callbackDeliveries.id, deliveryId));
  return row ?? null;
}

export interface AttemptRecord {
  deliveryId: string;
  attempt: number;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  at: Date;
  /** Set when another attempt is scheduled. */
  nextAttemptAt: Date | null;
  /** The delivery's status after this attempt. */
  status: CallbackDeliveryStatus;
}

/** Append an attempt and move the delivery accordingly, in one transaction. */
export async function recordAttempt(db: Database, a: AttemptRecord): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.insert(callbackAttempts).values({ deliveryId: a.deliveryId, attempt: a.attempt, statusCode: a.statusCode, latencyMs: a.latencyMs, error: a.error, at: a.at, nextAttemptAt: a.nextAttemptAt });
    await tx
      .update(callbackDeliveries)
      .set({
        attempts: a.attempt,
        status: a.status,
        nextAttemptAt: a.nextAttemptAt,
        lastStatusCode: a.statusCode,
        lastError: a.error,
        updatedAt: a.at,
        finishedAt: a.status === 'pending' ? null : a.at,
      })
      .where(eq(callbackDeliveries.id, a.deliveryId));
  });
}

/** A successful attempt ends the endpoint's failure streak. */
export async function markEndpointHealthy(db: Database, endpointId: string): Promise<void> {
  await db.update(webhookEndpoints).set({ failingSince: null }).where(and(eq(webhookEndpoints.id, endpointId), sql`${webhookEndpoints.failingSince} is not null`));
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
    const eventId = newId('evt');
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
    await tx
      .update(callbackDeliveries)
      .set({ status: 'cancelled', finishedAt: now, updatedAt: now, lastError: `endpoint disabled: ${reason}` })
      .where(and(eq(callbackDeliveries.endpointId, endpointId), eq(callbackDeliveries.status, 'pending')));
    return true;
  });
}

export interface ListDeliveriesOptions {
  tenantId: string;
  limit: number;
  after?: string;
  status?: CallbackDeliveryStatus;
  endpointId?: string;
  jobId?: string;
}

export async function listDeliveries(db: Database, o: ListDeliveriesOptions): Promise<{ data: CallbackDelivery[]; hasMore: boolean }> {
  const conditions = [eq(callbackDeliveries.tenantId, o.tenantId)];
  if (o.status) conditions.push(eq(callbackDeliveries.status, o.status));
  if (o.endpointId) conditions.push(eq(callbackDeliveries.endpointId, o.endpointId));
  if (o.jobId) conditions.push(eq(callbackDeliveries.jobId, o.jobId));
  if (o.after) {
    const [cursor] = await db.select({ createdAt: callbackDeliveries.createdAt, id: callbackDeliveries.id }).from(callbackDeliveries).where(and(eq(callbackDeliveries.id, o.after), eq(callbackDeliveries.tenantId, o.tenantId)));
    if (!cursor) return { data: [], hasMore: false };
    conditions.push(or(lt(callbackDeliveries.createdAt, cursor.createdAt), and(eq(callbackDeliveries.createdAt, cursor.createdAt), lt(callbackDeliveries.id, cursor.id)))!);
  }
  const rows = await db.select().from(callbackDeliveries).where(and(...conditions)).orderBy(desc(callbackDeliveries.createdAt), desc(callbackDeliveries.id)).limit(o.limit + 1);
  return { data: rows.slice(0, o.limit), hasMore: rows.length > o.limit };
}

export async function getDelivery(db: Database, tenantId: string, id: string): Promise<{ delivery: CallbackDelivery; attempts: CallbackAttempt[] } | null> {
  const [delivery] = await db.select().from(callbackDeliveries).where(and(eq(callbackDeliveries.id, id), eq(callbackDeliveries.tenantId, tenantId)));
  if (!delivery) return null;
  const attempts = await db.select().from(callbackAttempts).where(eq(callbackAttempts.deliveryId, id)).orderBy(callbackAttempts.attempt, callbackAttempts.id);
  return { delivery, attempts };
}

/** Send a dead letter (or a cancelled delivery) again: it becomes pending with a fresh schedule. */
export async function retryDelivery(db: Database, tenantId: string, id: string, now: Date): Promise<CallbackDelivery | null> {
  const [row] = await db
    .update(callbackDeliveries)
    .set({ status: 'pending', attempts: 0, nextAttemptAt: now, finishedAt: null, updatedAt: now })
    .where(and(eq(callbackDeliveries.id, id), eq(callbackDeliveries.tenantId, tenantId), inArray(callbackDeliveries.status, ['failed', 'cancelled'])))
    .returning();
  return row ?? null;
}

/** Re-send everything that failed for an endpoint since `since`; returns the delivery ids. */
export async function recoverEndpointDeliveries(db: Database, tenantId: string, endpointId: string, since: Date, now: Date): Promise<string[]> {
  const rows = await db
    .update(callbackDeliveries)
    .set({ status: 'pending', attempts: 0, nextAttemptAt: now, finishedAt: null, updatedAt: now })
    .where(
      and(
        eq(callbackDeliveries.tenantId, tenantId),
        eq(callbackDeliveries.endpointId, endpointId),
        eq(callbackDeliveries.status, 'failed'),
        gte(callbackDeliveries.createdAt, since),
      ),
    )
    .returning({ id: callbackDeliveries.id });
  return rows.map((r) => r.id);
}

/** Pending deliveries whose attempt is overdue (their work item was lost). */
export async function findOverdueDeliveries(db: Database, before: Date, limit: number): Promise<string[]> {
  const rows = await db
    .select({ id: callbackDeliveries.id })
    .from(callbackDeliveries)
    .where(and(eq(callbackDeliveries.status, 'pending'), lte(callbackDeliveries.nextAttemptAt, before)))
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
