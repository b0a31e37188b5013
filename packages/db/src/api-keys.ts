/**
 * Tenant API keys: made (the secret shown once; only its SHA-256 is stored), listed, revoked,
 * looked up by the secret, and their last use recorded.
 *
 * Design note: a key's one write after it is made is its revocation, guarded by `revoked_at is
 * null` so the first revocation's time sticks; expiry is derived from `expires_at` at lookup
 * (`apiKeyStatus` in @longhaul/core). Revocations of one tenant's keys run one at a time (a lock on
 * the tenant's row), so two at once cannot both take the tenant's last active key. `last_used_at`
 * is written by a conditional update that only matches when the stored time is a minute old:
 * however many processes and requests use a key, it is written at most once a minute.
 */
import { ID_PREFIX, apiKeyStatus } from '@longhaul/core';
import { and, desc, eq, gt, isNull, lt, ne, or, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { newId, sha256Hex } from './ids.ts';
import { type ApiKeyRow, apiKeys, tenants } from './schema.ts';

export type { ApiKeyRow } from './schema.ts';

/** `last_used_at` is written at most this often per key. */
export const API_KEY_TOUCH_INTERVAL_MS = 60_000;

/** Generate a new secret API key. Only its hash is ever stored. */
export function generateApiKey(): string {
  return newId(ID_PREFIX.secretKey, 40);
}

/** What a new key is made with; the secret defaults to a fresh `generateApiKey()`. */
export interface NewApiKey {
  tenantId: string;
  key?: string;
  name?: string | null;
  /** Checked and canonical (`parseScopes` in @longhaul/core). Default `['*']`. */
  scopes?: string[];
  expiresAt?: Date | null;
}

/** The row a new key is inserted as (its id, hash and prefix made here, and nowhere else), with the secret. */
export function apiKeyValues(input: NewApiKey): { key: string; values: typeof apiKeys.$inferInsert } {
  const key = input.key ?? generateApiKey();
  return {
    key,
    values: {
      id: newId(ID_PREFIX.apiKey, 16),
      tenantId: input.tenantId,
      keyHash: sha256Hex(key),
      // `lh_sk_` and four characters of the secret: enough to tell keys apart, far too few to guess it.
      prefix: key.slice(0, 10),
      name: input.name ?? null,
      scopes: input.scopes ?? ['*'],
      expiresAt: input.expiresAt ?? null,
    },
  };
}

/** Make a key; returns its row and the secret (shown once, never stored). */
export async function createApiKey(db: Database, input: NewApiKey): Promise<{ key: string; row: ApiKeyRow }> {
  const { key, values } = apiKeyValues(input);
  const [row] = await db.insert(apiKeys).values(values).returning();
  return { key, row: row! };
}

/** The key whose secret is `key`, whatever its status, or null. */
export async function findApiKeyBySecret(db: Database, key: string): Promise<ApiKeyRow | null> {
  const [row] = await db
    .select()
    .from(apiKeys)
    .where(eq(apiKeys.keyHash, sha256Hex(key)))
    .limit(1);
  return row ?? null;
}

/** The tenant an API key belongs to, or null (unknown, revoked or expired key). */
export async function findTenantByApiKey(db: Database, key: string, now = new Date()): Promise<{ tenantId: string } | null> {
  const row = await findApiKeyBySecret(db, key);
  return row && apiKeyStatus(row, now) === 'active' ? { tenantId: row.tenantId } : null;
}

/** One of the tenant's keys, or null. */
export async function getApiKey(db: Database, tenantId: string, id: string): Promise<ApiKeyRow | null> {
  const [row] = await db
    .select()
    .from(apiKeys)
    .where(and(eq(apiKeys.tenantId, tenantId), eq(apiKeys.id, id)))
    .limit(1);
  return row ?? null;
}

/**
 * The tenant's keys, revoked and expired ones too, newest first; `after` is the last key id of the
 * previous page. The cursor is compared in SQL: created_at holds microseconds (the database's
 * now()), which a Date read back would round off, skipping keys made in the same millisecond.
 */
export async function listApiKeys(db: Database, options: { tenantId: string; limit: number; after?: string }): Promise<{ data: ApiKeyRow[]; hasMore: boolean }> {
  const conditions = [eq(apiKeys.tenantId, options.tenantId)];
  if (options.after) {
    const cursor = sql`(select c.created_at, c.id from ${apiKeys} c where c.id = ${options.after} and c.tenant_id = ${options.tenantId})`;
    conditions.push(sql`(${apiKeys.createdAt}, ${apiKeys.id}) < ${cursor}`);
  }
  const rows = await db
    .select()
    .from(apiKeys)
    .where(and(...conditions))
    .orderBy(desc(apiKeys.createdAt), desc(apiKeys.id))
    .limit(options.limit + 1);
  return { data: rows.slice(0, options.limit), hasMore: rows.length > options.limit };
}

export type RevokeApiKeyResult = { ok: true; key: ApiKeyRow } | { ok: false; reason: 'not_found' | 'last_active_key' };

/**
 * Revoke one of the tenant's keys (an already revoked key is returned as it is). Refused with
 * `last_active_key` when it is the tenant's last active key, unless `force`: a tenant left with no
 * key can only be helped by an operator.
 */
export async function revokeApiKey(db: Database, tenantId: string, id: string, options: { now: Date; force?: boolean }): Promise<RevokeApiKeyResult> {
  const { now } = options;
  return db.transaction(async (tx) => {
    await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId)).for('update');
    const key = await getApiKey(tx, tenantId, id);
    if (!key) return { ok: false, reason: 'not_found' };
    if (key.revokedAt) return { ok: true, key };
    if (!options.force && apiKeyStatus(key, now) === 'active') {
      const [other] = await tx
        .select({ id: apiKeys.id })
        .from(apiKeys)
        .where(and(eq(apiKeys.tenantId, tenantId), ne(apiKeys.id, id), isNull(apiKeys.revokedAt), or(isNull(apiKeys.expiresAt), gt(apiKeys.expiresAt, now))))
        .limit(1);
      if (!other) return { ok: false, reason: 'last_active_key' };
    }
    const [revoked] = await tx
      .update(apiKeys)
      .set({ revokedAt: now })
      .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
      .returning();
    return { ok: true, key: revoked! };
  });
}

/**
 * Record that a key was used at `now`, unless that was recorded less than
 * API_KEY_TOUCH_INTERVAL_MS ago. Returns whether it wrote.
 */
export async function touchApiKey(db: Database, id: string, now: Date): Promise<boolean> {
  const staleBefore = new Date(now.getTime() - API_KEY_TOUCH_INTERVAL_MS);
  const rows = await db
    .update(apiKeys)
    .set({ lastUsedAt: now })
    .where(and(eq(apiKeys.id, id), or(isNull(apiKeys.lastUsedAt), lt(apiKeys.lastUsedAt, staleBefore))))
    .returning({ id: apiKeys.id });
  return rows.length > 0;
}

const unix = (d: Date | null): number | null => (d ? Math.floor(d.getTime() / 1000) : null);

/** The public representation of a key (`"object": "api_key"`): never the secret or its hash. */
export function toApiKeyObject(key: ApiKeyRow, now: Date) {
  return {
    id: key.id,
    object: 'api_key' as const,
    name: key.name,
    prefix: key.prefix,
    scopes: key.scopes,
    status: apiKeyStatus(key, now),
    created_at: unix(key.createdAt),
    last_used_at: unix(key.lastUsedAt),
    expires_at: unix(key.expiresAt),
    revoked_at: unix(key.revokedAt),
  };
}
