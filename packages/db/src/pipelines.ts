/**
 * Pipelines and their runs (@longhaul/core pipeline.ts), scoped by tenant.
 *
 * Pipeline versions, like prompt versions, are numbered 1..latest_version without gaps and never
 * change: a new version takes its number under the pipeline's row lock, in the transaction that
 * inserts it.
 *
 * A run changes only inside `withLockedRun`: the run's row is locked (`for update`), so two
 * advances of one run (two of its step jobs ending at once, the sweeper) take turns, and each
 * sees the step jobs the one before it created. `writeRunChange` writes, in that transaction,
 * the run's new state, one run_events row per change, and the callback outbox of a status change
 * (`run.<status>` to the endpoints subscribed to it and, for its end, the run's callback_url);
 * step jobs are inserted with `insertStepJobs`, at most one per (run, step, element) (a unique
 * index), so a step's job is created once however often an advance is retried.
 */
import { type JobError, type JobStatus, type RunStatus, type RunStepState, ID_PREFIX, TERMINAL_RUN_STATUSES, RunStatus as Status } from '@longhaul/core';
import { and, asc, desc, eq, gt, isNotNull, lt, lte, or, sql } from 'drizzle-orm';
import { CALLBACK_NOTIFY_CHANNEL } from './callback-outbox.ts';
import type { Database } from './client.ts';
import { newId } from './ids.ts';
import { insertJobRows } from './jobs.ts';
import {
  callbackDeliveries,
  callbackEvents,
  jobs,
  pipelineRuns,
  pipelineVersions,
  pipelines,
  runEvents,
  webhookEndpoints,
  type Job,
  type Pipeline,
  type PipelineRun,
  type PipelineVersion,
} from './schema.ts';

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

export interface NewPipeline {
  tenantId: string;
  name: string;
  description: string | null;
  definition: PipelineVersion['definition'];
  note: string | null;
}

/** Create a pipeline with its version 1. */
export async function createPipeline(db: Database, input: NewPipeline, now: Date): Promise<{ pipeline: Pipeline; version: PipelineVersion }> {
  return db.transaction(async (tx) => {
    const [pipeline] = await tx
      .insert(pipelines)
      .values({ id: newId(ID_PREFIX.pipeline), tenantId: input.tenantId, name: input.name, description: input.description, latestVersion: 1, createdAt: now, updatedAt: now })
      .returning();
    const [version] = await tx
      .insert(pipelineVersions)
      .values({ pipelineId: pipeline!.id, version: 1, tenantId: input.tenantId, definition: input.definition, note: input.note, createdAt: now })
      .returning();
    return { pipeline: pipeline!, version: version! };
  });
}

/** Add the next version of a pipeline. Null when the tenant has no such pipeline. */
export async function addPipelineVersion(
  db: Database,
  tenantId: string,
  pipelineId: string,
  input: Pick<NewPipeline, 'definition' | 'note'>,
  now: Date,
): Promise<{ pipeline: Pipeline; version: PipelineVersion } | null> {
  return db.transaction(async (tx) => {
    const [pipeline] = await tx
      .update(pipelines)
      .set({ latestVersion: sql`${pipelines.latestVersion} + 1`, updatedAt: now })
      .where(and(eq(pipelines.id, pipelineId), eq(pipelines.tenantId, tenantId)))
      .returning();
    if (!pipeline) return null;
    const [version] = await tx
      .insert(pipelineVersions)
      .values({ pipelineId, version: pipeline.latestVersion, tenantId, definition: input.definition, note: input.note, createdAt: now })
      .returning();
    return { pipeline, version: version! };
  });
}

/** A tenant's pipeline, or null (unknown or another tenant's: callers answer 404). */
export async function getPipelineForTenant(db: Database, tenantId: string, pipelineId: string): Promise<Pipeline | null> {
  const [row] = await db
    .select()
    .from(pipelines)
    .where(and(eq(pipelines.id, pipelineId), eq(pipelines.tenantId, tenantId)));
  return row ?? null;
}

