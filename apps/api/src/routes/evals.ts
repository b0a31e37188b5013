/**
 * /v1/evals: run a prompt's versions over a dataset and compare them.
 *
 *   POST /v1/evals                   start one: every item × every version × `repeats`, as jobs
 *   GET  /v1/evals                   list, newest first
 *   GET  /v1/evals/{id}              one eval with its summary (per version, and the comparison)
 *   GET  /v1/evals/{id}/results      its results, item by item (output, grades, tokens, cost, latency)
 *   POST /v1/evals/{id}/cancel       stop it: unfinished jobs are cancelled, results so far stay
 *   POST /v1/evals/{id}/rerun        a new eval with the same inputs
 *
 * The jobs run at the low admission lane (production traffic first) and at most `concurrency`
 * at a time; the worker's eval loop does the work (@longhaul/engine eval-runner.ts). Another
 * tenant's eval is a 404.
 */
import { Router, type Request } from 'express';
import { z } from 'zod';
import { ConflictError, type GraderDefinition, NotFoundError, ValidationError, checkGraderDefinition, seedOf, summarizeEval } from '@longhaul/core';
import {
  type Eval,
  type EvalResultWithOutput,
  cancelEval,
  createEval,
  evalResultCounts,
  evalResultFigures,
  getDatasetForTenant,
  getDatasetVersion,
  getEvalForTenant,
  getPromptForTenant,
  listEvalResults,
  listEvals,
} from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import { checkPathIds, ids, parseInput } from '../request-input.ts';

/** Results one eval may have (versions × items × repeats). */
export const MAX_EVAL_RESULTS = 100_000;
const DEFAULT_CONCURRENCY = 8;

