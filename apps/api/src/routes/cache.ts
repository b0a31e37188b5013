/**
 * /v1/cache: the tenant's response cache (@longhaul/core response-cache.ts). `DELETE` empties it,
 * or only the entries of one prompt (`prompt_id`), or of one of its versions (`version` too): the
 * next identical request runs at the provider again. Entries also end on their own (their TTL) and
 * with their source job (`DELETE /v1/responses/{id}` erases it).
 */
import { Router } from 'express';
import { z } from 'zod';
import { clearResponseCache } from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import { ids, parseInput } from '../request-input.ts';

export const deleteQuery = z
  .strictObject({
    prompt_id: ids.prompt.optional(),
    version: z.coerce.number().int().positive().optional(),
  })
  .refine((q) => q.version === undefined || q.prompt_id !== undefined, { message: "'version' needs 'prompt_id'", path: ['version'] });

export function cacheRouter(ctx: ApiContext): Router {
  const router = Router();
  router.delete('/', async (req, res) => {
    const query = parseInput(deleteQuery, req.query);
    const deleted = await clearResponseCache(ctx.db, req.tenantId!, { promptId: query.prompt_id, promptVersion: query.version });
    req.log.info({ tenant_id: req.tenantId, prompt_id: query.prompt_id, prompt_version: query.version, deleted }, 'response cache cleared');
    res.json({ object: 'cache.deleted', deleted });
  });
  return router;
}
