/**
 * /v1/prompts: reusable prompt templates with immutable versions.
 *
 *   POST /v1/prompts                       create (version 1 is current)
 *   GET  /v1/prompts                       list, newest first
 *   GET  /v1/prompts/{id}                  one prompt
 *   POST /v1/prompts/{id}                  rename, roll back (`current_version`), A/B split (`traffic`)
 *   POST /v1/prompts/{id}/versions         a new version (becomes current)
 *   GET  /v1/prompts/{id}/versions         list, newest first
 *   GET  /v1/prompts/{id}/versions/{v}     one version
 *   POST /v1/prompts/{id}/rollout          roll a version out step by step, guarded by live metrics
 *   GET  /v1/prompts/{id}/rollout          the active rollout, else the latest
 *   POST /v1/prompts/{id}/rollout/pause    hold the traffic split; /resume measures the step afresh
 *   POST /v1/prompts/{id}/rollout/abort    all traffic back to the baseline
 *   GET  /v1/prompts/{id}/events           every routing change and rollout decision, with its figures
 *
 * A template holds `instructions` and `input` with `{{variable}}` placeholders and default request
 * settings; it is validated with the job body's own schemas, so a template can only hold what a
 * job could send. Another tenant's prompt is a 404.
 */
import { Router, type Request } from 'express';
import { z } from 'zod';
import {
  ConflictError,
  MAX_CACHE_TTL_SECONDS,
  NotFoundError,
  type RolloutEvent,
  ValidationError,
  checkPromptTraffic,
  extractPromptVariables,
  staticPrefixChars,
  type PromptTemplate,
} from '@longhaul/core';
import {
  addPromptVersion,
  applyRolloutEvent,
  createPrompt,
  createRollout,
  getPromptForTenant,
  getPromptRollout,
  getPromptVersion,
  hasActiveRollout,
  listPromptEvents,
  listPromptVersions,
  listPrompts,
  updatePrompt,
  withPromptRollout,
  type Prompt,
  type PromptEventRow,
  type PromptVersion,
  type Rollout,
} from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import { jobRequestSchema } from '../job-request.ts';
import { checkPathIds, ids, parseInput } from '../request-input.ts';

const CHARS_PER_TOKEN = 4;

const templateSchema = jobRequestSchema
  .pick({
    model: true,
    instructions: true,
    input: true,
    reasoning: true,
    max_output_tokens: true,
    text: true,
    tools: true,
    tool_choice: true,
    parallel_tool_calls: true,
    truncation: true,
    service_tier: true,
  })
  .refine((t) => t.instructions !== undefined || t.input !== undefined, { message: 'a prompt template needs instructions or input', path: ['instructions'] });

const name = z.string().trim().min(1).max(256);
const description = z.string().max(4096).nullable();
const note = z.string().max(1024).nullable();

/** The version's response-cache default (`null`: the tenant's); a job's own `cache` wins. */
const versionCache = z.strictObject({ ttl_seconds: z.number().int().positive().max(MAX_CACHE_TTL_SECONDS), continuations: z.boolean().optional() }).nullable();
export const createSchema = z.strictObject({ name, description: description.optional(), note: note.optional(), cache: versionCache.optional(), template: templateSchema });
export const versionSchema = z.strictObject({ note: note.optional(), cache: versionCache.optional(), template: templateSchema });
export const updateSchema = z.strictObject({
  name: name.optional(),
  description: description.optional(),
  /** Roll back (or forward): jobs that name no version run this one. */
  current_version: z.number().int().positive().optional(),
  /** Split jobs that name no version between versions by weight; null: stop the split. */
  traffic: z
    .array(z.strictObject({ version: z.number().int().positive(), weight: z.number().nonnegative().max(1_000_000) }))
    .min(1)
    .max(16)
    .nullable()
    .optional(),
});
export const listSchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20), after: ids.prompt.optional() });
export const rolloutSchema = z.strictObject({
  candidate_version: z.number().int().positive(),
  steps: z.array(z.number().int()).min(1).max(20),
  min_jobs_per_step: z.number().int().min(1).max(1_000_000),
  guard: z.strictObject({
    max_failure_rate_increase: z.number(),
    max_incomplete_rate_increase: z.number(),
    max_cost_ratio: z.number(),
    min_validator_pass_rate: z.number().optional(),
  }),
});
export const eventsSchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(50), after: z.coerce.number().int().min(0).optional() });
export const versionListSchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20), after: z.coerce.number().int().positive().optional() });

const unix = (d: Date) => Math.floor(d.getTime() / 1000);

