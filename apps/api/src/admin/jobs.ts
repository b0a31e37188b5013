/**
 * /admin/jobs: what bull-board cannot do. Search jobs in Postgres (tenant, status, model,
 * metadata key/value, creation time range, response id, job id) and open one job's whole
 * timeline: every state change with its source, every provider call, every OpenAI webhook
 * received about it and every callback attempt, with its usage and estimated cost. A job that
 * has not finished can be cancelled from its page (as its tenant would: the same transition and
 * what follows it), unless the admin UI is read-only; the audit log names who did it.
 */
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { ConflictError, JOB_STATUSES, type LonghaulError, NotFoundError, PermissionError, isTerminal } from '@longhaul/core';
import { type Job, type JobTurn, getJob, listCallbackAttemptsForJob, listJobEvents, listJobTurns, listProviderCallsForJob, listWebhooksForJob, searchJobs } from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import { requestCancel } from '../job-cancellation.ts';
import { ids, storableText } from '../request-input.ts';
import { addAuditDetails, adminActor } from './audit.ts';
import { esc, layout, statusBadge, time, usd } from './html.ts';

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

function nextPageLink(req: Request, lastId: string): string {
  const params = new URLSearchParams();
  for (const [k, val] of Object.entries(req.query)) if (typeof val === 'string' && val !== '' && k !== 'after') params.set(k, val);
  params.set('after', lastId);
  return `<p class="pager"><a href="/admin/jobs?${esc(params.toString())}">Next page →</a></p>`;
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

function cancelForm(job: Job, readOnly: boolean): string {
  if (readOnly || isTerminal(job.status) || job.status === 'cancelling') return '';
  return `<form class="inline" method="post" action="/admin/jobs/${esc(job.id)}/cancel"><button class="danger" type="submit">Cancel job</button></form>`;
}

function jobPage(job: Job, timeline: TimelineEntry[], turns: readonly JobTurn[], readOnly: boolean): string {
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
  return `<p><a href="/admin/jobs">← Search</a></p>
<h1>Job <span class="mono">${esc(job.id)}</span> ${cancelForm(job, readOnly)}</h1>
<dl>${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>
<h2>Usage and cost</h2>
${usageRows(job)}
${attemptRows(job)}
${turnRows(job, turns)}
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
      results = `<p class="error" role="alert">${esc(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '))}</p>`;
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
            .join('')}</tbody></table></div>${hasMore ? nextPageLink(req, data.at(-1)!.id) : ''}`
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
    res.type('html').send(layout({ title: job.id, active: 'jobs', actor: adminActor(res), body: jobPage(job, await timelineOf(deps, job, turns), turns, options.readOnly) }));
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
    res.redirect(303, `/admin/jobs/${encodeURIComponent(job.id)}`);
  });

  return router;
}
