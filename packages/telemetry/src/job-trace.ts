/**
 * A job's root trace context, kept in Redis beside its work items: `<prefix>:trace:<job id>` →
 * the `traceparent` of the span that accepted the job. Work that starts without a traceparent of
 * its own (a callback delivery dispatched from the Postgres outbox, an OpenAI webhook, a work item
 * the sweeper added again) joins the job's trace through it. Written and read only while tracing;
 * best effort both ways (a lost key costs a trace link, never a job).
 */
import { currentTraceparent, tracingEnabled } from './spans.ts';

/** The Redis commands used (ioredis's `Redis` and `Cluster` both fit). */
export interface TraceStore {
  set(key: string, value: string, mode: 'EX', seconds: number): Promise<unknown>;
  get(key: string): Promise<string | null>;
}

const keyOf = (prefix: string, jobId: string) => `${prefix}:trace:${jobId}`;

/** Remember the active span as job `jobId`'s root for `ttlSeconds` (its deadline and its callbacks' retries). */
export async function rememberJobTrace(redis: TraceStore, prefix: string, jobId: string, ttlSeconds: number): Promise<void> {
  const traceparent = currentTraceparent();
  if (!traceparent) return;
  await redis.set(keyOf(prefix, jobId), traceparent, 'EX', Math.max(1, Math.ceil(ttlSeconds))).catch(() => {});
}

/** Job `jobId`'s root traceparent; undefined when not tracing or unknown. */
export async function recallJobTrace(redis: TraceStore, prefix: string, jobId: string | null | undefined): Promise<string | undefined> {
  if (!tracingEnabled() || !jobId) return undefined;
  return (await redis.get(keyOf(prefix, jobId)).catch(() => null)) ?? undefined;
}
