/**
 * The body of `POST /v1/jobs`: the Responses create parameters a reasoning job needs, plus
 * Longhaul's own fields (`callback_url`, `previous_job_id`, `expected_duration_seconds`,
 * `tool_executor`, ...), which are never sent to the provider. Strict objects everywhere we
 * define the shape, so a misspelt field is a 400 naming it rather than silently ignored.
 */
import { z } from 'zod';
import { type CacheSetting, type Fallback, JOB_ID_METADATA_KEY, MAX_CACHE_TTL_SECONDS, MAX_TURNS_LIMIT, type Validation } from '@longhaul/core';
import { jsonSchemaProblem } from '@longhaul/db';
import { ids } from './request-input.ts';

/** OpenAI's limit; Longhaul's JOB_ID_METADATA_KEY counts towards it. */
const MAX_METADATA_KEYS = 16;

const inputText = z.strictObject({ type: z.literal('input_text'), text: z.string() });
const inputImage = z.strictObject({
  type: z.literal('input_image'),
  image_url: z.string().max(20_000_000).optional(),
  file_id: z.string().max(256).optional(),
  detail: z.enum(['low', 'high', 'auto']).default('auto'),
});
const inputFile = z.strictObject({
  type: z.literal('input_file'),
  file_id: z.string().max(256).optional(),
  file_url: z.string().max(2048).optional(),
  file_data: z.string().optional(),
  filename: z.string().max(512).optional(),
});
const outputText = z.strictObject({
  type: z.literal('output_text'),
  text: z.string(),
  annotations: z.array(z.unknown()).optional(),
  logprobs: z.array(z.unknown()).optional(),
});
const refusal = z.strictObject({ type: z.literal('refusal'), refusal: z.string() });

const contentPart = z.discriminatedUnion('type', [inputText, inputImage, inputFile, outputText, refusal]);

const message = z.strictObject({
  type: z.literal('message').optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: z.union([z.string(), z.array(contentPart).min(1)]),
  id: z.string().optional(),
  status: z.enum(['in_progress', 'completed', 'incomplete']).optional(),
});

/** Items other than messages (tool calls and their outputs, references) pass through as objects. */
const otherItem = z.looseObject({
  type: z.enum(['function_call', 'function_call_output', 'reasoning', 'item_reference', 'custom_tool_call', 'custom_tool_call_output']),
});

const inputItem = z.union([message, otherItem]);

const metadata = z
  .record(z.string().min(1).max(64, 'metadata keys are at most 64 characters'), z.string().max(512, 'metadata values are at most 512 characters'))
  .refine((m) => !(JOB_ID_METADATA_KEY in m), { message: `metadata key "${JOB_ID_METADATA_KEY}" is reserved for Longhaul` })
  .refine((m) => Object.keys(m).length <= MAX_METADATA_KEYS - 1, {
    message: `metadata has at most ${MAX_METADATA_KEYS - 1} keys (OpenAI allows ${MAX_METADATA_KEYS}; Longhaul adds "${JOB_ID_METADATA_KEY}")`,
  });

const httpUrl = z
  .string()
  .max(2048)
  .refine((u) => {
    try {
      const url = new URL(u);
      return url.protocol === 'https:' || url.protocol === 'http:';
    } catch {
      return false;
    }
  }, 'must be an absolute http(s) URL');

/** The longest completion hint: a day, beyond any response OpenAI runs. */
const MAX_EXPECTED_DURATION_SECONDS = 86_400;

/** A prompt variable: text, or a content part (a file or image given as the variable's value). */
const promptVariable = z.union([z.string().max(1_000_000), inputText, inputImage, inputFile]);

/** `{"ttl_seconds": 86400, "continuations"?: true}`, or `false`; also a prompt version's default. */
export const cacheSetting = z.union([
  z.literal(false),
  z.strictObject({
    ttl_seconds: z.number().int().positive().max(MAX_CACHE_TTL_SECONDS, `at most ${MAX_CACHE_TTL_SECONDS} s (30 days)`),
    continuations: z.boolean().optional(),
  }),
]);

