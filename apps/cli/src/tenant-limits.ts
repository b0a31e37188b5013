/**
 * `tenant limits <tenant_id> [--rpm N|default] [--tpm N|default] [--cache-ttl N|default]`: show or
 * set a tenant's requests per minute (API) and tokens per minute (provider budget); 0 = unlimited,
 * `default` = the deployment's API_RPM_LIMIT / TENANT_TPM_LIMIT; `--cache-ttl N` turns response
 * caching on for the tenant's jobs that do not say otherwise (seconds; 0 or `default`: off);
 * `--retention-days N` keeps a finished job's content N days, then the sweeper erases it (0: keep
 * it; `default`: the worker's RETENTION_DAYS).
 */
import { parseArgs } from 'node:util';
import { type Database, setTenantLimits } from '@longhaul/db';

/** `--rpm 600` → 600, `--rpm default` → null (the deployment default), absent → undefined (unchanged). */
function limitArg(name: string, raw: string | undefined): number | null | undefined {
  if (raw === undefined) return undefined;
  if (raw === 'default') return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 2_147_483_647) throw new Error(`--${name} expects a whole number >= 0 (0 = unlimited) or 'default', got '${raw}'`);
  return n;
}

/** Days, as the worker's RETENTION_DAYS takes them (0 = keep; at most 100 years). */
function retentionArg(raw: string | undefined): number | null | undefined {
  if (raw === undefined) return undefined;
  if (raw === 'default') return null;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 36_500) throw new Error(`--retention-days expects a whole number of days from 0 (keep) to 36500, or 'default', got '${raw}'`);
  return n;
}

/** Run `tenant limits <args>`; returns what to print (one JSON line). */
export async function tenantLimits(db: Database, args: string[]): Promise<object> {
  const { values, positionals } = parseArgs({
    args,
    options: { rpm: { type: 'string' }, tpm: { type: 'string' }, 'cache-ttl': { type: 'string' }, 'retention-days': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  const [tenantId] = positionals;
  if (!tenantId || positionals.length > 1)
    throw new Error('usage: tenant limits <tenant_id> [--rpm N|default] [--tpm N|default] [--cache-ttl SECONDS|default] [--retention-days DAYS|default]');
  const limits = await setTenantLimits(db, tenantId, {
    rpmLimit: limitArg('rpm', values.rpm),
    tpmLimit: limitArg('tpm', values.tpm),
    cacheTtlSeconds: limitArg('cache-ttl', values['cache-ttl']),
    retentionDays: retentionArg(values['retention-days']),
  });
  if (!limits) throw new Error(`no tenant ${tenantId}`);
  // Running processes pick a change up within 30 s (their cache of tenant limits).
  return { tenant_id: tenantId, rpm_limit: limits.rpmLimit, tpm_limit: limits.tpmLimit, cache_ttl_seconds: limits.cacheTtlSeconds, retention_days: limits.retentionDays };
}
