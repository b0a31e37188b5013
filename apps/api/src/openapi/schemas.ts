/**
 * What the API answers, as zod schemas: one per object the routes build (`toJobObject` in
 * @longhaul/db, `toPromptObject` in routes/prompts.ts, ...), kept here so the route files stay
 * about behaviour. They only describe (nothing parses a response with them at run time); the
 * contract test (test/openapi-contract.test.ts) holds them to the truth by validating every
 * answer of a tour of the API against the document built from them.
 *
 * Our own objects are plain `z.object`s, which zod's JSON Schema output closes
 * (`additionalProperties: false`): a field added to a `toXObject` without being described here
 * fails the contract test. What the provider shapes (usage, output items, OpenAI's Response,
 * File and Conversation objects) is left open (`z.looseObject`), as OpenAI's own document does.
 */
import { z } from 'zod';
import { DELIVERY_STATUSES, JOB_STATUSES, RUN_STATUSES } from '@longhaul/core';
import { CALLBACK_EVENT_TYPES, RUN_CALLBACK_EVENT_TYPES } from '@longhaul/db';

/** Unix seconds, or null when it has not happened. */
const at = z
  .number()
  .int()
  .nonnegative()
  .meta({ description: 'Unix seconds', examples: [1767225600] });
const atOrNull = at.nullable();
const usd = z.number().nullable();
const metadata = z.record(z.string(), z.string());
/** Something the provider shapes and Longhaul passes on as it is. */
const open = z.looseObject({});
const jobError = z.looseObject({ code: z.string(), message: z.string() }).describe('`{code, message}`: why the job failed');

export const ErrorObject = z
  .object({
    error: z.object({
      type: z
        .string()
        .describe('`invalid_request_error`, `authentication_error`, `permission_error`, `not_found_error`, `conflict_error`, `rate_limit_error`, `server_error`, ...'),
      code: z.string().describe('Stable machine-readable code, e.g. `invalid_value`, `missing_required_parameter`, `job_already_finished`'),
      message: z.string(),
      param: z.string().nullable().describe('The offending parameter (`input[0].content`), when there is one'),
      request_id: z.string().nullable().describe('The X-Request-Id of the request'),
    }),
  })
  .meta({ id: 'Error', description: "The one error shape of every Longhaul answer (OpenAI's, with the request id)." });

/** `{object: 'list', data, has_more}`; `cursors`: with `first_id` and `last_id` too. */
export function listOf(item: z.ZodType, id: string, cursors = false) {
  const base = { object: z.literal('list'), data: z.array(item), has_more: z.boolean() };
  const shape = cursors ? { ...base, first_id: z.string().nullable(), last_id: z.string().nullable() } : base;
  return z.object(shape).meta({ id });
}

const toolCall = z.object({ call_id: z.string(), name: z.string(), arguments: z.string(), type: z.enum(['function', 'custom']) });

const jobTurn = z.object({
  turn: z.number().int(),
  response_id: z.string().nullable(),
  status: z.string(),
  tool_calls: z.array(toolCall),
  approval_requests: z.array(z.unknown()),
  tool_outputs: z.unknown().nullable(),
  approvals: z.unknown().nullable(),
  usage: open.nullable(),
  cost_usd: usd,
  ended_at: atOrNull,
  answered_at: atOrNull,
  answered_by: z.string().nullable(),
});

