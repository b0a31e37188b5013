/**
 * Step 2: conversation state (see ./index.ts). A job continues earlier context in one of three
 * ways, at most one per job (the provider refuses `previous_response_id` with `conversation`):
 *
 * - `previous_job_id`: an earlier job of the same tenant that finished with a stored response;
 *   its response id is sent as `previous_response_id` and the new job joins its thread.
 * - `previous_response_id`: passed through. When the response is one of the tenant's jobs the new
 *   job joins that job's thread; another tenant's response is refused as if it did not exist
 *   (tenants share the provider account, so the provider alone cannot tell them apart).
 * - `conversation`: a conversation the tenant created with `POST /v1/conversations`.
 *
 * Manual history (earlier assistant messages in `input`) is sent as the provider's API defines
 * it: an assistant message copied from an earlier output without its id (as the guide's examples
 * do) is not a valid output item any more, so its text parts become the message's text.
 */
import { ConflictError, NotFoundError, ValidationError, isTerminal, type Usage } from '@longhaul/core';
import { findJobByResponseId, getConversationForTenant, getJobForTenant } from '@longhaul/db';
import type { ApiContext } from '../context.ts';

export interface ConversationStep {
  params: Record<string, unknown>;
  previousJobId: string | null;
  /** The thread the new job joins; null: it starts its own. */
  threadId: string | null;
  /**
   * Input tokens the earlier context adds (the previous job's input and visible answer), for the
   * token estimate; 0 when unknown (a conversation, or a response Longhaul did not create).
   */
  contextTokens: number;
}

/** What a finished job adds as context to the next turn: its input, then its visible answer. */
function contextTokensOf(job: { usage: Usage | null }): number {
  const usage = job.usage;
  if (!usage) return 0;
  return usage.input_tokens + Math.max(0, usage.output_tokens - (usage.output_tokens_details?.reasoning_tokens ?? 0));
}

type Item = Record<string, unknown>;

/**
 * `{role: "assistant", content: [{type: "output_text", text}, …]}` without an `id` becomes
 * `{role: "assistant", content: "<the texts>"}`: the input message form OpenAI's API reference
 * defines for earlier assistant turns. Items with an id (whole output items) are left as they are.
 */
export function normalizeHistory(input: unknown): unknown {
  if (!Array.isArray(input)) return input;
  let changed = false;
  const items = input.map((item: Item) => {
    if (item?.role !== 'assistant' || item.id !== undefined || !Array.isArray(item.content)) return item;
    const parts = item.content as Item[];
    if (!parts.every((p) => p?.type === 'output_text' || p?.type === 'refusal')) return item;
    changed = true;
    const text = parts.map((p) => (p.type === 'output_text' ? p.text : p.refusal)).join('');
    return { role: 'assistant', content: text, ...(item.type === undefined ? {} : { type: item.type }) };
  });
  return changed ? items : input;
}

export async function applyConversationState(ctx: ApiContext, tenantId: string, original: Record<string, unknown>, previousJobId: string | null): Promise<ConversationStep> {
  const input = normalizeHistory(original.input);
  const params = input === original.input ? original : { ...original, input };
  const given = [
    previousJobId !== null && 'previous_job_id',
    params.previous_response_id !== undefined && 'previous_response_id',
    params.conversation !== undefined && 'conversation',
  ].filter(Boolean);
  if (given.length > 1) {
    throw new ValidationError(
      `Give at most one of 'previous_job_id', 'previous_response_id' and 'conversation' (got ${given.map((p) => `'${p}'`).join(' and ')}).`,
      String(given[1]),
      'conflicting_parameters',
    );
  }

  if (previousJobId !== null) {
    const previous = await getJobForTenant(ctx.db, tenantId, previousJobId);
    if (!previous) throw new NotFoundError(`No job with id '${previousJobId}'.`, 'previous_job_id', 'previous_job_not_found');
    if (!isTerminal(previous.status)) {
      throw new ConflictError(`Job ${previous.id} is still ${previous.status}; a job can continue it once it has finished.`, 'previous_job_not_finished');
    }
    if (!previous.responseId) {
      throw new ConflictError(
        `Job ${previous.id} finished (${previous.status}) without a stored provider response, so there is no context to continue.`,
        'previous_job_has_no_response',
      );
    }
    return {
      params: { ...params, previous_response_id: previous.responseId },
      previousJobId: previous.id,
      threadId: previous.threadId ?? previous.id,
      contextTokens: contextTokensOf(previous),
    };
  }

  if (typeof params.previous_response_id === 'string') {
    const owner = await findJobByResponseId(ctx.db, params.previous_response_id);
    if (owner && owner.tenantId !== tenantId) {
      throw new NotFoundError(`Previous response with id '${params.previous_response_id}' not found.`, 'previous_response_id', 'previous_response_not_found');
    }
    if (owner) return { params, previousJobId: owner.id, threadId: owner.threadId ?? owner.id, contextTokens: contextTokensOf(owner) };
    // Not a Longhaul job's response (e.g. created directly with the tenant's own tooling): the
    // provider decides, and an unknown id fails the job with its `previous_response_not_found`.
    return { params, previousJobId: null, threadId: null, contextTokens: 0 };
  }

  if (params.conversation !== undefined) {
    const id = typeof params.conversation === 'string' ? params.conversation : (params.conversation as { id: string }).id;
    const conversation = await getConversationForTenant(ctx.db, tenantId, id);
    if (!conversation) throw new NotFoundError(`No conversation with id '${id}'. Create one with POST /v1/conversations.`, 'conversation', 'conversation_not_found');
  }
  return { params, previousJobId: null, threadId: null, contextTokens: 0 };
}
