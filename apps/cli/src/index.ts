// Operator CLI (`node apps/cli/dist/index.js <command>` once built; `npm run migrate`,
// `npm run tenant:create -- <name>` and `npm run tenant:limits -- ...` build and run it):
// `migrate` applies the committed migrations; `create-tenant <name>` prints a new tenant's id and
// API key (shown once); `tenant limits <tenant_id> [--rpm N|default] [--tpm N|default]` shows or
// sets a tenant's requests per minute (API) and tokens per minute (provider budget); 0 = unlimited,
// `default` = the deployment's API_RPM_LIMIT / TENANT_TPM_LIMIT; `--cache-ttl N` turns response
// caching on for the tenant's jobs that do not say otherwise (seconds; 0 or `default`: off).
import { parseArgs } from 'node:util';
import { createDb, createTenant, runMigrations, setTenantLimits } from '@longhaul/db';

/** `--rpm 600` → 600, `--rpm default` → null (the deployment default), absent → undefined (unchanged). */
function limitArg(name: string, raw: string | undefined): number | null | undefined {
  if (raw === undefined) return undefined;
  if (raw === 'default') return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 2_147_483_647) throw new Error(`--${name} expects a whole number >= 0 (0 = unlimited) or 'default', got '${raw}'`);
  return n;
}

const [command, ...args] = process.argv.slice(2);
const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/longhaul'; // empty counts as unset
const db = createDb({ connectionString: url, max: 1 });
try {
  switch (command) {
    case 'migrate':
      await runMigrations(db.db);
      console.error('[longhaul] migrations applied');
      break;
    case 'create-tenant': {
      const name = args[0];
      if (!name) throw new Error('usage: create-tenant <name>');
      const { tenantId, apiKey } = await createTenant(db.db, name);
      console.log(JSON.stringify({ tenant_id: tenantId, api_key: apiKey }));
      break;
    }
    case 'tenant': {
      const { values, positionals } = parseArgs({
        args,
        options: { rpm: { type: 'string' }, tpm: { type: 'string' }, 'cache-ttl': { type: 'string' } },
        allowPositionals: true,
        strict: true,
      });
      const [sub, tenantId] = positionals;
      if (sub !== 'limits' || !tenantId) throw new Error('usage: tenant limits <tenant_id> [--rpm N|default] [--tpm N|default] [--cache-ttl SECONDS|default]');
      const limits = await setTenantLimits(db.db, tenantId, {
        rpmLimit: limitArg('rpm', values.rpm),
        tpmLimit: limitArg('tpm', values.tpm),
        cacheTtlSeconds: limitArg('cache-ttl', values['cache-ttl']),
      });
      if (!limits) throw new Error(`no tenant ${tenantId}`);
      // Running processes pick a change up within 30 s (their cache of tenant limits).
      console.log(JSON.stringify({ tenant_id: tenantId, rpm_limit: limits.rpmLimit, tpm_limit: limits.tpmLimit, cache_ttl_seconds: limits.cacheTtlSeconds }));
      break;
    }
    default:
      throw new Error(`unknown command ${command ?? ''}; use migrate | create-tenant <name> | tenant limits <tenant_id> [--rpm N] [--tpm N]`);
  }
} finally {
  await db.close();
}