export const Job = z
  .object({
    id: z.string().describe('`job_…`'),
    object: z.literal('job'),
    status: z.enum(JOB_STATUSES),
    model: z.string(),
    stream: z.boolean(),
    created_at: at,
    submitted_at: atOrNull,
    started_at: atOrNull,
    finished_at: atOrNull,
    cancel_requested_at: atOrNull,
    expires_at: atOrNull,
    metadata,
    callback_url: z.string().nullable(),
    response_id: z.string().nullable().describe("The provider's response id, once submitted"),
    output_text: z.string().nullable(),
    output: z.array(z.unknown()).nullable().describe("The response's output items, as the provider gave them"),
    usage: open.nullable().describe("The provider's usage object, summed over attempts"),
    reasoning_tokens: z.number().int().nullable(),
    cached_tokens: z.number().int().nullable(),
    reasoning_summary: z.array(z.unknown()).nullable(),
    previous_job_id: z.string().nullable(),
    thread_id: z.string(),
    conversation: z.string().nullable(),
    prompt: z.object({ id: z.string(), version: z.union([z.string(), z.number()]).nullable() }).nullable(),
    estimated_input_tokens: z.number().int().nullable(),
    expected_duration_seconds: z.number().nullable(),
    cost_usd: usd,
    error: jobError.nullable(),
    incomplete_details: open.nullable(),
    erased_at: atOrNull,
    cached_from: z.string().nullable(),
    saved_usd: usd,
    turn: z.number().int(),
    max_turns: z.number().int().nullable(),
    tool_executor: z.object({ url: z.string() }).nullable(),
    required_action: z
      .object({ type: z.string(), tool_calls: z.array(toolCall), approval_requests: z.array(z.unknown()) })
      .nullable()
      .describe('What a job in `requires_action` waits for'),
    turns: z.array(jobTurn).nullable().describe('Its tool-call loop turns (GET /v1/jobs/{id} only)'),
    attempt: z.number().int(),
    attempts: z.array(open).nullable(),
    fallbacks: z.array(open).nullable(),
    validate: open.nullable(),
    processing: z.enum(['background', 'batch']),
    batch: z.object({ id: z.string(), status: z.string().nullable(), provider_batch_id: z.string().nullable() }).nullable(),
    service_tier: z.string().nullable(),
    flex_fallback: z.literal('auto').nullable(),
  })
  .meta({ id: 'Job', description: 'A durable background job (`"object": "job"`).' });

export const DeletedJob = Job.extend({ deleted: z.literal(true) }).meta({ id: 'DeletedJob', description: "A job whose content was erased: the tombstone's usage and cost stay." });

export const JobEvent = z
  .object({
    id: z.string(),
    object: z.literal('job.event'),
    job_id: z.string(),
    from: z.string().nullable(),
    to: z.string(),
    source: z.string(),
    at: z.string().describe('ISO 8601'),
    details: z.unknown().nullable(),
  })
  .meta({ id: 'JobEvent' });

export const Prompt = z
  .object({
    id: z.string(),
    object: z.literal('prompt'),
    name: z.string(),
    description: z.string().nullable(),
    current_version: z.number().int(),
    latest_version: z.number().int(),
    traffic: z.array(z.object({ version: z.number().int(), weight: z.number() })).nullable(),
    created_at: at,
    updated_at: at,
  })
  .meta({ id: 'Prompt' });

export const PromptVersion = z
  .object({
    object: z.literal('prompt.version'),
    prompt_id: z.string(),
    version: z.number().int(),
    template: open,
    variables: z.array(z.string()),
    note: z.string().nullable(),
    cache: z.object({ ttl_seconds: z.number().int(), continuations: z.boolean().optional() }).nullable(),
    static_prefix_tokens: z.number().int(),
    created_at: at,
  })
  .meta({ id: 'PromptVersion' });

export const PromptRollout = z
  .object({
    id: z.string(),
    object: z.literal('prompt.rollout'),
    prompt_id: z.string(),
    status: z.string(),
    candidate_version: z.number().int(),
    baseline_version: z.number().int(),
    steps: z.array(z.number()),
    step_index: z.number().int(),
    percent: z.number().nullable(),
    min_jobs_per_step: z.number().int(),
    guard: open,
    step_started_at: at,
    last_figures: open.nullable(),
    created_at: at,
    finished_at: atOrNull,
  })
  .meta({ id: 'PromptRollout' });

export const PromptEvent = z
  .object({
    id: z.number().int(),
    object: z.literal('prompt.event'),
    type: z.string(),
    rollout_id: z.string().nullable(),
    current_version: z.number().int().nullable(),
    traffic: z.array(open).nullable(),
    details: z.unknown().nullable(),
    at,
  })
  .meta({ id: 'PromptEvent' });