const metadata = z.record(z.string().min(1).max(64), z.string().max(512)).refine((m) => Object.keys(m).length <= 16, { message: 'at most 16 keys' });
export const createSchema = z.strictObject({
  prompt_id: ids.prompt,
  versions: z.array(z.number().int().positive()).min(1).max(8),
  dataset_id: ids.dataset,
  /** Default: the dataset's latest version. */
  dataset_version: z.number().int().positive().optional(),
  /** Checked one by one with the core's `checkGraderDefinition`, which names the field at fault. */
  graders: z.array(z.unknown()).min(1).max(16),
  repeats: z.number().int().min(1).max(10).default(1),
  /** Results in flight at once (their jobs submitted or waiting); the cap that keeps an eval from flooding the provider. */
  concurrency: z.number().int().min(1).max(256).default(DEFAULT_CONCURRENCY),
  metadata: metadata.optional(),
});
export const listSchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20), after: ids.eval.optional() });
export const resultsSchema = z.strictObject({
  version: z.coerce.number().int().positive().optional(),
  item: z.coerce.number().int().min(0).optional(),
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const unix = (d: Date | null) => (d === null ? null : Math.floor(d.getTime() / 1000));

function toEvalObject(e: Eval, counts: Record<string, number>) {
  const total = Object.values(counts).reduce((s, n) => s + n, 0);
  return {
    id: e.id,
    object: 'eval' as const,
    status: e.status,
    prompt_id: e.promptId,
    versions: e.versions,
    dataset_id: e.datasetId,
    dataset_version: e.datasetVersion,
    graders: e.graders,
    repeats: e.repeats,
    concurrency: e.concurrency,
    metadata: e.metadata,
    rerun_of: e.rerunOf,
    error: e.error,
    results: {
      total,
      pending: counts.pending ?? 0,
      running: counts.running ?? 0,
      grading: counts.grading ?? 0,
      done: counts.done ?? 0,
      error: counts.error ?? 0,
    },
    created_at: unix(e.createdAt),
    finished_at: unix(e.finishedAt),
  };
}

function toResultObject(r: EvalResultWithOutput) {
  return {
    object: 'eval.result' as const,
    version: r.version,
    item_index: r.itemIndex,
    repeat: r.repeat,
    status: r.status,
    job_id: r.jobId,
    grader_job_ids: r.graderJobIds,
    output_text: r.outputText,
    grades: r.grades,
    error: r.error,
    usage: r.inputTokens === null && r.outputTokens === null ? null : { input_tokens: r.inputTokens, output_tokens: r.outputTokens },
    cost_usd: r.costUsd,
    grader_cost_usd: r.graderCostUsd,
    latency_ms: r.latencyMs,
  };
}

/** The summary as the API shows it (snake_case). */
function toSummaryObject(e: Eval, summary: ReturnType<typeof summarizeEval>) {
  return {
    versions: summary.versions.map((v) => ({
      version: v.version,
      results: v.results,
      finished: v.finished,
      errors: v.errors,
      mean_score: v.meanScore,
      pass_rate: v.passRate,
      graders: v.graders.map((g) => ({ index: g.index, type: g.type, mean_score: g.meanScore, pass_rate: g.passRate })),
      cost_usd: v.costUsd,
      latency_ms: v.latencyMs,
      tokens: v.tokens,
      score_histogram: v.histogram,
    })),
    comparisons: summary.comparisons.map(({ a, b, comparison: c }) => ({
      baseline_version: a,
      version: b,
      items: c.n,
      wins: c.wins,
      losses: c.losses,
      ties: c.ties,
      mean_difference: c.meanDifference,
      p_value: c.pValue,
      interval: c.interval,
      significant: c.significant,
      winner: c.significant ? (c.meanDifference! > 0 ? b : a) : null,
    })),
    graders: e.graders.length,
  };
}

export function evalsRouter(deps: ApiContext): Router {
  const { db, clock } = deps;
  const router = Router();
  checkPathIds(router, { id: ids.eval });
  const tenantOf = (req: Request) => req.tenantId!;

  async function evalOr404(req: Request): Promise<Eval> {
    const row = await getEvalForTenant(db, tenantOf(req), String(req.params.id));
    if (!row) throw new NotFoundError(`No eval with id '${req.params.id}'.`, 'id', 'eval_not_found');
    return row;
  }

  /** Check an eval's inputs against the tenant's prompt and dataset; the eval row on success. */
  async function startEval(tenantId: string, body: z.infer<typeof createSchema>, rerunOf: string | null): Promise<Eval> {
    const prompt = await getPromptForTenant(db, tenantId, body.prompt_id);
    if (!prompt) throw new NotFoundError(`No prompt with id '${body.prompt_id}'.`, 'prompt_id', 'prompt_not_found');
    const seen = new Set<number>();
    for (const [i, v] of body.versions.entries()) {
      if (v > prompt.latestVersion) {
        throw new ValidationError(`Prompt '${prompt.id}' has no version ${v} (versions 1 to ${prompt.latestVersion}).`, `versions[${i}]`, 'prompt_version_not_found');
      }
      if (seen.has(v)) throw new ValidationError(`Version ${v} is listed twice.`, `versions[${i}]`, 'invalid_value');
      seen.add(v);
    }
    for (const [i, grader] of body.graders.entries()) {
      const problem = checkGraderDefinition(grader, i);
      if (problem) throw new ValidationError(`Invalid '${problem.param}': ${problem.message}.`, problem.param, 'invalid_grader');
    }
    const dataset = await getDatasetForTenant(db, tenantId, body.dataset_id);
    if (!dataset) throw new NotFoundError(`No dataset with id '${body.dataset_id}'.`, 'dataset_id', 'dataset_not_found');
    const datasetVersion = body.dataset_version ?? dataset.latestVersion;
    const version = await getDatasetVersion(db, tenantId, dataset.id, datasetVersion);
    if (!version) throw new NotFoundError(`Dataset '${dataset.id}' has no version ${datasetVersion}.`, 'dataset_version', 'dataset_version_not_found');
    const results = body.versions.length * version.itemCount * body.repeats;
    if (results > MAX_EVAL_RESULTS) {
      throw new ValidationError(`This eval would have ${results} results (versions × items × repeats); at most ${MAX_EVAL_RESULTS}.`, 'repeats', 'eval_too_large');
    }
    const row = await createEval(
      db,
      {
        tenantId,
        promptId: prompt.id,
        versions: body.versions,
        datasetId: dataset.id,
        datasetVersion,
        itemCount: version.itemCount,
        graders: body.graders as GraderDefinition[],
        repeats: body.repeats,
        concurrency: body.concurrency,
        metadata: body.metadata ?? {},
        rerunOf,
      },
      clock(),
    );
    if (!row) throw new NotFoundError(`No dataset with id '${body.dataset_id}'.`, 'dataset_id', 'dataset_not_found');
    return row;
  }

  router.post('/', async (req, res) => {
    const body = parseInput(createSchema, req.body);
    const row = await startEval(tenantOf(req), body, null);
    res
      .status(201)
      .setHeader('Location', `/v1/evals/${row.id}`)
      .json(toEvalObject(row, await evalResultCounts(db, row.id)));
  });

  router.get('/', async (req, res) => {
    const query = parseInput(listSchema, req.query);
    const { data, hasMore } = await listEvals(db, { tenantId: tenantOf(req), ...query });
    const objects = await Promise.all(data.map(async (e) => toEvalObject(e, await evalResultCounts(db, e.id))));
    res.json({ object: 'list', data: objects, has_more: hasMore });
  });

  router.get('/:id', async (req, res) => {
    const row = await evalOr404(req);
    const [counts, figures] = await Promise.all([evalResultCounts(db, row.id), evalResultFigures(db, row.id)]);
    res.json({ ...toEvalObject(row, counts), summary: toSummaryObject(row, summarizeEval(row.versions, row.graders, figures, seedOf(row.id))) });
  });

  router.get('/:id/results', async (req, res) => {
    const query = parseInput(resultsSchema, req.query);
    const row = await evalOr404(req);
    const { data, hasMore } = await listEvalResults(db, row.id, { version: query.version, itemIndex: query.item, offset: query.offset, limit: query.limit });
    res.json({ object: 'list', data: data.map(toResultObject), has_more: hasMore });
  });

  router.post('/:id/cancel', async (req, res) => {
    const result = await cancelEval(db, tenantOf(req), String(req.params.id), clock());
    if (!result) throw new NotFoundError(`No eval with id '${req.params.id}'.`, 'id', 'eval_not_found');
    if (!result.ok) throw new ConflictError(result.message, result.code);
    res.json(toEvalObject(result.eval, await evalResultCounts(db, result.eval.id)));
  });

  router.post('/:id/rerun', async (req, res) => {
    const original = await evalOr404(req);
    const row = await startEval(
      tenantOf(req),
      {
        prompt_id: original.promptId,
        versions: original.versions,
        dataset_id: original.datasetId,
        dataset_version: original.datasetVersion,
        graders: original.graders,
        repeats: original.repeats,
        concurrency: original.concurrency,
        metadata: original.metadata,
      },
      original.id,
    );
    res
      .status(201)
      .setHeader('Location', `/v1/evals/${row.id}`)
      .json(toEvalObject(row, await evalResultCounts(db, row.id)));
  });

  return router;
}