/** The cache setting as core's rules take it. */
export function toCacheSetting(raw: z.infer<typeof cacheSetting> | null | undefined): CacheSetting | false | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (raw === false) return false;
  return { ttlSeconds: raw.ttl_seconds, continuations: raw.continuations };
}

const reasoning = z.strictObject({
  effort: z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh']).optional(),
  summary: z.enum(['auto', 'concise', 'detailed']).nullable().optional(),
});
const maxOutputTokens = z.number().int().min(16).max(1_000_000);

/** The most fallbacks a job may have (its attempts are at most one more). */
const MAX_FALLBACKS = 5;

/** One fallback (@longhaul/core fallbacks.ts): what the next attempt changes; something it must change. */
const fallback = z
  .strictObject({
    model: z.string().min(1).max(256).optional(),
    reasoning: reasoning.optional(),
    max_output_tokens: maxOutputTokens.optional(),
    instructions: z.string().optional(),
    input: z.literal('truncate_half').optional(),
  })
  .refine((f) => Object.values(f).some((v) => v !== undefined), { message: 'a fallback must change something: model, reasoning, max_output_tokens, instructions or input' });

/** What an attempt's output must satisfy; a failing one counts as a failed attempt. */
const validate = z
  .strictObject({
    min_output_chars: z.number().int().min(1).max(10_000_000).optional(),
    json_schema: z
      .record(z.string(), z.unknown())
      .superRefine((schema, ctx) => {
        const problem = jsonSchemaProblem(schema);
        if (problem !== null) ctx.addIssue({ code: 'custom', message: `not a valid JSON schema: ${problem}` });
      })
      .optional(),
    must_include: z.array(z.string().min(1).max(10_000)).min(1).max(50).optional(),
  })
  .refine((v) => Object.values(v).some((x) => x !== undefined), { message: 'validate must name a check: min_output_chars, json_schema or must_include' });

