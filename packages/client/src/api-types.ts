/**
 * The client's names for the API's objects, all taken from the types openapi-typescript generates
 * (src/schema.ts) from the committed OpenAPI snapshot (openapi.json, `npm run generate`). The
 * snapshot is checked against what the API serves at GET /openapi.json, so a route or field that
 * changes on the server fails this package's typecheck once the snapshot is regenerated.
 */
import type { components, operations, paths, webhooks } from './schema.ts';

export type { components, operations, paths, webhooks };

type Schemas = components['schemas'];
type JsonBody<Op extends keyof operations> = operations[Op] extends { requestBody: { content: { 'application/json': infer B } } } ? B : never;
type Query<Op extends keyof operations> = operations[Op] extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

export type Job = Schemas['Job'];
export type JobStatus = Job['status'];
export type JobList = Schemas['JobList'];
export type JobEvent = Schemas['JobEvent'];
export type JobEventList = Schemas['JobEventList'];
/** POST /v1/jobs: the Responses create parameters plus Longhaul's own (README "Jobs"). */
export type JobCreateParams = JsonBody<'createJob'>;
export type JobListParams = Query<'listJobs'>;
export type Prompt = Schemas['Prompt'];
export type PromptList = Schemas['PromptList'];
export type PromptVersionList = Schemas['PromptVersionList'];
export type PromptCreateParams = JsonBody<'createPrompt'>;
export type PromptListParams = Query<'listPrompts'>;
export type PromptVersionListParams = Query<'listPromptVersions'>;
export type UsageReport = Schemas['Usage'];
export type UsageRow = UsageReport['data'][number];
export type UsageTotals = UsageReport['total'];
export type UsageParams = Query<'getUsage'>;
/** What a callback carries (`data` is `{id}` alone for an endpoint with `thin_payload`). */
export type CallbackEvent = Schemas['JobCallbackEvent'] | Schemas['ThinCallbackEvent'];

/** A status that never changes again. */
export const TERMINAL_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'cancelled', 'incomplete', 'expired'];

/** The token counts of a job's `usage` (the document gives it as the provider's free-form object). */
export function outputTokensOf(job: Job): number | null {
  const n = job.usage?.output_tokens;
  return typeof n === 'number' ? n : null;
}
