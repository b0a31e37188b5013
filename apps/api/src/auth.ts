import type { RequestHandler } from 'express';
import { AuthenticationError } from '@longhaul/core';
import { type Database, findTenantByApiKey } from '@longhaul/db';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      tenantId?: string;
    }
  }
}

export interface ApiKeyAuthOptions {
  /**
   * How long a verified key is remembered in this process (saves a Postgres round trip per
   * request). A revoked key keeps working here for at most this long. Default 30 000 ms; 0 = off.
   */
  cacheTtlMs?: number;
  /** Most keys remembered. Default 10 000. */
  cacheSize?: number;
  now?: () => number;
}

/** `Authorization: Bearer <key>` → `req.tenantId`; anything else is a 401. */
export function requireApiKey(db: Database, options: ApiKeyAuthOptions = {}): RequestHandler {
  const ttl = options.cacheTtlMs ?? 30_000;
  const size = options.cacheSize ?? 10_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { tenantId: string; until: number }>();

  async function tenantFor(key: string): Promise<string | null> {
    const hit = cache.get(key);
    if (hit && hit.until > now()) return hit.tenantId;
    cache.delete(key);
    const tenant = await findTenantByApiKey(db, key);
    if (!tenant) return null;
    if (ttl > 0) {
      if (cache.size >= size) cache.delete(cache.keys().next().value!);
      cache.set(key, { tenantId: tenant.tenantId, until: now() + ttl });
    }
    return tenant.tenantId;
  }

  return async (req, _res, next) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) return next(new AuthenticationError());
    try {
      const tenantId = await tenantFor(match[1]!);
      if (!tenantId) return next(new AuthenticationError('Invalid API key.'));
      req.tenantId = tenantId;
      req.log = req.log?.child({ tenant_id: tenantId });
      next();
    } catch (err) {
      next(err);
    }
  };
}
