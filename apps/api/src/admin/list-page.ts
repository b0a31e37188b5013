/**
 * What the admin list and detail pages share (runs, batches, evals, rollouts, jobs): the filter
 * form over query parameters, what a bad query says, the keyset pager's link that keeps the
 * filters, and the 404 page naming what was not found.
 */
import type { Request, Response } from 'express';
import type { z } from 'zod';
import { adminActor } from './audit.ts';
import { esc, layout } from './html.ts';

type Page = Parameters<typeof layout>[0]['active'];

export type FilterField = { kind: 'select'; name: string; label: string; options: readonly string[] } | { kind: 'text'; name: string; label: string; placeholder: string };

/** A GET form to `action` with `fields`, filled from the query `raw`; "Clear" goes back to `action`. */
export function filterForm(action: string, fields: readonly FilterField[], raw: Record<string, unknown>): string {
  const value = (name: string) => (typeof raw[name] === 'string' ? raw[name] : '');
  const controls = fields.map((f) => {
    if (f.kind === 'text') return `<label>${esc(f.label)}<input name="${esc(f.name)}" value="${esc(value(f.name))}" placeholder="${esc(f.placeholder)}"></label>`;
    const options = ['', ...f.options].map((s) => `<option value="${esc(s)}"${value(f.name) === s ? ' selected' : ''}>${esc(s || 'any')}</option>`).join('');
    return `<label>${esc(f.label)}<select name="${esc(f.name)}">${options}</select></label>`;
  });
  return `<form class="search" method="get" action="${esc(action)}" role="search">
  ${controls.join('\n  ')}
  <div class="actions"><button class="primary" type="submit">Filter</button><a href="${esc(action)}">Clear</a></div>
</form>`;
}

/** A refused query, shown above the (empty) results: every issue with its field. */
export function queryError(error: z.ZodError): string {
  return `<p class="error" role="alert">${esc(error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '))}</p>`;
}

/** The link to the next (older) page: the same filters, `after` the last row's id. */
export function olderPageLink(base: string, req: Request, lastId: string, label = 'Older →'): string {
  const params = new URLSearchParams();
  for (const [k, val] of Object.entries(req.query)) if (typeof val === 'string' && val !== '' && k !== 'after') params.set(k, val);
  params.set('after', lastId);
  return `<p class="pager"><a rel="next" href="${esc(base)}?${esc(params.toString())}">${esc(label)}</a></p>`;
}

/** A 404 page: "No <what> <id>" with a link back to the list. */
export function sendNotFound(res: Response, opts: { active: Page; what: string; id: string; back: { href: string; label: string } }): void {
  res
    .status(404)
    .type('html')
    .send(
      layout({
        title: 'Not found',
        active: opts.active,
        actor: adminActor(res),
        body: `<h1>No ${esc(opts.what)} <span class="mono">${esc(opts.id)}</span></h1><p><a href="${esc(opts.back.href)}">← ${esc(opts.back.label)}</a></p>`,
      }),
    );
}
