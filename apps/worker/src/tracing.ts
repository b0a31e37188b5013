/**
 * The worker's consumer spans (@longhaul/telemetry): one per work item processed, in the trace of
 * the job it is about. Its parent is the work item's `traceparent` (the span that enqueued it),
 * else the job's trace root kept in Redis (a work item the sweeper added again, a delivery from
 * the outbox, a webhook). The poll, stream, cancel and tools work items name their job, and get
 * their span around the processor (`tracedProcessor`); submit (a turn may take another job than
 * its own), deliver and webhook processors start theirs once they know the job (`jobWorkSpan`).
 * Not tracing, both are the processor itself.
 */
import type { Job as QueueJob, Processor } from 'bullmq';
import type { QueueKey, Queues } from '@longhaul/queue';
import { type Attributes, SpanKind, recallJobTrace, tracingEnabled, withSpan } from '@longhaul/telemetry';

/** Span names of the work items whose processors are wrapped here. */
const WRAPPED: Partial<Record<QueueKey, string>> = {
  poll: 'longhaul.poll',
  stream: 'longhaul.stream',
  cancel: 'longhaul.cancel',
  tools: 'longhaul.execute_tools',
};

function workItemAttributes(queue: QueueKey, work: QueueJob, jobId: string | null | undefined): Attributes {
  const attributes: Attributes = {
    'messaging.system': 'bullmq',
    'messaging.operation.type': 'process',
    'messaging.destination.name': queue,
    'longhaul.work_item.attempt': work.attemptsMade + 1,
  };
  if (work.id) attributes['messaging.message.id'] = work.id;
  if (jobId) attributes['longhaul.job_id'] = jobId;
  return attributes;
}

/** The processor inside its work item's consumer span (for the queues in WRAPPED; others as they are). */
export function tracedProcessor(queues: Queues, key: QueueKey, processor: Processor): Processor {
  const name = WRAPPED[key];
  if (!name) return processor;
  return async (work, token, signal) => {
    if (!tracingEnabled()) return processor(work, token, signal);
    const { jobId, traceparent } = work.data as { jobId?: string; traceparent?: string };
    return jobWorkSpan(queues, name, key, work, { jobId, traceparent }, () => processor(work, token, signal));
  };
}

/**
 * Run `fn` in the consumer span `name` of a work item about job `job.jobId`, parented on
 * `job.traceparent` (the work item's own, when it is about this job) or the job's trace root.
 */
export async function jobWorkSpan<T>(
  queues: Queues,
  name: string,
  queue: QueueKey,
  work: QueueJob,
  job: { jobId: string | null | undefined; traceparent?: string },
  fn: () => Promise<T>,
): Promise<T> {
  if (!tracingEnabled()) return fn();
  const parent = job.traceparent ?? (await recallJobTrace(queues.connection, queues.prefix, job.jobId));
  return withSpan(name, { kind: SpanKind.CONSUMER, parent: parent ?? null, attributes: workItemAttributes(queue, work, job.jobId) }, fn);
}