function toPromptObject(p: Prompt) {
  return {
    id: p.id,
    object: 'prompt' as const,
    name: p.name,
    description: p.description,
    /** What a job that names no version runs (unless `traffic` splits them). */
    current_version: p.currentVersion,
    latest_version: p.latestVersion,
    traffic: p.traffic,
    created_at: unix(p.createdAt),
    updated_at: unix(p.updatedAt),
  };
}

function toPromptVersionObject(v: PromptVersion) {
  return {
    object: 'prompt.version' as const,
    prompt_id: v.promptId,
    version: v.version,
    template: v.template,
    variables: v.variables,
    note: v.note,
    cache: v.cache ?? null,
    /**
     * Estimated tokens of instructions + input before the first variable: what every job of this
     * version shares and may read from the prompt cache (which starts at 1024 tokens).
     */
    static_prefix_tokens: Math.floor(staticPrefixChars(v.template as PromptTemplate) / CHARS_PER_TOKEN),
    created_at: unix(v.createdAt),
  };
}

function toRolloutObject(r: Rollout) {
  const def = r.definition;
  const unixOrNull = (d: Date | null) => (d === null ? null : unix(d));
  return {
    id: r.id,
    object: 'prompt.rollout' as const,
    prompt_id: r.promptId,
    status: r.status,
    candidate_version: r.candidateVersion,
    baseline_version: r.baselineVersion,
    steps: def.steps,
    step_index: r.stepIndex,
    /** The candidate's share of the prompt's traffic now, in percent (0 once rolled back or aborted). */
    percent: r.status === 'completed' ? 100 : r.status === 'rolled_back' || r.status === 'aborted' ? 0 : def.steps[r.stepIndex],
    min_jobs_per_step: def.min_jobs_per_step,
    guard: def.guard,
    step_started_at: unix(r.stepStartedAt),
    /** The figures of the latest look (a wait's too): where the current step stands. */
    last_figures: r.lastFigures,
    created_at: unix(r.createdAt),
    finished_at: unixOrNull(r.finishedAt),
  };
}

function toPromptEventObject(e: PromptEventRow) {
  return {
    id: e.id,
    object: 'prompt.event' as const,
    type: e.type,
    rollout_id: e.rolloutId,
    current_version: e.currentVersion,
    traffic: e.traffic,
    details: e.details,
    at: unix(e.at),
  };
}

function newVersion(template: z.infer<typeof templateSchema>, versionNote: string | null | undefined, cache?: z.infer<typeof versionCache>) {
  const stored = template as PromptTemplate;
  return { template: stored, variables: extractPromptVariables(stored), note: versionNote ?? null, cache: cache ?? null };
}

