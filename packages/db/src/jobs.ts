/**
 * Job queries: creation (with idempotency keys), reads and listing. State changes live in
 * `job-transitions.ts`; nothing else in the codebase writes `jobs.status`.
 */
import { createHash } from 'node:crypto';
import { and, asc, desc, eq, gt, inArray, isNull, lt, lte, ne, or, sql } from 'drizzle-orm';
import { ACTIVE_STATUSES, ConflictError, EventSource, type Fallback, ID_PREFIX, JobStatus, type Validation } from '@longhaul/core';
import type { Database } from './client.ts';
import { newId } from './ids.ts';
import { compiledStatement, insertPlaceholders, prefixed } from './sql-values.ts';
import { conversations, idempotencyKeys, jobEvents, jobs, type Job } from './schema.ts';

export interface NewJob {
  tenantId: string;
  model: string;
  request: Record<string, unknown>;
  metadata: Record<string, string>;
  callbackUrl: string | null;
  deadlineAt: Date;
  /** The job this one continues; the new job joins its thread. */
  previousJobId?: string | null;
  /** The thread to join (the previous job's thread); default: the new job starts its own. */
  threadId?: string | null;
  promptId?: string | null;
  promptVersion?: number | null;
  /** Input tokens estimated before submission (charged to the tenant's TPM budget). */
  estimatedInputTokens?: number | null;
  /** The job's completion hint: how long it is expected to take at the provider (`expected_duration_seconds`). */
  expectedDurationMs?: number | null;
  /** Its request's response-cache key, when it may be cached (see response-cache.ts). */
  cacheKey?: string | null;
  /** The most turns of its tool-call loop (@longhaul/core tool-loop.ts); null or absent: it runs no loop. */
  maxTurns?: number | null;
  /** Where its loop's tool calls are run (`tool_executor.url`); null or absent: the tenant answers them. */
  toolExecutorUrl?: string | null;
  /** Fallbacks tried in order when an attempt fails retryably or fails validation (@longhaul/core fallbacks.ts). */
  fallbacks?: Fallback[] | null;
  validation?: Validation | null;
  /** The pipeline run step this job runs (@longhaul/core pipeline.ts): run id, step name, fan-out element (0 for a plain step). */
  runId?: string | null;
  runStep?: string | null;
  runItem?: number | null;
  /** `batch`: the job waits for a Batch API batch (@longhaul/core batch.ts); default `background`. */
  processing?: 'background' | 'batch';
  /** A flex job's fallback to the standard tier when flex stays unavailable (`auto`); null: it fails. */
  flexFallback?: 'auto' | null;
  /** The evaluation the job answers or grades an item of (low admission lane). */
  evalId?: string | null;
}

export interface IdempotencyInput {
  key: string;
  /** A stable hash of the request body; the same key with another body is refused. */
  requestHash: string;
  /** How long the key is remembered. */
  ttlMs: number;
}

/** 64-bit advisory-lock id for (tenant, idempotency key). */
function idempotencyLockId(tenantId: string, key: string): string {
  return createHash('sha256').update(`${tenantId}\0${key}`).digest().readBigInt64BE(0).toString();
}

/**
 * What an idempotency key points at: the job an earlier request created (null when the key is
 * unknown, expired or its job gone; `stale` then says the row should make way). The same key
 * with another body is a 422.
 */
async function lookupIdempotencyKey(
  db: Database,
  tenantId: string,
  idempotency: Pick<IdempotencyInput, 'key' | 'requestHash'>,
  now: Date,
): Promise<{ job: Job | null; stale: boolean }> {
  const [existing] = await db
    .select()
    .from(idempotencyKeys)
    .where(and(eq(idempotencyKeys.tenantId, tenantId), eq(idempotencyKeys.key, idempotency.key)));
  if (!existing) return { job: null, stale: false };
  if (existing.expiresAt <= now) return { job: null, stale: true };
  if (existing.requestHash !== idempotency.requestHash) {
    throw new ConflictError('This Idempotency-Key was already used with a different request body.', 'idempotency_key_reused', 422);
  }
  const [job] = await db
    .select()
    .from(jobs)
    .where(and(eq(jobs.id, existing.jobId), eq(jobs.tenantId, tenantId)));
  return { job: job ?? null, stale: !job };
}