export async function getPipelineVersion(db: Database, tenantId: string, pipelineId: string, version: number): Promise<PipelineVersion | null> {
  const [row] = await db
    .select()
    .from(pipelineVersions)
    .where(and(eq(pipelineVersions.pipelineId, pipelineId), eq(pipelineVersions.version, version), eq(pipelineVersions.tenantId, tenantId)));
  return row ?? null;
}

/** Newest first, cursor-paginated on (created_at, id). */
export async function listPipelines(db: Database, options: { tenantId: string; limit: number; after?: string }): Promise<{ data: Pipeline[]; hasMore: boolean }> {
  const conditions = [eq(pipelines.tenantId, options.tenantId)];
  if (options.after) {
    const cursor = await getPipelineForTenant(db, options.tenantId, options.after);
    if (!cursor) return { data: [], hasMore: false };
    conditions.push(or(lt(pipelines.createdAt, cursor.createdAt), and(eq(pipelines.createdAt, cursor.createdAt), lt(pipelines.id, cursor.id)))!);
  }
  const rows = await db
    .select()
    .from(pipelines)
    .where(and(...conditions))
    .orderBy(desc(pipelines.createdAt), desc(pipelines.id))
    .limit(options.limit + 1);
  return { data: rows.slice(0, options.limit), hasMore: rows.length > options.limit };
}

export interface NewRun {
  tenantId: string;
  pipelineId: string;
  pipelineVersion: number;
  inputs: Record<string, unknown>;
  callbackUrl: string | null;
  metadata: Record<string, string>;
}

/** Insert a pending run and its first event. */
export async function createRun(db: Database, input: NewRun, now: Date): Promise<PipelineRun> {
  return db.transaction(async (tx) => {
    const [run] = await tx
      .insert(pipelineRuns)
      .values({ id: newId(ID_PREFIX.run), ...input, status: Status.Pending, nextCheckAt: now, createdAt: now, updatedAt: now })
      .returning();
    await tx.insert(runEvents).values({ runId: run!.id, tenantId: input.tenantId, fromStatus: null, toStatus: Status.Pending, at: now, details: {} });
    return run!;
  });
}

export async function getRunForTenant(db: Database, tenantId: string, runId: string): Promise<PipelineRun | null> {
  const [row] = await db
    .select()
    .from(pipelineRuns)
    .where(and(eq(pipelineRuns.id, runId), eq(pipelineRuns.tenantId, tenantId)));
  return row ?? null;
}

/** Newest first, cursor-paginated on (created_at, id); optionally one pipeline's, one status's. */
export async function listRuns(
  db: Database,
  options: { tenantId: string; pipelineId?: string; status?: RunStatus; limit: number; after?: string },
): Promise<{ data: PipelineRun[]; hasMore: boolean }> {
  const conditions = [eq(pipelineRuns.tenantId, options.tenantId)];
  if (options.pipelineId) conditions.push(eq(pipelineRuns.pipelineId, options.pipelineId));
  if (options.status) conditions.push(eq(pipelineRuns.status, options.status));
  if (options.after) {
    const cursor = await getRunForTenant(db, options.tenantId, options.after);
    if (!cursor) return { data: [], hasMore: false };
    conditions.push(or(lt(pipelineRuns.createdAt, cursor.createdAt), and(eq(pipelineRuns.createdAt, cursor.createdAt), lt(pipelineRuns.id, cursor.id)))!);
  }
  const rows = await db
    .select()
    .from(pipelineRuns)
    .where(and(...conditions))
    .orderBy(desc(pipelineRuns.createdAt), desc(pipelineRuns.id))
    .limit(options.limit + 1);
  return { data: rows.slice(0, options.limit), hasMore: rows.length > options.limit };
}

export type RunEventRow = typeof runEvents.$inferSelect;

