/**
 * bull-board at /admin/queues for every queue of the catalog: job counts, retry, promote, clean
 * (hidden in read-only mode). Each work item links to its Longhaul job's admin page.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { AppViewRoute } from '@bull-board/api/typings/app';
import { ExpressAdapter } from '@bull-board/express';
import type { RequestHandler, Router } from 'express';
import { QUEUE_KEYS, type Queues } from '@longhaul/queue';

export const BOARD_PATH = '/admin/queues';

/** Stylesheet links to another origin (bull-board's page asks Google Fonts for its typeface). */
const EXTERNAL_STYLESHEET = /<link\b[^>]*href="https?:\/\/[^"]*"[^>]*>/g;

/**
 * The board's entry page without links to other origins: the admin UI must work with no
 * internet access, and the page falls back to system fonts. Only the rendering of the one entry
 * page differs from ExpressAdapter's; assets and API are bull-board's own.
 */
class OfflineExpressAdapter extends ExpressAdapter {
  override setEntryRoute(routeDef: AppViewRoute): this {
    const handler: RequestHandler = (_req, res, next) => {
      const { name, params } = routeDef.handler({ basePath: this.basePath, uiConfig: this.uiConfig });
      res.render(name, params, (err: Error | null, html?: string) => (err ? next(err) : res.type('html').send(html!.replace(EXTERNAL_STYLESHEET, ''))));
    };
    for (const route of Array.isArray(routeDef.route) ? routeDef.route : [routeDef.route]) this.app[routeDef.method](route, handler);
    return this;
  }
}

export function queueBoardRouter(queues: Queues, options: { readOnly: boolean }): Router {
  const serverAdapter = new OfflineExpressAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  createBullBoard({
    queues: QUEUE_KEYS.map(
      (key) =>
        new BullMQAdapter(queues.get(key), {
          readOnlyMode: options.readOnly,
          externalJobUrl: (job) => {
            const jobId = (job.data as { jobId?: unknown } | undefined)?.jobId;
            return typeof jobId === 'string' ? { displayText: 'Longhaul job', href: `/admin/jobs/${encodeURIComponent(jobId)}` } : { href: '/admin/jobs' };
          },
        }),
    ),
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: 'Longhaul',
        // The docs link points to the internet; job search is the Postgres-backed page.
        hideDocsLink: true,
        miscLinks: [
          { text: 'Job search', url: '/admin/jobs' },
          { text: 'Audit log', url: '/admin/audit' },
          { text: 'Log out', url: '/admin/logout' },
        ],
      },
    },
  });
  return serverAdapter.getRouter().disable('x-powered-by') as Router; // bull-board's own Express app would send X-Powered-By
}