/**
 * The job an earlier request with this idempotency key created, if the key is known and live
 * (null otherwise); a different body is a 422. A read-only look before a request has side effects
 * (uploads); `createJob` stays the authority when two requests race.
 */
export async function findIdempotentReplay(db: Database, tenantId: string, idempotency: Pick<IdempotencyInput, 'key' | 'requestHash'>, now: Date): Promise<Job | null> {
  return (await lookupIdempotencyKey(db, tenantId, idempotency, now)).job;
}

/**
 * Create a job, or return the job an earlier request with the same idempotency key created.
 * The key is held with a transaction-scoped advisory lock, so a concurrent request with the same
 * key sees "in flight" (409) instead of blocking, and a crash releases it.
 */
export async function createJob(db: Database, input: NewJob, now: Date, idempotency?: IdempotencyInput): Promise<{ job: Job; replayed: boolean }> {
  if (!idempotency) return { job: await insertJob(db, input, now, {}), replayed: false };
  return db.transaction(async (tx) => {
    const lock = await tx.execute<{ locked: boolean }>(sql`select pg_try_advisory_xact_lock(${idempotencyLockId(input.tenantId, idempotency.key)}::bigint) as locked`);
    if (!lock.rows[0]?.locked) {
      throw new ConflictError('A request with this Idempotency-Key is still being processed; retry later.', 'idempotency_key_in_flight', 409);
    }
    const earlier = await lookupIdempotencyKey(tx as unknown as Database, input.tenantId, idempotency, now);
    if (earlier.job) return { job: earlier.job, replayed: true };
    if (earlier.stale) {
      await tx.delete(idempotencyKeys).where(and(eq(idempotencyKeys.tenantId, input.tenantId), eq(idempotencyKeys.key, idempotency.key)));
    }
    const job = await insertJob(tx as unknown as Database, input, now, { idempotency_key: idempotency.key });
    await tx.insert(idempotencyKeys).values({
      tenantId: input.tenantId,
      key: idempotency.key,
      requestHash: idempotency.requestHash,
      jobId: job.id,
      createdAt: now,
      expiresAt: new Date(now.getTime() + idempotency.ttlMs),
    });
    return { job, replayed: false };
  });
}

/** The job row and its first event (`pending`, from the API); the shape is the row's columns. */
const insertJobStatement = compiledStatement(
  (columns) => sql`
    with j as (insert into ${jobs} ${insertPlaceholders(jobs, columns.split(','), 'c_')} returning id, tenant_id)
    insert into ${jobEvents} (job_id, tenant_id, from_status, to_status, source, at, details)
    select j.id, j.tenant_id, null, ${JobStatus.Pending}, ${EventSource.Api}, ${sql.placeholder('at')}::timestamptz, ${sql.placeholder('details')}::jsonb from j`,
);

/** Insert a pending job and its first event in one statement. */
async function insertJob(db: Database, input: NewJob, now: Date, details: Record<string, unknown>): Promise<Job> {
  const job = newJobRow(input, now);
  const columns = Object.keys(job).filter((key) => job[key as keyof Job] !== undefined);
  await insertJobStatement(db, columns.join(','), { ...prefixed(job, 'c_'), at: now.toISOString(), details: JSON.stringify(details) });
  return job;
}

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

/**
 * Insert jobs a run or an eval created (new rows, `newJobRow`) with their first events from
 * `source`; a row that conflicts (a run's step job made before) is skipped. Returns those inserted.
 */
