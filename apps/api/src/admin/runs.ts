/**
 * /admin/runs: pipeline runs across tenants (issue 16), newest first, 50 a page, filtered by
 * status, tenant and pipeline; and one run's page: its status, inputs and output, each step
 * with its status and its jobs (linked to their pages under /admin/jobs), and its events
 * (run_events) in order. Read-only: a run is cancelled through the API, as its tenant would.
 */
import { Router } from 'express';
import { z } from 'zod';
import { RUN_STATUSES } from '@longhaul/core';
import { type PipelineRun, type RunEventRow, type RunStepJob, type RunSummary, getRunWithPipeline, listRunEvents, listRunStepJobs, searchRuns } from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import { ids } from '../request-input.ts';
import { adminActor } from './audit.ts';
import { esc, layout, statusBadge, time } from './html.ts';
import { type FilterField, filterForm, olderPageLink, sendNotFound, queryError } from './list-page.ts';

const RUN_FILTERS: FilterField[] = [
  { kind: 'select', name: 'status', label: 'Status', options: RUN_STATUSES },
  { kind: 'text', name: 'tenant', label: 'Tenant id', placeholder: 'ten_…' },
  { kind: 'text', name: 'pipeline', label: 'Pipeline id', placeholder: 'pip_…' },
];

const PAGE_SIZE = 50;
/** A fan-out of many elements logs two events per element: the page shows this many, oldest first. */
const EVENTS_SHOWN = 500;
/** Step states that will not change any more (core pipeline.ts `StepStatus`): what "steps done" counts. */
const FINISHED_STEP_STATUSES: ReadonlySet<string> = new Set(['completed', 'failed', 'skipped', 'cancelled']);

const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : typeof v === 'string' ? v.trim() : v);
const id = (schema: z.ZodString) => z.preprocess(blankToUndefined, schema.optional());

const searchSchema = z.object({
  tenant: id(ids.tenant),
  status: z.preprocess(blankToUndefined, z.enum(RUN_STATUSES).optional()),
  pipeline: id(ids.pipeline),
  after: id(ids.run),
});

