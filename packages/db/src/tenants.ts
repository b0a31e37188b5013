import { ID_PREFIX } from '@longhaul/core';
import { TransactionRollbackError, and, eq, isNull } from 'drizzle-orm';
import type { Database } from './client.ts';
import { newId, sha256Hex } from './ids.ts';
import { apiKeys, tenants } from './schema.ts';

/** Generate a new secret API key. Only its hash is ever stored. */
export function generateApiKey(): string {
  return newId(ID_PREFIX.secretKey, 40);
}

function keyPrefix(key: string): string {
  return key.slice(0, 10);
}

/** The tenant an API key belongs to, or null (unknown or revoked key). */
export async function findTenantByApiKey(db: Database, key: string): Promise<{ tenantId: string } | null> {
  const rows = await db
    .select({ tenantId: apiKeys.tenantId })
    .from(apiKeys)
    .where(and(eq(apiKeys.keyHash, sha256Hex(key)), isNull(apiKeys.revokedAt)))
    .limit(1);
  return rows[0] ?? null;
}

/** Create a tenant with one API key; returns the key (shown once). */
export async function createTenant(db: Database, name: string, key = generateApiKey()): Promise<{ tenantId: string; apiKey: string }> {
  const tenantId = newId(ID_PREFIX.tenant, 16);
  await db.transaction(async (tx) => {
    await tx.insert(tenants).values({ id: tenantId, name });
    await tx.insert(apiKeys).values({ id: newId(ID_PREFIX.apiKey, 16), tenantId, keyHash: sha256Hex(key), prefix: keyPrefix(key) });
  });
  return { tenantId, apiKey: key };
}

/**
 * Make sure a tenant owns `key` (used for `LONGHAUL_BOOTSTRAP_API_KEY`). Idempotent and safe to
 * run from several processes at start-up: the unique key hash decides the winner.
 */
export async function ensureTenantWithApiKey(db: Database, key: string, name = 'default'): Promise<{ tenantId: string; created: boolean }> {
  const existing = await findTenantByApiKey(db, key);
  if (existing) return { tenantId: existing.tenantId, created: false };
  return db
    .transaction(async (tx) => {
      const tenantId = newId(ID_PREFIX.tenant, 16);
      await tx.insert(tenants).values({ id: tenantId, name });
      const inserted = await tx
        .insert(apiKeys)
        .values({ id: newId(ID_PREFIX.apiKey, 16), tenantId, keyHash: sha256Hex(key), prefix: keyPrefix(key) })
        .onConflictDoNothing({ target: apiKeys.keyHash })
        .returning({ id: apiKeys.id });
      if (inserted.length === 0) {
        // Another process won the race: drop our tenant and use theirs.
        tx.rollback();
      }
      return { tenantId, created: true };
    })
    .catch(async (err: unknown) => {
      // drizzle's TransactionRollbackError is named 'DrizzleError': test the class, not the name.
      if (err instanceof TransactionRollbackError) {
        const winner = await findTenantByApiKey(db, key);
        if (winner) return { tenantId: winner.tenantId, created: false };
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