export async function insertJobRows(tx: Tx, rows: Job[], source: 'run' | 'eval', details: (job: Job) => Record<string, unknown>): Promise<Job[]> {
  if (rows.length === 0) return [];
  const inserted = await tx.insert(jobs).values(rows).onConflictDoNothing().returning({ id: jobs.id });
  const ids = new Set(inserted.map((r) => r.id));
  const created = rows.filter((r) => ids.has(r.id));
  if (created.length > 0) {
    await tx.execute(sql`
      insert into job_events (job_id, tenant_id, from_status, to_status, source, at, details)
      select x.id, x.tenant_id, null, 'pending', ${source}::event_source, x.at::timestamptz, x.details::jsonb
      from jsonb_to_recordset(${JSON.stringify(created.map((j) => ({ id: j.id, tenant_id: j.tenantId, at: j.createdAt.toISOString(), details: JSON.stringify(details(j)) })))}::jsonb)
        as x(id text, tenant_id text, at text, details text)`);
  }
  return created;
}

/** A new pending job's row, with a fresh id (what `createJob` inserts; pipeline runs insert their step jobs' with it). */
export function newJobRow(input: NewJob, now: Date): Job {
  const id = newId(ID_PREFIX.job);
  return {
    id,
    ...input,
    previousJobId: input.previousJobId ?? null,
    threadId: input.threadId ?? id,
    promptId: input.promptId ?? null,
    promptVersion: input.promptVersion ?? null,
    estimatedInputTokens: input.estimatedInputTokens ?? null,
    expectedDurationMs: input.expectedDurationMs ?? null,
    cacheKey: input.cacheKey ?? null,
    turn: 1,
    maxTurns: input.maxTurns ?? null,
    toolExecutorUrl: input.toolExecutorUrl ?? null,
    fallbacks: input.fallbacks ?? null,
    validation: input.validation ?? null,
    attempt: 1,
    attempts: [],
    runId: input.runId ?? null,
    runStep: input.runStep ?? null,
    runItem: input.runItem ?? null,
    processing: input.processing ?? 'background',
    batchId: null,
    serviceTier: null,
    flexFallback: input.flexFallback ?? null,
    evalId: input.evalId ?? null,
    requiredAction: null,
    erasedReason: null,
    providerDeletedAt: null,
    providerKeyId: null,
    cachedFrom: null,
    savedUsd: null,
    reasoningSummary: null,
    status: JobStatus.Pending,
    responseId: null,
    output: null,
    outputText: null,
    usage: null,
    error: null,
    incompleteDetails: null,
    submitAttempts: 0,
    polls: 0,
    // A batch job's next look is its batch's: the sweeper must not send it on its own.
    nextCheckAt: input.processing === 'batch' ? null : now,
    createdAt: now,
    updatedAt: now,
    submittedAt: null,
    startedAt: null,
    cancelRequestedAt: null,
    finishedAt: null,
    erasedAt: null,
    costUsd: null,
  };
}

/** A tenant's job, or null (unknown id or another tenant's job: callers answer 404 for both). */
export async function getJobForTenant(db: Database, tenantId: string, jobId: string): Promise<Job | null> {
  const [job] = await db
    .select()
    .from(jobs)
    .where(and(eq(jobs.id, jobId), eq(jobs.tenantId, tenantId)));
  return job ?? null;
}

const getJobStatements = new WeakMap<Database, ReturnType<typeof prepareGetJob>>();
function prepareGetJob(db: Database) {
  return db
    .select()
    .from(jobs)
    .where(eq(jobs.id, sql.placeholder('id')))
    .prepare('longhaul_get_job');
}

/** A job by id, for workers acting on a job they were handed. (A prepared statement: the hottest read.) */
export async function getJob(db: Database, jobId: string): Promise<Job | null> {
  let statement = getJobStatements.get(db);
  if (!statement) {
    statement = prepareGetJob(db);
    getJobStatements.set(db, statement);
  }
  const [job] = await statement.execute({ id: jobId });
  return job ?? null;
}

