/**
 * Erasing finished jobs' content: at the tenant's request (`DELETE /v1/jobs/{id}`,
 * `DELETE /v1/responses/{id}`), past the tenant's retention (the sweeper), and for a tenant's
 * offboarding. One definition of the tombstone for all three, written by one statement per call,
 * so a job is erased entirely or not at all:
 *
 * - gone: the input and every other create parameter that can carry the tenant's text
 *   (instructions, prompt variables, tools, output format), the output and reasoning summary, the
 *   metadata, a tool-call loop's calls and outputs (`required_action`, and each turn's in job_turns); the details of its
 *   job_events (they can hold the tenant's own strings, such as its idempotency key); its
 *   callback events, their finished deliveries and those deliveries' attempts; the
 *   response-cache entry it is the source of.
 * - kept: what the job was and cost, for billing and audit: status, model, the create parameters
 *   that say how it ran (KEPT_REQUEST_FIELDS), usage, cost, timestamps, error codes, and its state
 *   transitions (from, to, source, when) without their details.
 * - a callback delivery still being retried when its job is erased goes on, with the event's body
 *   cut to `{id, object: 'job', erased: true}`; its rows stay after it ends.
 *
 * Why: `erased_reason` says which of the three erased the job. `request` and `tenant` also ask for
 * the job's stored response to be deleted at the provider (response-deletion.ts); `retention`
 * does not (the provider keeps a response for its own retention, 30 days at OpenAI). A job erased
 * again for a reason that asks for the provider delete (a retention tombstone the tenant deletes)
 * takes that reason, and its `erased_at` restarts the provider delete's schedule.
 */
import { type SQL, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { type Job, callbackAttempts, callbackDeliveries, callbackEvents, jobEvents, jobTurns, jobs, responseCache } from './schema.ts';

export type ErasureReason = 'request' | 'retention' | 'tenant';

/** Create parameters that say how the job ran, not what it said: kept. */
const KEPT_REQUEST_FIELDS = ['model', 'stream', 'background', 'reasoning', 'service_tier', 'max_output_tokens', 'truncation'];

/** What each erase statement answers per job erased. */
export type ErasedJob = {
  id: string;
  tenant_id: string;
  response_id: string | null;
  provider_key_id: string | null;
  erased_reason: ErasureReason;
  provider_deleted_at: Date | null;
};

/**
 * The erase statement for the finished jobs among `targets` (a query answering `id`s, evaluated
 * once). Every table is reached through its job_id index.
 */
export function eraseJobsStatement(targets: SQL, reason: ErasureReason, now: Date): SQL {
  const at = sql`${now.toISOString()}::timestamptz`;
  const kept = sql.join(
    KEPT_REQUEST_FIELDS.map((field) => sql`${field}::text`),
    sql`, `,
  );
  const asksProviderDelete = sql`${jobs.erasedReason} in ('request', 'tenant')`;
  return sql`
    with targets as (${targets}),
    erased as (
      update ${jobs}
         set request = (select coalesce(jsonb_object_agg(key, value), '{}'::jsonb) from jsonb_each(${jobs.request}) where key in (${kept})),
             output = null, output_text = null, reasoning_summary = null, metadata = '{}'::jsonb, required_action = null,
             erased_at = case when ${asksProviderDelete} then ${jobs.erasedAt} else ${at} end,
             erased_reason = coalesce(nullif(${jobs.erasedReason}, 'retention'), ${reason}::text),
             updated_at = ${at}
       where ${jobs.id} in (select id from targets) and ${jobs.finishedAt} is not null
       returning ${jobs.id}, ${jobs.tenantId}, ${jobs.responseId}, ${jobs.providerKeyId}, ${jobs.erasedReason}, ${jobs.providerDeletedAt}
    ), transitions as (
      update ${jobEvents} set details = '{}'::jsonb
       where ${jobEvents.jobId} in (select id from erased) and ${jobEvents.details} <> '{}'::jsonb
    ), turns as (
      update ${jobTurns} set tool_calls = '[]'::jsonb, approval_requests = '[]'::jsonb, tool_outputs = null, approvals = null
       where ${jobTurns.jobId} in (select id from erased)
    ), retrying as (
      select distinct ${callbackDeliveries.eventId} as event_id from ${callbackDeliveries}
       where ${callbackDeliveries.jobId} in (select id from erased) and ${callbackDeliveries.status} = 'pending'
    ), attempts as (
      delete from ${callbackAttempts}
       where ${callbackAttempts.deliveryId} in (
         select ${callbackDeliveries.id} from ${callbackDeliveries}
          where ${callbackDeliveries.jobId} in (select id from erased) and ${callbackDeliveries.status} <> 'pending')
    ), deliveries as (
      delete from ${callbackDeliveries}
       where ${callbackDeliveries.jobId} in (select id from erased) and ${callbackDeliveries.status} <> 'pending'
    ), bodies as (
      update ${callbackEvents}
         set payload = jsonb_set(${callbackEvents.payload}, '{data}', jsonb_build_object('id', ${callbackEvents.jobId}, 'object', 'job', 'erased', true))
       where ${callbackEvents.jobId} in (select id from erased) and ${callbackEvents.id} in (select event_id from retrying)
    ), callbacks as (
      delete from ${callbackEvents}
       where ${callbackEvents.jobId} in (select id from erased) and ${callbackEvents.id} not in (select event_id from retrying)
    ), cached as (
      delete from ${responseCache} where ${responseCache.sourceJobId} in (select id from erased)
    )
    select * from erased`;
}

/** Run an erase statement; the jobs it erased. */
export async function runErase(db: Database, statement: SQL): Promise<ErasedJob[]> {
  const result = await db.execute<ErasedJob>(statement);
  return result.rows;
}

/**
 * Erase one finished job of the tenant; the tombstone, or null when the tenant has no such job or
 * it is not finished.
 */
export async function eraseJobContent(db: Database, tenantId: string, jobId: string, now: Date, reason: ErasureReason): Promise<Job | null> {
  const erased = await runErase(db, eraseJobsStatement(sql`select ${jobs.id} from ${jobs} where ${jobs.id} = ${jobId} and ${jobs.tenantId} = ${tenantId}`, reason, now));
  if (erased.length === 0) return null;
  const [job] = await db.select().from(jobs).where(sql`${jobs.id} = ${jobId}`);
  return job ?? null;
}