export const jobRequestSchema = z.strictObject({
  /** Required unless the prompt supplies it. */
  model: z.string().min(1).max(256).optional(),
  /** Required unless a prompt is given. */
  input: z.union([z.string().min(1), z.array(inputItem).min(1)]).optional(),
  /** Continue an earlier job of the same tenant: its response becomes `previous_response_id`. */
  previous_job_id: ids.job.optional(),
  /** A conversation created with POST /v1/conversations (`conv_…`), or `{ id }`. */
  conversation: z.union([z.string().min(1).max(256), z.strictObject({ id: z.string().min(1).max(256) })]).optional(),
  /**
   * A reusable prompt: a Longhaul prompt (`prm_…`, rendered here) or an OpenAI hosted prompt
   * (`pmpt_…`, passed through).
   */
  prompt: z
    .strictObject({
      id: z.string().min(1).max(256),
      version: z
        .union([z.string().regex(/^\d{1,9}$/, 'must be a version number'), z.number().int().positive()])
        .nullable()
        .optional(),
      variables: z.record(z.string().min(1).max(128), promptVariable).optional(),
    })
    .optional(),
  instructions: z.string().optional(),
  reasoning: reasoning.optional(),
  max_output_tokens: maxOutputTokens.optional(),
  metadata: metadata.optional(),
  text: z
    .strictObject({
      format: z.looseObject({ type: z.enum(['text', 'json_schema', 'json_object']) }).optional(),
      verbosity: z.enum(['low', 'medium', 'high']).optional(),
    })
    .optional(),
  tools: z
    .array(z.looseObject({ type: z.string().min(1) }))
    .max(128)
    .optional(),
  tool_choice: z.union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.string() })]).optional(),
  parallel_tool_calls: z.boolean().optional(),
  truncation: z.enum(['auto', 'disabled']).optional(),
  service_tier: z.enum(['auto', 'default', 'flex', 'priority']).optional(),
  prompt_cache_key: z.string().min(1).max(256).optional(),
  safety_identifier: z.string().max(64).optional(),
  previous_response_id: z.string().min(1).max(256).optional(),
  /** Background mode is what Longhaul does; accepted for copy-paste compatibility, never false. */
  background: z.literal(true).optional(),
  /** Follow the provider's event stream live (GET /v1/jobs/{id}/stream carries its events). */
  stream: z.boolean().optional(),
  store: z.literal(true).optional(),
  callback_url: httpUrl.optional(),
  /**
   * The completion hint: how long the job is expected to take at the provider, in seconds
   * (fractions allowed). Its polls wait for about that long (schedules.ts in @longhaul/core).
   */
  expected_duration_seconds: z.number().positive().max(MAX_EXPECTED_DURATION_SECONDS).optional(),
  /** Response caching for this job: an identical earlier result answers it (`false`: never, whatever the defaults). */
  cache: cacheSetting.optional(),
  /** The most turns of the job's tool-call loop (@longhaul/core tool-loop.ts; default 10 with tools the client runs). */
  max_turns: z.number().int().min(1).max(MAX_TURNS_LIMIT).optional(),
  /** Where Longhaul runs the loop's tool calls (a signed POST per turn) instead of waiting for the tenant's answers. */
  tool_executor: z.strictObject({ url: httpUrl }).optional(),
  /** Tried in order when an attempt fails in a way another may fix, or fails `validate` (@longhaul/core fallbacks.ts). */
  fallbacks: z.array(fallback).min(1).max(MAX_FALLBACKS).optional(),
  /** What the output must satisfy: a failing attempt is followed by the next fallback, or fails the job (`validation_failed`). */
  validate: validate.optional(),
  /** `batch`: sent in a Batch API batch within 24 h, at half price (@longhaul/core batch.ts); default `background`. */
  processing: z.enum(['background', 'batch']).optional(),
  /** With `service_tier: "flex"`: `auto` runs the job at the standard tier when flex stays unavailable (FLEX_RETRY_WINDOW_SECONDS); absent, it fails with `flex_unavailable`. */
  flex_fallback: z.literal('auto').optional(),
});

export type JobRequest = z.infer<typeof jobRequestSchema>;

/** Split a validated body into the provider parameters and Longhaul's own fields. */
export function splitJobRequest(body: JobRequest): {
  providerParams: Record<string, unknown>;
  metadata: Record<string, string>;
  callbackUrl: string | null;
  previousJobId: string | null;
  /** The completion hint in whole milliseconds (at least 1), null when none was given. */
  expectedDurationMs: number | null;
  cache: CacheSetting | false | undefined;
  /** The tool-call loop's `max_turns` as given; null: the default, decided once the tools are known. */
  maxTurns: number | null;
  fallbacks: Fallback[] | null;
  validation: Validation | null;
  flexFallback: 'auto' | null;
  processing: 'background' | 'batch';
} {
  const {
    callback_url,
    metadata: meta,
    background: _b,
    store: _s,
    previous_job_id,
    expected_duration_seconds,
    cache,
    max_turns,
    tool_executor: _t,
    fallbacks,
    validate,
    flex_fallback,
    processing,
    ...providerParams
  } = body;
  return {
    processing: processing ?? 'background',
    fallbacks: fallbacks ?? null,
    validation: validate ?? null,
    flexFallback: flex_fallback ?? null,
    maxTurns: max_turns ?? null,
    cache: toCacheSetting(cache),
    providerParams,
    metadata: meta ?? {},
    callbackUrl: callback_url ?? null,
    previousJobId: previous_job_id ?? null,
    expectedDurationMs: expected_duration_seconds === undefined ? null : Math.max(1, Math.round(expected_duration_seconds * 1000)),
  };
}