/** A run's events after `afterId` (exclusive), oldest first. */
export async function listRunEvents(db: Database, runId: string, afterId = 0, limit = 500): Promise<RunEventRow[]> {
  return db
    .select()
    .from(runEvents)
    .where(and(eq(runEvents.runId, runId), gt(runEvents.id, afterId)))
    .orderBy(asc(runEvents.id))
    .limit(limit);
}

/** What an advance reads of a run's step jobs. */
export interface RunJobRow {
  id: string;
  status: JobStatus;
  step: string;
  item: number;
  outputText: string | null;
  error: JobError | null;
}

/**
 * Run `fn` with the run's row locked (null when the run does not exist) and its step jobs, in
 * one transaction: what `fn` writes commits with the lock released.
 */
export async function withLockedRun<T>(db: Database, runId: string, fn: (tx: Tx, run: PipelineRun, jobs: RunJobRow[]) => Promise<T>): Promise<T | null> {
  return db.transaction(async (tx) => {
    const [run] = await tx.select().from(pipelineRuns).where(eq(pipelineRuns.id, runId)).for('update');
    if (!run) return null;
    const rows = await tx
      .select({ id: jobs.id, status: jobs.status, step: jobs.runStep, item: jobs.runItem, outputText: jobs.outputText, error: jobs.error })
      .from(jobs)
      .where(eq(jobs.runId, runId));
    return fn(
      tx,
      run,
      rows.map((r) => ({ ...r, step: r.step ?? '', item: r.item ?? 0 })),
    );
  });
}

/** Insert step jobs (new rows, `newJobRow`); one that exists already for its (run, step, element) is skipped. Returns those inserted. */
export async function insertStepJobs(tx: Tx, rows: Job[]): Promise<Job[]> {
  return insertJobRows(tx, rows, 'run', (j) => ({ run_id: j.runId, step: j.runStep, item: j.runItem }));
}

export interface RunChange {
  status: RunStatus;
  steps: Record<string, RunStepState>;
  output?: unknown;
  error?: JobError | null;
  nextCheckAt: Date | null;
  /** One run_events row each (a step that started or ended); a status change adds its own (`kind: 'status'`). */
  events: { details: Record<string, unknown> }[];
}

/** The run as the API shows it. */
export function toRunObject(run: PipelineRun) {
  const unix = (d: Date | null) => (d === null ? null : Math.floor(d.getTime() / 1000));
  return {
    id: run.id,
    object: 'pipeline.run' as const,
    pipeline_id: run.pipelineId,
    pipeline_version: run.pipelineVersion,
    status: run.status,
    inputs: run.inputs,
    steps: run.steps,
    output: run.output ?? null,
    error: run.error ?? null,
    callback_url: run.callbackUrl,
    metadata: run.metadata,
    created_at: unix(run.createdAt),
    started_at: unix(run.startedAt),
    cancel_requested_at: unix(run.cancelRequestedAt),
    finished_at: unix(run.finishedAt),
  };
}

/** Run statuses announced to callbacks (`run.<status>`); the end also goes to the run's callback_url. */
export const RUN_CALLBACK_EVENT_TYPES = [Status.Running, ...TERMINAL_RUN_STATUSES].map((s) => `run.${s}`);

/**
 * Write a run's change in the locked run's transaction: its row, its events, and, when its
 * status changed to one announced, the callback event and its deliveries (pg_notify on commit).
 */