export const Dataset = z
  .object({
    id: z.string(),
    object: z.literal('dataset'),
    name: z.string(),
    description: z.string().nullable(),
    latest_version: z.number().int(),
    item_count: z.number().int(),
    created_at: at,
    updated_at: at,
  })
  .meta({ id: 'Dataset' });

export const DatasetVersion = z
  .object({ object: z.literal('dataset.version'), dataset_id: z.string(), version: z.number().int(), item_count: z.number().int(), note: z.string().nullable(), created_at: at })
  .meta({ id: 'DatasetVersion' });

export const DatasetItem = z
  .object({
    object: z.literal('dataset.item'),
    index: z.number().int(),
    variables: z.record(z.string(), z.string()),
    expected: z.unknown().nullable(),
    metadata: metadata.nullable(),
  })
  .meta({ id: 'DatasetItem' });

const evalCounts = z.object({
  total: z.number().int(),
  pending: z.number().int(),
  running: z.number().int(),
  grading: z.number().int(),
  done: z.number().int(),
  error: z.number().int(),
});

const evalFields = {
  id: z.string(),
  object: z.literal('eval'),
  status: z.string(),
  prompt_id: z.string(),
  versions: z.array(z.number().int()),
  dataset_id: z.string(),
  dataset_version: z.number().int(),
  graders: z.array(open),
  repeats: z.number().int(),
  concurrency: z.number().int(),
  metadata,
  rerun_of: z.string().nullable(),
  error: jobError.nullable(),
  results: evalCounts,
  created_at: at,
  finished_at: atOrNull,
};

export const Eval = z.object(evalFields).meta({ id: 'Eval' });

const n = z.number().nullable();
/** A share with its 95% Wilson interval. */
const rate = z.object({ rate: n, low: n, high: n });
export const EvalWithSummary = z
  .object({
    ...evalFields,
    summary: z.object({
      versions: z.array(
        z.object({
          version: z.number().int(),
          results: z.number().int(),
          finished: z.number().int(),
          errors: z.number().int(),
          mean_score: n,
          pass_rate: rate,
          graders: z.array(z.object({ index: z.number().int(), type: z.string(), mean_score: n, pass_rate: rate })),
          cost_usd: z.object({ total: z.number(), mean: n }),
          latency_ms: z.object({ p50: n, p95: n, p99: n }),
          tokens: z.object({ input: z.number().int(), output: z.number().int() }),
          score_histogram: z.array(z.number().int()).describe('Finished results per tenth of [0, 1]'),
        }),
      ),
      comparisons: z.array(
        z.object({
          baseline_version: z.number().int(),
          version: z.number().int(),
          items: z.number().int(),
          wins: z.number().int(),
          losses: z.number().int(),
          ties: z.number().int(),
          mean_difference: n,
          p_value: n,
          interval: z.object({ low: z.number(), high: z.number() }).nullable().describe('Paired bootstrap interval of the mean difference'),
          significant: z.boolean(),
          winner: z.number().int().nullable(),
        }),
      ),
      graders: z.number().int(),
    }),
  })
  .meta({ id: 'EvalWithSummary' });

export const EvalResult = z
  .object({
    object: z.literal('eval.result'),
    version: z.number().int(),
    item_index: z.number().int(),
    repeat: z.number().int(),
    status: z.string(),
    job_id: z.string().nullable(),
    grader_job_ids: z.array(z.string()).nullable(),
    output_text: z.string().nullable(),
    grades: z.array(open).nullable(),
    error: jobError.nullable(),
    usage: z.object({ input_tokens: z.number().int().nullable(), output_tokens: z.number().int().nullable() }).nullable(),
    cost_usd: z.union([z.number(), z.string()]).nullable(),
    grader_cost_usd: z.union([z.number(), z.string()]).nullable(),
    latency_ms: z.number().nullable(),
  })
  .meta({ id: 'EvalResult' });

const pipelineFields = {
  id: z.string(),
  object: z.literal('pipeline'),
  name: z.string(),
  description: z.string().nullable(),
  latest_version: z.number().int(),
  definition: open.optional().describe("The latest version's definition (one pipeline, not in lists)"),
  created_at: at,
  updated_at: at,
};
export const Pipeline = z.object(pipelineFields).meta({ id: 'Pipeline' });