/**
 * The provider key of what a job continues: the response of its previous job (or of the job whose
 * response it names as `previous_response_id`), or its conversation. Its create is made with that
 * key, the one that can reach them. Null when it continues nothing Longhaul recorded a key for.
 */
export async function providerKeyOfReferences(db: Database, job: Pick<Job, 'tenantId' | 'previousJobId' | 'request'>): Promise<string | null> {
  const { previous_response_id: previousResponseId, conversation } = job.request as { previous_response_id?: unknown; conversation?: unknown };
  const conversationId = typeof conversation === 'string' ? conversation : (conversation as { id?: unknown } | null | undefined)?.id;
  let rows: { keyId: string | null }[] = [];
  if (job.previousJobId !== null) {
    rows = await db
      .select({ keyId: jobs.providerKeyId })
      .from(jobs)
      .where(and(eq(jobs.id, job.previousJobId), eq(jobs.tenantId, job.tenantId)));
  } else if (typeof previousResponseId === 'string') {
    rows = await db
      .select({ keyId: jobs.providerKeyId })
      .from(jobs)
      .where(and(eq(jobs.responseId, previousResponseId), eq(jobs.tenantId, job.tenantId)));
  } else if (typeof conversationId === 'string') {
    rows = await db
      .select({ keyId: conversations.providerKeyId })
      .from(conversations)
      .where(and(eq(conversations.id, conversationId), eq(conversations.tenantId, job.tenantId)));
  }
  return rows[0]?.keyId ?? null;
}

/**
 * Take a pending job for submission: count the attempt and set when the worker next expects to
 * look at it, in one statement. Null when the job is no longer pending (or does not exist).
 */
export async function claimSubmission(db: Database, jobId: string, nextCheckAt: Date): Promise<Job | null> {
  let statement = claimStatements.get(db);
  if (!statement) {
    statement = prepareClaim(db);
    claimStatements.set(db, statement);
  }
  const [job] = await statement.execute({ id: jobId, nextCheckAt });
  return job ?? null;
}

const claimStatements = new WeakMap<Database, ReturnType<typeof prepareClaim>>();
function prepareClaim(db: Database) {
  return db
    .update(jobs)
    .set({ submitAttempts: sql`${jobs.submitAttempts} + 1`, nextCheckAt: sql`${sql.placeholder('nextCheckAt')}::timestamptz` })
    .where(and(eq(jobs.id, sql.placeholder('id')), eq(jobs.status, JobStatus.Pending)))
    .returning()
    .prepare('longhaul_claim_submission');
}

export interface ListJobsOptions {
  tenantId: string;
  limit: number;
  /** Cursor: the id of the last job of the previous page. */
  after?: string;
  status?: JobStatus;
  /** Only the jobs of this thread (a conversation chain), and then oldest first. */
  threadId?: string;
}

/** Newest first (a thread: oldest first), cursor-paginated on (created_at, id). */
export async function listJobs(db: Database, options: ListJobsOptions): Promise<{ data: Job[]; hasMore: boolean }> {
  const conditions = [eq(jobs.tenantId, options.tenantId)];
  if (options.status) conditions.push(eq(jobs.status, options.status));
  const ascending = options.threadId !== undefined;
  if (options.threadId !== undefined) conditions.push(eq(jobs.threadId, options.threadId));
  if (options.after) {
    const [cursor] = await db
      .select({ createdAt: jobs.createdAt, id: jobs.id })
      .from(jobs)
      .where(and(eq(jobs.id, options.after), eq(jobs.tenantId, options.tenantId)));
    if (!cursor) return { data: [], hasMore: false };
    const beyond = ascending ? gt : lt;
    conditions.push(or(beyond(jobs.createdAt, cursor.createdAt), and(eq(jobs.createdAt, cursor.createdAt), beyond(jobs.id, cursor.id)))!);
  }
  const rows = await db
    .select()
    .from(jobs)
    .where(and(...conditions))
    .orderBy(...(ascending ? [asc(jobs.createdAt), asc(jobs.id)] : [desc(jobs.createdAt), desc(jobs.id)]))
    .limit(options.limit + 1);
  return { data: rows.slice(0, options.limit), hasMore: rows.length > options.limit };
}

