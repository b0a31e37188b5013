/**
 * `tenant keys create|list|revoke`: a tenant's API keys, as the tenant manages them over
 * /v1/api-keys, for an operator (a tenant's first key, or one that lost every key). The same
 * rules hold: scopes are checked, and the last active key is only revoked with `--force`.
 */
import { parseArgs } from 'node:util';
import { API_KEY_MAX_DAYS, parseScopes } from '@longhaul/core';
import { type Database, createApiKey, getTenantLimits, listApiKeys, revokeApiKey, toApiKeyObject } from '@longhaul/db';

const USAGE =
  'usage: tenant keys create <tenant_id> --name NAME [--scopes a,b] [--expires-in-days D] | tenant keys list <tenant_id> | tenant keys revoke <tenant_id> <key_id> [--force]';
const DAY_MS = 86_400_000;

/** Run `tenant keys <args>`; returns what to print (one JSON line). */
export async function tenantKeys(db: Database, args: string[]): Promise<object> {
  const { values, positionals } = parseArgs({
    args,
    options: { name: { type: 'string' }, scopes: { type: 'string' }, 'expires-in-days': { type: 'string' }, force: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  const [sub, tenantId, keyId] = positionals;
  if (!tenantId) throw new Error(USAGE);
  const now = new Date();
  switch (sub) {
    case 'create': {
      if (!values.name) throw new Error(`tenant keys create needs --name; ${USAGE}`);
      const parsed = parseScopes(values.scopes === undefined ? ['*'] : values.scopes.split(',').map((s) => s.trim()));
      if (!parsed.ok) throw new Error(`--scopes: ${parsed.message}`);
      const days = values['expires-in-days'];
      if (days !== undefined && !(/^\d+$/.test(days) && Number(days) >= 1 && Number(days) <= API_KEY_MAX_DAYS)) {
        throw new Error(`--expires-in-days expects a whole number of days from 1 to ${API_KEY_MAX_DAYS}, got '${days}'`);
      }
      await tenantOrThrow(db, tenantId);
      const expiresAt = days === undefined ? null : new Date(now.getTime() + Number(days) * DAY_MS);
      const { key, row } = await createApiKey(db, { tenantId, name: values.name, scopes: parsed.scopes, expiresAt });
      return { tenant_id: tenantId, ...toApiKeyObject(row, now), key };
    }
    case 'list': {
      await tenantOrThrow(db, tenantId);
      const { data, hasMore } = await listApiKeys(db, { tenantId, limit: 1000 });
      return { tenant_id: tenantId, object: 'list', data: data.map((k) => toApiKeyObject(k, now)), has_more: hasMore };
    }
    case 'revoke': {
      if (!keyId) throw new Error(USAGE);
      const result = await revokeApiKey(db, tenantId, keyId, { now, force: values.force });
      if (!result.ok && result.reason === 'not_found') throw new Error(`tenant ${tenantId} has no key ${keyId}`);
      if (!result.ok) throw new Error(`${keyId} is the tenant's last active key; make another first, or revoke it with --force`);
      // Running API processes refuse it within API_KEY_CACHE_TTL_MS (default 2 s).
      return { tenant_id: tenantId, ...toApiKeyObject(result.key, now) };
    }
    default:
      throw new Error(USAGE);
  }
}

async function tenantOrThrow(db: Database, tenantId: string): Promise<void> {
  if (!(await getTenantLimits(db, tenantId))) throw new Error(`no tenant ${tenantId}`);
}
