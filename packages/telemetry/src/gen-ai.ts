/**
 * The OpenTelemetry GenAI semantic conventions for a provider call (the OpenAI Responses API).
 *
 * The names are the conventions' (semantic-conventions 1.45 incubating, and the OpenAI page of the
 * GenAI conventions), copied here as the conventions advise for incubating attributes rather than
 * imported from the large incubating entry point:
 * - span name `{gen_ai.operation.name} {gen_ai.request.model}`, kind CLIENT;
 * - `gen_ai.operation.name`: `chat` for a create (the Responses API is OpenAI's chat API,
 *   `openai.api.type = responses`); a background response's later calls are `retrieve` and
 *   `cancel` (values of our own: the enum is open, and these are where the usage arrives);
 * - `gen_ai.provider.name = openai`, `gen_ai.request.model`, `gen_ai.response.id`,
 *   `gen_ai.response.model`, `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`,
 *   `gen_ai.usage.reasoning.output_tokens`, `gen_ai.usage.cache_read.input_tokens`,
 *   `openai.request.service_tier`, `openai.response.service_tier`.
 */
import type { Attributes } from '@opentelemetry/api';

export const GEN_AI = {
  operationName: 'gen_ai.operation.name',
  providerName: 'gen_ai.provider.name',
  requestModel: 'gen_ai.request.model',
  responseId: 'gen_ai.response.id',
  responseModel: 'gen_ai.response.model',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
  reasoningTokens: 'gen_ai.usage.reasoning.output_tokens',
  cachedInputTokens: 'gen_ai.usage.cache_read.input_tokens',
  openaiApiType: 'openai.api.type',
  requestServiceTier: 'openai.request.service_tier',
  responseServiceTier: 'openai.response.service_tier',
} as const;

/** Our provider operations as GenAI operation names. */
export function genAiOperation(operation: string): string {
  return operation === 'create' ? 'chat' : operation;
}

/** What is known before the call: the operation, the model and tier asked for. */
export function genAiRequestAttributes(operation: string, request: { model?: unknown; service_tier?: unknown } | undefined): Attributes {
  const attributes: Attributes = { [GEN_AI.operationName]: genAiOperation(operation), [GEN_AI.providerName]: 'openai', [GEN_AI.openaiApiType]: 'responses' };
  if (typeof request?.model === 'string') attributes[GEN_AI.requestModel] = request.model;
  if (typeof request?.service_tier === 'string') attributes[GEN_AI.requestServiceTier] = request.service_tier;
  return attributes;
}

interface ResponseLike {
  id?: unknown;
  model?: unknown;
  status?: unknown;
  service_tier?: unknown;
  usage?: {
    input_tokens?: unknown;
    output_tokens?: unknown;
    input_tokens_details?: { cached_tokens?: unknown } | null;
    output_tokens_details?: { reasoning_tokens?: unknown } | null;
  } | null;
}

/** What the provider answered: the response's id, model, tier, status and token counts (once it has them). */
export function genAiResponseAttributes(response: ResponseLike | undefined): Attributes {
  const attributes: Attributes = {};
  if (!response) return attributes;
  const put = (key: string, value: unknown) => {
    if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) attributes[key] = value;
  };
  put(GEN_AI.responseId, response.id);
  put(GEN_AI.responseModel, response.model);
  put(GEN_AI.responseServiceTier, response.service_tier);
  put('longhaul.response.status', response.status);
  const usage = response.usage;
  if (usage) {
    put(GEN_AI.inputTokens, usage.input_tokens);
    put(GEN_AI.outputTokens, usage.output_tokens);
    put(GEN_AI.reasoningTokens, usage.output_tokens_details?.reasoning_tokens);
    put(GEN_AI.cachedInputTokens, usage.input_tokens_details?.cached_tokens);
  }
  return attributes;
}
