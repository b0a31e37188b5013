import type { Job, JobEventRow } from './schema.ts';

const unix = (d: Date | null | undefined): number | null => (d ? Math.floor(d.getTime() / 1000) : null);

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
    /** Estimated from usage at the configured price table (USD); null until usage is known or for unpriced models. */
    cost_usd: job.costUsd === null ? null : Number(job.costUsd),
    error: job.error,
    incomplete_details: job.incompleteDetails,
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
