/**
 * Erasing a finished job's content at the tenant's request (`DELETE /v1/responses/{id}`): its
 * input and every other create parameter that can carry the tenant's text (instructions, prompt
 * variables, tools, output format), its output and reasoning summary, its metadata, and the job
 * objects in its callback events' bodies, and the response-cache entry it is the source of. What the job was and cost stays: status, model, usage,
 * cost, timestamps, error codes and the event log of its states, for usage and audit. One
 * statement, so a job is erased entirely or not at all.
 */
import { sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { type Job, callbackEvents, jobs, responseCache } from './schema.ts';

/** Create parameters that say how the job ran, not what it said: kept. */
const KEPT_REQUEST_FIELDS = ['model', 'stream', 'background', 'reasoning', 'service_tier', 'max_output_tokens', 'truncation'];

/** Erase a finished job's content; null when the tenant has no such job or it is not finished. */
export async function eraseJobContent(db: Database, tenantId: string, jobId: string, now: Date): Promise<Job | null> {
  const kept = sql.join(
    KEPT_REQUEST_FIELDS.map((field) => sql`${field}::text`),
    sql`, `,
  );
  const result = await db.execute<{ id: string }>(sql`
    with erased as (
      update ${jobs}
         set request = (select coalesce(jsonb_object_agg(key, value), '{}'::jsonb) from jsonb_each(${jobs.request}) where key in (${kept})),
             output = null, output_text = null, reasoning_summary = null, metadata = '{}'::jsonb,
             erased_at = coalesce(${jobs.erasedAt}, ${now.toISOString()}::timestamptz), updated_at = ${now.toISOString()}::timestamptz
       where ${jobs.id} = ${jobId} and ${jobs.tenantId} = ${tenantId} and ${jobs.finishedAt} is not null
       returning ${jobs.id}
    ), bodies as (
      update ${callbackEvents}
         set payload = jsonb_set(${callbackEvents.payload}, '{data}', jsonb_build_object('id', ${callbackEvents.jobId}, 'object', 'job', 'erased', true))
       where ${callbackEvents.jobId} in (select id from erased)
    ), cached as (
      delete from ${responseCache} where ${responseCache.sourceJobId} in (select id from erased)
    )
    select id from erased`);
  if (result.rows.length === 0) return null;
  const [job] = await db.select().from(jobs).where(sql`${jobs.id} = ${jobId}`);
  return job ?? null;
}
