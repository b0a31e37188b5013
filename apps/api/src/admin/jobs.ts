/**
 * /admin/jobs: what bull-board cannot do. Search jobs in Postgres (tenant, status, model,
 * metadata key/value, creation time range, response id, job id) and open one job's whole
 * timeline: every state change with its source, every provider call, every OpenAI webhook
 * received about it and every callback attempt, with its usage and estimated cost.
 *
 * A job's page has actions, each a form post (same-origin only, csrf.ts) recorded in the audit
 * log under the admin (audit.ts), shown only when it applies and never in read-only mode:
 * - Cancel (a job that has not finished): the tenant's own cancel path (job-cancellation.ts).
 * - Re-run (a finished job whose content is not erased): the same request as a new job of the
 *   same tenant, through the API's creation path (job-submission.ts), with `rerun_of` in its
 *   metadata and the response cache off (a re-run is asked to run).
 * - Resend callbacks (a job with a failed or cancelled delivery): each such delivery starts a
 *   fresh schedule, as `POST /v1/deliveries/{id}/retry` does; a succeeded one is never sent again.
 * What an action did is shown once on the page it leads to (a short-lived flash cookie, so the
 * page's address stays the job's).
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { ConflictError, JOB_ID_METADATA_KEY, JOB_STATUSES, LonghaulError, NotFoundError, PermissionError, ValidationError, isTerminal } from '@longhaul/core';
import {
  type CallbackDelivery,
  type Job,
  type JobTurn,
  getJob,
  listCallbackAttemptsForJob,
  listDeliveries,
  listJobEvents,
  listJobTurns,
  listProviderCallsForJob,
  listWebhooksForJob,
  retryDelivery,
  searchJobs,
} from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import { requestCancel } from '../job-cancellation.ts';
import { type JobRequest, jobRequestSchema } from '../job-request.ts';
import { submitJob } from '../job-submission.ts';
import { ids, storableText } from '../request-input.ts';
import { addAuditDetails, adminActor } from './audit.ts';
import { esc, layout, statusBadge, time, usd } from './html.ts';
import { olderPageLink, queryError } from './list-page.ts';

const PAGE_SIZE = 50;

const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : typeof v === 'string' ? v.trim() : v);
const text = (max: number) => z.preprocess(blankToUndefined, storableText(z.string().max(max)).optional());
const id = (schema: z.ZodString) => z.preprocess(blankToUndefined, schema.optional());
/** `datetime-local` inputs have no zone: they are read as UTC (the page says so). */
const instant = z.preprocess(blankToUndefined, storableText(z.string().max(40)).optional()).transform((v, ctx) => {
  if (v === undefined) return undefined;
  const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`);
  if (Number.isNaN(d.getTime())) {
    ctx.addIssue({ code: 'custom', message: `not a date: ${v}` });
    return z.NEVER;
  }
  return d;
});

const searchSchema = z.object({
  tenant: id(ids.tenant),
  status: z.preprocess(blankToUndefined, z.enum(JOB_STATUSES).optional()),
  model: text(128),
  meta_key: text(64),
  meta_value: text(512),
  from: instant,
  to: instant,
  response_id: id(ids.response),
  job_id: id(ids.job),
  after: id(ids.job),
});
type SearchQuery = z.infer<typeof searchSchema>;

/** Metadata as `key=value` lines (short enough for a table cell). */
function metadataCell(metadata: Record<string, string>): string {
  const entries = Object.entries(metadata);
  return entries.length ? entries.map(([k, v]) => `<span class="mono">${esc(k)}=${esc(v)}</span>`).join('<br>') : '<span class="muted">—</span>';
}

const inputValue = (d: Date | undefined) => (d ? d.toISOString().slice(0, 16) : '');

function searchForm(raw: Record<string, unknown>, q: SearchQuery | null): string {
  const v = (name: string) => esc(typeof raw[name] === 'string' ? raw[name] : '');
  const options = ['', ...JOB_STATUSES].map((s) => `<option value="${s}"${raw.status === s ? ' selected' : ''}>${s || 'any'}</option>`).join('');
  return `<form class="search" method="get" action="/admin/jobs" role="search">
  <label>Tenant id<input name="tenant" value="${v('tenant')}" placeholder="ten_…"></label>
  <label>Status<select name="status">${options}</select></label>
  <label>Model<input name="model" value="${v('model')}" placeholder="o3"></label>
  <label>Metadata key<input name="meta_key" value="${v('meta_key')}"></label>
  <label>Metadata value<input name="meta_value" value="${v('meta_value')}"></label>
  <label>Created from (UTC)<input type="datetime-local" name="from" value="${q?.from ? inputValue(q.from) : v('from')}"></label>
  <label>Created before (UTC)<input type="datetime-local" name="to" value="${q?.to ? inputValue(q.to) : v('to')}"></label>
  <label>Response id<input name="response_id" value="${v('response_id')}" placeholder="resp_…"></label>
  <label>Job id<input name="job_id" value="${v('job_id')}" placeholder="job_…"></label>
  <div class="actions"><button class="primary" type="submit">Search</button><a href="/admin/jobs">Clear</a></div>
</form>`;
}

interface TimelineEntry {
  at: Date;
  kind: 'state' | 'provider' | 'webhook' | 'callback' | 'turn';
  what: string;
  detail: string;
}

const callNames = (calls: unknown[]) => calls.map((c) => esc(String((c as { name?: unknown }).name ?? '?'))).join(', ');
const tokens = (t: JobTurn) => (t.usage ? `${t.usage.total_tokens} tokens` : 'no usage');

/** A tool-call loop's turns in the timeline: each one's end (what it asked) and its answers. */
function turnEntries(turns: readonly JobTurn[]): TimelineEntry[] {
  return turns.flatMap((t) => {
    const asked = [
      t.toolCalls.length ? `${t.toolCalls.length} tool call(s): ${callNames(t.toolCalls)}` : '',
      t.approvalRequests.length ? `${t.approvalRequests.length} approval request(s)` : '',
    ]
      .filter(Boolean)
      .join(' · ');
    const ended: TimelineEntry = {
      at: t.endedAt,
      kind: 'turn',
      what: `turn ${esc(t.turn)} ended ${statusBadge(t.status)}${asked ? ` <span class="muted">with</span> ${asked}` : ''}`,
      detail: `<span class="mono">${esc(t.responseId ?? '')}</span> · ${esc(tokens(t))}${t.costUsd === null ? '' : ` · ${esc(usd(t.costUsd))}`}`,
    };
    if (!t.answeredAt) return [ended];
    const answers = [t.toolOutputs ? `${t.toolOutputs.length} output(s)` : '', t.approvals ? `${t.approvals.length} approval(s)` : ''].filter(Boolean).join(' · ');
    return [ended, { at: t.answeredAt, kind: 'turn', what: `turn ${esc(t.turn)} answered <span class="muted">by</span> ${esc(t.answeredBy ?? '?')}`, detail: esc(answers) }];
  });
}

/** The turns of a loop, one row each: what it cost is where it is spent. */
function turnRows(job: Job, turns: readonly JobTurn[]): string {
  if (job.maxTurns === null) return '';
  const body = turns
    .map(
      (t) =>
        `<tr><td>${esc(t.turn)}</td><td class="mono">${esc(t.responseId ?? '—')}</td><td>${statusBadge(t.status)}</td><td>${callNames(t.toolCalls) || '—'}</td><td>${esc(t.answeredBy ?? '—')}</td><td>${esc(t.usage?.total_tokens ?? '—')}</td><td>${t.costUsd === null ? '—' : esc(usd(t.costUsd))}</td></tr>`,
    )
    .join('');
  return `<h2>Turns <span class="muted">(turn ${esc(job.turn)} of at most ${esc(job.maxTurns)})</span></h2>
${turns.length ? `<table id="turns"><thead><tr><th>Turn</th><th>Response</th><th>Ended</th><th>Tool calls</th><th>Answered by</th><th>Tokens</th><th>Cost</th></tr></thead><tbody>${body}</tbody></table>` : '<p class="empty">No turn has ended yet.</p>'}`;
}

async function timelineOf(deps: ApiContext, job: Job, turns: readonly JobTurn[]): Promise<TimelineEntry[]> {
  const [events, calls, webhooks, attempts] = await Promise.all([
    listJobEvents(deps.db, job.id),
    listProviderCallsForJob(deps.db, job.id),
    listWebhooksForJob(deps.db, job),
    listCallbackAttemptsForJob(deps.db, job.id),
  ]);
  const json = (x: unknown) => (x && typeof x === 'object' && Object.keys(x).length ? `<pre>${esc(JSON.stringify(x))}</pre>` : '');
  const entries: TimelineEntry[] = [
    ...events.map((e) => ({
      at: e.at,
      kind: 'state' as const,
      what: `${e.fromStatus ? `${statusBadge(e.fromStatus)} → ` : ''}${statusBadge(e.toStatus)} <span class="muted">by</span> ${esc(e.source)}`,
      detail: json(e.details),
    })),
    ...calls.map((c) => ({
      at: c.at,
      kind: 'provider' as const,
      what: `${esc(c.operation)} → <b>${esc(c.statusCode ?? c.error)}</b> <span class="muted">in ${esc(c.latencyMs)} ms</span>`,
      detail: `<span class="mono">${c.requestId ? `request ${esc(c.requestId)}` : ''}${c.responseId ? ` · ${esc(c.responseId)}` : ''}</span>`,
    })),
    ...webhooks.map((w) => ({
      at: w.receivedAt,
      kind: 'webhook' as const,
      what: `${esc(w.eventType)} <span class="muted">received, now</span> ${esc(w.status)}`,
      detail: `<span class="mono">${esc(w.webhookId)}</span>${w.note ? ` · ${esc(w.note)}` : ''}${w.processedAt ? ` <span class="muted">(settled ${esc(time(w.processedAt))})</span>` : ''}`,
    })),
    ...attempts.map((a) => ({
      at: a.at,
      kind: 'callback' as const,
      what: `attempt ${esc(a.attempt)} → <b>${esc(a.statusCode ?? a.error ?? 'no answer')}</b> <span class="muted">in ${esc(a.latencyMs)} ms</span>`,
      detail: `<span class="mono">${esc(a.url)}</span>${a.error && a.statusCode ? ` · ${esc(a.error)}` : ''}${a.nextAttemptAt ? ` <span class="muted">next attempt ${esc(time(a.nextAttemptAt))}</span>` : ''}`,
    })),
    ...turnEntries(turns),
  ];
  return entries.sort((a, b) => a.at.getTime() - b.at.getTime());
}

function usageRows(job: Job): string {
  const u = job.usage;
  if (!u) return '<p class="empty">No usage recorded (the job has not finished at the provider).</p>';
  const cached = u.input_tokens_details?.cached_tokens ?? 0;
  const rows: [string, string][] = [
    ['Input tokens', `${u.input_tokens} <span class="muted">(${cached} cached${u.input_tokens ? `, ${((cached / u.input_tokens) * 100).toFixed(1)} %` : ''})</span>`],
    ['Output tokens', `${u.output_tokens} <span class="muted">(${u.output_tokens_details?.reasoning_tokens ?? 0} reasoning)</span>`],
    ['Total tokens', String(u.total_tokens)],
    ['Estimated cost', job.costUsd === null ? '<span class="muted">no price for this model</span>' : esc(usd(job.costUsd))],
  ];
  return `<dl>${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>`;
}

/**
 * A fallback chain's attempts, one row each (core fallbacks.ts): shown when the job has
 * fallbacks or made more than one attempt. `attempts` holds the attempts that ended; the one
 * still running is not in it yet.
 */
function attemptRows(job: Job): string {
  if (job.attempts.length <= 1 && !job.fallbacks?.length) return '';
  const body = job.attempts
    .map(
      (a) =>
        `<tr data-attempt="${esc(a.attempt)}"><td>${esc(a.attempt)}</td><td>${esc(a.model)}</td><td>${statusBadge(a.status)}</td><td>${a.error ? `<span class="error mono" title="${esc(a.error.message)}">${esc(a.error.code)}</span>` : '—'}</td><td class="mono">${esc(a.response_id ?? '—')}</td><td>${esc(a.usage?.total_tokens ?? '—')}</td></tr>`,
    )
    .join('');
  const running = !isTerminal(job.status) && !job.attempts.some((a) => a.attempt === job.attempt) ? `<p class="hint">Attempt ${esc(job.attempt)} has not ended yet.</p>` : '';
  return `<h2>Attempts <span class="muted">(attempt ${esc(job.attempt)} of at most ${esc((job.fallbacks?.length ?? 0) + 1)})</span></h2>
${body ? `<table id="attempts"><thead><tr><th>Attempt</th><th>Model</th><th>Status</th><th>Error</th><th>Response</th><th>Tokens</th></tr></thead><tbody>${body}</tbody></table>` : '<p class="empty">No attempt has ended yet.</p>'}${running}`;
}

/** The model asked for, and the one that answered when a fallback attempt did. */
function answeredBy(job: Job): string {
  const last = job.attempts.at(-1);
  return last && last.model !== job.model && last.attempt === job.attempt
    ? `${esc(job.model)} <span class="muted">(answered by ${esc(last.model)}, attempt ${esc(last.attempt)})</span>`
    : esc(job.model);
}

/** Deliveries that "Resend callbacks" sends again: dead letters and cancelled ones (a succeeded delivery is never sent again). */
const RESENDABLE = new Set(['failed', 'cancelled']);
/** The most deliveries of one job an admin page lists (and resends): a job has a handful, one per event and endpoint. */
const MAX_JOB_DELIVERIES = 200;

const canCancel = (job: Job) => !isTerminal(job.status) && job.status !== 'cancelling';
const canRerun = (job: Job) => isTerminal(job.status) && job.erasedAt === null;

function actionForm(job: Job, action: string, label: string, className: string, hint: string): string {
  return `<form class="inline" method="post" action="/admin/jobs/${esc(job.id)}/${action}"><button class="${className}" type="submit" title="${esc(hint)}">${esc(label)}</button></form>`;
}

/** The actions that apply to the job now (none in read-only mode). */
function jobActions(job: Job, deliveries: readonly CallbackDelivery[], readOnly: boolean): string {
  if (readOnly) return '';
  const resendable = deliveries.filter((d) => RESENDABLE.has(d.status)).length;
  const forms = [
    canCancel(job) ? actionForm(job, 'cancel', 'Cancel job', 'danger', 'Cancel it as its tenant would') : '',
    canRerun(job) ? actionForm(job, 'rerun', 'Re-run as a new job', 'secondary', 'The same request, as a new job of the same tenant') : '',
    resendable ? actionForm(job, 'resend-callbacks', `Resend callbacks (${resendable})`, 'secondary', 'Send its failed or cancelled deliveries again') : '',
  ].filter(Boolean);
  return forms.length ? `<div class="job-actions" role="group" aria-label="Actions">${forms.join('')}</div>` : '';
}

function deliveryRows(deliveries: readonly CallbackDelivery[]): string {
  if (!deliveries.length) return '';
  const body = deliveries
    .map(
      (d) =>
        `<tr data-status="${esc(d.status)}"><td class="mono">${esc(d.id)}</td><td class="mono">${esc(d.url)}</td><td><span class="code ${d.status === 'succeeded' ? 'ok' : d.status === 'pending' ? '' : 'bad'}">${esc(d.status)}</span></td><td>${esc(d.attempts)}</td><td>${esc(d.lastStatusCode ?? d.lastError ?? '—')}</td><td class="mono">${esc(time(d.finishedAt))}</td></tr>`,
    )
    .join('');
  return `<h2>Callback deliveries</h2>
<table id="deliveries"><thead><tr><th>Delivery</th><th>URL</th><th>Status</th><th>Attempts</th><th>Last answer</th><th>Finished (UTC)</th></tr></thead><tbody>${body}</tbody></table>`;
}

/** A short-lived cookie carries what an action did to the page it redirects to (shown once). */
const FLASH_COOKIE = 'longhaul_admin_flash';
const FLASH_PATH = '/admin/jobs';
type Flash = { kind: 'cancel'; status: string } | { kind: 'rerun'; of: string } | { kind: 'resent'; count: number };

function setFlash(res: Response, req: Request, flash: Flash): void {
  const value = flash.kind === 'cancel' ? `cancel.${flash.status}` : flash.kind === 'rerun' ? `rerun.${flash.of}` : `resent.${flash.count}`;
  res.cookie(FLASH_COOKIE, value, { httpOnly: true, sameSite: 'strict', path: FLASH_PATH, secure: req.secure, maxAge: 60_000 });
}

/** The flash the request carries (cleared once read); anything malformed is ignored. */
function takeFlash(req: Request, res: Response): Flash | null {
  const raw = (req.headers.cookie ?? '')
    .split(';')
    .map((p) => p.trim())
    .find((p) => p.startsWith(`${FLASH_COOKIE}=`))
    ?.slice(FLASH_COOKIE.length + 1);
  if (raw === undefined) return null;
  res.clearCookie(FLASH_COOKIE, { httpOnly: true, sameSite: 'strict', path: FLASH_PATH, secure: req.secure });
  const m = /^(cancel|rerun|resent)\.([A-Za-z0-9_]{1,64})$/.exec(raw);
  if (!m) return null;
  if (m[1] === 'cancel' && (JOB_STATUSES as readonly string[]).includes(m[2]!)) return { kind: 'cancel', status: m[2]! };
  if (m[1] === 'rerun' && ids.job.safeParse(m[2]).success) return { kind: 'rerun', of: m[2]! };
  if (m[1] === 'resent' && /^\d+$/.test(m[2]!)) return { kind: 'resent', count: Number(m[2]) };
  return null;
}

function flashMessage(flash: Flash | null): string {
  if (!flash) return '';
  const text =
    flash.kind === 'cancel'
      ? flash.status === 'cancelled'
        ? 'Cancelled.'
        : `Cancel requested: the job is ${esc(flash.status)} until the provider confirms.`
      : flash.kind === 'rerun'
        ? `Created as a re-run of <a class="mono" href="/admin/jobs/${esc(flash.of)}">${esc(flash.of)}</a>.`
        : `${esc(flash.count)} deliver${flash.count === 1 ? 'y' : 'ies'} sent again.`;
  return `<p class="flash" role="status">${text}</p>`;
}

const ACTION_STYLE =
  '<style>.job-actions{display:flex;gap:.5rem;margin:-.4rem 0 1rem}button.secondary{font:500 .85rem/1.3 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#fff;color:#2456c9;border:1px solid #9db4e6;border-radius:4px;padding:.3rem .8rem;cursor:pointer}button.secondary:hover{background:#eef3fc}.flash{background:#e8f5ec;border:1px solid #b5dfc2;color:#176b30;border-radius:6px;padding:.5rem .8rem;margin:0 0 1rem}#deliveries td{white-space:nowrap}</style>';

interface JobPageParts {
  timeline: TimelineEntry[];
  turns: readonly JobTurn[];
  deliveries: readonly CallbackDelivery[];
  flash: Flash | null;
  readOnly: boolean;
}

function jobPage(job: Job, parts: JobPageParts): string {
  const { timeline, turns, deliveries, flash, readOnly } = parts;
  const facts: [string, string][] = [
    ['Status', statusBadge(job.status)],
    ['Tenant', `<a class="mono" href="/admin/jobs?tenant=${encodeURIComponent(job.tenantId)}">${esc(job.tenantId)}</a>`],
    ['Model', answeredBy(job)],
    ['Response', job.responseId ? `<span class="mono">${esc(job.responseId)}</span>` : '—'],
    ['Created', esc(time(job.createdAt))],
    ['Submitted', esc(time(job.submittedAt))],
    ['Started', esc(time(job.startedAt))],
    ['Finished', esc(time(job.finishedAt))],
    ['Deadline', esc(time(job.deadlineAt))],
    ['Provider creates / polls', `${job.submitAttempts} / ${job.polls}`],
    ['Metadata', metadataCell(job.metadata)],
    ['Callback URL', job.callbackUrl ? `<span class="mono">${esc(job.callbackUrl)}</span>` : '—'],
  ];
  if (job.runId)
    facts.push([
      'Pipeline run',
      `<a class="mono" href="/admin/runs/${encodeURIComponent(job.runId)}">${esc(job.runId)}</a> <span class="muted">step</span> ${esc(job.runStep ?? '?')}${job.runItem === null ? '' : ` <span class="muted" title="the element of a fan-out (0 for a plain step)">[${esc(job.runItem)}]</span>`}`,
    ]);
  if (job.batchId) facts.push(['Batch', `<a class="mono" href="/admin/batches/${encodeURIComponent(job.batchId)}">${esc(job.batchId)}</a>`]);
  const rerunOf = job.metadata.rerun_of;
  if (rerunOf && ids.job.safeParse(rerunOf).success) facts.push(['Re-run of', `<a class="mono" href="/admin/jobs/${esc(rerunOf)}">${esc(rerunOf)}</a>`]);
  if (job.previousJobId) facts.push(['Continues', `<a class="mono" href="/admin/jobs/${esc(job.previousJobId)}">${esc(job.previousJobId)}</a>`]);
  if (job.threadId && job.threadId !== job.id)
    facts.push(['Thread', `<a class="mono" href="/admin/jobs/${esc(job.threadId)}">${esc(job.threadId)}</a> <span class="muted">(first job)</span>`]);
  const conversation = typeof job.request.conversation === 'string' ? job.request.conversation : (job.request.conversation as { id?: string } | undefined)?.id;
  if (conversation) facts.push(['Conversation', `<span class="mono">${esc(conversation)}</span>`]);
  if (job.promptId) facts.push(['Prompt', `<span class="mono">${esc(job.promptId)}</span> version ${esc(String(job.promptVersion))}`]);
  if (job.estimatedInputTokens !== null) facts.push(['Estimated input tokens', String(job.estimatedInputTokens)]);
  if (job.error) facts.push(['Error', `<span class="error mono">${esc(job.error.code)}</span>: ${esc(job.error.message)}`]);
  if (job.incompleteDetails) facts.push(['Incomplete', esc(job.incompleteDetails.reason)]);
  const rows = timeline
    .map((e) => `<tr data-kind="${e.kind}"><td class="mono">${esc(time(e.at))}</td><td class="kind">${e.kind}</td><td>${e.what}</td><td>${e.detail}</td></tr>`)
    .join('');
  return `${ACTION_STYLE}<p><a href="/admin/jobs">← Search</a></p>
<h1>Job <span class="mono">${esc(job.id)}</span></h1>
${flashMessage(flash)}${jobActions(job, deliveries, readOnly)}
<dl>${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>
<h2>Usage and cost</h2>
${usageRows(job)}
${attemptRows(job)}
${turnRows(job, turns)}
${deliveryRows(deliveries)}
${job.reasoningSummary ? `<h2>Reasoning summary</h2>${job.reasoningSummary.map((p) => `<p class="summary">${esc(p.text)}</p>`).join('')}` : ''}
<h2>Timeline</h2>
<table id="timeline"><thead><tr><th>At (UTC)</th><th>Kind</th><th>What</th><th>Details</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** A refused action: a page for a browser's form post, the API's JSON error for a script. */
function refuse(req: Request, res: Response, error: LonghaulError, jobId: string): void {
  res.locals.logFields = { ...res.locals.logFields, error_code: error.code };
  if (req.accepts(['json', 'html']) !== 'html') throw error;
  res
    .status(error.status)
    .type('html')
    .send(
      layout({
        title: 'Not done',
        active: 'jobs',
        actor: adminActor(res),
        body: `<h1>Not done</h1><p class="error" role="alert">${esc(error.message)}</p><p><a href="/admin/jobs/${esc(jobId)}">← Job</a></p>`,
      }),
    );
}

export function adminJobsRouter(deps: ApiContext, options: { readOnly: boolean }): Router {
  const router = Router();

  router.get('/', async (req, res) => {
    const parsed = searchSchema.safeParse(req.query);
    const raw = req.query as Record<string, unknown>;
    let results = '';
    if (!parsed.success) {
      res.status(400);
      results = queryError(parsed.error);
    } else {
      const q = parsed.data;
      const { data, hasMore } = await searchJobs(deps.db, {
        tenantId: q.tenant,
        status: q.status,
        model: q.model,
        metadataKey: q.meta_key,
        metadataValue: q.meta_key ? q.meta_value : undefined,
        from: q.from,
        to: q.to,
        responseId: q.response_id,
        jobId: q.job_id,
        after: q.after,
        limit: PAGE_SIZE,
      });
      results = data.length
        ? `<div class="scroll"><table id="results"><thead><tr><th>Job</th><th>Status</th><th>Tenant</th><th>Model</th><th>Response</th><th>Created (UTC)</th><th>Finished (UTC)</th><th>Cost</th><th>Metadata</th></tr></thead><tbody>${data
            .map(
              (j) =>
                `<tr><td class="mono"><a href="/admin/jobs/${esc(j.id)}">${esc(j.id)}</a></td><td>${statusBadge(j.status)}</td><td class="mono">${esc(j.tenantId)}</td><td>${esc(j.model)}</td><td class="mono">${esc(j.responseId ?? '—')}</td><td class="mono">${esc(time(j.createdAt))}</td><td class="mono">${esc(time(j.finishedAt))}</td><td>${esc(usd(j.costUsd))}</td><td>${metadataCell(j.metadata)}</td></tr>`,
            )
            .join('')}</tbody></table></div>${hasMore ? olderPageLink('/admin/jobs', req, data.at(-1)!.id, 'Next page →') : ''}`
        : '<p class="empty">No job matches.</p>';
    }
    res
      .type('html')
      .send(
        layout({ title: 'Jobs', active: 'jobs', actor: adminActor(res), body: `<h1>Jobs</h1>${searchForm(raw, parsed.success ? parsed.data : null)}<h2>Results</h2>${results}` }),
      );
  });

  router.get('/:id', async (req, res) => {
    const job = ids.job.safeParse(req.params.id).success ? await getJob(deps.db, req.params.id) : null;
    if (!job) {
      res
        .status(404)
        .type('html')
        .send(
          layout({
            title: 'Not found',
            active: 'jobs',
            actor: adminActor(res),
            body: `<h1>No job <span class="mono">${esc(req.params.id)}</span></h1><p><a href="/admin/jobs">← Search</a></p>`,
          }),
        );
      return;
    }
    res.locals.logFields = { job_id: job.id, tenant_id: job.tenantId, response_id: job.responseId };
    const turns = job.maxTurns === null ? [] : await listJobTurns(deps.db, job.id);
    const [timeline, deliveries] = await Promise.all([timelineOf(deps, job, turns), deliveriesOf(deps, job)]);
    const flash = takeFlash(req, res);
    res
      .type('html')
      .send(layout({ title: job.id, active: 'jobs', actor: adminActor(res), body: jobPage(job, { timeline, turns, deliveries, flash, readOnly: options.readOnly }) }));
  });

  router.post('/:id/cancel', async (req, res) => {
    const id = req.params.id;
    if (options.readOnly) return refuse(req, res, new PermissionError('The admin UI is read-only (ADMIN_READ_ONLY): jobs cannot be cancelled here.', 'admin_read_only'), id);
    const job = ids.job.safeParse(id).success ? await getJob(deps.db, id) : null;
    if (!job) return refuse(req, res, new NotFoundError(`No job with id '${id}'.`, 'id'), id);
    res.locals.logFields = { job_id: job.id, tenant_id: job.tenantId, response_id: job.responseId };
    addAuditDetails(res, { tenant_id: job.tenantId, from: job.status });
    const result = await requestCancel(deps, req, job, { admin: adminActor(res) });
    if (!result.ok) {
      const finished = result.error.code === 'job_terminal';
      return refuse(
        req,
        res,
        new ConflictError(
          finished ? `Job ${job.id} has already finished (${result.job?.status}); it cannot be cancelled.` : result.error.message,
          finished ? 'job_already_finished' : result.error.code,
        ),
        id,
      );
    }
    addAuditDetails(res, { to: result.job.status });
    setFlash(res, req, { kind: 'cancel', status: result.job.status });
    res.redirect(303, `/admin/jobs/${encodeURIComponent(job.id)}`);
  });

  router.post('/:id/rerun', async (req, res) => {
    const found = await actionTarget(deps, req, res, options, 're-run');
    if (!found) return;
    const { job } = found;
    addAuditDetails(res, { job_action: 'rerun', tenant_id: job.tenantId, status: job.status });
    if (!canRerun(job))
      return refuse(
        req,
        res,
        job.erasedAt
          ? new ConflictError(`Job ${job.id}'s content was erased; there is no request to run again.`, 'job_erased')
          : new ConflictError(`Job ${job.id} has not finished (${job.status}); cancel it first, or wait for it.`, 'job_not_finished'),
        job.id,
      );
    const body = rerunRequest(job);
    if (!body.ok) return refuse(req, res, body.error, job.id);
    let created: Job;
    try {
      created = (await submitJob(deps, req, { tenantId: job.tenantId, body: body.request, rawBody: body.request, toolLoop: job.maxTurns !== null })).job;
    } catch (err) {
      if (err instanceof LonghaulError && err.status < 500) return refuse(req, res, err, job.id);
      throw err;
    }
    addAuditDetails(res, { new_job_id: created.id });
    req.log.info({ job_id: job.id, new_job_id: created.id, tenant_id: job.tenantId, code: 'admin_job_rerun' }, 'job re-run by an admin');
    setFlash(res, req, { kind: 'rerun', of: job.id });
    res.redirect(303, `/admin/jobs/${encodeURIComponent(created.id)}`);
  });

  router.post('/:id/resend-callbacks', async (req, res) => {
    const found = await actionTarget(deps, req, res, options, 'resend callbacks of');
    if (!found) return;
    const { job } = found;
    addAuditDetails(res, { job_action: 'resend_callbacks', tenant_id: job.tenantId });
    const resendable = (await deliveriesOf(deps, job)).filter((d) => RESENDABLE.has(d.status));
    if (!resendable.length) return refuse(req, res, new ConflictError(`Job ${job.id} has no failed or cancelled callback delivery to send again.`, 'nothing_to_resend'), job.id);
    const resent: string[] = [];
    for (const d of resendable) {
      const result = await retryDelivery(deps.db, job.tenantId, d.id, deps.clock());
      if (result.ok && result.changed) resent.push(d.id);
    }
    await dispatchDeliveries(deps, req, resent);
    addAuditDetails(res, { deliveries: resent });
    req.log.info({ job_id: job.id, tenant_id: job.tenantId, deliveries: resent.length, code: 'admin_callbacks_resent' }, 'callbacks resent by an admin');
    setFlash(res, req, { kind: 'resent', count: resent.length });
    res.redirect(303, `/admin/jobs/${encodeURIComponent(job.id)}`);
  });

  return router;
}

async function deliveriesOf(deps: ApiContext, job: Job): Promise<CallbackDelivery[]> {
  return (await listDeliveries(deps.db, { tenantId: job.tenantId, jobId: job.id, limit: MAX_JOB_DELIVERIES })).data;
}

/** The job an action names, or a refusal already answered (read-only mode, no such job). */
async function actionTarget(deps: ApiContext, req: Request, res: Response, options: { readOnly: boolean }, verb: string): Promise<{ job: Job } | null> {
  const id = String(req.params.id);
  if (options.readOnly) {
    refuse(req, res, new PermissionError(`The admin UI is read-only (ADMIN_READ_ONLY): it cannot ${verb} jobs.`, 'admin_read_only'), id);
    return null;
  }
  const job = ids.job.safeParse(id).success ? await getJob(deps.db, id) : null;
  if (!job) {
    refuse(req, res, new NotFoundError(`No job with id '${id}'.`, 'id'), id);
    return null;
  }
  res.locals.logFields = { job_id: job.id, tenant_id: job.tenantId, response_id: job.responseId };
  return { job };
}

/**
 * A finished job's request as `POST /v1/jobs` takes it: the stored provider parameters and
 * Longhaul's own fields, `rerun_of` added to its metadata and the response cache off. Checked by
 * the same schema as the API's body, so what no longer validates is refused, not half sent.
 */
export function rerunRequest(job: Job): { ok: true; request: JobRequest } | { ok: false; error: ValidationError } {
  const { metadata: _m, previous_response_id, ...params } = job.request as Record<string, unknown> & { previous_response_id?: unknown };
  const { [JOB_ID_METADATA_KEY]: _id, ...metadata } = job.metadata;
  const body: Record<string, unknown> = {
    ...params,
    model: job.model,
    metadata: { ...metadata, rerun_of: job.id },
    cache: false,
    ...(job.previousJobId ? { previous_job_id: job.previousJobId } : previous_response_id === undefined ? {} : { previous_response_id }),
    ...(job.callbackUrl ? { callback_url: job.callbackUrl } : {}),
    ...(job.expectedDurationMs ? { expected_duration_seconds: job.expectedDurationMs / 1000 } : {}),
    ...(job.maxTurns === null ? {} : { max_turns: job.maxTurns }),
    ...(job.toolExecutorUrl ? { tool_executor: { url: job.toolExecutorUrl } } : {}),
    ...(job.fallbacks?.length ? { fallbacks: job.fallbacks } : {}),
    ...(job.validation ? { validate: job.validation } : {}),
    ...(job.processing === 'batch' ? { processing: 'batch' } : {}),
    ...(job.flexFallback ? { flex_fallback: job.flexFallback } : {}),
  };
  const parsed = jobRequestSchema.safeParse(body);
  if (parsed.success) return { ok: true, request: parsed.data };
  const issue = parsed.error.issues[0]!;
  return {
    ok: false,
    error: new ValidationError(
      `Job ${job.id}'s request cannot be submitted again: ${issue.path.join('.') || 'body'}: ${issue.message}.`,
      issue.path.join('.') || null,
      'rerun_invalid',
    ),
  };
}

/** A delivery made pending again gets its work item now; without Redis the sweeper dispatches it (as for the tenant's retry). */
async function dispatchDeliveries(deps: ApiContext, req: Request, deliveryIds: readonly string[]): Promise<void> {
  for (const deliveryId of deliveryIds) {
    try {
      await deps.queues.add('deliver', { deliveryId });
    } catch (err) {
      req.log.warn({ err, delivery_id: deliveryId, code: 'dispatch_deferred' }, 'could not reach Redis; the sweeper will dispatch the delivery');
      return;
    }
  }
}
