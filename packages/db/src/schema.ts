/**
 * Postgres is the source of truth for every job; Redis only dispatches work. Every query lives in
 * this package (see the query modules) and is scoped by tenant where a tenant is involved.
 */
import { sql } from 'drizzle-orm';
import { bigserial, index, integer, jsonb, pgEnum, pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { EVENT_SOURCES, JOB_STATUSES, type JobError, type Usage } from '@longhaul/core';

export const jobStatusEnum = pgEnum('job_status', JOB_STATUSES);
export const eventSourceEnum = pgEnum('event_source', EVENT_SOURCES);

const createdAt = () => timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow();

export const tenants = pgTable('tenants', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  createdAt: createdAt(),
});

/** API keys: only a SHA-256 of the key is stored; `prefix` helps humans tell keys apart. */
export const apiKeys = pgTable('api_keys', {
  id: text('id').primaryKey(),
  tenantId: text('tenant_id').notNull().references(() => tenants.id),
  keyHash: text('key_hash').notNull().unique(),
  prefix: text('prefix').notNull(),
  createdAt: createdAt(),
  revokedAt: timestamp('revoked_at', { withTimezone: true }),
});

export const jobs = pgTable(
  'jobs',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull().references(() => tenants.id),
    status: jobStatusEnum('status').notNull().default('pending'),
    model: text('model').notNull(),
    /** The Responses create parameters, as validated by the API (without Longhaul's own fields). */
    request: jsonb('request').$type<Record<string, unknown>>().notNull(),
    metadata: jsonb('metadata').$type<Record<string, string>>().notNull().default({}),
    callbackUrl: text('callback_url'),
    responseId: text('response_id').unique(),
    output: jsonb('output').$type<unknown[]>(),
    outputText: text('output_text'),
    usage: jsonb('usage').$type<Usage>(),
    error: jsonb('error').$type<JobError>(),
    incompleteDetails: jsonb('incomplete_details').$type<{ reason?: string }>(),
    /** Provider create attempts: more than one means a create may have been duplicated by a crash. */
    submitAttempts: integer('submit_attempts').notNull().default(0),
    polls: integer('polls').notNull().default(0),
    /** When the worker next expects to look at this job; the sweeper re-dispatches overdue ones. */
    nextCheckAt: timestamp('next_check_at', { withTimezone: true, mode: 'date' }),
    deadlineAt: timestamp('deadline_at', { withTimezone: true, mode: 'date' }).notNull(),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    submittedAt: timestamp('submitted_at', { withTimezone: true, mode: 'date' }),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }),
    cancelRequestedAt: timestamp('cancel_requested_at', { withTimezone: true, mode: 'date' }),
    finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    index('jobs_tenant_created_idx').on(t.tenantId, t.createdAt.desc(), t.id.desc()),
    index('jobs_tenant_status_created_idx').on(t.tenantId, t.status, t.createdAt.desc(), t.id.desc()),
    index('jobs_active_next_check_idx')
      .on(t.nextCheckAt)
      .where(sql`status in ('pending', 'queued', 'in_progress', 'cancelling')`),
  ],
);

/** Append-only log of every state change (and other notable facts) of a job. */
export const jobEvents = pgTable(
  'job_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    jobId: text('job_id').notNull().references(() => jobs.id),
    tenantId: text('tenant_id').notNull(),
    fromStatus: jobStatusEnum('from_status'),
    toStatus: jobStatusEnum('to_status').notNull(),
    source: eventSourceEnum('source').notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [index('job_events_job_idx').on(t.jobId, t.id)],
);

/**
 * Idempotency keys (IETF draft semantics): one row per (tenant, key), holding a hash of the
 * request that first used it and the job it created. Rows expire after 24 h.
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    tenantId: text('tenant_id').notNull().references(() => tenants.id),
    key: text('key').notNull(),
    requestHash: text('request_hash').notNull(),
    jobId: text('job_id').notNull().references(() => jobs.id),
    createdAt: createdAt(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.key] }), index('idempotency_keys_expires_idx').on(t.expiresAt)],
);

export const WEBHOOK_INBOX_STATUSES = ['received', 'waiting', 'applied', 'orphan', 'ignored'] as const;
export type WebhookInboxStatus = (typeof WEBHOOK_INBOX_STATUSES)[number];
export const webhookInboxStatusEnum = pgEnum('webhook_inbox_status', WEBHOOK_INBOX_STATUSES);

/**
 * Inbox of OpenAI webhooks: one row per `webhook-id` (the unique key makes redeliveries
 * no-ops). `received` rows wait for the worker; `waiting` rows name a response whose job has not
 * committed its response id yet; `applied`, `orphan` (not a Longhaul response, or a superseded
 * duplicate) and `ignored` (an event type Longhaul does not act on) are final.
 */
export const webhookInbox = pgTable(
  'webhook_inbox',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    webhookId: text('webhook_id').notNull().unique(),
    eventId: text('event_id'),
    eventType: text('event_type').notNull(),
    responseId: text('response_id'),
    status: webhookInboxStatusEnum('status').notNull().default('received'),
    jobId: text('job_id'),
    note: text('note'),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    processedAt: timestamp('processed_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    index('webhook_inbox_response_idx').on(t.responseId),
    index('webhook_inbox_open_idx')
      .on(t.status, t.receivedAt)
      .where(sql`status in ('received', 'waiting')`),
  ],
);

export type Job = typeof jobs.$inferSelect;
export type WebhookInboxRow = typeof webhookInbox.$inferSelect;
export type JobEventRow = typeof jobEvents.$inferSelect;
export type Tenant = typeof tenants.$inferSelect;
