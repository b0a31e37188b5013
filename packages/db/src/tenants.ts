import { ID_PREFIX, apiKeyStatus } from '@longhaul/core';
import { TransactionRollbackError, eq } from 'drizzle-orm';
import { apiKeyValues, findApiKeyBySecret, generateApiKey } from './api-keys.ts';
import type { Database } from './client.ts';
import { newId } from './ids.ts';
import { apiKeys, tenants } from './schema.ts';

/** Create a tenant with one API key (scope `*`); returns the key (shown once). */
export async function createTenant(db: Database, name: string, key = generateApiKey()): Promise<{ tenantId: string; apiKey: string }> {
  const tenantId = newId(ID_PREFIX.tenant, 16);
  await db.transaction(async (tx) => {
    await tx.insert(tenants).values({ id: tenantId, name });
    await tx.insert(apiKeys).values(apiKeyValues({ tenantId, key }).values);
  });
  return { tenantId, apiKey: key };
}

/**
 * Make sure a tenant owns `key` (used for `LONGHAUL_BOOTSTRAP_API_KEY`). Idempotent and safe to
 * run from several processes at start-up: the unique key hash decides the winner. A key that was
 * revoked or has expired stays so (`active: false`): start-up never brings a key back.
 */
export async function ensureTenantWithApiKey(db: Database, key: string, now: Date, name = 'default'): Promise<{ tenantId: string; created: boolean; active: boolean }> {
  const existingKey = async () => {
    const row = await findApiKeyBySecret(db, key);
    return row ? { tenantId: row.tenantId, created: false, active: apiKeyStatus(row, now) === 'active' } : null;
  };
  const existing = await existingKey();
  if (existing) return existing;
  return db
    .transaction(async (tx) => {
      const tenantId = newId(ID_PREFIX.tenant, 16);
      await tx.insert(tenants).values({ id: tenantId, name });
      const inserted = await tx.insert(apiKeys).values(apiKeyValues({ tenantId, key }).values).onConflictDoNothing({ target: apiKeys.keyHash }).returning({ id: apiKeys.id });
      if (inserted.length === 0) {
        // Another process won the race: drop our tenant and use theirs.
        tx.rollback();
      }
      return { tenantId, created: true, active: true };
    })
    .catch(async (err: unknown) => {
      // drizzle's TransactionRollbackError is named 'DrizzleError': test the class, not the name.
      if (err instanceof TransactionRollbackError) {
        const winner = await existingKey();
        if (winner) return winner;
      }
      throw err;
    });
}

/** A tenant's own limits; null = the deployment default. */
export interface TenantLimits {
  /** API requests per minute. */
  rpmLimit: number | null;
  /** Estimated provider input tokens per minute. */
  tpmLimit: number | null;
  /** Response caching for the tenant's jobs that do not say otherwise (seconds; 0 or null: off). */
  cacheTtlSeconds: number | null;
  /** Days a finished job's content is kept (0: until erased; null: the worker's RETENTION_DAYS). */
  retentionDays: number | null;
}

/** The tenant's limits, or null when there is no such tenant. */
export async function getTenantLimits(db: Database, tenantId: string): Promise<TenantLimits | null> {
  const rows = await db
    .select({ rpmLimit: tenants.rpmLimit, tpmLimit: tenants.tpmLimit, cacheTtlSeconds: tenants.cacheTtlSeconds, retentionDays: tenants.retentionDays })
    .from(tenants)
    .where(eq(tenants.id, tenantId))
    .limit(1);
  return rows[0] ?? null;
}

/** Set (a number, 0 = unlimited) or reset (null) a tenant's limits; returns the new limits, or null when there is no such tenant. */
export async function setTenantLimits(db: Database, tenantId: string, limits: Partial<TenantLimits>): Promise<TenantLimits | null> {
  const set: Partial<TenantLimits> = {};
  if (limits.rpmLimit !== undefined) set.rpmLimit = limits.rpmLimit;
  if (limits.tpmLimit !== undefined) set.tpmLimit = limits.tpmLimit;
  if (limits.cacheTtlSeconds !== undefined) set.cacheTtlSeconds = limits.cacheTtlSeconds;
  if (limits.retentionDays !== undefined) set.retentionDays = limits.retentionDays;
  if (Object.keys(set).length === 0) return getTenantLimits(db, tenantId);
  const rows = await db
    .update(tenants)
    .set(set)
    .where(eq(tenants.id, tenantId))
    .returning({ rpmLimit: tenants.rpmLimit, tpmLimit: tenants.tpmLimit, cacheTtlSeconds: tenants.cacheTtlSeconds, retentionDays: tenants.retentionDays });
  return rows[0] ?? null;
}
