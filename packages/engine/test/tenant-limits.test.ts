/**
 * The one tenant-limit resolver, against a real database: a tenant's own limit, else the
 * deployment default, remembered for the cache period measured on the injected clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, createTenant, setTenantLimits, type DbHandle } from '@longhaul/db';
import { createTestDatabase, type TestDatabase } from '@longhaul/db/testing';
import { createTenantLimitResolver } from '../src/index.ts';

const base = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
let database: TestDatabase;
let handle: DbHandle;

beforeAll(async () => {
  database = await createTestDatabase(base);
  handle = createDb({ connectionString: database.url, max: 2 });
});

afterAll(async () => {
  await handle?.close();
  await database?.drop();
});

describe('tenant limits', () => {
  it("uses a tenant's own limits, else the deployment defaults; a tenant's own 0 is unlimited", async () => {
    const resolver = createTenantLimitResolver({ db: handle.db, clock: () => new Date() }, { defaultTokenLimit: 500, defaultRequestLimit: 60 });
    const plain = await createTenant(handle.db, 'plain');
    const own = await createTenant(handle.db, 'own');
    await setTenantLimits(handle.db, own.tenantId, { rpmLimit: 0, tpmLimit: 1_000, cacheTtlSeconds: 3_600 });
    expect(await resolver.of(plain.tenantId)).toEqual({ requestsPerMinute: 60, tokensPerMinute: 500, cacheTtlSeconds: 0 });
    expect(await resolver.of(own.tenantId)).toEqual({ requestsPerMinute: 0, tokensPerMinute: 1_000, cacheTtlSeconds: 3_600 });
    expect(await resolver.of('ten_unknown')).toEqual({ requestsPerMinute: 60, tokensPerMinute: 500, cacheTtlSeconds: 0 });
  });

  it('remembers a tenant for the cache period, then reads the changed limit', async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const resolver = createTenantLimitResolver({ db: handle.db, clock: () => new Date(now) }, { cacheMs: 30_000 });
    const { tenantId } = await createTenant(handle.db, 'changing');
    await setTenantLimits(handle.db, tenantId, { tpmLimit: 100 });
    expect((await resolver.of(tenantId)).tokensPerMinute).toBe(100);
    await setTenantLimits(handle.db, tenantId, { tpmLimit: 200 });
    now += 29_999;
    expect((await resolver.of(tenantId)).tokensPerMinute).toBe(100);
    now += 1;
    expect((await resolver.of(tenantId)).tokensPerMinute).toBe(200);
  });
});
