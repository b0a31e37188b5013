// Operator CLI (`node apps/cli/dist/index.js <command>` once built; `npm run migrate`,
// `npm run tenant:create -- <name>`, `npm run tenant:limits -- ...` and `npm run tenant:keys -- ...`
// build and run it). Each command prints one JSON line; a failure is one line on stderr and exit 1.
//   migrate                          apply the committed migrations
//   create-tenant <name>             a new tenant's id and API key (shown once)
//   tenant limits <tenant_id> ...    show or set a tenant's limits (tenant-limits.ts)
//   tenant keys create|list|revoke   a tenant's API keys (tenant-keys.ts)
//   tenant erase <tenant_id>         offboard a tenant: erase its data (tenant-erase.ts)
import { createDb, createTenant, runMigrations } from '@longhaul/db';
import { tenantErase } from './tenant-erase.ts';
import { tenantKeys } from './tenant-keys.ts';
import { tenantLimits } from './tenant-limits.ts';

const USAGE =
  'use migrate | create-tenant <name> | tenant limits <tenant_id> [--rpm N] [--tpm N] | tenant keys create|list|revoke <tenant_id> ... | tenant erase <tenant_id> [--status]';

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
      const [sub, ...rest] = args;
      if (sub === 'limits') console.log(JSON.stringify(await tenantLimits(db.db, rest)));
      else if (sub === 'keys') console.log(JSON.stringify(await tenantKeys(db.db, rest)));
      else if (sub === 'erase') console.log(JSON.stringify(await tenantErase(db.db, rest, process.env.LONGHAUL_OPERATOR)));
      else throw new Error(`unknown command tenant ${sub ?? ''}; ${USAGE}`);
      break;
    }
    default:
      throw new Error(`unknown command ${command ?? ''}; ${USAGE}`);
  }
} catch (err) {
  // An operator's mistake (a bad flag, an unknown tenant) is one line, not a stack trace.
  console.error(`[longhaul] ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  await db.close();
}
