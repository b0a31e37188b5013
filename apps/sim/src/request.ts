/**
 * Parsing of `POST /v1/responses` bodies: the subset of OpenAI's CreateResponse the simulator
 * understands (unknown keys are accepted and ignored, as the real API tolerates new SDK fields),
 * OpenAI's metadata limits, and the simulator directives carried in metadata.
 */
import { z } from 'zod';
import { invalidRequest, type ApiError } from './errors.ts';
import { REASONING_EFFORTS } from './generation.ts';

/**
 * What a request can be told to end as. `refusal` is a completed response whose message holds a
 * refusal part; `short` a completed answer of a few characters; `context_length_exceeded` a 400 at create
 * (see contextLengthExceeded in simulator.ts).
 */
export const OUTCOMES = ['completed', 'failed', 'incomplete', 'refusal', 'context_length_exceeded', 'short'] as const;
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

/**
 * Per-request simulator directives, read from metadata: `sim_duration_ms`, `sim_outcome` (every
 * model), `sim_outcomes` (`model=outcome` rules, `*` the default), `sim_context_tokens`,
 * `sim_array_items`, `sim_accuracy`.
 */
export interface Directives {
  durationMs: number | null;
  /** `sim_outcome`, or null when not given. */
  outcome: Outcome | null;
  /** `sim_outcomes` by model name (`*` for any other model). */
  outcomeRules: Record<string, Outcome>;
  /** `sim_context_tokens`: a longer input fails as context_length_exceeded; null: no limit. */
  contextTokens: number | null;
  /** `sim_array_items`: array length in structured outputs; null: 3 (within minItems/maxItems). */
  arrayItems: number | null;
  /** `sim_accuracy`: the chance (0–1) an arithmetic question is answered right; null: by effort (arithmetic.ts). */
  accuracy: number | null;
}

/** The outcome asked for `model`: its own `sim_outcomes` rule, then `sim_outcome`, then the `*` rule. */
export function outcomeFor(directives: Directives, model: string): Outcome {
  return directives.outcomeRules[model] ?? directives.outcome ?? directives.outcomeRules['*'] ?? 'completed';
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
  let outcome: Outcome | null = null;
  if (rawOutcome !== undefined) {
    if (!isOutcome(rawOutcome)) {
      const message = `Invalid 'metadata.sim_outcome': expected one of ${OUTCOMES.join(', ')}, got '${rawOutcome}'.`;
      return { ok: false, error: invalidRequest(message, 'metadata.sim_outcome', 'invalid_value') };
    }
    outcome = rawOutcome;
  }
  const outcomeRules = parseOutcomeRules(metadata?.['sim_outcomes']);
  if (!outcomeRules.ok) return outcomeRules;
  const contextTokens = parseCount(metadata, 'sim_context_tokens', 1, Number.MAX_SAFE_INTEGER);
  if (!contextTokens.ok) return contextTokens;
  const arrayItems = parseCount(metadata, 'sim_array_items', 1, MAX_ARRAY_ITEMS);
  if (!arrayItems.ok) return arrayItems;
  const accuracy = parseAccuracy(metadata?.['sim_accuracy']);
  if (!accuracy.ok) return accuracy;
  return {
    ok: true,
    value: { durationMs, outcome, outcomeRules: outcomeRules.value, contextTokens: contextTokens.value, arrayItems: arrayItems.value, accuracy: accuracy.value },
  };
}

function parseAccuracy(raw: string | undefined): ParseResult<number | null> {
  if (raw === undefined) return { ok: true, value: null };
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > 1) {
    const message = `Invalid 'metadata.sim_accuracy': expected a number from 0 to 1, got '${raw}'.`;
    return { ok: false, error: invalidRequest(message, 'metadata.sim_accuracy', 'invalid_value') };
  }
  return { ok: true, value };
}

const MAX_ARRAY_ITEMS = 50;

function isOutcome(value: string): value is Outcome {
  return (OUTCOMES as readonly string[]).includes(value);
}

/** `o3=failed, gpt-4.1=completed, *=refusal`: one rule per model, each naming a known outcome. */
function parseOutcomeRules(raw: string | undefined): ParseResult<Record<string, Outcome>> {
  const rules: Record<string, Outcome> = {};
  if (raw === undefined) return { ok: true, value: rules };
  for (const rule of raw.split(',')) {
    const [model, outcome, ...rest] = rule.split('=').map((part) => part.trim());
    if (!model || outcome === undefined || rest.length > 0 || !isOutcome(outcome) || model in rules) {
      const message = `Invalid 'metadata.sim_outcomes': expected comma-separated model=outcome rules (model '*' for any other) with outcomes among ${OUTCOMES.join(', ')}, each model once; got '${rule.trim()}' in '${raw}'.`;
      return { ok: false, error: invalidRequest(message, 'metadata.sim_outcomes', 'invalid_value') };
    }
    rules[model] = outcome;
  }
  return { ok: true, value: rules };
}

function parseCount(metadata: Record<string, string> | null | undefined, key: string, min: number, max: number): ParseResult<number | null> {
  const raw = metadata?.[key];
  if (raw === undefined) return { ok: true, value: null };
  const value = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || value < min || value > max) {
    const message = `Invalid 'metadata.${key}': expected an integer from ${min} to ${max}, got '${raw}'.`;
    return { ok: false, error: invalidRequest(message, `metadata.${key}`, 'invalid_value') };
  }
  return { ok: true, value };
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
