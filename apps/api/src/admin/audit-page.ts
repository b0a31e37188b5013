/**
 * /admin/audit: the admin audit log (audit.ts), newest first, 50 a page, filtered by actor and
 * action. Each actor links to their own actions, a cancelled job to its page.
 */
import { Router } from 'express';
import { z } from 'zod';
import { type AdminAction, listAdminActions } from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import { storableText } from '../request-input.ts';
import { ADMIN_ACTION_NAMES, adminActor } from './audit.ts';
import { esc, layout, time } from './html.ts';
import { queryError } from './list-page.ts';

const PAGE_SIZE = 50;

const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : typeof v === 'string' ? v.trim() : v);
const querySchema = z.object({
  actor: z.preprocess(blankToUndefined, storableText(z.string().max(128)).optional()),
  action: z.preprocess(blankToUndefined, z.enum(ADMIN_ACTION_NAMES as [string, ...string[]]).optional()),
  after: z.preprocess(blankToUndefined, z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional()),
});

function filterForm(raw: Record<string, unknown>): string {
  const actor = esc(typeof raw.actor === 'string' ? raw.actor : '');
  const options = ['', ...ADMIN_ACTION_NAMES].map((a) => `<option value="${esc(a)}"${raw.action === a ? ' selected' : ''}>${esc(a || 'any')}</option>`).join('');
  return `<form class="search" method="get" action="/admin/audit" role="search">
  <label>Actor<input name="actor" value="${actor}" placeholder="alice"></label>
  <label>Action<select name="action">${options}</select></label>
  <div class="actions"><button class="primary" type="submit">Filter</button><a href="/admin/audit">Clear</a></div>
</form>`;
}

function statusCell(code: number | null): string {
  if (code === null) return '<span class="code" title="the outcome was never recorded">—</span>';
  return `<span class="code ${code < 400 ? 'ok' : 'bad'}">${esc(code)}</span>`;
}

function targetCell(row: AdminAction): string {
  if (!row.target) return '<span class="muted">—</span>';
  if (row.action === 'job.cancel') return `<a class="mono" href="/admin/jobs/${encodeURIComponent(row.target)}">${esc(row.target)}</a>`;
  return `<span class="mono">${esc(row.target)}</span>`;
}

function detailsCell(details: Record<string, unknown>): string {
  // Sorted: Postgres keeps jsonb keys in an order of its own (shortest first).
  const entries = Object.entries(details ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return '';
  return entries.map(([k, v]) => `<span class="mono">${esc(k)}=${esc(typeof v === 'string' ? v : JSON.stringify(v))}</span>`).join(' ');
}

function row(r: AdminAction): string {
  const actorLink = `<a href="/admin/audit?actor=${encodeURIComponent(r.actor)}">${esc(r.actor)}</a>`;
  return `<tr data-id="${esc(r.id)}" data-actor="${esc(r.actor)}" data-action="${esc(r.action)}" data-target="${esc(r.target ?? '')}" data-status="${esc(r.statusCode ?? '')}">
<td class="mono">${esc(time(r.at))}</td><td>${actorLink}</td><td class="mono">${esc(r.action)}</td><td>${targetCell(r)}</td><td class="mono">${esc(r.address ?? '—')}</td><td>${statusCell(r.statusCode)}</td><td>${detailsCell(r.details)}</td></tr>`;
}

export function auditPageRouter(deps: ApiContext): Router {
  const router = Router();
  router.get('/', async (req, res) => {
    const raw = req.query as Record<string, unknown>;
    const parsed = querySchema.safeParse(raw);
    let results: string;
    if (!parsed.success) {
      res.status(400);
      results = queryError(parsed.error);
    } else {
      const { actor, action, after } = parsed.data;
      const { data, hasMore } = await listAdminActions(deps.db, { actor, action, after, limit: PAGE_SIZE });
      const params = new URLSearchParams();
      if (actor) params.set('actor', actor);
      if (action) params.set('action', action);
      if (hasMore) params.set('after', String(data.at(-1)!.id));
      results = data.length
        ? `<div class="scroll"><table id="audit"><thead><tr><th>At (UTC)</th><th>Actor</th><th>Action</th><th>Target</th><th>Address</th><th>Status</th><th>Details</th></tr></thead><tbody>${data
            .map(row)
            .join('')}</tbody></table></div>${hasMore ? `<p class="pager"><a rel="next" href="/admin/audit?${esc(params.toString())}">Older →</a></p>` : ''}`
        : '<p class="empty">No admin action matches.</p>';
    }
    res.type('html').send(layout({ title: 'Audit log', active: 'audit', actor: adminActor(res), body: `<h1>Audit log</h1>${filterForm(raw)}<h2>Newest first</h2>${results}` }));
  });
  return router;
}
