/**
 * The routes Express has mounted under a prefix, from its router stack (router 2.x layers keep
 * their `rawPath`): `GET /v1/jobs/{id}` for `v1.use('/jobs', router)` + `router.get('/:id')`. The
 * contract test compares them with the document, so an undocumented route cannot ship.
 */
import type { Express } from 'express';

interface Layer {
  rawPath?: unknown;
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

const toOpenApiPath = (path: string) => path.replace(/:(\w+)/g, '{$1}').replace(/(.)\/$/, '$1');

function walk(stack: Layer[], prefix: string, out: Set<string>): void {
  for (const layer of stack) {
    const raw = typeof layer.rawPath === 'string' ? layer.rawPath : typeof layer.route?.path === 'string' ? layer.route.path : '';
    const here = raw === '/' ? prefix : `${prefix}${raw}`;
    if (layer.route) {
      for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') out.add(`${method.toUpperCase()} ${toOpenApiPath(here || '/')}`);
    } else if (layer.handle?.stack) {
      walk(layer.handle.stack, here, out);
    }
  }
}

/** `METHOD /path/{param}` of every route mounted at or below `under` (e.g. `/v1`). */
export function mountedRoutes(app: Express, under: string): string[] {
  const out = new Set<string>();
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '', out);
  return [...out].filter((r) => r.split(' ')[1]!.startsWith(`${under}/`) || r.split(' ')[1] === under).sort();
}
