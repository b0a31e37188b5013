/**
 * /admin/batches: Batch API batches across tenants (issue 17), newest first, 50 a page, filtered
 * by tenant and status; and one batch's page: its facts, the provider's request counts, its
 * error, its events (batch_events) in order, and its jobs linked to their pages under
 * /admin/jobs. Read-only: a batch is cancelled by cancelling its jobs.
 *
 * The listing reads `listBatchesForTenant` (tenant or every tenant, keyset-paged on
 * (created_at, id)), which has no status condition: a status filter reads pages of it and keeps
 * the matches, up to STATUS_SCAN_LIMIT batches a page. The "Older →" cursor is the last batch
 * read, matching or not, so the next page goes on from there and paging stays exact.
 */
import { Router } from 'express';
import { z } from 'zod';
import { BATCH_STATUSES, type BatchStatus } from '@longhaul/core';
import { type Batch, type BatchJobRow, batchJobCounts, getBatch, listBatchEvents, listBatchJobsPage, listBatchesForTenant } from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import { ids } from '../request-input.ts';
import { batchIdSchema } from '../routes/batches.ts';
import { adminActor } from './audit.ts';
import { esc, layout, statusBadge, time, usd } from './html.ts';
import { type FilterField, filterForm, olderPageLink, sendNotFound, queryError } from './list-page.ts';

const BATCH_FILTERS: FilterField[] = [
  { kind: 'select', name: 'status', label: 'Status', options: BATCH_STATUSES },
  { kind: 'text', name: 'tenant', label: 'Tenant id', placeholder: 'ten_…' },
];

const PAGE_SIZE = 50;
/** With a status filter, how many batches one page reads at most looking for PAGE_SIZE matches. */
const STATUS_SCAN_LIMIT = 1000;
const SCAN_CHUNK = 200;
/** A batch holds up to 50,000 jobs: its page lists this many. */
const JOBS_SHOWN = 500;

const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : typeof v === 'string' ? v.trim() : v);
const id = (schema: z.ZodString) => z.preprocess(blankToUndefined, schema.optional());

const searchSchema = z.object({
  tenant: id(ids.tenant),
  status: z.preprocess(blankToUndefined, z.enum(BATCH_STATUSES).optional()),
  after: id(batchIdSchema),
});

type BatchEventRow = Awaited<ReturnType<typeof listBatchEvents>>[number];

/** How long a batch took, from its collection to the provider's end (what its jobs waited, less reconciling). */
function batchDuration(createdAt: Date, finishedAt: Date | null): string {
  if (!finishedAt) return '—';
  const ms = Math.max(0, finishedAt.getTime() - createdAt.getTime());
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return s < 3600 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** `12 jobs` then each status's count, e.g. `completed 11 · failed 1`. */
function jobsCell(jobCount: number, counts: Record<string, number>): string {
  const parts = Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([status, n]) => `${statusBadge(status)} ${esc(n)}`);
  return `${esc(jobCount)}${parts.length ? ` <span class="muted">·</span> ${parts.join(' ')}` : ''}`;
}

/** Indented JSON in a `<pre>`, escaped; `—` for nothing. */
function jsonBlock(value: unknown, elementId: string): string {
  if (value === null || value === undefined) return `<p class="empty" id="${elementId}">—</p>`;
  return `<pre class="mono" id="${elementId}">${esc(JSON.stringify(value, null, 2))}</pre>`;
}

function batchRow(b: Batch, counts: Record<string, number>): string {
  return `<tr data-id="${esc(b.id)}" data-status="${esc(b.status)}"><td class="mono"><a href="/admin/batches/${encodeURIComponent(b.id)}">${esc(b.id)}</a></td><td class="mono"><a href="/admin/batches?tenant=${encodeURIComponent(b.tenantId)}">${esc(b.tenantId)}</a></td><td>${esc(b.model)}</td><td>${statusBadge(b.status)}</td><td>${jobsCell(b.jobCount, counts)}</td><td class="mono">${esc(b.providerBatchId ?? '—')}</td><td class="mono">${esc(time(b.createdAt))}</td><td>${esc(batchDuration(b.createdAt, b.finishedAt))}</td></tr>`;
}

