/**
 * /v1/pipelines and /v1/runs: declarative, durable chains of jobs (@longhaul/core pipeline.ts).
 *
 *   POST /v1/pipelines                         create (version 1)
 *   GET  /v1/pipelines                         list, newest first
 *   GET  /v1/pipelines/{id}                    one pipeline, with its latest definition
 *   POST /v1/pipelines/{id}/versions           a new version (immutable, like prompts')
 *   GET  /v1/pipelines/{id}/versions/{v}       one version
 *   POST /v1/pipelines/{id}/runs               run a version (default the latest) on inputs: 202
 *   GET  /v1/runs?pipeline=…&status=…          list, newest first
 *   GET  /v1/runs/{id}                         one run: status, each step's status and jobs, output
 *   POST /v1/runs/{id}/cancel                  cancel it (its running jobs are cancelled at the provider)
 *   GET  /v1/runs/{id}/events                  its recorded changes, oldest first
 *   GET  /v1/runs/{id}/stream                  the same as Server-Sent Events, live until it ends
 *
 * A definition is validated in two steps: its shape here (each step's job fields with the job
 * body's own schemas, so a step can hold only what a job could send), then the graph and its
 * references by the core (`checkDefinition`): a cycle or an unknown reference is a 400 naming it.
 * The worker runs a run (@longhaul/engine run-advance.ts); the API only writes it and asks for
 * its first advance, or the sweeper does.
 */
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import {
  ConflictError,
  MAX_FOR_EACH_CONCURRENCY,
  MAX_PIPELINE_STEPS,
  NotFoundError,
  type PipelineDefinition,
  RUN_STATUSES,
  ValidationError,
  checkDefinition,
  isTerminalRun,
  parseReferences,
  runTransition,
} from '@longhaul/core';
import {
  type Pipeline,
  type PipelineRun,
  type PipelineVersion,
  addPipelineVersion,
  createPipeline,
  createRun,
  getPipelineForTenant,
  getPipelineVersion,
  getRunForTenant,
  listPipelines,
  listRunEvents,
  listRuns,
  toRunObject,
  withLockedRun,
  writeRunChange,
  type RunEventRow,
} from '@longhaul/db';
import { checkCallbackUrlResolved } from '@longhaul/callbacks';
import { runWorkItemId } from '@longhaul/queue';
import type { ApiContext } from '../context.ts';
import { jobRequestSchema } from '../job-request.ts';
import { checkPathIds, ids, parseInput } from '../request-input.ts';

const stepJobFields = jobRequestSchema.pick({
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
  prompt: true,
  metadata: true,
  fallbacks: true,
  validate: true,
});

const stepSchema = stepJobFields.extend({
  name: z.string().min(1).max(64),
  depends_on: z.array(z.string().min(1).max(64)).max(MAX_PIPELINE_STEPS).optional(),
  for_each: z.string().min(1).max(1024).optional(),
  concurrency: z.number().int().min(1).max(MAX_FOR_EACH_CONCURRENCY).optional(),
  on_failure: z.enum(['fail', 'continue']).optional(),
});

const definitionSchema = z.strictObject({
  steps: z.array(stepSchema).min(1).max(MAX_PIPELINE_STEPS),
  output: z.union([z.string().min(1).max(4096), z.record(z.string().min(1).max(64), z.string().min(1).max(4096))]).optional(),
});

const name = z.string().trim().min(1).max(256);
const note = z.string().max(1024).nullable().optional();
export const createSchema = z.strictObject({ name, description: z.string().max(4096).nullable().optional(), note, definition: definitionSchema });
export const versionSchema = z.strictObject({ note, definition: definitionSchema });
export const listSchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20), after: ids.pipeline.optional() });
export const runSchema = z.strictObject({
  inputs: z.record(z.string().min(1).max(128), z.unknown()).default({}),
  version: z.number().int().positive().optional(),
  callback_url: z.string().url().max(2048).optional(),
  metadata: z.record(z.string().min(1).max(64), z.string().max(512)).optional(),
});
export const runListSchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: ids.run.optional(),
  pipeline: ids.pipeline.optional(),
  status: z.enum(RUN_STATUSES).optional(),
});

