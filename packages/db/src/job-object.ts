import type { Job, JobEventRow } from './schema.ts';

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

/** The public representation of a job (`"object": "job"`). */
export function toJobObject(job: Job) {
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
    required_action: job.status === 'requires_action' ? requiredActionObject(job) : null,
  };
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
