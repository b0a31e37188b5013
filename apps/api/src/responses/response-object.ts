/**
 * A job as OpenAI's Response object (`components.schemas.Response` of the OpenAPI document), so
 * the official SDK reads it as it reads OpenAI's: built from the job's row (its stored request,
 * status, output, usage), never from a provider call. The provider's response id stays out of
 * it (it is the job's `response_id` on /v1/jobs); Longhaul's one addition is where OpenAI's
 * schema allows it, the `longhaul_job_id` metadata key the provider already carries.
 *
 * Job statuses are told in OpenAI's: `pending` (waiting for admission) is `queued`, `cancelling`
 * is still `in_progress` (the response runs until the provider has cancelled it), `expired`
 * (Longhaul's deadline passed) is `failed`.
 */
import { JOB_ID_METADATA_KEY, assertNever, type JobStatus } from '@longhaul/core';
import type { Job } from '@longhaul/db';
import { responseIdOf } from './ids.ts';

/** OpenAI's Response statuses. */
export type ResponseStatus = 'queued' | 'in_progress' | 'completed' | 'failed' | 'cancelled' | 'incomplete';

export function responseStatusOf(status: JobStatus): ResponseStatus {
  switch (status) {
    case 'pending':
    case 'queued':
      return 'queued';
    case 'in_progress':
    case 'cancelling':
    // Between two turns of a Longhaul tool-call loop: the run goes on.
    case 'requires_action':
      return 'in_progress';
    case 'completed':
    case 'failed':
    case 'cancelled':
    case 'incomplete':
      return status;
    case 'expired':
      return 'failed';
    default:
      return assertNever(status);
  }
}

/** `ResponseErrorCode` of the OpenAPI document: the codes a Response's `error` may carry. */
const RESPONSE_ERROR_CODES = new Set([
  'server_error',
  'rate_limit_exceeded',
  'invalid_prompt',
  'data_residency_mismatch',
  'bio_policy',
  'vector_store_timeout',
  'invalid_image',
  'invalid_image_format',
  'invalid_base64_image',
  'invalid_image_url',
  'image_too_large',
  'image_too_small',
  'image_parse_error',
  'image_content_policy_violation',
  'invalid_image_mode',
  'image_file_too_large',
  'unsupported_image_media_type',
  'empty_image_file',
  'failed_to_download_image',
  'image_file_not_found',
]);

/** The Response's `error`: the provider's own when it is one of OpenAI's codes, else `server_error` naming Longhaul's code. */
export function responseErrorOf(job: Pick<Job, 'status' | 'error'>): { code: string; message: string } | null {
  if (job.status === 'expired') {
    return { code: 'server_error', message: `The job expired: it was not finished by its deadline (Longhaul code: ${job.error?.code ?? 'deadline_exceeded'}).` };
  }
  if (job.status !== 'failed') return null;
  const error = job.error ?? { code: 'server_error', message: 'The response failed.' };
  if (RESPONSE_ERROR_CODES.has(error.code)) return error;
  return { code: 'server_error', message: `${error.message} (Longhaul code: ${error.code})` };
}

type Params = Record<string, unknown>;

function unix(date: Date | null): number | null {
  return date === null ? null : Math.floor(date.getTime() / 1000);
}

/** OpenAI's usage object: its required detail fields are always present. */
function usageOf(job: Job) {
  const usage = job.usage;
  if (!usage) return null;
  return {
    ...usage,
    input_tokens_details: { cache_write_tokens: 0, ...usage.input_tokens_details, cached_tokens: usage.input_tokens_details?.cached_tokens ?? 0 },
    output_tokens_details: { ...usage.output_tokens_details, reasoning_tokens: usage.output_tokens_details?.reasoning_tokens ?? 0 },
  };
}

function promptOf(job: Job, request: Params) {
  if (job.promptId) return { id: job.promptId, version: job.promptVersion === null ? null : String(job.promptVersion), variables: null };
  const hosted = request.prompt as { id: string; version?: string | null; variables?: Params | null } | undefined;
  return hosted ? { id: hosted.id, version: hosted.version ?? null, variables: hosted.variables ?? null } : null;
}

function conversationOf(request: Params): { id: string } | null {
  const conversation = request.conversation;
  if (typeof conversation === 'string') return { id: conversation };
  if (conversation && typeof conversation === 'object' && typeof (conversation as { id?: unknown }).id === 'string') return { id: (conversation as { id: string }).id };
  return null;
}

/** Optional create parameters the Response echoes as given, and null when not. */
const ECHOED_OR_NULL = ['instructions', 'max_output_tokens', 'max_tool_calls', 'prompt_cache_key', 'prompt_cache_retention', 'safety_identifier'] as const;

/** The job as a Response object. */
export function toResponseObject(job: Job) {
  const request = job.request as Params;
  const echoed = Object.fromEntries(ECHOED_OR_NULL.map((key) => [key, request[key] ?? null]));
  const status = responseStatusOf(job.status);
  const usage = usageOf(job);
  const reasoning = request.reasoning as { effort?: string | null; summary?: string | null } | undefined;
  return {
    id: responseIdOf(job.id),
    object: 'response' as const,
    created_at: unix(job.createdAt)!,
    status,
    background: request.background !== false,
    completed_at: status === 'completed' ? unix(job.finishedAt) : null,
    error: responseErrorOf(job),
    incomplete_details: status === 'incomplete' ? (job.incompleteDetails ?? { reason: 'max_output_tokens' }) : null,
    ...echoed,
    metadata: { ...job.metadata, [JOB_ID_METADATA_KEY]: job.id },
    model: job.model,
    output: job.output ?? [],
    parallel_tool_calls: request.parallel_tool_calls !== false,
    previous_response_id: job.previousJobId ? responseIdOf(job.previousJobId) : ((request.previous_response_id as string | undefined) ?? null),
    prompt: promptOf(job, request),
    reasoning: reasoning ? { effort: reasoning.effort ?? null, summary: reasoning.summary ?? null } : null,
    service_tier: (request.service_tier as string | undefined) ?? 'auto',
    store: true,
    temperature: (request.temperature as number | undefined) ?? 1,
    text: (request.text as Params | undefined) ?? { format: { type: 'text' } },
    tool_choice: request.tool_choice ?? 'auto',
    tools: (request.tools as unknown[] | undefined) ?? [],
    top_logprobs: (request.top_logprobs as number | undefined) ?? 0,
    top_p: (request.top_p as number | undefined) ?? 1,
    truncation: (request.truncation as string | undefined) ?? 'disabled',
    conversation: conversationOf(request),
    // Present only when known (OpenAI's schema has no null for these).
    ...(usage ? { usage } : {}),
    ...(typeof request.user === 'string' ? { user: request.user } : {}),
  };
}

export type ResponseObject = ReturnType<typeof toResponseObject>;
