// Operator CLI: `npm run migrate`, and `node --import tsx scripts/longhaul.ts create-tenant <name>`
// which prints a new tenant's id and API key (shown once).
import { createDb, createTenant, runMigrations } from '@longhaul/db';

const [command, ...args] = process.argv.slice(2);
const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/longhaul';
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
    default:
      throw new Error(`unknown command ${command ?? ''}; use migrate | create-tenant <name>`);
  }
} finally {
  await db.close();
}