export const PipelineVersion = z
  .object({ object: z.literal('pipeline.version'), pipeline_id: z.string(), version: z.number().int(), definition: open, note: z.string().nullable(), created_at: at })
  .meta({ id: 'PipelineVersion' });

export const Run = z
  .object({
    id: z.string(),
    object: z.literal('pipeline.run'),
    pipeline_id: z.string(),
    pipeline_version: z.number().int(),
    status: z.enum(RUN_STATUSES),
    inputs: z.record(z.string(), z.unknown()),
    steps: z.record(z.string(), open).describe("Each step's status and jobs"),
    output: z.unknown().nullable(),
    error: jobError.nullable(),
    callback_url: z.string().nullable(),
    metadata,
    created_at: at,
    started_at: atOrNull,
    cancel_requested_at: atOrNull,
    finished_at: atOrNull,
  })
  .meta({ id: 'Run', description: 'A run of a pipeline version (`"object": "pipeline.run"`).' });

export const RunEvent = z
  .object({
    id: z.number().int(),
    object: z.literal('pipeline.run.event'),
    type: z.string().describe('`run.<status>` or `run.step_…`'),
    run_id: z.string(),
    status: z.string(),
    from_status: z.string().nullable(),
    created_at: at,
    data: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'RunEvent' });

export const Batch = z
  .object({
    id: z.string(),
    object: z.literal('batch'),
    status: z.string(),
    model: z.string(),
    provider_batch_id: z.string().nullable(),
    input_file_id: z.string().nullable(),
    output_file_id: z.string().nullable(),
    error_file_id: z.string().nullable(),
    job_count: z.number().int(),
    bytes: z.number().int(),
    request_counts: open.nullable(),
    jobs: z.record(z.string(), z.number().int()).describe('Its jobs counted by status'),
    error: z.unknown().nullable(),
    create_attempts: z.number().int(),
    created_at: at,
    submitted_at: atOrNull,
    finished_at: atOrNull,
    reconciled_at: atOrNull,
  })
  .meta({ id: 'Batch' });

export const BatchEvents = z
  .object({ object: z.literal('list'), data: z.array(z.object({ from: z.string().nullable(), to: z.string(), at: atOrNull, details: z.unknown().nullable() })) })
  .meta({ id: 'BatchEventList' });

/** OpenAI's File object. */
export const File = z
  .object({ id: z.string(), object: z.literal('file'), bytes: z.number().int(), created_at: at, filename: z.string(), purpose: z.string(), status: z.literal('processed') })
  .meta({ id: 'File' });

export const Deleted = z.object({ id: z.string(), object: z.string(), deleted: z.literal(true) }).meta({ id: 'Deleted', description: '`{id, object, deleted: true}`' });

/** OpenAI's Conversation object, from the provider. */
export const Conversation = z.looseObject({ id: z.string(), object: z.literal('conversation') }).meta({ id: 'Conversation' });
export const ConversationItems = z.looseObject({ object: z.literal('list'), data: z.array(open) }).meta({ id: 'ConversationItemList' });

/** OpenAI's Response object (https://platform.openai.com/docs/api-reference/responses/object). */
export const Response = z.looseObject({ id: z.string(), object: z.literal('response'), status: z.string() }).meta({ id: 'Response' });
export const ResponseInputItems = z.looseObject({ object: z.literal('list'), data: z.array(open), has_more: z.boolean() }).meta({ id: 'ResponseInputItemList' });

export const WebhookEndpoint = z
  .object({
    id: z.string(),
    object: z.literal('webhook_endpoint'),
    url: z.string(),
    description: z.string().nullable(),
    event_types: z.array(z.string()).describe('Empty: the events announced by default (ends, and a loop waiting for answers)'),
    enabled: z.boolean(),
    thin_payload: z.boolean(),
    disabled_reason: z.string().nullable(),
    failing_since: atOrNull,
    created_at: at,
    updated_at: at,
    secret: z.string().optional().describe('The `whsec_` signing secret: shown at creation and rotation only'),
  })
  .meta({ id: 'WebhookEndpoint' });

