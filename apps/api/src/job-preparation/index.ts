/**
 * From a validated `POST /v1/jobs` body to what is stored and later sent to the provider. Each
 * step owns one concern of what goes into a request and may refuse it with a 4xx:
 *
 *   1. prompt        (@longhaul/engine prompt-rendering.ts) a Longhaul prompt (`prm_…`) is rendered into instructions + input;
 *                    an OpenAI hosted prompt (`pmpt_…`) passes through.
 *   2. conversation  `previous_job_id` / `previous_response_id` / `conversation` are resolved
 *                    and checked against the tenant; the job joins its thread.
 *   3. files         every file the request names (anywhere: tool outputs and tools too) must
 *                    be the tenant's, and vector stores / containers / skills by id are
 *                    refused; file and image parts are checked against the guide's size
 *                    limits; large inline files may be uploaded to the provider and referenced
 *                    by id.
 *   4. estimate      input tokens are estimated, for the tenant's tokens-per-minute budget
 *                    (a continued job's earlier turns included: they are input again).
 *
 * Nothing here writes a job: the route does, with the result.
 */
import {
  type CacheSetting,
  DEFAULT_MAX_TURNS,
  type Fallback,
  type Validation,
  ValidationError,
  checkReasoningEffort,
  estimateInputTokens,
  isFlexRequest,
  runsToolLoop,
} from '@longhaul/core';
import { applyPrompt } from '@longhaul/engine';
import type { ApiContext } from '../context.ts';
import { splitJobRequest, type JobRequest } from '../job-request.ts';
import { applyConversationState } from './conversation.ts';
import { applyFileInputs } from './files.ts';

export interface PreparedJob {
  model: string;
  /** The Responses create parameters (without Longhaul's own fields). */
  providerParams: Record<string, unknown>;
  metadata: Record<string, string>;
  callbackUrl: string | null;
  previousJobId: string | null;
  threadId: string | null;
  promptId: string | null;
  promptVersion: number | null;
  estimatedInputTokens: number;
  /** The job's completion hint (`expected_duration_seconds`), null when none was given. */
  expectedDurationMs: number | null;
  /** Response caching: the job's own setting, and its prompt version's default (the tenant's is resolved at submission). */
  cache: { job: CacheSetting | false | undefined; prompt: CacheSetting | null };
  /** The most turns of its tool-call loop, null when its tools (a prompt's included) need none. */
  maxTurns: number | null;
  /** `batch`: the job waits for a Batch API batch (@longhaul/core batch.ts). */
  processing: 'background' | 'batch';
  /** Fallbacks and validation (@longhaul/core fallbacks.ts); null: none. */
  fallbacks: Fallback[] | null;
  validation: Validation | null;
  /** `auto`: a flex job runs at the standard tier when flex stays unavailable (@longhaul/core flex.ts); null: it fails. */
  flexFallback: 'auto' | null;
}