/**
 * One page of the listing: up to PAGE_SIZE batches after the cursor, and the cursor of the next
 * page if there may be one (the last batch read: with a status filter, not always the last shown).
 */
async function searchBatches(
  deps: ApiContext,
  q: { tenant?: string; status?: BatchStatus; after?: string },
): Promise<{ data: Batch[]; nextAfter: string | null; scanned: number } | null> {
  let before: { createdAt: Date; id: string } | undefined;
  if (q.after) {
    const cursor = await getBatch(deps.db, q.after);
    if (!cursor) return null;
    before = { createdAt: cursor.createdAt, id: cursor.id };
  }
  if (!q.status) {
    const rows = await listBatchesForTenant(deps.db, q.tenant ?? null, { limit: PAGE_SIZE + 1, before });
    const data = rows.slice(0, PAGE_SIZE);
    return { data, nextAfter: rows.length > PAGE_SIZE ? data.at(-1)!.id : null, scanned: data.length };
  }
  const data: Batch[] = [];
  let scanned = 0;
  for (;;) {
    const rows = await listBatchesForTenant(deps.db, q.tenant ?? null, { limit: SCAN_CHUNK, before });
    for (const b of rows) {
      scanned++;
      before = { createdAt: b.createdAt, id: b.id };
      if (b.status === q.status) data.push(b);
      if (data.length === PAGE_SIZE || scanned === STATUS_SCAN_LIMIT) return { data, nextAfter: b.id, scanned };
    }
    if (rows.length < SCAN_CHUNK) return { data, nextAfter: null, scanned };
  }
}

function eventRows(events: readonly BatchEventRow[]): string {
  return events
    .map((e) => {
      const what = e.fromStatus ? `${statusBadge(e.fromStatus)} → ${statusBadge(e.toStatus)}` : `collected ${statusBadge(e.toStatus)}`;
      const details = Object.keys(e.details ?? {}).length ? `<pre class="mono">${esc(JSON.stringify(e.details))}</pre>` : '';
      return `<tr data-event="${esc(e.id)}"><td class="mono">${esc(time(e.at))}</td><td>${what}</td><td>${details}</td></tr>`;
    })
    .join('');
}

function jobRows(jobs: readonly BatchJobRow[]): string {
  return jobs
    .map(
      (j) =>
        `<tr data-job="${esc(j.id)}"><td class="mono"><a href="/admin/jobs/${encodeURIComponent(j.id)}">${esc(j.id)}</a></td><td>${statusBadge(j.status)}</td><td>${esc(j.model)}</td><td>${esc(usd(j.costUsd))}</td></tr>`,
    )
    .join('');
}