const unix = (d: Date) => Math.floor(d.getTime() / 1000);

function toPipelineObject(p: Pipeline, latest?: PipelineVersion) {
  return {
    id: p.id,
    object: 'pipeline' as const,
    name: p.name,
    description: p.description,
    latest_version: p.latestVersion,
    ...(latest ? { definition: latest.definition } : {}),
    created_at: unix(p.createdAt),
    updated_at: unix(p.updatedAt),
  };
}

function toVersionObject(v: PipelineVersion) {
  return { object: 'pipeline.version' as const, pipeline_id: v.pipelineId, version: v.version, definition: v.definition, note: v.note, created_at: unix(v.createdAt) };
}

/** The shape checked, then the graph and its references (the core's rules). */
function checkedDefinition(raw: z.infer<typeof definitionSchema>): PipelineDefinition {
  const definition = raw as PipelineDefinition;
  const problem = checkDefinition(definition);
  if (problem) throw new ValidationError(problem.message, `definition.${problem.param}`, problem.code);
  return definition;
}

/** Every `{{input.x}}` a definition uses must be in the run's inputs (a 400 now, not a failed step later). */
function checkInputs(definition: PipelineDefinition, inputs: Record<string, unknown>): void {
  const texts = JSON.stringify(definition.steps);
  for (const ref of parseReferences(texts)) {
    const key = ref.root === 'input' ? ref.path[0] : undefined;
    if (key !== undefined && !(key in inputs)) throw new ValidationError(`Missing input '${key}': the pipeline refers to {{${ref.raw}}}.`, `inputs.${key}`, 'missing_input');
  }
}

/** A run event as clients see it: `run.<status>` for the run's own changes, `run.step_<…>` for a step's. */
function toRunEvent(e: RunEventRow) {
  const { kind, ...rest } = e.details as { kind?: string } & Record<string, unknown>;
  const type = kind === undefined || kind === 'status' ? `run.${e.toStatus}` : `run.${kind}`;
  return { id: e.id, object: 'pipeline.run.event' as const, type, run_id: e.runId, status: e.toStatus, from_status: e.fromStatus, created_at: unix(e.at), data: rest };
}

