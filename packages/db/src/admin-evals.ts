/**
 * Evals and prompt rollouts for operators (the admin UI, issue 18): across tenants, read-only.
 *
 * Evals: what a row of the listing needs beyond the eval itself (its prompt's and dataset's
 * names, and per version how many results finished and passed), and the item-by-item comparison
 * of one eval, paged on (item, repeat) with an optional filter on the rows where the versions'
 * verdicts differ. Both follow the summary's rules (@longhaul/core eval-run.ts): a result counts
 * once finished (done or error) with a grade from every grader, and it passes when every grader
 * passed it. Results are bounded (100,000 an eval), so these aggregate in SQL, never in memory.
 *
 * Rollouts: keyset-paged on (created_at, id) like runs, with their prompt's name, and the prompt
 * events (prompt_events) of one rollout in order.
 */
import type { RolloutDefinition, RolloutFigures, RolloutStatus } from '@longhaul/core';
import { type SQL, and, asc, desc, eq, inArray, lt, or, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { type EvalResult, datasets, evalResults, jobs, promptEvents, prompts, rollouts } from './schema.ts';

/** A result graded by every grader: the summary's `isGraded`. */
const GRADED = sql.raw(
  `(status in ('done', 'error') and jsonb_typeof(grades) = 'array' and jsonb_array_length(grades) > 0
    and not exists (select 1 from jsonb_array_elements(grades) g where jsonb_typeof(g) <> 'object'))`,
);
/** Every grader passed it (meaningful for graded results only). */
const PASSED = sql.raw(`not exists (select 1 from jsonb_array_elements(grades) g where not coalesce((g ->> 'pass')::boolean, false))`);

/** One version's progress within an eval: results, finished ones, graded ones and how many of those passed. */
export interface EvalVersionProgress {
  version: number;
  total: number;
  finished: number;
  graded: number;
  passed: number;
}

export interface EvalListFacts {
  promptName: string | null;
  datasetName: string | null;
  versions: EvalVersionProgress[];
}

/** For each eval id: its prompt's and dataset's names (null once deleted) and its progress per version. */
export async function adminEvalListFacts(db: Database, evalRows: readonly { id: string; promptId: string; datasetId: string }[]): Promise<Map<string, EvalListFacts>> {
  const facts = new Map<string, EvalListFacts>();
  if (evalRows.length === 0) return facts;
  const evalIds = evalRows.map((e) => e.id);
  const [promptRows, datasetRows, progress] = await Promise.all([
    db
      .select({ id: prompts.id, name: prompts.name })
      .from(prompts)
      .where(inArray(prompts.id, [...new Set(evalRows.map((e) => e.promptId))])),
    db
      .select({ id: datasets.id, name: datasets.name })
      .from(datasets)
      .where(inArray(datasets.id, [...new Set(evalRows.map((e) => e.datasetId))])),
    db
      .select({
        evalId: evalResults.evalId,
        version: evalResults.version,
        total: sql<number>`count(*)::int`,
        finished: sql<number>`(count(*) filter (where status in ('done', 'error')))::int`,
        graded: sql<number>`(count(*) filter (where ${GRADED}))::int`,
        passed: sql<number>`(count(*) filter (where ${GRADED} and ${PASSED}))::int`,
      })
      .from(evalResults)
      .where(inArray(evalResults.evalId, evalIds))
      .groupBy(evalResults.evalId, evalResults.version)
      .orderBy(asc(evalResults.version)),
  ]);
  const promptName = new Map(promptRows.map((p) => [p.id, p.name]));
  const datasetName = new Map(datasetRows.map((d) => [d.id, d.name]));
  for (const e of evalRows) facts.set(e.id, { promptName: promptName.get(e.promptId) ?? null, datasetName: datasetName.get(e.datasetId) ?? null, versions: [] });
  for (const { evalId, ...p } of progress) facts.get(evalId)?.versions.push(p);
  return facts;
}

/** One result as the comparison table shows it: its output cut to `EVAL_OUTPUT_SHOWN` characters (plus one, to tell a cut). */
export type EvalItemResult = Pick<EvalResult, 'version' | 'itemIndex' | 'repeat' | 'status' | 'jobId' | 'grades' | 'error'> & { outputText: string | null };

export interface EvalItemRow {
  itemIndex: number;
  repeat: number;
  /** Some versions passed it and some did not. */
  disagree: boolean;
  results: EvalItemResult[];
}

/** Characters of an output the comparison reads. */
export const EVAL_OUTPUT_SHOWN = 300;

/**
 * One page of an eval's items compared across its versions, in (item, repeat) order: each row
 * with every version's result. `onlyDisagree` keeps the rows where graded versions' verdicts
 * differ; `disagreeing` counts them over the whole eval.
 */
export async function listEvalItemRows(
  db: Database,
  evalId: string,
  options: { onlyDisagree: boolean; offset: number; limit: number },
): Promise<{ data: EvalItemRow[]; hasMore: boolean; rows: number; disagreeing: number }> {
  const verdicts = sql`select item_index, repeat, count(distinct case when ${GRADED} then ${PASSED} end) > 1 as disagree
    from ${evalResults} where eval_id = ${evalId} group by item_index, repeat`;
  const filter = options.onlyDisagree ? sql`where disagree` : sql``;
  const [keys, totals] = await Promise.all([
    db.execute<{ item_index: number; repeat: number; disagree: boolean }>(
      sql`select item_index, repeat, disagree from (${verdicts}) v ${filter} order by item_index, repeat offset ${options.offset} limit ${options.limit + 1}`,
    ),
    db.execute<{ rows: number; disagreeing: number }>(sql`select count(*)::int as rows, (count(*) filter (where disagree))::int as disagreeing from (${verdicts}) v`),
  ]);
  const page = keys.rows.slice(0, options.limit);
  const data: EvalItemRow[] = page.map((k) => ({ itemIndex: k.item_index, repeat: k.repeat, disagree: k.disagree, results: [] }));
  if (page.length > 0) {
    const results = await db
      .select({
        version: evalResults.version,
        itemIndex: evalResults.itemIndex,
        repeat: evalResults.repeat,
        status: evalResults.status,
        jobId: evalResults.jobId,
        grades: evalResults.grades,
        error: evalResults.error,
        outputText: sql<string | null>`left(${jobs.outputText}, ${EVAL_OUTPUT_SHOWN + 1})`,
      })
      .from(evalResults)
      // The output is read from the answer job, so a job's erasure (retention, DELETE) erases it here too.
      .leftJoin(jobs, eq(jobs.id, evalResults.jobId))
      .where(
        and(
          eq(evalResults.evalId, evalId),
          sql`(${evalResults.itemIndex}, ${evalResults.repeat}) in (select * from unnest(${`{${page.map((k) => k.item_index).join(',')}}`}::int[], ${`{${page.map((k) => k.repeat).join(',')}}`}::int[]))`,
        ),
      )
      .orderBy(asc(evalResults.itemIndex), asc(evalResults.repeat), asc(evalResults.version));
    const byKey = new Map(data.map((row) => [`${row.itemIndex}/${row.repeat}`, row]));
    for (const r of results) byKey.get(`${r.itemIndex}/${r.repeat}`)?.results.push(r);
  }
  const total = totals.rows[0];
  return { data, hasMore: keys.rows.length > options.limit, rows: total?.rows ?? 0, disagreeing: total?.disagreeing ?? 0 };
}

/** A rollout as the admin pages show it, with its prompt's name and routing now. */
export interface AdminRollout {
  id: string;
  tenantId: string;
  promptId: string;
  promptName: string;
  promptCurrentVersion: number;
  promptTraffic: { version: number; weight: number }[] | null;
  definition: RolloutDefinition;
  status: RolloutStatus;
  stepIndex: number;
  stepStartedAt: Date;
  candidateVersion: number;
  baselineVersion: number;
  lastFigures: RolloutFigures | null;
  nextCheckAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  finishedAt: Date | null;
}

const rolloutColumns = {
  id: rollouts.id,
  tenantId: rollouts.tenantId,
  promptId: rollouts.promptId,
  promptName: prompts.name,
  promptCurrentVersion: prompts.currentVersion,
  promptTraffic: prompts.traffic,
  definition: rollouts.definition,
  status: rollouts.status,
  stepIndex: rollouts.stepIndex,
  stepStartedAt: rollouts.stepStartedAt,
  candidateVersion: rollouts.candidateVersion,
  baselineVersion: rollouts.baselineVersion,
  lastFigures: rollouts.lastFigures,
  nextCheckAt: rollouts.nextCheckAt,
  createdAt: rollouts.createdAt,
  updatedAt: rollouts.updatedAt,
  finishedAt: rollouts.finishedAt,
};

export interface RolloutSearch {
  tenantId?: string;
  status?: RolloutStatus;
  limit: number;
  /** Cursor: the id of the last rollout of the previous page. */
  after?: string;
}

/** Every tenant's rollouts (or one tenant's), newest first. */
export async function searchRollouts(db: Database, search: RolloutSearch): Promise<{ data: AdminRollout[]; hasMore: boolean }> {
  const conditions: SQL[] = [];
  if (search.tenantId) conditions.push(eq(rollouts.tenantId, search.tenantId));
  if (search.status) conditions.push(eq(rollouts.status, search.status));
  if (search.after) {
    const [cursor] = await db.select({ createdAt: rollouts.createdAt, id: rollouts.id }).from(rollouts).where(eq(rollouts.id, search.after));
    if (!cursor) return { data: [], hasMore: false };
    conditions.push(or(lt(rollouts.createdAt, cursor.createdAt), and(eq(rollouts.createdAt, cursor.createdAt), lt(rollouts.id, cursor.id)))!);
  }
  const rows = await db
    .select(rolloutColumns)
    .from(rollouts)
    .innerJoin(prompts, eq(prompts.id, rollouts.promptId))
    .where(and(...conditions))
    .orderBy(desc(rollouts.createdAt), desc(rollouts.id))
    .limit(search.limit + 1);
  return { data: rows.slice(0, search.limit), hasMore: rows.length > search.limit };
}

/** Any tenant's rollout, or null. */
export async function getRolloutForAdmin(db: Database, rolloutId: string): Promise<AdminRollout | null> {
  const [row] = await db.select(rolloutColumns).from(rollouts).innerJoin(prompts, eq(prompts.id, rollouts.promptId)).where(eq(rollouts.id, rolloutId));
  return row ?? null;
}

export interface RolloutEventRow {
  id: number;
  type: string;
  traffic: { version: number; weight: number }[] | null;
  currentVersion: number;
  details: Record<string, unknown>;
  at: Date;
}

/** A rollout's prompt events, oldest first, up to `limit`. */
export async function listRolloutEventsForAdmin(db: Database, rolloutId: string, limit: number): Promise<RolloutEventRow[]> {
  return db
    .select({
      id: promptEvents.id,
      type: promptEvents.type,
      traffic: promptEvents.traffic,
      currentVersion: promptEvents.currentVersion,
      details: promptEvents.details,
      at: promptEvents.at,
    })
    .from(promptEvents)
    .where(eq(promptEvents.rolloutId, rolloutId))
    .orderBy(asc(promptEvents.id))
    .limit(limit);
}
