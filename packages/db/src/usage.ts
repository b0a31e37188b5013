/**
 * Token usage and estimated cost of a tenant's jobs, grouped by model, by UTC day of creation, or
 * by prompt version (and model). Sums are computed by Postgres from the stored `usage` and
 * `cost_usd` of each job.
 */
import { and, eq, gte, lt, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { jobs } from './schema.ts';

export type UsageGroupBy = 'model' | 'day' | 'prompt_version';

export interface UsageQuery {
  tenantId: string;
  groupBy: UsageGroupBy;
  /** Jobs created at or after this instant... */
  from: Date;
  /** ...and before this one. */
  to: Date;
}

export interface UsageRow {
  /** The model, or the day as `YYYY-MM-DD` (UTC); grouped by prompt version: the model. */
  key: string;
  /** Grouped by prompt version: the Longhaul prompt and version the jobs ran (null: no prompt). */
  promptId?: string | null;
  promptVersion?: number | null;
  jobs: number;
  /** Jobs with usage whose model has no price: their tokens are counted, their cost is not. */
  unpricedJobs: number;
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
  reasoningTokens: number;
  costUsd: number;
  /** Jobs answered from the response cache (their tokens are not in the sums: nobody spent them). */
  cachedJobs: number;
  /** What those hits would have cost (their sources' cost). */
  savedUsd: number;
}

export async function usageForTenant(db: Database, query: UsageQuery): Promise<UsageRow[]> {
  const key = query.groupBy === 'day' ? sql<string>`to_char(${jobs.createdAt} at time zone 'UTC', 'YYYY-MM-DD')` : sql<string>`${jobs.model}`;
  const byPrompt = query.groupBy === 'prompt_version';
  // A cache hit carries its source's usage, but no tokens were spent on it: it is not summed.
  const tokens = (path: string) => sql<string>`coalesce(sum((${jobs.usage} #>> ${sql.raw(`'{${path}}'`)})::bigint) filter (where ${jobs.cachedFrom} is null), 0)::text`;
  const rows = await db
    .select({
      key,
      // Selected (and grouped) only when grouping by prompt; a constant null otherwise.
      promptId: byPrompt ? jobs.promptId : sql<string | null>`null::text`,
      promptVersion: byPrompt ? jobs.promptVersion : sql<number | null>`null::int`,
      jobs: sql<number>`count(*)::int`,
      unpricedJobs: sql<number>`(count(*) filter (where ${jobs.usage} is not null and ${jobs.costUsd} is null))::int`,
      inputTokens: tokens('input_tokens'),
      cachedTokens: tokens('input_tokens_details,cached_tokens'),
      outputTokens: tokens('output_tokens'),
      reasoningTokens: tokens('output_tokens_details,reasoning_tokens'),
      costUsd: sql<string>`coalesce(sum(${jobs.costUsd}), 0)::text`,
      cachedJobs: sql<number>`(count(*) filter (where ${jobs.cachedFrom} is not null and ${jobs.status} = 'completed'))::int`,
      savedUsd: sql<string>`coalesce(sum(${jobs.savedUsd}), 0)::text`,
    })
    .from(jobs)
    .where(and(eq(jobs.tenantId, query.tenantId), gte(jobs.createdAt, query.from), lt(jobs.createdAt, query.to)))
    .groupBy(...(byPrompt ? [jobs.promptId, jobs.promptVersion, key] : [key]))
    .orderBy(...(byPrompt ? [sql`${jobs.promptId} nulls last`, jobs.promptVersion, key] : [key]));
  return rows.map((r) => ({
    key: r.key,
    ...(byPrompt ? { promptId: r.promptId, promptVersion: r.promptVersion } : {}),
    jobs: r.jobs,
    unpricedJobs: r.unpricedJobs,
    inputTokens: Number(r.inputTokens),
    cachedTokens: Number(r.cachedTokens),
    outputTokens: Number(r.outputTokens),
    reasoningTokens: Number(r.reasoningTokens),
    costUsd: Number(r.costUsd),
    cachedJobs: r.cachedJobs,
    savedUsd: Number(r.savedUsd),
  }));
}