export async function writeRunChange(tx: Tx, run: PipelineRun, change: RunChange, now: Date): Promise<PipelineRun> {
  const statusChanged = change.status !== run.status;
  const terminal = TERMINAL_RUN_STATUSES.includes(change.status);
  const [updated] = await tx
    .update(pipelineRuns)
    .set({
      status: change.status,
      steps: change.steps,
      ...(change.output !== undefined ? { output: change.output } : {}),
      ...(change.error !== undefined ? { error: change.error } : {}),
      nextCheckAt: terminal ? null : change.nextCheckAt,
      updatedAt: now,
      ...(statusChanged && change.status === Status.Running && !run.startedAt ? { startedAt: now } : {}),
      ...(statusChanged && terminal ? { finishedAt: now } : {}),
      ...(statusChanged && change.status === Status.Cancelled ? { cancelRequestedAt: run.cancelRequestedAt ?? now } : {}),
    })
    .where(eq(pipelineRuns.id, run.id))
    .returning();
  const events = change.events.map((e) => ({ runId: run.id, tenantId: run.tenantId, fromStatus: run.status, toStatus: change.status, at: now, details: e.details }));
  if (statusChanged) events.push({ runId: run.id, tenantId: run.tenantId, fromStatus: run.status, toStatus: change.status, at: now, details: { kind: 'status' } });
  if (events.length > 0) await tx.insert(runEvents).values(events);
  const type = `run.${change.status}`;
  if (statusChanged && RUN_CALLBACK_EVENT_TYPES.includes(type)) await announceRun(tx, updated!, type, terminal, now);
  return updated!;
}

/** The outbox for a run's status change: endpoints that chose the type, and the run's callback_url for its end. */
async function announceRun(tx: Tx, run: PipelineRun, type: string, terminal: boolean, now: Date): Promise<void> {
  const endpoints = await tx
    .select({ id: webhookEndpoints.id, url: webhookEndpoints.url, thin: webhookEndpoints.thinPayload })
    .from(webhookEndpoints)
    .where(
      and(
        eq(webhookEndpoints.tenantId, run.tenantId),
        eq(webhookEndpoints.enabled, true),
        sql`${webhookEndpoints.deletedAt} is null`,
        sql`${type} = any(${webhookEndpoints.eventTypes})`,
      ),
    );
  const targets: { endpointId: string | null; url: string; thin: boolean }[] = endpoints.map((e) => ({ endpointId: e.id, url: e.url, thin: e.thin }));
  if (terminal && run.callbackUrl) targets.push({ endpointId: null, url: run.callbackUrl, thin: false });
  if (targets.length === 0) return;
  const [{ n } = { n: 0 }] = await tx
    .select({ n: sql<number>`coalesce(max(${callbackEvents.sequence}), 0)::int + 1` })
    .from(callbackEvents)
    .where(eq(callbackEvents.runId, run.id));
  const eventId = newId(ID_PREFIX.event);
  const payload = { id: eventId, type, created_at: Math.floor(now.getTime() / 1000), sequence: n, data: toRunObject(run) };
  await tx.insert(callbackEvents).values({ id: eventId, tenantId: run.tenantId, runId: run.id, type, sequence: n, payload, createdAt: now });
  const deliveries = targets.map((t) => ({
    id: newId(ID_PREFIX.delivery, 32),
    tenantId: run.tenantId,
    eventId,
    jobId: null,
    endpointId: t.endpointId,
    url: t.url,
    thinPayload: t.thin,
    nextAttemptAt: now,
    createdAt: now,
    updatedAt: now,
  }));
  await tx.insert(callbackDeliveries).values(deliveries);
  await tx.execute(sql`select pg_notify(${CALLBACK_NOTIFY_CHANNEL}, ${deliveries.map((d) => d.id).join(',')})`);
}

/** Active runs whose next expected advance is overdue (their work item may be lost), oldest first. */
export async function findOverdueRuns(db: Database, before: Date, limit: number): Promise<string[]> {
  const rows = await db
    .select({ id: pipelineRuns.id })
    .from(pipelineRuns)
    .where(and(isNotNull(pipelineRuns.nextCheckAt), lte(pipelineRuns.nextCheckAt, before), sql.raw(`status not in (${TERMINAL_RUN_STATUSES.map((s) => `'${s}'`).join(', ')})`)))
    .orderBy(asc(pipelineRuns.nextCheckAt))
    .limit(limit);
  return rows.map((r) => r.id);
}

/** When a worker next expects to advance a run (the sweeper moves it on as it advances an overdue run). */
export async function scheduleRunCheck(db: Database, runId: string, at: Date): Promise<void> {
  await db.update(pipelineRuns).set({ nextCheckAt: at }).where(eq(pipelineRuns.id, runId));
}
