import type { Job, JobEventRow, JobTurn } from './schema.ts';

const unix = (d: Date | null | undefined): number | null => (d ? Math.floor(d.getTime() / 1000) : null);

function conversationOf(request: Record<string, unknown>): string | null {
  const c = request.conversation;
  if (typeof c === 'string') return c;
  if (c && typeof c === 'object' && typeof (c as { id?: unknown }).id === 'string') return (c as { id: string }).id;
  return null;
}

function hostedPrompt(request: Record<string, unknown>): { id: string; version: string | number | null } | null {
  const p = request.prompt as { id?: unknown; version?: unknown } | undefined;
  if (!p || typeof p.id !== 'string') return null;
  return { id: p.id, version: (p.version as string | number | undefined) ?? null };
}

/**
 * The public representation of a job (`"object": "job"`). `turns`: its loop's ended turns
 * (job-turns.ts), loaded where one job is shown (GET /v1/jobs/{id}); absent, the object's `turns`
 * is null (lists, callbacks and stream events carry the current turn and `required_action`).
 */
export function toJobObject(job: Job, turns?: readonly JobTurn[], batch?: JobBatchView | null) {
  return {
    id: job.id,
    object: 'job' as const,
    status: job.status,
    model: job.model,
    stream: job.request.stream === true,
    created_at: unix(job.createdAt),
    submitted_at: unix(job.submittedAt),
    started_at: unix(job.startedAt),
    finished_at: unix(job.finishedAt),
    cancel_requested_at: unix(job.cancelRequestedAt),
    expires_at: unix(job.deadlineAt),
    metadata: job.metadata,
    callback_url: job.callbackUrl,
    response_id: job.responseId,
    output_text: job.outputText,
    output: job.output,
    usage: job.usage,
    /** Tokens the model spent reasoning (part of output_tokens); null until usage is known. */
    reasoning_tokens: job.usage?.output_tokens_details?.reasoning_tokens ?? null,
    /** Input tokens served from the provider's prompt cache; null until usage is known. */
    cached_tokens: job.usage?.input_tokens_details?.cached_tokens ?? null,
    /** The reasoning summary parts (`{type: "summary_text", text}`), when one was requested. */
    reasoning_summary: job.reasoningSummary,
    previous_job_id: job.previousJobId,
    /** The first job of this job's conversation chain (`GET /v1/jobs?thread=…` lists it). */
    thread_id: job.threadId ?? job.id,
    conversation: conversationOf(job.request),
    /** The Longhaul prompt and version this job was rendered from (hosted `pmpt_` prompts: version as given). */
    prompt: job.promptId ? { id: job.promptId, version: job.promptVersion } : hostedPrompt(job.request),
    estimated_input_tokens: job.estimatedInputTokens,
    /** The completion hint the job was created with (seconds); null when it gave none. */
    expected_duration_seconds: job.expectedDurationMs === null ? null : job.expectedDurationMs / 1000,
    /** Estimated from usage at the configured price table (USD); null until usage is known or for unpriced models. */
    cost_usd: job.costUsd === null ? null : Number(job.costUsd),
    error: job.error,
    incomplete_details: job.incompleteDetails,
    /** When the job's content was erased (DELETE /v1/responses/{id}): input, output and metadata are gone, usage and cost stay. */
    erased_at: unix(job.erasedAt),
    /** Response caching: the job whose result answered this one (or that it waits for), null otherwise. */
    cached_from: job.cachedFrom,
    /** What the cache hit saved: the source's cost (USD); null for a job that ran. */
    saved_usd: job.savedUsd === null ? null : Number(job.savedUsd),
    /** Its tool-call loop: the current turn, the most it may make (null: no loop), and what it waits for in `requires_action`. */
    turn: job.turn,
    max_turns: job.maxTurns,
    /** Where its loop's tool calls are run (`tool_executor`); null: the tenant answers them. */
    tool_executor: job.toolExecutorUrl ? { url: job.toolExecutorUrl } : null,
    required_action: job.status === 'requires_action' ? requiredActionObject(job) : null,
    turns: turns && job.maxTurns !== null ? turnObjects(job, turns) : null,
    /**
     * Fallbacks and validation (@longhaul/core fallbacks.ts): the current attempt (1-based), the
     * attempts that ended (each with the model it ran, its response, status, error and own usage;
     * the finished job's last attempt included when it has fallbacks or `validate`), and what was asked.
     * `model` stays the requested model; `usage` and `cost_usd` add up every attempt.
     */
    attempt: job.attempt,
    attempts: job.attempts,
    fallbacks: job.fallbacks,
    validate: job.validation,
    /**
     * Cost tiers (@longhaul/core batch.ts): `background` or `batch`; a batch job's batch once it
     * is in one (its status where the reader looked it up, else null); the tier its response ran
     * at (`service_tier`, e.g. `flex` or `default`), and a flex job's `flex_fallback`.
     */
    processing: job.processing,
    batch: job.batchId ? { id: job.batchId, status: batch?.status ?? null, provider_batch_id: batch?.providerBatchId ?? null } : null,
    service_tier: job.serviceTier,
    flex_fallback: job.flexFallback,
  };
}

/** What a job object shows of its batch (batches.ts). */
export interface JobBatchView {
  status: string;
  providerBatchId: string | null;
}

type StoredCall = { call_id: string; name: string; arguments: string; kind?: 'function' | 'custom' };
const callObject = ({ call_id, name, arguments: args, kind }: StoredCall) => ({ call_id, name, arguments: args, type: kind === 'custom' ? 'custom' : 'function' });

/** Each ended turn as recorded, then the turn under way (if the job is not finished with it). */
function turnObjects(job: Job, turns: readonly JobTurn[]) {
  const ended = turns.map((t) => ({
    turn: t.turn,
    response_id: t.responseId,
    status: t.status,
    tool_calls: (t.toolCalls as StoredCall[]).map(callObject),
    approval_requests: t.approvalRequests,
    tool_outputs: t.toolOutputs,
    approvals: t.approvals,
    usage: t.usage,
    cost_usd: t.costUsd === null ? null : Number(t.costUsd),
    ended_at: unix(t.endedAt),
    answered_at: unix(t.answeredAt),
    answered_by: t.answeredBy,
  }));
  const last = turns.at(-1)?.turn ?? 0;
  if (job.turn <= last) return ended;
  const current = {
    turn: job.turn,
    response_id: job.status === 'pending' ? null : job.responseId,
    status: job.status,
    tool_calls: [],
    approval_requests: [],
    tool_outputs: null,
    approvals: null,
    usage: null,
    cost_usd: null,
    ended_at: null,
    answered_at: null,
    answered_by: null,
  };
  return [...ended, current];
}

/** What a job in `requires_action` waits for: the turn's calls and approval requests still unanswered. */
function requiredActionObject(job: Job) {
  const action = job.requiredAction;
  if (!action) return null;
  return {
    type: action.type,
    tool_calls: action.tool_outputs
      ? []
      : action.tool_calls.map(({ call_id, name, arguments: args, kind }) => ({ call_id, name, arguments: args, type: kind === 'custom' ? 'custom' : 'function' })),
    approval_requests: action.approvals ? [] : action.approval_requests,
  };
}

/** One entry of a job's event log (`"object": "job.event"`). */
export function toJobEventObject(event: JobEventRow) {
  return {
    id: `jev_${event.id}`,
    object: 'job.event' as const,
    job_id: event.jobId,
    from: event.fromStatus,
    to: event.toStatus,
    source: event.source,
    at: event.at.toISOString(),
    details: event.details,
  };
}
