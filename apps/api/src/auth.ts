/**
 * Tenant API keys at the /v1 edge: who is calling (`authenticate`) and whether the key may make
 * this request (`requireScope`).
 *
 * Design note: a key looked up in Postgres is remembered in this process for `cacheTtlMs`, with
 * its scopes, expiry and revocation. Expiry is checked against the clock on every request, so an
 * expiring key stops at its `expires_at`, cached or not. A revocation made in this process is
 * applied at once (`forget`); one made elsewhere (another API process, the CLI, a tenant erasure)
 * within `cacheTtlMs`, the bound on how long a revoked key keeps working. Unknown keys are never
 * remembered (random keys would push real ones out). `last_used_at` is written when the row this
 * process holds says it is a minute old; the write itself is conditional (@longhaul/db
 * `touchApiKey`), so processes sharing a key write it at most once a minute between them.
 */
import type { RequestHandler } from 'express';
import { AuthenticationError, PermissionError, apiKeyStatus, isSubset, requiredScope } from '@longhaul/core';
import { API_KEY_TOUCH_INTERVAL_MS, type ApiKeyRow, type Database, findApiKeyBySecret, touchApiKey } from '@longhaul/db';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      tenantId?: string;
      /** The key the request was authenticated with. */
      apiKey?: { id: string; scopes: readonly string[] };
    }
  }
}

export interface ApiKeyAuthOptions {
  /**
   * How long a key read from Postgres is remembered in this process (saves a round trip per
   * request). A key revoked elsewhere keeps working here for at most this long. Default 2 000 ms;
   * 0 = off.
   */
  cacheTtlMs?: number;
  /** Most keys remembered. Default 10 000. */
  cacheSize?: number;
  now?: () => Date;
}

export interface ApiKeyAuth {
  /** `Authorization: Bearer <key>` → `req.tenantId` and `req.apiKey`; anything else is a 401. */
  authenticate: RequestHandler;
  /** Stop remembering key `id` (it was just revoked through this process). */
  forget(id: string): void;
}

export function apiKeyAuth(db: Database, options: ApiKeyAuthOptions = {}): ApiKeyAuth {
  const ttl = options.cacheTtlMs ?? 2_000;
  const size = options.cacheSize ?? 10_000;
  const now = options.now ?? (() => new Date());
  const cache = new Map<string, { key: ApiKeyRow; until: number }>();

  /** The key whose secret this is, from this process's cache or Postgres; null when there is none. */
  async function keyFor(secret: string, at: number): Promise<ApiKeyRow | null> {
    const hit = cache.get(secret);
    if (hit && hit.until > at) return hit.key;
    cache.delete(secret);
    const key = await findApiKeyBySecret(db, secret);
    if (key && ttl > 0) {
      if (cache.size >= size) cache.delete(cache.keys().next().value!);
      cache.set(secret, { key, until: at + ttl });
    }
    return key;
  }

  const authenticate: RequestHandler = async (req, _res, next) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) return next(new AuthenticationError());
    try {
      const at = now();
      const key = await keyFor(match[1]!, at.getTime());
      if (!key) return next(new AuthenticationError('Invalid API key.'));
      const status = apiKeyStatus(key, at);
      if (status === 'revoked') return next(new AuthenticationError('This API key has been revoked.'));
      if (status === 'expired') return next(new AuthenticationError(`This API key expired at ${key.expiresAt!.toISOString()}.`, 'api_key_expired'));
      req.tenantId = key.tenantId;
      req.apiKey = { id: key.id, scopes: key.scopes };
      req.log = req.log?.child({ tenant_id: key.tenantId });
      // The cached row's last use is set before the write, so requests in flight together write once.
      if (!key.lastUsedAt || at.getTime() - key.lastUsedAt.getTime() >= API_KEY_TOUCH_INTERVAL_MS) {
        key.lastUsedAt = at;
        await touchApiKey(db, key.id, at).catch((err: unknown) => req.log?.warn({ err, code: 'api_key_touch_failed' }, 'could not record the API key as used'));
      }
      next();
    } catch (err) {
      next(err);
    }
  };

  return {
    authenticate,
    forget(id) {
      for (const [secret, entry] of cache) if (entry.key.id === id) cache.delete(secret);
    },
  };
}

/** After `authenticate`: a 403 insufficient_scope unless the key holds the scope the method and path need. */
export const requireScope: RequestHandler = (req, _res, next) => {
  const needed = requiredScope(req.method, req.baseUrl + req.path);
  if (isSubset([needed], req.apiKey?.scopes ?? [])) return next();
  next(new PermissionError(`This API key lacks the '${needed}' scope this request needs.`, 'insufficient_scope'));
};