export const Recovery = z.object({ object: z.literal('recovery'), endpoint_id: z.string(), deliveries: z.number().int() }).meta({ id: 'Recovery' });

export const Delivery = z
  .object({
    id: z.string(),
    object: z.literal('delivery'),
    event_id: z.string(),
    job_id: z.string().nullable(),
    endpoint_id: z.string().nullable(),
    url: z.string(),
    status: z.enum(DELIVERY_STATUSES),
    attempts: z.number().int(),
    next_attempt_at: atOrNull,
    last_status_code: z.number().int().nullable(),
    last_error: z.string().nullable(),
    created_at: at,
    finished_at: atOrNull,
    attempt_log: z
      .array(
        z.object({
          attempt: z.number().int(),
          status_code: z.number().int().nullable(),
          latency_ms: z.number().nullable(),
          error: z.string().nullable(),
          at: atOrNull,
          next_attempt_at: atOrNull,
        }),
      )
      .optional()
      .describe('Every attempt (one delivery, not in lists)'),
  })
  .meta({ id: 'Delivery' });

export const CallbackSecret = z.object({ object: z.literal('callback_secret'), secret: z.string() }).meta({ id: 'CallbackSecret' });

const usageFigures = {
  jobs: z.number().int(),
  input_tokens: z.number().int(),
  cached_tokens: z.number().int(),
  output_tokens: z.number().int(),
  reasoning_tokens: z.number().int(),
  total_tokens: z.number().int(),
  cached_ratio: z.number(),
  cache_hit_ratio: z.number().nullable(),
  cost_usd: z.number(),
  unpriced_jobs: z.number().int(),
  cached_jobs: z.number().int(),
  saved_usd: z.number(),
};
export const Usage = z
  .object({
    object: z.literal('usage'),
    group_by: z.enum(['model', 'day', 'prompt_version']),
    from: at,
    to: at,
    data: z.array(
      z.object({
        ...usageFigures,
        model: z.string().optional(),
        day: z.string().optional(),
        prompt_id: z.string().nullable().optional(),
        prompt_version: z.number().int().nullable().optional(),
      }),
    ),
    total: z.object(usageFigures),
  })
  .meta({ id: 'Usage' });

export const CacheDeleted = z.object({ object: z.literal('cache.deleted'), deleted: z.number().int() }).meta({ id: 'CacheDeleted' });

export const ApiKey = z
  .object({
    id: z.string(),
    object: z.literal('api_key'),
    name: z.string().nullable(),
    prefix: z.string(),
    scopes: z.array(z.string()),
    status: z.string(),
    created_at: atOrNull,
    last_used_at: atOrNull,
    expires_at: atOrNull,
    revoked_at: atOrNull,
  })
  .meta({ id: 'ApiKey' });
export const NewApiKey = ApiKey.extend({ key: z.string().describe('The secret `lh_sk_…`: shown once') }).meta({ id: 'NewApiKey' });

/** A callback event as it is POSTed (Standard Webhooks signed): `data` is the job or run object. */
function eventOf(data: z.ZodType, id: string, types: readonly string[], description: string) {
  return z
    .object({
      id: z.string().describe('`evt_…`: the same on every retry (the `webhook-id` header)'),
      type: z.enum(types as [string, ...string[]]),
      created_at: at,
      sequence: z.number().int(),
      data,
    })
    .meta({ id, description });
}
export const JobCallbackEvent = eventOf(Job, 'JobCallbackEvent', CALLBACK_EVENT_TYPES, 'A job changed state: `job.<status>`, with the job object as it then was.');
export const RunCallbackEvent = eventOf(Run, 'RunCallbackEvent', RUN_CALLBACK_EVENT_TYPES, 'A pipeline run changed state: `run.<status>`, with the run object.');
export const ThinEvent = z
  .object({ id: z.string(), type: z.string(), created_at: at, sequence: z.number().int(), data: z.object({ id: z.string().nullable() }) })
  .meta({ id: 'ThinCallbackEvent', description: 'What an endpoint with `thin_payload` receives: fetch the object by its id.' });