function batchPage(b: Batch, counts: Record<string, number>, events: readonly BatchEventRow[], jobs: readonly BatchJobRow[]): string {
  const fileId = (v: string | null) => (v ? `<span class="mono">${esc(v)}</span>` : '—');
  const facts: [string, string][] = [
    ['Status', statusBadge(b.status)],
    ['Tenant', `<a class="mono" href="/admin/batches?tenant=${encodeURIComponent(b.tenantId)}">${esc(b.tenantId)}</a>`],
    ['Model', esc(b.model)],
    ['Provider batch', fileId(b.providerBatchId)],
    ['Jobs', jobsCell(b.jobCount, counts)],
    ['Bytes', esc(b.bytes)],
    ['Input file', fileId(b.inputFileId)],
    ['Output file', fileId(b.outputFileId)],
    ['Error file', fileId(b.errorFileId)],
    ['Create attempts', esc(b.createAttempts)],
    ['Created', esc(time(b.createdAt))],
    ['Submitted', esc(time(b.submittedAt))],
    ['Finished', esc(time(b.finishedAt))],
    ['Reconciled', esc(time(b.reconciledAt))],
    ['Duration', esc(batchDuration(b.createdAt, b.finishedAt))],
  ];
  // A job an expired batch sent again belongs to its new batch: fewer jobs than job_count is not a cut.
  const jobsNote = jobs.length === JOBS_SHOWN ? `<p class="hint">The first ${JOBS_SHOWN} jobs, oldest first.</p>` : '';
  return `<p><a href="/admin/batches">← Batches</a></p>
<h1>Batch <span class="mono">${esc(b.id)}</span></h1>
<dl>${facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join('')}</dl>
<h2>Request counts <span class="muted">(the provider's, as last read)</span></h2>
${jsonBlock(b.requestCounts, 'request-counts')}
<h2>Error</h2>
${jsonBlock(b.error, 'error')}
<h2>Events</h2>
${events.length ? `<table id="events"><thead><tr><th>At (UTC)</th><th>Change</th><th>Details</th></tr></thead><tbody>${eventRows(events)}</tbody></table>` : '<p class="empty">No event.</p>'}
<h2>Jobs</h2>
${jobsNote}${jobs.length ? `<div class="scroll"><table id="jobs"><thead><tr><th>Job</th><th>Status</th><th>Model</th><th>Cost</th></tr></thead><tbody>${jobRows(jobs)}</tbody></table></div>` : '<p class="empty">No job.</p>'}`;
}

export function adminBatchesRouter(deps: ApiContext): Router {
  const router = Router();

  router.get('/', async (req, res) => {
    const raw = req.query as Record<string, unknown>;
    const parsed = searchSchema.safeParse(raw);
    let results: string;
    if (!parsed.success) {
      res.status(400);
      results = queryError(parsed.error);
    } else {
      const found = await searchBatches(deps, parsed.data);
      const data = found?.data ?? [];
      const counts = await Promise.all(data.map((b) => batchJobCounts(deps.db, b.id)));
      const scanNote =
        parsed.data.status && found?.nextAfter && data.length < PAGE_SIZE
          ? `<p class="hint">${esc(data.length)} matches among the ${esc(found.scanned)} batches read for this page.</p>`
          : '';
      const table = data.length
        ? `<div class="scroll"><table id="batches"><thead><tr><th>Batch</th><th>Tenant</th><th>Model</th><th>Status</th><th>Jobs</th><th>Provider batch</th><th>Created (UTC)</th><th>Duration</th></tr></thead><tbody>${data
            .map((b, i) => batchRow(b, counts[i]!))
            .join('')}</tbody></table></div>`
        : '<p class="empty">No batch matches.</p>';
      results = `${scanNote}${table}${found?.nextAfter ? olderPageLink('/admin/batches', req, found.nextAfter) : ''}`;
    }
    res.type('html').send(
      layout({
        title: 'Batches',
        active: 'batches',
        actor: adminActor(res),
        body: `<h1>Batches</h1>${filterForm('/admin/batches', BATCH_FILTERS, raw)}<h2>Newest first</h2>${results}`,
      }),
    );
  });

  router.get('/:id', async (req, res) => {
    const batch = batchIdSchema.safeParse(req.params.id).success ? await getBatch(deps.db, req.params.id) : null;
    if (!batch) {
      sendNotFound(res, { active: 'batches', what: 'batch', id: req.params.id, back: { href: '/admin/batches', label: 'Batches' } });
      return;
    }
    res.locals.logFields = { batch_id: batch.id, tenant_id: batch.tenantId };
    const [counts, events, jobs] = await Promise.all([batchJobCounts(deps.db, batch.id), listBatchEvents(deps.db, batch.id), listBatchJobsPage(deps.db, batch.id, JOBS_SHOWN)]);
    res.type('html').send(layout({ title: batch.id, active: 'batches', actor: adminActor(res), body: batchPage(batch, counts, events, jobs) }));
  });

  return router;
}
