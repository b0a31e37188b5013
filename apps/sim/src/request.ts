/**
 * Parsing of `POST /v1/responses` bodies: the subset of OpenAI's CreateResponse the simulator
 * understands (unknown keys are accepted and ignored, as the real API tolerates new SDK fields),
 * OpenAI's metadata limits, and the simulator directives carried in metadata.
 */
import { z } from 'zod';
import { invalidRequest, type ApiError } from './errors.ts';
import { REASONING_EFFORTS } from './generation.ts';

export const OUTCOMES = ['completed', 'failed', 'incomplete'] as const;
export type Outcome = (typeof OUTCOMES)[number];

const METADATA_MAX_KEYS = 16;
const METADATA_MAX_KEY_LENGTH = 64;
const METADATA_MAX_VALUE_LENGTH = 512;

const optional = <T extends z.ZodType>(schema: T) => schema.nullable().optional();

export const createRequestSchema = z.looseObject({
  /** Required unless a hosted `prompt` is given (the simulator checks that after parsing). */
  model: z.string().min(1).optional(),
  input: optional(z.union([z.string(), z.array(z.looseObject({}))])),
  instructions: optional(z.string()),
  reasoning: optional(
    z.looseObject({
      effort: optional(z.enum(REASONING_EFFORTS)),
      summary: optional(z.enum(['auto', 'concise', 'detailed'])),
      generate_summary: optional(z.enum(['auto', 'concise', 'detailed'])),
    }),
  ),
  max_output_tokens: optional(z.number().int().min(16)),
  metadata: optional(z.record(z.string(), z.string())),
  text: optional(z.looseObject({})),
  tools: optional(z.array(z.looseObject({}))),
  tool_choice: optional(z.union([z.enum(['none', 'auto', 'required']), z.looseObject({ type: z.string() })])),
  temperature: optional(z.number().min(0).max(2)),
  top_p: optional(z.number().min(0).max(1)),
  parallel_tool_calls: optional(z.boolean()),
  prompt_cache_key: optional(z.string()),
  previous_response_id: optional(z.string()),
  conversation: optional(z.union([z.string().min(1), z.looseObject({ id: z.string().min(1) })])),
  prompt: optional(
    z.looseObject({
      id: z.string().min(1),
      version: optional(z.string()),
      variables: optional(z.record(z.string(), z.unknown())),
    }),
  ),
  store: optional(z.boolean()),
  background: optional(z.boolean()),
  stream: optional(z.boolean()),
  truncation: optional(z.enum(['auto', 'disabled'])),
  service_tier: optional(z.enum(['auto', 'default', 'flex', 'scale', 'priority'])),
  user: z.string().optional(),
  safety_identifier: optional(z.string().max(64)),
});

export type CreateRequest = z.infer<typeof createRequestSchema>;

/** Per-request simulator directives, read from metadata (`sim_duration_ms`, `sim_outcome`). */
export interface Directives {
  durationMs: number | null;
  outcome: Outcome;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: ApiError };

export function parseCreateRequest(body: unknown): ParseResult<CreateRequest> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, error: invalidRequest('The request body must be a JSON object.', null, 'invalid_type') };
  }
  const parsed = createRequestSchema.safeParse(body);
  if (!parsed.success) return { ok: false, error: toApiError(body, parsed.error.issues[0]) };
  const metadataError = checkMetadata(parsed.data.metadata ?? null);
  if (metadataError !== null) return { ok: false, error: metadataError };
  const effortError = checkEffortForModel(parsed.data.model, parsed.data.reasoning?.effort);
  if (effortError !== null) return { ok: false, error: effortError };
  return { ok: true, value: parsed.data };
}

/** The o-series models take low, medium and high only (`minimal` and `none` came with GPT-5), as OpenAI answers. */
const O_SERIES = /^o\d(-mini|-pro)?(-\d{4}-\d{2}-\d{2})?$/;

function checkEffortForModel(model: string | undefined, effort: string | null | undefined): ApiError | null {
  if (!model || !effort || !O_SERIES.test(model) || ['low', 'medium', 'high'].includes(effort)) return null;
  return invalidRequest(
    `Unsupported value: '${effort}' is not supported with the '${model}' model. Supported values are: 'low', 'medium', and 'high'.`,
    'reasoning.effort',
    'unsupported_value',
  );
}

export function parseDirectives(metadata: Record<string, string> | null | undefined): ParseResult<Directives> {
  const rawDuration = metadata?.['sim_duration_ms'];
  const rawOutcome = metadata?.['sim_outcome'];
  let durationMs: number | null = null;
  if (rawDuration !== undefined) {
    durationMs = Number(rawDuration);
    if (rawDuration.trim() === '' || !Number.isFinite(durationMs) || durationMs < 0) {
      const message = `Invalid 'metadata.sim_duration_ms': expected a non-negative number of milliseconds, got '${rawDuration}'.`;
      return { ok: false, error: invalidRequest(message, 'metadata.sim_duration_ms', 'invalid_value') };
    }
  }
  let outcome: Outcome = 'completed';
  if (rawOutcome !== undefined) {
    if (!(OUTCOMES as readonly string[]).includes(rawOutcome)) {
      const message = `Invalid 'metadata.sim_outcome': expected one of ${OUTCOMES.join(', ')}, got '${rawOutcome}'.`;
      return { ok: false, error: invalidRequest(message, 'metadata.sim_outcome', 'invalid_value') };
    }
    outcome = rawOutcome as Outcome;
  }
  return { ok: true, value: { durationMs, outcome } };
}

/** Prompt text used for token counting, caching and output generation. */
export function promptText(request: CreateRequest): string {
  const input = request.input ?? '';
  return (request.instructions ?? '') + (typeof input === 'string' ? input : JSON.stringify(input));
}

function checkMetadata(metadata: Record<string, string> | null): ApiError | null {
  if (metadata === null) return null;
  const keys = Object.keys(metadata);
  if (keys.length > METADATA_MAX_KEYS) {
    return invalidRequest(
      `Invalid 'metadata': too many properties. Expected an object with at most ${METADATA_MAX_KEYS} properties, but got an object with ${keys.length} properties instead.`,
      'metadata',
      'object_above_max_properties',
    );
  }
  for (const key of keys) {
    if (key.length > METADATA_MAX_KEY_LENGTH) {
      return invalidRequest(
        `Invalid 'metadata': string too long. Expected a string with maximum length ${METADATA_MAX_KEY_LENGTH}, but got a string with length ${key.length} instead.`,
        'metadata',
        'string_above_max_length',
      );
    }
    const value = metadata[key] as string;
    if (value.length > METADATA_MAX_VALUE_LENGTH) {
      return invalidRequest(
        `Invalid 'metadata.${key}': string too long. Expected a string with maximum length ${METADATA_MAX_VALUE_LENGTH}, but got a string with length ${value.length} instead.`,
        `metadata.${key}`,
        'string_above_max_length',
      );
    }
  }
  return null;
}

function toApiError(body: object, issue: z.core.$ZodIssue | undefined): ApiError {
  if (issue === undefined) return invalidRequest('Invalid request body.');
  const param = issue.path.map(String).join('.');
  if (issue.code === 'invalid_type' && valueAt(body, issue.path) === undefined) {
    return invalidRequest(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
  }
  if (issue.code === 'invalid_type') {
    return invalidRequest(`Invalid type for '${param}': ${issue.message}.`, param, 'invalid_type');
  }
  return invalidRequest(`Invalid value for '${param}': ${issue.message}.`, param, 'invalid_value');
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current: unknown = root;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