export function promptsRouter(deps: ApiContext): Router {
  const { db, clock } = deps;
  const router = Router();
  checkPathIds(router, { id: ids.prompt });
  const tenantOf = (req: Request) => req.tenantId!;

  async function promptOr404(req: Request): Promise<Prompt> {
    const prompt = await getPromptForTenant(db, tenantOf(req), String(req.params.id));
    if (!prompt) throw new NotFoundError(`No prompt with id '${req.params.id}'.`, 'id', 'prompt_not_found');
    return prompt;
  }

  router.post('/', async (req, res) => {
    const body = parseInput(createSchema, req.body);
    const { prompt } = await createPrompt(
      db,
      { tenantId: tenantOf(req), name: body.name, description: body.description ?? null, ...newVersion(body.template, body.note, body.cache) },
      clock(),
    );
    res.status(201).setHeader('Location', `/v1/prompts/${prompt.id}`).json(toPromptObject(prompt));
  });

  router.get('/', async (req, res) => {
    const query = parseInput(listSchema, req.query);
    const { data, hasMore } = await listPrompts(db, { tenantId: tenantOf(req), ...query });
    res.json({ object: 'list', data: data.map(toPromptObject), has_more: hasMore });
  });

  router.get('/:id', async (req, res) => {
    res.json(toPromptObject(await promptOr404(req)));
  });

  router.post('/:id', async (req, res) => {
    const body = parseInput(updateSchema, req.body);
    const prompt = await promptOr404(req);
    // Versions are 1..latest_version and never deleted, so a version checked here still exists when written.
    if (body.current_version !== undefined && body.current_version > prompt.latestVersion) {
      throw new ValidationError(
        `Prompt '${prompt.id}' has no version ${body.current_version} (versions 1 to ${prompt.latestVersion}).`,
        'current_version',
        'prompt_version_not_found',
      );
    }
    if ((body.current_version !== undefined || body.traffic !== undefined) && (await hasActiveRollout(db, prompt.id))) {
      throw new ConflictError(
        `Prompt '${prompt.id}' has a rollout in progress: it sets the traffic until it ends (pause or abort it at /v1/prompts/${prompt.id}/rollout).`,
        'rollout_in_progress',
      );
    }
    let traffic = body.traffic;
    if (traffic) {
      const checked = checkPromptTraffic(traffic, prompt.latestVersion);
      if (!checked.ok) throw new ValidationError(`Invalid 'traffic[${checked.error.index}]': ${checked.error.message}.`, `traffic[${checked.error.index}]`, 'invalid_traffic');
      traffic = checked.value;
    }
    const updated = await updatePrompt(db, tenantOf(req), prompt.id, { name: body.name, description: body.description, currentVersion: body.current_version, traffic }, clock());
    if (!updated) throw new NotFoundError(`No prompt with id '${req.params.id}'.`, 'id', 'prompt_not_found');
    res.json(toPromptObject(updated));
  });

  router.post('/:id/versions', async (req, res) => {
    const body = parseInput(versionSchema, req.body);
    const added = await addPromptVersion(db, tenantOf(req), String(req.params.id), newVersion(body.template, body.note, body.cache), clock());
    if (!added) throw new NotFoundError(`No prompt with id '${req.params.id}'.`, 'id', 'prompt_not_found');
    res.status(201).setHeader('Location', `/v1/prompts/${added.prompt.id}/versions/${added.version.version}`).json(toPromptVersionObject(added.version));
  });

  router.get('/:id/versions', async (req, res) => {
    const query = parseInput(versionListSchema, req.query);
    const prompt = await promptOr404(req);
    const { data, hasMore } = await listPromptVersions(db, { tenantId: tenantOf(req), promptId: prompt.id, limit: query.limit, before: query.after });
    res.json({ object: 'list', data: data.map(toPromptVersionObject), has_more: hasMore });
  });

  router.get('/:id/versions/:version', async (req, res) => {
    const prompt = await promptOr404(req);
    const raw = String(req.params.version);
    const version = /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
    const row = Number.isInteger(version) ? await getPromptVersion(db, tenantOf(req), prompt.id, version) : null;
    if (!row) throw new NotFoundError(`Prompt '${prompt.id}' has no version '${raw}'.`, 'version', 'prompt_version_not_found');
    res.json(toPromptVersionObject(row));
  });

  router.post('/:id/rollout', async (req, res) => {
    const body = parseInput(rolloutSchema, req.body);
    const prompt = await promptOr404(req);
    const started = await createRollout(db, tenantOf(req), prompt.id, body, clock());
    if (!started.ok) {
      if (started.reason === 'not_found') throw new NotFoundError(`No prompt with id '${req.params.id}'.`, 'id', 'prompt_not_found');
      if (started.reason === 'in_progress') throw new ConflictError(`Prompt '${prompt.id}' already has a rollout in progress (${started.rolloutId}).`, 'rollout_in_progress');
      throw new ValidationError(started.problem.message, started.problem.param, started.problem.code);
    }
    res.status(201).setHeader('Location', `/v1/prompts/${prompt.id}/rollout`).json(toRolloutObject(started.rollout));
  });

  router.get('/:id/rollout', async (req, res) => {
    const prompt = await promptOr404(req);
    const rollout = await getPromptRollout(db, tenantOf(req), prompt.id);
    if (!rollout) throw new NotFoundError(`Prompt '${prompt.id}' has no rollout.`, 'id', 'rollout_not_found');
    res.json(toRolloutObject(rollout));
  });

  for (const [action, event] of [
    ['pause', { type: 'paused' }],
    ['resume', { type: 'resumed' }],
    ['abort', { type: 'aborted' }],
  ] as const satisfies readonly (readonly [string, RolloutEvent])[]) {
    router.post(`/:id/rollout/${action}`, async (req, res) => {
      const prompt = await promptOr404(req);
      const result = await withPromptRollout(db, tenantOf(req), prompt.id, (tx, row) => applyRolloutEvent(tx, row, event, clock(), { details: { source: 'api' } }));
      if (!result) throw new NotFoundError(`Prompt '${prompt.id}' has no rollout.`, 'id', 'rollout_not_found');
      if (!result.ok) throw new ConflictError(result.message, result.code);
      res.json(toRolloutObject(result.rollout));
    });
  }

  router.get('/:id/events', async (req, res) => {
    const query = parseInput(eventsSchema, req.query);
    const prompt = await promptOr404(req);
    const { data, hasMore } = await listPromptEvents(db, tenantOf(req), prompt.id, query);
    res.json({ object: 'list', data: data.map(toPromptEventObject), has_more: hasMore });
  });

  return router;
}