export function pipelinesRouter(deps: ApiContext): Router {
  const { db, clock, config } = deps;
  const router = Router();
  checkPathIds(router, { id: ids.pipeline });
  const tenantOf = (req: Request) => req.tenantId!;

  async function pipelineOr404(req: Request): Promise<Pipeline> {
    const pipeline = await getPipelineForTenant(db, tenantOf(req), String(req.params.id));
    if (!pipeline) throw new NotFoundError(`No pipeline with id '${req.params.id}'.`, 'id', 'pipeline_not_found');
    return pipeline;
  }

  router.post('/', async (req, res) => {
    const body = parseInput(createSchema, req.body);
    const definition = checkedDefinition(body.definition);
    const { pipeline, version } = await createPipeline(
      db,
      { tenantId: tenantOf(req), name: body.name, description: body.description ?? null, definition, note: body.note ?? null },
      clock(),
    );
    res.status(201).setHeader('Location', `/v1/pipelines/${pipeline.id}`).json(toPipelineObject(pipeline, version));
  });

  router.get('/', async (req, res) => {
    const query = parseInput(listSchema, req.query);
    const { data, hasMore } = await listPipelines(db, { tenantId: tenantOf(req), ...query });
    res.json({ object: 'list', data: data.map((p) => toPipelineObject(p)), has_more: hasMore });
  });

  router.get('/:id', async (req, res) => {
    const pipeline = await pipelineOr404(req);
    const latest = await getPipelineVersion(db, pipeline.tenantId, pipeline.id, pipeline.latestVersion);
    res.json(toPipelineObject(pipeline, latest ?? undefined));
  });

  router.post('/:id/versions', async (req, res) => {
    const body = parseInput(versionSchema, req.body);
    const definition = checkedDefinition(body.definition);
    const added = await addPipelineVersion(db, tenantOf(req), String(req.params.id), { definition, note: body.note ?? null }, clock());
    if (!added) throw new NotFoundError(`No pipeline with id '${req.params.id}'.`, 'id', 'pipeline_not_found');
    res.status(201).setHeader('Location', `/v1/pipelines/${added.pipeline.id}/versions/${added.version.version}`).json(toVersionObject(added.version));
  });

  router.get('/:id/versions/:version', async (req, res) => {
    const pipeline = await pipelineOr404(req);
    const raw = String(req.params.version);
    const row = /^\d{1,9}$/.test(raw) ? await getPipelineVersion(db, pipeline.tenantId, pipeline.id, Number(raw)) : null;
    if (!row) throw new NotFoundError(`Pipeline '${pipeline.id}' has no version '${raw}'.`, 'version', 'pipeline_version_not_found');
    res.json(toVersionObject(row));
  });

  router.post('/:id/runs', async (req, res) => {
    const body = parseInput(runSchema, req.body);
    const pipeline = await pipelineOr404(req);
    const versionNumber = body.version ?? pipeline.latestVersion;
    const version = versionNumber <= pipeline.latestVersion ? await getPipelineVersion(db, pipeline.tenantId, pipeline.id, versionNumber) : null;
    if (!version)
      throw new ValidationError(`Pipeline '${pipeline.id}' has no version ${versionNumber} (versions 1 to ${pipeline.latestVersion}).`, 'version', 'pipeline_version_not_found');
    checkInputs(version.definition, body.inputs);
    if (body.callback_url) {
      const checked = await checkCallbackUrlResolved(body.callback_url, config.callbackPolicy);
      if (!checked.ok) throw new ValidationError(`Invalid 'callback_url': ${checked.reason}.`, 'callback_url', 'url_not_allowed');
    }
    const run = await createRun(
      db,
      {
        tenantId: pipeline.tenantId,
        pipelineId: pipeline.id,
        pipelineVersion: version.version,
        inputs: body.inputs,
        callbackUrl: body.callback_url ?? null,
        metadata: body.metadata ?? {},
      },
      clock(),
    );
    res.locals.logFields = { run_id: run.id };
    req.log.info({ run_id: run.id, pipeline_id: pipeline.id, pipeline_version: version.version }, 'run accepted');
    await askForAdvance(deps, req, run.id, 'created');
    res.status(202).setHeader('Location', `/v1/runs/${run.id}`).json(toRunObject(run));
  });

  return router;
}

/** Best effort: the run's next check is now, so the sweeper advances it if Redis refuses the work item. */
async function askForAdvance(deps: ApiContext, req: Request, runId: string, cause: string): Promise<void> {
  try {
    await deps.queues.add('runs', { runId }, { jobId: runWorkItemId(runId, cause) });
  } catch (err) {
    req.log.warn({ err, run_id: runId, code: 'dispatch_deferred' }, 'could not reach Redis; the sweeper will advance the run');
  }
}

/** How often a run's SSE looks for new events. */
const RUN_STREAM_POLL_MS = 250;
const RUN_STREAM_HEARTBEAT_MS = 15_000;

