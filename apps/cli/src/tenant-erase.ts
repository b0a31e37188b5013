/**
 * `tenant erase <tenant_id>`: start offboarding a tenant (or show the erasure already running).
 * The worker's sweeper does the work in batches (apps/worker/src/tenant-erasure.ts): it revokes the
 * tenant's API keys and disables its webhook endpoints, cancels its active jobs, erases every
 * finished job and deletes its response and the tenant's files at the provider.
 * `tenant erase <tenant_id> --status` only reports the tenant's erasures, newest first.
 */
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { type Database, type TenantErasure, listTenantErasures, requestTenantErasure } from '@longhaul/db';

const USAGE = 'usage: tenant erase <tenant_id> [--status]';

function erasureObject(e: TenantErasure) {
  const at = (d: Date | null) => (d ? d.toISOString() : null);
  return {
    id: e.id,
    object: 'tenant_erasure',
    tenant_id: e.tenantId,
    status: e.status,
    requested_by: e.requestedBy,
    counts: e.counts,
    created_at: at(e.createdAt),
    updated_at: at(e.updatedAt),
    finished_at: at(e.finishedAt),
  };
}

/** Who asked, for the erasure's record: the named operator (LONGHAUL_OPERATOR), else the OS user. */
function operator(named: string | undefined): string {
  if (named?.trim()) return named.trim();
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

/** Run `tenant erase <args>`; returns what to print (one JSON line). */
export async function tenantErase(db: Database, args: string[], operatorName?: string): Promise<object> {
  const { values, positionals } = parseArgs({ args, options: { status: { type: 'boolean' } }, allowPositionals: true, strict: true });
  const [tenantId] = positionals;
  if (!tenantId || positionals.length > 1) throw new Error(USAGE);
  if (values.status) {
    const erasures = await listTenantErasures(db, tenantId);
    return { object: 'list', data: erasures.map(erasureObject) };
  }
  const requested = await requestTenantErasure(db, tenantId, operator(operatorName), new Date());
  if (!requested) throw new Error(`no tenant ${tenantId}`);
  return { ...erasureObject(requested.erasure), created: requested.created };
}