export async function prepareJob(ctx: ApiContext, tenantId: string, body: JobRequest): Promise<PreparedJob> {
  const split = splitJobRequest(body);
  const prompt = await applyPrompt(ctx.db, tenantId, split.providerParams);
  const thread = await applyConversationState(ctx, tenantId, prompt.params, split.previousJobId);
  const files = await applyFileInputs(ctx, tenantId, thread.params, split.providerParams);
  const providerParams = files.params;
  const model = providerParams.model;
  if (typeof model !== 'string' || model.length === 0) {
    throw new ValidationError("Missing required parameter: 'model' (give it, or use a prompt that sets one).", 'model', 'missing_required_parameter');
  }
  const effort = (providerParams.reasoning as { effort?: string } | undefined)?.effort;
  if (effort !== undefined) {
    const supported = checkReasoningEffort(model, effort);
    if (!supported.ok) throw new ValidationError(supported.message, 'reasoning.effort', 'unsupported_value');
  }
  if (providerParams.input === undefined && providerParams.prompt === undefined) {
    throw new ValidationError("Missing required parameter: 'input' (give it, or use a prompt).", 'input', 'missing_required_parameter');
  }
  const maxTurns = split.maxTurns ?? (runsToolLoop(providerParams.tools) ? DEFAULT_MAX_TURNS : null);
  checkFallbacks(split.fallbacks, split.validation !== null, model, { toolLoop: maxTurns !== null, streamed: providerParams.stream === true });
  if (split.processing === 'batch')
    checkBatchable(split, { toolLoop: maxTurns !== null, streamed: providerParams.stream === true, conversation: providerParams.conversation !== undefined });
  // Checked on the request as rendered: a prompt may be what asks for flex.
  if (split.flexFallback !== null && !isFlexRequest(providerParams)) {
    throw new ValidationError(
      'flex_fallback is only supported with service_tier: "flex" (it says what to do when flex capacity is unavailable).',
      'flex_fallback',
      'unsupported_parameter',
    );
  }
  return {
    processing: split.processing,
    flexFallback: split.flexFallback,
    fallbacks: split.fallbacks,
    validation: split.validation,
    model,
    providerParams,
    metadata: split.metadata,
    callbackUrl: split.callbackUrl,
    previousJobId: thread.previousJobId,
    threadId: thread.threadId,
    promptId: prompt.promptId,
    promptVersion: prompt.promptVersion,
    estimatedInputTokens: estimateInputTokens(providerParams, { fileBytes: (id) => files.fileBytes.get(id) }) + thread.contextTokens,
    expectedDurationMs: split.expectedDurationMs,
    cache: { job: split.cache, prompt: prompt.cache },
    maxTurns,
  };
}

/**
 * A batch job is one request answered once, within 24 h: not a tool-call loop (its turns would
 * each wait for a batch), not a live stream, not a conversation turn (a batch line may run after
 * a later turn), and without fallbacks (a failed line ends the job).
 */
function checkBatchable(split: { fallbacks: Fallback[] | null; previousJobId: string | null }, job: { toolLoop: boolean; streamed: boolean; conversation: boolean }): void {
  const refuse = (what: string) => new ValidationError(`processing: "batch" is not supported ${what}.`, 'processing', 'unsupported_parameter');
  if (job.toolLoop) throw refuse('on a job that runs a tool-call loop');
  if (job.streamed) throw refuse('with stream: true');
  if (job.conversation || split.previousJobId) throw refuse('on a conversation turn (conversation, previous_job_id)');
  if (split.fallbacks) throw refuse('with fallbacks');
}

/**
 * Fallbacks and `validate` are for single-response jobs: a tool-call loop's turns and a live
 * stream are refused with them (a loop's failed turn, or a stream that starts over, have no clean
 * next attempt yet; a loop's answer is judged by the tenant's own loop, which sees every turn).
 * Each fallback's reasoning effort must suit the model its attempt runs with.
 */
function checkFallbacks(fallbacks: Fallback[] | null, validates: boolean, model: string, job: { toolLoop: boolean; streamed: boolean }): void {
  if (validates && job.toolLoop) throw new ValidationError('validate is not supported on a job that runs a tool-call loop.', 'validate', 'unsupported_parameter');
  if (validates && job.streamed) throw new ValidationError('validate is not supported with stream: true.', 'validate', 'unsupported_parameter');
  if (!fallbacks) return;
  if (job.toolLoop) throw new ValidationError('fallbacks are not supported on a job that runs a tool-call loop.', 'fallbacks', 'unsupported_parameter');
  if (job.streamed) throw new ValidationError('fallbacks are not supported with stream: true.', 'fallbacks', 'unsupported_parameter');
  fallbacks.forEach((fallback, i) => {
    const effort = fallback.reasoning?.effort as string | undefined;
    if (effort === undefined) return;
    const supported = checkReasoningEffort(fallback.model ?? model, effort);
    if (!supported.ok) throw new ValidationError(supported.message, `fallbacks[${i}].reasoning.effort`, 'unsupported_value');
  });
}