export function runsRouter(deps: ApiContext): Router {
  const { db, clock } = deps;
  const router = Router();
  checkPathIds(router, { id: ids.run });
  const tenantOf = (req: Request) => req.tenantId!;

  async function runOr404(req: Request): Promise<PipelineRun> {
    const run = await getRunForTenant(db, tenantOf(req), String(req.params.id));
    if (!run) throw new NotFoundError(`No run with id '${req.params.id}'.`, 'id', 'run_not_found');
    req.log = req.log.child({ run_id: run.id, tenant_id: run.tenantId });
    return run;
  }

  router.get('/', async (req, res) => {
    const query = parseInput(runListSchema, req.query);
    const { data, hasMore } = await listRuns(db, { tenantId: tenantOf(req), pipelineId: query.pipeline, status: query.status, limit: query.limit, after: query.after });
    res.json({ object: 'list', data: data.map(toRunObject), has_more: hasMore });
  });

  router.get('/:id', async (req, res) => {
    res.json(toRunObject(await runOr404(req)));
  });

  router.post('/:id/cancel', async (req, res) => {
    const found = await runOr404(req);
    const now = clock();
    const outcome = await withLockedRun(db, found.id, async (tx, run) => {
      const decision = runTransition(run, { type: 'cancel_requested' });
      if (!decision.ok) return { refused: decision.error.message, run };
      if (!decision.changed) return { run };
      return { run: await writeRunChange(tx, run, { status: decision.status, steps: run.steps, nextCheckAt: now, events: [] }, now) };
    });
    if (!outcome) throw new NotFoundError(`No run with id '${req.params.id}'.`, 'id', 'run_not_found');
    if ('refused' in outcome && outcome.refused) throw new ConflictError(`Run '${found.id}' cannot be cancelled: ${outcome.refused}.`, 'run_terminal');
    req.log.info({ run_id: found.id, status: outcome.run.status }, 'run cancel requested');
    // The advance cancels the run's jobs still running (at the provider too).
    await askForAdvance(deps, req, found.id, 'cancel');
    res.json(toRunObject(outcome.run));
  });

  router.get('/:id/events', async (req, res) => {
    const run = await runOr404(req);
    const after = parseInput(z.strictObject({ after: z.coerce.number().int().min(0).default(0) }), req.query).after;
    const rows = await listRunEvents(db, run.id, after);
    res.json({ object: 'list', data: rows.map(toRunEvent), has_more: rows.length === 500 });
  });

  router.get('/:id/stream', async (req: Request, res: Response) => {
    const run = await runOr404(req);
    const rawCursor = req.get('last-event-id') ?? (typeof req.query.starting_after === 'string' ? req.query.starting_after : '0');
    if (!/^\d{1,15}$/.test(rawCursor))
      throw new ValidationError(
        `Invalid event cursor '${rawCursor}': use an event id from this stream.`,
        req.get('last-event-id') ? 'Last-Event-ID' : 'starting_after',
        'invalid_cursor',
      );
    let cursor = Number(rawCursor);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(`: stream of ${run.id}\n\n`);
    let closed = false;
    req.on('close', () => {
      closed = true;
    });
    let lastWrite = Date.now();
    while (!closed) {
      const rows = await listRunEvents(db, run.id, cursor).catch(() => []);
      let ended = false;
      for (const row of rows) {
        const event = toRunEvent(row);
        res.write(`id: ${row.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
        cursor = row.id;
        lastWrite = Date.now();
        if (isTerminalRun(row.toStatus) && (row.details as { kind?: string }).kind === 'status') ended = true;
      }
      if (ended) break;
      if (rows.length === 0) {
        // Nothing new: a finished run whose end was already sent ends here too.
        const current = await getRunForTenant(db, run.tenantId, run.id).catch(() => null);
        if (current && isTerminalRun(current.status)) {
          const more = await listRunEvents(db, run.id, cursor).catch(() => []);
          if (more.length === 0) break;
          continue;
        }
      }
      if (Date.now() - lastWrite > RUN_STREAM_HEARTBEAT_MS) {
        res.write(': keep-alive\n\n');
        lastWrite = Date.now();
      }
      await new Promise((r) => setTimeout(r, RUN_STREAM_POLL_MS));
    }
    res.end();
  });

  return router;
}
