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

/** `Authorization: Bearer <key>` → `req.tenantId`; anything else is a 401. */
export function requireApiKey(db: Database): RequestHandler {
  return async (req, _res, next) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) return next(new AuthenticationError());
    try {
      const tenant = await findTenantByApiKey(db, match[1]!);
      if (!tenant) return next(new AuthenticationError('Invalid API key.'));
      req.tenantId = tenant.tenantId;
      req.log = req.log?.child({ tenant_id: tenant.tenantId });
      next();
    } catch (err) {
      next(err);
    }
  };
}
