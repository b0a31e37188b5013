/**
 * The callback outbox, written inside changeJobState's transaction: when a job changes state,
 * the event for it and one delivery per interested destination are inserted in the same
 * transaction, so a crash can never leave a state change without its event (or the reverse).
 * `pg_notify` (delivered only on commit) tells listening workers to dispatch the deliveries; the
 * sweeper dispatches any notification that was missed.
 */
import { and, eq, isNull, sql } from 'drizzle-orm';
import { type JobStatus, JobStatus as Status, isTerminal } from '@longhaul/core';
import type { Database } from './client.ts';
import { newId } from './ids.ts';
import { toJobObject } from './job-object.ts';
import { callbackDeliveries, callbackEvents, webhookEndpoints, type Job } from './schema.ts';

export const CALLBACK_NOTIFY_CHANNEL = 'longhaul_callbacks';

/** Job statuses that produce an event (`job.<status>`); pending and cancelling do not. */
const ANNOUNCED: readonly JobStatus[] = [Status.Queued, Status.InProgress, Status.Completed, Status.Failed, Status.Cancelled, Status.Incomplete, Status.Expired];

export const CALLBACK_EVENT_TYPES = ANNOUNCED.map((s) => `job.${s}`);
export const TERMINAL_EVENT_TYPES = ANNOUNCED.filter(isTerminal).map((s) => `job.${s}`);

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

/** Insert the event and deliveries for `job` (already updated to its new status). Returns delivery ids. */
export async function writeCallbackOutbox(tx: Tx, job: Job, now: Date): Promise<string[]> {
  if (!ANNOUNCED.includes(job.status)) return [];
  const type = `job.${job.status}`;
  const terminal = isTerminal(job.status);
  const endpoints = await tx
    .select({ id: webhookEndpoints.id, url: webhookEndpoints.url, eventTypes: webhookEndpoints.eventTypes, thinPayload: webhookEndpoints.thinPayload })
    .from(webhookEndpoints)
    .where(and(eq(webhookEndpoints.tenantId, job.tenantId), eq(webhookEndpoints.enabled, true), isNull(webhookEndpoints.deletedAt)));
  const targets = endpoints
    .filter((e) => (e.eventTypes.length > 0 ? e.eventTypes.includes(type) : terminal))
    .map((e) => ({ endpointId: e.id as string | null, url: e.url, thinPayload: e.thinPayload }));
  if (terminal && job.callbackUrl) targets.push({ endpointId: null, url: job.callbackUrl, thinPayload: false });
  if (targets.length === 0) return [];

  const [{ next } = { next: 1 }] = await tx
    .select({ next: sql<number>`coalesce(max(${callbackEvents.sequence}), 0)::int + 1` })
    .from(callbackEvents)
    .where(eq(callbackEvents.jobId, job.id));
  const eventId = newId('evt');
  await tx.insert(callbackEvents).values({
    id: eventId,
    tenantId: job.tenantId,
    jobId: job.id,
    type,
    sequence: next,
    payload: { id: eventId, type, created_at: Math.floor(now.getTime() / 1000), sequence: next, data: toJobObject(job) },
    createdAt: now,
  });
  const deliveries = targets.map((t) => ({
    id: newId('dlv'),
    tenantId: job.tenantId,
    eventId,
    jobId: job.id,
    endpointId: t.endpointId,
    url: t.url,
    thinPayload: t.thinPayload,
    nextAttemptAt: now,
    createdAt: now,
    updatedAt: now,
  }));
  await tx.insert(callbackDeliveries).values(deliveries);
  const ids = deliveries.map((d) => d.id);
  await tx.execute(sql`select pg_notify(${CALLBACK_NOTIFY_CHANNEL}, ${ids.join(',')})`);
  return ids;
}
