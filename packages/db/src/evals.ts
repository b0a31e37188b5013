/**
 * Evaluation runs and their results (@longhaul/core eval-run.ts), scoped by tenant. An eval's
 * status changes only in `writeEvalStatus`, under the eval's row lock (`withLockedEval`), with
 * its eval_events row; its results are written by the runner under the same lock, so two workers
 * never start one result twice.
 */
import { type EvalResultFigures, type EvalStatus, type GraderDefinition, ID_PREFIX, type JobError, evalTransition } from '@longhaul/core';
import { and, asc, desc, eq, getTableColumns, inArray, isNotNull, lt, lte, or, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { newId } from './ids.ts';
import { type Eval, type EvalResult, datasets, evalEvents, evalResults, evals, jobs } from './schema.ts';

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

export interface NewEval {
  tenantId: string;
  promptId: string;
  versions: number[];
  datasetId: string;
  datasetVersion: number;
  /** Items in that dataset version: one result per (version, item, repeat) is made. */
  itemCount: number;
  graders: GraderDefinition[];
  repeats: number;
  concurrency: number;
  metadata: Record<string, string>;
  rerunOf: string | null;
}

/**
 * Create an eval with all its results pending, and its first event; a worker ticks it at once.
 * Null when the dataset is gone: its row is held (`for share`) until commit, so a concurrent
 * delete (datasets.ts, which checks for running evals under the row's lock) waits or wins.
 */
export async function createEval(db: Database, input: NewEval, now: Date): Promise<Eval | null> {
  return db.transaction(async (tx) => {
    const [dataset] = await tx
      .select({ id: datasets.id })
      .from(datasets)
      .where(and(eq(datasets.id, input.datasetId), eq(datasets.tenantId, input.tenantId)))
      .for('share');
    if (!dataset) return null;
    const [row] = await tx
      .insert(evals)
      .values({
        id: newId(ID_PREFIX.eval),
        tenantId: input.tenantId,
        promptId: input.promptId,
        versions: input.versions,
        datasetId: input.datasetId,
        datasetVersion: input.datasetVersion,
        graders: input.graders,
        repeats: input.repeats,
        concurrency: input.concurrency,
        status: 'running',
        metadata: input.metadata,
        rerunOf: input.rerunOf,
        nextCheckAt: now,
        createdAt: now,
        updatedAt: now,
      })
      .returning();
    const evalRow = row!;
    await tx.execute(sql`
      insert into ${evalResults} (eval_id, version, item_index, repeat, updated_at)
      select ${evalRow.id}, v, i, r, ${now.toISOString()}::timestamptz
      from unnest(${`{${input.versions.join(',')}}`}::int[]) v, generate_series(0, ${input.itemCount - 1}::int) i, generate_series(0, ${input.repeats - 1}::int) r`);
    await tx.insert(evalEvents).values({
      evalId: evalRow.id,
      tenantId: input.tenantId,
      fromStatus: null,
      toStatus: 'running',
      at: now,
      details: { results: input.versions.length * input.itemCount * input.repeats },
    });
    return evalRow;
  });
}

/** A tenant's eval, or null (unknown or another tenant's: callers answer 404). */
export async function getEvalForTenant(db: Database, tenantId: string, evalId: string): Promise<Eval | null> {
  const [row] = await db
    .select()
    .from(evals)
    .where(and(eq(evals.id, evalId), eq(evals.tenantId, tenantId)));
  return row ?? null;
}

/** Newest first, cursor-paginated on (created_at, id); `tenantId` null: every tenant's (the admin UI). */
export async function listEvals(db: Database, options: { tenantId: string | null; limit: number; after?: string }): Promise<{ data: Eval[]; hasMore: boolean }> {
  const conditions = options.tenantId === null ? [] : [eq(evals.tenantId, options.tenantId)];
  if (options.after) {
    const [cursor] = await db.select().from(evals).where(eq(evals.id, options.after));
    if (!cursor || (options.tenantId !== null && cursor.tenantId !== options.tenantId)) return { data: [], hasMore: false };
    conditions.push(or(lt(evals.createdAt, cursor.createdAt), and(eq(evals.createdAt, cursor.createdAt), lt(evals.id, cursor.id)))!);
  }
  const rows = await db
    .select()
    .from(evals)
    .where(and(...conditions))
    .orderBy(desc(evals.createdAt), desc(evals.id))
    .limit(options.limit + 1);
  return { data: rows.slice(0, options.limit), hasMore: rows.length > options.limit };
}

/** An eval by id for the admin UI (any tenant). */
export async function getEval(db: Database, evalId: string): Promise<Eval | null> {
  const [row] = await db.select().from(evals).where(eq(evals.id, evalId));
  return row ?? null;
}

/** What the summary reads of every result. */
export async function evalResultFigures(db: Database, evalId: string): Promise<EvalResultFigures[]> {
  const rows = await db
    .select({
      version: evalResults.version,
      itemIndex: evalResults.itemIndex,
      repeat: evalResults.repeat,
      status: evalResults.status,
      grades: evalResults.grades,
      costUsd: evalResults.costUsd,
      latencyMs: evalResults.latencyMs,
      inputTokens: evalResults.inputTokens,
      outputTokens: evalResults.outputTokens,
    })
    .from(evalResults)
    .where(eq(evalResults.evalId, evalId));
  return rows;
}

/** A result with its answer job's output (null once the job's content is erased). */
export type EvalResultWithOutput = EvalResult & { outputText: string | null };

/** Results in item order (then repeat, version), optionally of one version or one item. */
export async function listEvalResults(
  db: Database,
  evalId: string,
  options: { version?: number; itemIndex?: number; offset: number; limit: number },
): Promise<{ data: EvalResultWithOutput[]; hasMore: boolean }> {
  const conditions = [eq(evalResults.evalId, evalId)];
  if (options.version !== undefined) conditions.push(eq(evalResults.version, options.version));
  if (options.itemIndex !== undefined) conditions.push(eq(evalResults.itemIndex, options.itemIndex));
  const rows = await db
    .select({ ...getTableColumns(evalResults), outputText: jobs.outputText })
    .from(evalResults)
    .leftJoin(jobs, eq(jobs.id, evalResults.jobId))
    .where(and(...conditions))
    .orderBy(asc(evalResults.itemIndex), asc(evalResults.repeat), asc(evalResults.version))
    .offset(options.offset)
    .limit(options.limit + 1);
  return { data: rows.slice(0, options.limit), hasMore: rows.length > options.limit };
}

/** Running evals due for a tick (or cancelled ones whose jobs are still to be cancelled). */
export async function findDueEvals(db: Database, now: Date, limit: number): Promise<string[]> {
  const rows = await db
    .select({ id: evals.id })
    .from(evals)
    .where(and(isNotNull(evals.nextCheckAt), lte(evals.nextCheckAt, now)))
    .orderBy(asc(evals.nextCheckAt))
    .limit(limit);
  return rows.map((r) => r.id);
}

/** The job columns the runner reads of a result's answer and grader jobs. */
export interface EvalJobView {
  id: string;
  status: string;
  outputText: string | null;
  error: JobError | null;
  usage: { input_tokens?: number; output_tokens?: number } | null;
  costUsd: number | null;
  createdAt: Date;
  finishedAt: Date | null;
}

export interface LockedEval {
  eval: Eval;
  /** Its results in flight (running or grading). */
  active: EvalResult[];
  /**
   * The tick plan's input: the results in flight and the next `concurrency` pending ones in the
   * order they start (item, repeat, version), which is all a tick can start; not every result
   * (an eval may have 100,000).
   */
  statuses: Pick<EvalResult, 'version' | 'itemIndex' | 'repeat' | 'status'>[];
  /** The jobs of the results in flight, by id. */
  jobs: Map<string, EvalJobView>;
}

/**
 * Run `fn` with the eval's row locked; null when it does not exist or another worker holds it
 * (that worker is ticking it: skipping is what a second tick should do).
 */
export async function withLockedEval<T>(db: Database, evalId: string, fn: (tx: Tx, locked: LockedEval) => Promise<T>): Promise<T | null> {
  return db.transaction(async (tx) => {
    const [row] = await tx.select().from(evals).where(eq(evals.id, evalId)).for('update', { skipLocked: true });
    if (!row) return null;
    const active = await tx
      .select()
      .from(evalResults)
      .where(and(eq(evalResults.evalId, evalId), inArray(evalResults.status, ['running', 'grading'])));
    const pending = await tx
      .select({ version: evalResults.version, itemIndex: evalResults.itemIndex, repeat: evalResults.repeat, status: evalResults.status })
      .from(evalResults)
      .where(and(eq(evalResults.evalId, evalId), eq(evalResults.status, 'pending')))
      .orderBy(asc(evalResults.itemIndex), asc(evalResults.repeat), asc(evalResults.version))
      .limit(row.concurrency);
    const statuses = [...active.map(({ version, itemIndex, repeat, status }) => ({ version, itemIndex, repeat, status })), ...pending];
    const jobIds = active.flatMap((r) => [r.jobId, ...(r.graderJobIds ?? [])]).filter((id): id is string => typeof id === 'string');
    const jobRows =
      jobIds.length === 0
        ? []
        : await tx
            .select({
              id: jobs.id,
              status: jobs.status,
              outputText: jobs.outputText,
              error: jobs.error,
              usage: jobs.usage,
              costUsd: jobs.costUsd,
              createdAt: jobs.createdAt,
              finishedAt: jobs.finishedAt,
            })
            .from(jobs)
            .where(inArray(jobs.id, jobIds));
    return fn(tx, { eval: row, active, statuses, jobs: new Map(jobRows.map((j) => [j.id, j as EvalJobView])) });
  });
}

export type EvalResultChange = Partial<
  Pick<EvalResult, 'status' | 'jobId' | 'graderJobIds' | 'grades' | 'error' | 'inputTokens' | 'outputTokens' | 'costUsd' | 'graderCostUsd' | 'latencyMs'>
>;

/** Write changes to results (under the eval's lock), one statement for all of them. */
export async function updateEvalResults(
  tx: Tx,
  evalId: string,
  changes: { key: { version: number; itemIndex: number; repeat: number }; change: EvalResultChange }[],
  now: Date,
): Promise<void> {
  if (changes.length === 0) return;
  const payload = changes.map(({ key, change }) => ({
    version: key.version,
    item_index: key.itemIndex,
    repeat: key.repeat,
    set: Object.fromEntries(Object.entries(change).map(([k, v]) => [snake(k), v])),
  }));
  // Each column keeps its value unless the change names it (jsonb `?`): a null written on purpose stays null.
  const column = (name: string, type: string) =>
    sql.raw(`${name} = case when c.set ? '${name}' then ${type === 'jsonb' ? `c.set -> '${name}'` : `(c.set ->> '${name}')::${type}`} else r.${name} end`);
  await tx.execute(sql`
    update ${evalResults} r set
      ${column('status', 'text')}, ${column('job_id', 'text')}, ${column('grader_job_ids', 'jsonb')},
      ${column('grades', 'jsonb')}, ${column('error', 'jsonb')}, ${column('input_tokens', 'int')}, ${column('output_tokens', 'int')},
      ${column('cost_usd', 'numeric')}, ${column('grader_cost_usd', 'numeric')}, ${column('latency_ms', 'int')},
      updated_at = ${now.toISOString()}::timestamptz
    from jsonb_to_recordset(${JSON.stringify(payload)}::jsonb) as c(version int, item_index int, repeat int, set jsonb)
    where r.eval_id = ${evalId} and r.version = c.version and r.item_index = c.item_index and r.repeat = c.repeat`);
}

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** The eval's next look (under its lock): null once it has nothing more to do. */
export async function setEvalNextCheck(tx: Tx, evalId: string, nextCheckAt: Date | null, now: Date): Promise<void> {
  await tx.update(evals).set({ nextCheckAt, updatedAt: now }).where(eq(evals.id, evalId));
}

/**
 * Move the eval's status through the core's `evalTransition` (under its lock), with its event.
 * Returns the updated row, or the refusal.
 */
export async function writeEvalStatus(
  tx: Tx,
  row: Eval,
  event: { type: 'finished' } | { type: 'cancelled' } | { type: 'failed'; error: JobError },
  now: Date,
  details: Record<string, unknown> = {},
): Promise<{ ok: true; eval: Eval; changed: boolean } | { ok: false; code: string; message: string }> {
  const result = evalTransition(row.status, event);
  if (!result.ok) return { ok: false, code: result.error.code, message: result.error.message };
  if (!result.changed) return { ok: true, eval: row, changed: false };
  const next: EvalStatus = result.next;
  // A cancelled eval is looked at once more: the runner cancels its jobs still running.
  const nextCheckAt = next === 'cancelled' ? now : null;
  const [updated] = await tx
    .update(evals)
    .set({ status: next, error: event.type === 'failed' ? event.error : row.error, finishedAt: now, updatedAt: now, nextCheckAt })
    .where(eq(evals.id, row.id))
    .returning();
  await tx.insert(evalEvents).values({ evalId: row.id, tenantId: row.tenantId, fromStatus: row.status, toStatus: next, at: now, details });
  return { ok: true, eval: updated!, changed: true };
}

/** Cancel a tenant's eval (the API): waits for the lock a tick may hold. Null when not found. */
export async function cancelEval(
  db: Database,
  tenantId: string,
  evalId: string,
  now: Date,
): Promise<{ ok: true; eval: Eval } | { ok: false; code: string; message: string } | null> {
  return db.transaction(async (tx) => {
    const [row] = await tx
      .select()
      .from(evals)
      .where(and(eq(evals.id, evalId), eq(evals.tenantId, tenantId)))
      .for('update');
    if (!row) return null;
    const written = await writeEvalStatus(tx, row, { type: 'cancelled' }, now, { source: 'api' });
    return written.ok ? { ok: true, eval: written.eval } : written;
  });
}

/** Counts of a tenant's eval's results by status. */
export async function evalResultCounts(db: Database, evalId: string): Promise<Record<string, number>> {
  const rows = await db.select({ status: evalResults.status, n: sql<number>`count(*)::int` }).from(evalResults).where(eq(evalResults.evalId, evalId)).groupBy(evalResults.status);
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}