/** The job's event log, oldest first. */
export async function listJobEvents(db: Database, jobId: string) {
  return db.select().from(jobEvents).where(eq(jobEvents.jobId, jobId)).orderBy(jobEvents.id);
}

/**
 * Non-terminal jobs the worker should have looked at by `overdueBefore` but has not: their work
 * item was probably lost (Redis restart, FLUSHALL, crash). Oldest first.
 */
export async function findOverdueJobs(
  db: Database,
  overdueBefore: Date,
  limit: number,
): Promise<(Pick<Job, 'id' | 'tenantId' | 'status' | 'responseId' | 'turn'> & { streamed: boolean; toolExecutor: boolean })[]> {
  return (
    db
      .select({
        id: jobs.id,
        tenantId: jobs.tenantId,
        status: jobs.status,
        responseId: jobs.responseId,
        streamed: sql<boolean>`coalesce((${jobs.request}->>'stream')::boolean, false)`,
        turn: jobs.turn,
        // Its tool executor has the turn's calls to answer (@longhaul/core awaitsToolOutputs).
        toolExecutor: sql<boolean>`(${jobs.status} = 'requires_action' and ${jobs.toolExecutorUrl} is not null
          and coalesce(jsonb_array_length(${jobs.requiredAction}->'tool_calls') > 0 and not (${jobs.requiredAction} ? 'tool_outputs'), false))`,
      })
      .from(jobs)
      // A job waiting for an identical job's result has no work item of its own (response-cache.ts).
      .where(
        and(
          inArray(jobs.status, ACTIVE_STATUSES),
          or(lte(jobs.nextCheckAt, overdueBefore), isNull(jobs.nextCheckAt)),
          isNull(jobs.cachedFrom),
          // A batch job is its batch's to send and to read (batches.ts), never dispatched on its own.
          ne(jobs.processing, 'batch'),
        ),
      )
      .orderBy(jobs.nextCheckAt)
      .limit(limit)
  );
}

/** Non-terminal jobs past their deadline. */
export async function findExpiredJobs(db: Database, now: Date, limit: number): Promise<Pick<Job, 'id' | 'tenantId' | 'status' | 'responseId'>[]> {
  return db
    .select({ id: jobs.id, tenantId: jobs.tenantId, status: jobs.status, responseId: jobs.responseId })
    .from(jobs)
    .where(and(inArray(jobs.status, ACTIVE_STATUSES), lt(jobs.deadlineAt, now)))
    .limit(limit);
}

/**
 * Bookkeeping that is not a state change: when the worker next expects to look at the job, and
 * counters. Never touches `status`. Answers the job's status, or null when it is no longer active
 * (finished meanwhile: nothing was written).
 */
export async function scheduleNextCheck(db: Database, jobId: string, at: Date, counters: { poll?: boolean; submitAttempt?: boolean } = {}): Promise<JobStatus | null> {
  const [row] = await db
    .update(jobs)
    .set({
      nextCheckAt: at,
      ...(counters.poll ? { polls: sql`${jobs.polls} + 1` } : {}),
      ...(counters.submitAttempt ? { submitAttempts: sql`${jobs.submitAttempts} + 1` } : {}),
    })
    .where(and(eq(jobs.id, jobId), inArray(jobs.status, ACTIVE_STATUSES)))
    .returning({ status: jobs.status });
  return row?.status ?? null;
}

/** Forget idempotency keys past their expiry. Returns how many were removed. */
export async function deleteExpiredIdempotencyKeys(db: Database, now: Date): Promise<number> {
  const removed = await db.delete(idempotencyKeys).where(lt(idempotencyKeys.expiresAt, now)).returning({ key: idempotencyKeys.key });
  return removed.length;
}
