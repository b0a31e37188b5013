/**
 * /v1/api-keys: the tenant's own API keys. A key is shown once, when it is made; lists show its
 * prefix. A key can only make keys with scopes it holds itself, and the tenant's last active key
 * is only revoked with `?force=true` (a tenant without a key needs an operator to get back in).
 */
import { Router, type Request } from 'express';
import { z } from 'zod';
import { API_KEY_MAX_DAYS, ConflictError, NotFoundError, PermissionError, ValidationError, isSubset, parseScopes } from '@longhaul/core';
import { createApiKey, getApiKey, listApiKeys, revokeApiKey, toApiKeyObject } from '@longhaul/db';
import type { ApiDeps } from '../context.ts';
import { checkPathIds, ids, parseInput, storableText } from '../request-input.ts';

const DAY_MS = 86_400_000;
/** The end of year 9999 in Unix seconds: later is no date. */
const MAX_UNIX = 253_402_300_799;

export const createSchema = z
  .strictObject({
    name: storableText(z.string().min(1).max(256)),
    scopes: z.array(z.string().max(64)).max(64).optional(),
    /** Unix seconds. */
    expires_at: z.number().int().positive().max(MAX_UNIX).optional(),
    expires_in_days: z.number().int().min(1).max(API_KEY_MAX_DAYS).optional(),
  })
  .refine((b) => b.expires_at === undefined || b.expires_in_days === undefined, { message: 'give expires_at or expires_in_days, not both', path: ['expires_in_days'] });
export const listSchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20), after: ids.apiKey.optional() });
export const revokeSchema = z.strictObject({ force: z.enum(['true', 'false']).optional() });

/** The checked, canonical scopes of `requested`, or a 400 naming the first unknown one. */
function checkedScopes(requested: readonly string[]): string[] {
  const parsed = parseScopes(requested);
  if (!parsed.ok) throw new ValidationError(parsed.message, parsed.index === null ? 'scopes' : `scopes[${parsed.index}]`, 'invalid_value');
  return parsed.scopes;
}

export function apiKeysRouter(deps: ApiDeps, auth: { forget(id: string): void }): Router {
  const { db, clock } = deps;
  const router = Router();
  checkPathIds(router, { id: ids.apiKey });
  const tenantOf = (req: Request) => req.tenantId!;
  const notFound = (req: Request) => new NotFoundError(`No API key with id '${req.params.id}'.`, 'id');

  router.post('/', async (req, res) => {
    const body = parseInput(createSchema, req.body);
    const held = req.apiKey!.scopes;
    // Without `scopes`, a key gets its maker's: never more than the maker holds.
    const scopes = body.scopes === undefined ? [...held] : checkedScopes(body.scopes);
    const beyond = scopes.filter((s) => !isSubset([s], held));
    if (beyond.length > 0) {
      throw new PermissionError(`This API key cannot make a key with scopes it does not hold: ${beyond.map((s) => `'${s}'`).join(', ')}.`, 'scope_escalation', 'scopes');
    }
    const now = clock();
    const expiresAt =
      body.expires_at !== undefined ? new Date(body.expires_at * 1000) : body.expires_in_days !== undefined ? new Date(now.getTime() + body.expires_in_days * DAY_MS) : null;
    if (expiresAt && expiresAt <= now) throw new ValidationError("Invalid 'expires_at': must be in the future.", 'expires_at', 'invalid_value');
    const { key, row } = await createApiKey(db, { tenantId: tenantOf(req), name: body.name, scopes, expiresAt });
    req.log.info({ tenant_id: row.tenantId, api_key_id: row.id, scopes: row.scopes, by_api_key_id: req.apiKey!.id }, 'api key created');
    res.status(201).json({ ...toApiKeyObject(row, now), key });
  });

  router.get('/', async (req, res) => {
    const query = parseInput(listSchema, req.query);
    const { data, hasMore } = await listApiKeys(db, { tenantId: tenantOf(req), ...query });
    const now = clock();
    res.json({ object: 'list', data: data.map((k) => toApiKeyObject(k, now)), first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore });
  });

  router.get('/:id', async (req, res) => {
    const key = await getApiKey(db, tenantOf(req), String(req.params.id));
    if (!key) throw notFound(req);
    res.json(toApiKeyObject(key, clock()));
  });

  router.delete('/:id', async (req, res) => {
    const query = parseInput(revokeSchema, req.query);
    const now = clock();
    const result = await revokeApiKey(db, tenantOf(req), String(req.params.id), { now, force: query.force === 'true' });
    if (!result.ok && result.reason === 'not_found') throw notFound(req);
    if (!result.ok) {
      throw new ConflictError(
        `API key '${req.params.id}' is the tenant's last active key; revoking it leaves no way in. Make another key first, or send ?force=true.`,
        'last_api_key',
      );
    }
    auth.forget(result.key.id);
    req.log.info({ tenant_id: result.key.tenantId, api_key_id: result.key.id, by_api_key_id: req.apiKey!.id, forced: query.force === 'true' }, 'api key revoked');
    res.json(toApiKeyObject(result.key, now));
  });

  return router;
}
