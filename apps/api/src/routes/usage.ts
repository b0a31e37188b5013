/**
 * GET /v1/usage?group_by=model|day|prompt_version&from=&to=: a tenant's tokens, cached-token ratio
 * and estimated cost, summed by Postgres over the jobs created in [from, to). `from` and `to` are
 * Unix seconds or ISO 8601 dates; the default range is the last 30 days. `prompt_version` rows
 * are one per (prompt id, version, model); jobs without a Longhaul prompt have `prompt_id: null`.
 */
import { Router } from 'express';
import { z } from 'zod';
import { ValidationError } from '@longhaul/core';
import { type UsageGroupBy, type UsageRow, usageForTenant } from '@longhaul/db';
import type { ApiDeps } from '../context.ts';
import { parseInput } from '../request-input.ts';

const DEFAULT_RANGE_MS = 30 * 86_400_000;

const instant = z
  .string()
  .max(40)
  .transform((v, ctx) => {
    const d = /^\d{1,12}$/.test(v) ? new Date(Number(v) * 1000) : new Date(v);
    if (Number.isNaN(d.getTime())) {
      ctx.addIssue({ code: 'custom', message: 'expected Unix seconds or an ISO 8601 date' });
      return z.NEVER;
    }
    return d;
  });

export const querySchema = z.strictObject({
  group_by: z.enum(['model', 'day', 'prompt_version']).default('model'),
  from: instant.optional(),
  to: instant.optional(),
});

const unix = (d: Date) => Math.floor(d.getTime() / 1000);
/** Cost sums are exact in Postgres (numeric); keep them to the nano-dollar in JSON too. */
const roundUsd = (v: number) => Math.round(v * 1e9) / 1e9;

function usageObject(row: Omit<UsageRow, 'key'>) {
  return {
    jobs: row.jobs,
    input_tokens: row.inputTokens,
    cached_tokens: row.cachedTokens,
    output_tokens: row.outputTokens,
    reasoning_tokens: row.reasoningTokens,
    total_tokens: row.inputTokens + row.outputTokens,
    cached_ratio: row.inputTokens ? row.cachedTokens / row.inputTokens : 0,
    /** Share of input tokens served from the prompt cache; null when there were no input tokens. */
    cache_hit_ratio: row.inputTokens ? row.cachedTokens / row.inputTokens : null,
    cost_usd: roundUsd(row.costUsd),
    unpriced_jobs: row.unpricedJobs,
    /** Jobs answered from the response cache (no tokens spent: not in the token sums), and what they would have cost. */
    cached_jobs: row.cachedJobs,
    saved_usd: roundUsd(row.savedUsd),
  };
}

function groupKeys(groupBy: UsageGroupBy, row: UsageRow): Record<string, unknown> {
  if (groupBy === 'prompt_version') return { prompt_id: row.promptId ?? null, prompt_version: row.promptVersion ?? null, model: row.key };
  return { [groupBy]: row.key };
}

export function usageRouter(deps: ApiDeps): Router {
  const router = Router();
  router.get('/', async (req, res) => {
    const query = parseInput(querySchema, req.query);
    const { group_by: groupBy } = query;
    const to = query.to ?? deps.clock();
    const from = query.from ?? new Date(to.getTime() - DEFAULT_RANGE_MS);
    if (from >= to) throw new ValidationError("'from' must be before 'to'.", 'from');
    const rows = await usageForTenant(deps.db, { tenantId: req.tenantId!, groupBy, from, to });
    const total = rows.reduce(
      (t, r) => ({
        jobs: t.jobs + r.jobs,
        unpricedJobs: t.unpricedJobs + r.unpricedJobs,
        inputTokens: t.inputTokens + r.inputTokens,
        cachedTokens: t.cachedTokens + r.cachedTokens,
        outputTokens: t.outputTokens + r.outputTokens,
        reasoningTokens: t.reasoningTokens + r.reasoningTokens,
        costUsd: t.costUsd + r.costUsd,
        cachedJobs: t.cachedJobs + r.cachedJobs,
        savedUsd: t.savedUsd + r.savedUsd,
      }),
      { jobs: 0, unpricedJobs: 0, inputTokens: 0, cachedTokens: 0, outputTokens: 0, reasoningTokens: 0, costUsd: 0, cachedJobs: 0, savedUsd: 0 },
    );
    res.json({
      object: 'usage',
      group_by: groupBy,
      from: unix(from),
      to: unix(to),
      data: rows.map((r) => ({ ...groupKeys(groupBy, r), ...usageObject(r) })),
      total: usageObject(total),
    });
  });
  return router;
}