/** How long a run took, from its creation to its end (queueing included: what its tenant waited). */
function runDuration(createdAt: Date, finishedAt: Date | null): string {
  if (!finishedAt) return '—';
  const ms = Math.max(0, finishedAt.getTime() - createdAt.getTime());
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function stepsDone(steps: PipelineRun['steps'], total: number): string {
  const done = Object.values(steps).filter((s) => FINISHED_STEP_STATUSES.has(s.status)).length;
  return `${done}/${total}`;
}

/** Indented JSON in a `<pre>`, escaped; `—` for nothing. */
function jsonBlock(value: unknown, elementId: string): string {
  if (value === null || value === undefined) return `<p class="empty" id="${elementId}">—</p>`;
  return `<pre class="mono" id="${elementId}">${esc(JSON.stringify(value, null, 2))}</pre>`;
}

function runRow(r: RunSummary): string {
  return `<tr data-id="${esc(r.id)}" data-status="${esc(r.status)}"><td class="mono"><a href="/admin/runs/${encodeURIComponent(r.id)}">${esc(r.id)}</a></td><td class="mono"><a href="/admin/runs?tenant=${encodeURIComponent(r.tenantId)}">${esc(r.tenantId)}</a></td><td><a href="/admin/runs?pipeline=${encodeURIComponent(r.pipelineId)}">${esc(r.pipelineName)}</a> <span class="muted">v${esc(r.pipelineVersion)}</span></td><td>${statusBadge(r.status)}</td><td>${esc(stepsDone(r.steps, r.stepCount))}</td><td class="mono">${esc(time(r.createdAt))}</td><td>${esc(runDuration(r.createdAt, r.finishedAt))}</td></tr>`;
}

function jobLink(j: Pick<RunStepJob, 'id' | 'status' | 'model' | 'attempt'>): string {
  const attempt = j.attempt > 1 ? ` <span class="muted">· attempt ${esc(j.attempt)}</span>` : '';
  return `<a class="mono" href="/admin/jobs/${encodeURIComponent(j.id)}">${esc(j.id)}</a> ${statusBadge(j.status)} <span class="muted">${esc(j.model)}</span>${attempt}`;
}

/** One row per step of the definition, in its order; a step no advance has reached yet is `waiting`. */
function stepRows(stepNames: readonly string[], run: PipelineRun, stepJobs: readonly RunStepJob[]): string {
  const byId = new Map(stepJobs.map((j) => [j.id, j]));
  return stepNames
    .map((name) => {
      const state = run.steps[name];
      // The step's own list is in element order; a job made by an advance not yet recorded there is still the step's.
      const listed = state?.job_ids ?? [];
      const jobIds = [...listed, ...stepJobs.filter((j) => j.step === name && !listed.includes(j.id)).map((j) => j.id)];
      const jobsCell = jobIds.length
        ? jobIds.map((jid) => `<li>${byId.has(jid) ? jobLink(byId.get(jid)!) : `<a class="mono" href="/admin/jobs/${encodeURIComponent(jid)}">${esc(jid)}</a>`}</li>`).join('')
        : '';
      const progress = state?.items !== undefined ? `${esc(state.finished ?? 0)}/${esc(state.items)} elements` : '';
      const error = state?.error ? `<span class="error mono">${esc(state.error.code)}</span>: ${esc(state.error.message)}` : '';
      return `<tr data-step="${esc(name)}"><td class="mono">${esc(name)}</td><td>${statusBadge(state?.status ?? 'waiting')}</td><td>${progress}</td><td>${jobsCell ? `<ul class="jobs">${jobsCell}</ul>` : '<span class="muted">—</span>'}</td><td>${error}</td></tr>`;
    })
    .join('');
}

/** What an event records (pipelines.ts `writeRunChange`): the run's creation, a status change, or a step's start or end. */
function eventWhat(e: RunEventRow): string {
  const kind = typeof e.details?.kind === 'string' ? e.details.kind : undefined;
  if (!e.fromStatus) return `run created ${statusBadge(e.toStatus)}`;
  if (kind === 'status') return `run ${statusBadge(e.fromStatus)} → ${statusBadge(e.toStatus)}`;
  if (kind?.startsWith('step_')) return `step <span class="mono">${esc(e.details.step)}</span> ${esc(kind.slice('step_'.length))}`;
  return esc(kind ?? 'change');
}

function eventRows(events: readonly RunEventRow[]): string {
  return events
    .map((e) => {
      const { kind: _kind, step: _step, ...rest } = e.details ?? {};
      const details = Object.keys(rest).length ? `<pre class="mono">${esc(JSON.stringify(rest))}</pre>` : '';
      return `<tr data-event="${esc(e.id)}"><td class="mono">${esc(time(e.at))}</td><td>${eventWhat(e)}</td><td>${details}</td></tr>`;
    })
    .join('');
}

function runPage(run: PipelineRun, pipelineName: string, stepNames: readonly string[], stepJobs: readonly RunStepJob[], events: readonly RunEventRow[]): string {
  const metadata = Object.entries(run.metadata ?? {});
  const facts: [string, string][] = [
    ['Status', statusBadge(run.status)],
    ['Tenant', `<a class="mono" href="/admin/runs?tenant=${encodeURIComponent(run.tenantId)}">${esc(run.tenantId)}</a>`],
    [
      'Pipeline',
      `<a href="/admin/runs?pipeline=${encodeURIComponent(run.pipelineId)}">${esc(pipelineName)}</a> <span class="muted">version ${esc(run.pipelineVersion)} · </span><span class="mono">${esc(run.pipelineId)}</span>`,
    ],
    ['Steps done', esc(stepsDone(run.steps, stepNames.length))],
    ['Created', esc(time(run.createdAt))],
    ['Started', esc(time(run.startedAt))],
    ['Finished', esc(time(run.finishedAt))],
    ['Duration', esc(runDuration(run.createdAt, run.finishedAt))],
    ['Metadata', metadata.length ? metadata.map(([k, v]) => `<span class="mono">${esc(k)}=${esc(v)}</span>`).join('<br>') : '<span class="muted">—</span>'],
    ['Callback URL', run.callbackUrl ? `<span class="mono">${esc(run.callbackUrl)}</span>` : '—'],
  ];
  if (run.cancelRequestedAt) facts.push(['Cancel requested', esc(time(run.cancelRequestedAt))]);
  if (run.error) facts.push(['Error', `<span class="error mono">${esc(run.error.code)}</span>: ${esc(run.error.message)}`]);
  return `<p><a href="/admin/runs">← Runs</a></p>
<h1>Run <span class="mono">${esc(run.id)}</span></h1>
<dl>${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>
<h2>Inputs</h2>
${jsonBlock(run.inputs, 'inputs')}
<h2>Output</h2>
${jsonBlock(run.output, 'output')}
<h2>Steps</h2>
<div class="scroll"><table id="steps"><thead><tr><th>Step</th><th>Status</th><th>Progress</th><th>Jobs</th><th>Error</th></tr></thead><tbody>${stepRows(stepNames, run, stepJobs)}</tbody></table></div>
<h2>Events</h2>
${events.length >= EVENTS_SHOWN ? `<p class="hint">The first ${EVENTS_SHOWN} events.</p>` : ''}${events.length ? `<table id="events"><thead><tr><th>At (UTC)</th><th>Event</th><th>Details</th></tr></thead><tbody>${eventRows(events)}</tbody></table>` : '<p class="empty">No event.</p>'}`;
}

export function adminRunsRouter(deps: ApiContext): Router {
  const router = Router();

  router.get('/', async (req, res) => {
    const raw = req.query as Record<string, unknown>;
    const parsed = searchSchema.safeParse(raw);
    let results: string;
    if (!parsed.success) {
      res.status(400);
      results = queryError(parsed.error);
    } else {
      const q = parsed.data;
      const { data, hasMore } = await searchRuns(deps.db, { tenantId: q.tenant, status: q.status, pipelineId: q.pipeline, after: q.after, limit: PAGE_SIZE });
      results = data.length
        ? `<div class="scroll"><table id="runs"><thead><tr><th>Run</th><th>Tenant</th><th>Pipeline</th><th>Status</th><th>Steps done</th><th>Created (UTC)</th><th>Duration</th></tr></thead><tbody>${data
            .map(runRow)
            .join('')}</tbody></table></div>${hasMore ? olderPageLink('/admin/runs', req, data.at(-1)!.id) : ''}`
        : '<p class="empty">No run matches.</p>';
    }
    res.type('html').send(
      layout({
        title: 'Runs',
        active: 'runs',
        actor: adminActor(res),
        body: `<h1>Pipeline runs</h1>${filterForm('/admin/runs', RUN_FILTERS, raw)}<h2>Newest first</h2>${results}`,
      }),
    );
  });

  router.get('/:id', async (req, res) => {
    const found = ids.run.safeParse(req.params.id).success ? await getRunWithPipeline(deps.db, req.params.id) : null;
    if (!found) {
      sendNotFound(res, { active: 'runs', what: 'run', id: req.params.id, back: { href: '/admin/runs', label: 'Runs' } });
      return;
    }
    const { run, pipelineName, definition } = found;
    res.locals.logFields = { run_id: run.id, tenant_id: run.tenantId };
    const [stepJobs, events] = await Promise.all([listRunStepJobs(deps.db, run.id), listRunEvents(deps.db, run.id, 0, EVENTS_SHOWN)]);
    const stepNames = definition.steps.map((s) => s.name);
    res.type('html').send(layout({ title: run.id, active: 'runs', actor: adminActor(res), body: runPage(run, pipelineName, stepNames, stepJobs, events) }));
  });

  return router;
}
