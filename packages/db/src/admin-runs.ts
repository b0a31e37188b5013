/**
 * Pipeline runs for operators (the admin UI): across tenants unless a tenant is given, by status
 * and pipeline, newest first, paginated on (created_at, id) like the tenant listing
 * (pipelines.ts `listRuns`) and the admin job search (job-search.ts). Each run comes with what a
 * table row needs of its pipeline: the name and how many steps its version defines.
 */
import type { JobStatus, RunStatus } from '@longhaul/core';
import { type SQL, and, asc, desc, eq, lt, or, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { jobs, pipelineRuns, pipelineVersions, pipelines, type PipelineRun, type PipelineVersion } from './schema.ts';

export interface RunSearch {
  tenantId?: string;
  pipelineId?: string;
  status?: RunStatus;
  limit: number;
  /** Cursor: the id of the last run of the previous page. */
  after?: string;
}

export interface RunSummary {
  id: string;
  tenantId: string;
  pipelineId: string;
  pipelineName: string;
  pipelineVersion: number;
  status: RunStatus;
  steps: PipelineRun['steps'];
  /** How many steps the run's pipeline version defines (its `steps` has only those an advance has seen). */
  stepCount: number;
  createdAt: Date;
  finishedAt: Date | null;
}

const summaryColumns = {
  id: pipelineRuns.id,
  tenantId: pipelineRuns.tenantId,
  pipelineId: pipelineRuns.pipelineId,
  pipelineName: pipelines.name,
  pipelineVersion: pipelineRuns.pipelineVersion,
  status: pipelineRuns.status,
  steps: pipelineRuns.steps,
  stepCount: sql<number>`jsonb_array_length(${pipelineVersions.definition} -> 'steps')::int`,
  createdAt: pipelineRuns.createdAt,
  finishedAt: pipelineRuns.finishedAt,
};

export async function searchRuns(db: Database, search: RunSearch): Promise<{ data: RunSummary[]; hasMore: boolean }> {
  const conditions: SQL[] = [];
  if (search.tenantId) conditions.push(eq(pipelineRuns.tenantId, search.tenantId));
  if (search.pipelineId) conditions.push(eq(pipelineRuns.pipelineId, search.pipelineId));
  if (search.status) conditions.push(eq(pipelineRuns.status, search.status));
  if (search.after) {
    const [cursor] = await db.select({ createdAt: pipelineRuns.createdAt, id: pipelineRuns.id }).from(pipelineRuns).where(eq(pipelineRuns.id, search.after));
    if (!cursor) return { data: [], hasMore: false };
    conditions.push(or(lt(pipelineRuns.createdAt, cursor.createdAt), and(eq(pipelineRuns.createdAt, cursor.createdAt), lt(pipelineRuns.id, cursor.id)))!);
  }
  const rows = await db
    .select(summaryColumns)
    .from(pipelineRuns)
    .innerJoin(pipelines, eq(pipelines.id, pipelineRuns.pipelineId))
    .innerJoin(pipelineVersions, and(eq(pipelineVersions.pipelineId, pipelineRuns.pipelineId), eq(pipelineVersions.version, pipelineRuns.pipelineVersion)))
    .where(and(...conditions))
    .orderBy(desc(pipelineRuns.createdAt), desc(pipelineRuns.id))
    .limit(search.limit + 1);
  return { data: rows.slice(0, search.limit), hasMore: rows.length > search.limit };
}

/** Any tenant's run with its pipeline's name and its version's definition, or null. */
export async function getRunWithPipeline(db: Database, runId: string): Promise<{ run: PipelineRun; pipelineName: string; definition: PipelineVersion['definition'] } | null> {
  const [row] = await db
    .select({ run: pipelineRuns, pipelineName: pipelines.name, definition: pipelineVersions.definition })
    .from(pipelineRuns)
    .innerJoin(pipelines, eq(pipelines.id, pipelineRuns.pipelineId))
    .innerJoin(pipelineVersions, and(eq(pipelineVersions.pipelineId, pipelineRuns.pipelineId), eq(pipelineVersions.version, pipelineRuns.pipelineVersion)))
    .where(eq(pipelineRuns.id, runId));
  return row ?? null;
}

/** What the run page shows of a step's job. */
export interface RunStepJob {
  id: string;
  status: JobStatus;
  model: string;
  step: string | null;
  item: number | null;
  attempt: number;
}

/** A run's step jobs, by step and element. */
export async function listRunStepJobs(db: Database, runId: string): Promise<RunStepJob[]> {
  return db
    .select({ id: jobs.id, status: jobs.status, model: jobs.model, step: jobs.runStep, item: jobs.runItem, attempt: jobs.attempt })
    .from(jobs)
    .where(eq(jobs.runId, runId))
    .orderBy(asc(jobs.runStep), asc(jobs.runItem));
}
