/**
 * The durable deletion of erased jobs' stored responses at the provider.
 *
 * Design note: an erase that asks for it (`erased_reason` `request` or `tenant`) commits first;
 * the job is then in `jobs_provider_delete_idx` (erased_at, while provider_deleted_at is null and
 * it has a response id) until the provider confirms the deletion or answers 404 (already gone:
 * deleted too). The eraser attempts the call at once; when that fails (network, 5xx, 429) the
 * sweeper retries from the index. There is no attempts column: `updated_at` of a tombstone is the
 * time of its last attempt (nothing else writes a finished, erased job), and the wait before the
 * next one is the time since the erase at that attempt, between `baseMs` and `maxMs`: attempts at
 * about base, 2×base, 4×base, ... after the erase, then every maxMs. A job whose next attempt
 * would fall more than `giveUpAfterMs` after its erase has had its last one: it stays out of the
 * index's range and is reported (`lastAttempt`) for a log line with a code.
 *
 * A tenant's offboarding counts its deletes (tenant-erasure.ts): marking a `tenant` job deleted
 * bumps the count of the tenant's running erasure in the same statement, so each is counted once
 * whoever makes the call; the ones given up on are counted when the erasure completes.
 */
import { type SQL, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { jobs, tenantErasures } from './schema.ts';

export interface ProviderDeleteSchedule {
  /** First retry this long after the erase (the eraser's own attempt is at once). Default 30 s. */
  baseMs: number;
  /** Longest wait between two attempts. Default 6 h. */
  maxMs: number;
  /** No attempt later than this after the erase. Default 3 days. */
  giveUpAfterMs: number;
}

export const DEFAULT_PROVIDER_DELETE_SCHEDULE: ProviderDeleteSchedule = { baseMs: 30_000, maxMs: 6 * 3_600_000, giveUpAfterMs: 3 * 86_400_000 };

/** A job whose stored response is to be deleted at the provider. */
export interface PendingProviderDelete {
  id: string;
  tenantId: string;
  responseId: string;
  providerKeyId: string | null;
  erasedReason: 'request' | 'tenant';
  /** A failure of this attempt is final. */
  lastAttempt: boolean;
}

const ms = (n: number) => sql`make_interval(secs => ${n / 1000}::float8)`;

/** When the attempt after one made at `attemptAt` is due. */
function nextAttemptAt(attemptAt: SQL, schedule: ProviderDeleteSchedule): SQL {
  return sql`(${attemptAt} + least(greatest(${attemptAt} - ${jobs.erasedAt}, ${ms(schedule.baseMs)}), ${ms(schedule.maxMs)}))`;
}

const pendingDelete = sql`${jobs.erasedReason} in ('request', 'tenant') and ${jobs.providerDeletedAt} is null and ${jobs.responseId} is not null`;

/**
 * A pending delete that will be attempted again: its next attempt is scheduled within the give-up
 * bound. The attempt itself may come later than scheduled (the sweep interval, a sweeper down), so
 * the range on `erased_at` (what keeps the index scan off the deletes given up on long ago) is
 * twice the bound: an attempt scheduled inside the bound is still made, late.
 */
function retriable(now: Date, schedule: ProviderDeleteSchedule): SQL {
  return sql`${jobs.erasedAt} > ${now.toISOString()}::timestamptz - ${ms(2 * schedule.giveUpAfterMs)}
     and ${nextAttemptAt(sql`${jobs.updatedAt}`, schedule)} <= ${jobs.erasedAt} + ${ms(schedule.giveUpAfterMs)}`;
}

/**
 * Claim up to `limit` jobs whose provider delete is due: their attempt time is set to `now` (so a
 * second sweeper, or the next sweep, leaves them until their next attempt), oldest erase first.
 */
export async function claimDueProviderDeletes(db: Database, now: Date, schedule: ProviderDeleteSchedule, limit: number): Promise<PendingProviderDelete[]> {
  const at = sql`${now.toISOString()}::timestamptz`;
  const result = await db.execute<{
    id: string;
    tenant_id: string;
    response_id: string;
    provider_key_id: string | null;
    erased_reason: 'request' | 'tenant';
    last_attempt: boolean;
  }>(sql`
    with due as (
      select ${jobs.id} from ${jobs}
       where ${pendingDelete} and ${retriable(now, schedule)}
         and ${nextAttemptAt(sql`${jobs.updatedAt}`, schedule)} <= ${at}
       order by ${jobs.erasedAt}
       limit ${limit}
       for update skip locked
    )
    update ${jobs} set updated_at = ${at} from due where ${jobs.id} = due.id
    returning ${jobs.id}, ${jobs.tenantId}, ${jobs.responseId}, ${jobs.providerKeyId}, ${jobs.erasedReason},
              ${nextAttemptAt(at, schedule)} > ${jobs.erasedAt} + ${ms(schedule.giveUpAfterMs)} as last_attempt`);
  return result.rows.map((r) => ({
    id: r.id,
    tenantId: r.tenant_id,
    responseId: r.response_id,
    providerKeyId: r.provider_key_id,
    erasedReason: r.erased_reason,
    lastAttempt: r.last_attempt,
  }));
}

/** Bump one count of the tenant's running erasure, when `jobs` (a query answering `tenant_id`) names it. */
function countForErasure(count: 'providerDeletes', tenantOf: SQL, now: Date): SQL {
  return sql`
    update ${tenantErasures}
       set counts = jsonb_set(${tenantErasures.counts}, ${`{${count}}`}::text[], to_jsonb(coalesce((${tenantErasures.counts} ->> ${count})::int, 0) + 1)),
           updated_at = ${now.toISOString()}::timestamptz
     where ${tenantErasures.status} = 'running' and ${tenantErasures.tenantId} in (${tenantOf})`;
}

/** Record the provider's confirmation (or its 404); false when it was recorded already. */
export async function markProviderDeleted(db: Database, jobId: string, now: Date): Promise<boolean> {
  const result = await db.execute<{ marked: number }>(sql`
    with marked as (
      update ${jobs} set provider_deleted_at = ${now.toISOString()}::timestamptz
       where ${jobs.id} = ${jobId} and ${pendingDelete}
       returning ${jobs.tenantId}, ${jobs.erasedReason}
    ), counted as (${countForErasure('providerDeletes', sql`select tenant_id from marked where erased_reason = 'tenant'`, now)})
    select count(*)::int as marked from marked`);
  return (result.rows[0]?.marked ?? 0) > 0;
}

/**
 * The provider deletes of a tenant's offboarding (its `tenant` erasures): how many will be
 * attempted again, and how many were given up on.
 */
export async function tenantProviderDeleteState(db: Database, tenantId: string, now: Date, schedule: ProviderDeleteSchedule): Promise<{ pending: number; abandoned: number }> {
  const retried = retriable(now, schedule);
  const result = await db.execute<{ pending: number; abandoned: number }>(sql`
    select count(*) filter (where ${retried})::int as pending, count(*) filter (where not (${retried}))::int as abandoned
      from ${jobs}
     where ${pendingDelete} and ${jobs.erasedReason} = 'tenant' and ${jobs.tenantId} = ${tenantId}`);
  return result.rows[0] ?? { pending: 0, abandoned: 0 };
}
