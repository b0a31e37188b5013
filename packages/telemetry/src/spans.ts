/**
 * Longhaul's spans: made explicitly at its boundaries (the API request that creates a job, each
 * work item a worker processes, each provider call, each callback attempt), never by
 * auto-instrumentation (which would trace every Redis and Postgres command).
 *
 * Design note:
 * - One trace per job. Its root is the `POST /v1/jobs` (or `POST /v1/responses`) server span,
 *   itself the child of the client's `traceparent` when the request carries one. Work items carry
 *   the W3C `traceparent` of the span that enqueued them in their payload (`traceparent`, in every
 *   job work item of the queue catalog), and the job's root traceparent is also kept in Redis
 *   under the job's id (job-trace.ts) for work that starts without one: a callback delivery (the
 *   Postgres outbox knows no spans), an OpenAI webhook, a work item the sweeper dispatched again.
 * - Job attributes (`longhaul.job_id`, `longhaul.tenant_id`) are set on a span once the job is
 *   known (`setJobAttributes`) and copied onto every span started beneath it in the same process,
 *   through a holder kept in the span's context.
 * - Off (`tracingEnabled()` false), every helper returns at once: no span object, no context
 *   switch, no traceparent in payloads, no Redis read or write.
 */
import {
  type Attributes,
  type Context,
  type Link,
  type Span,
  SpanKind,
  SpanStatusCode,
  context,
  createContextKey,
  trace,
  TraceFlags,
  type SpanContext,
  isSpanContextValid,
} from '@opentelemetry/api';

export { SpanKind, SpanStatusCode };
export type { Attributes };

let tracing = false;

/** Called by startTelemetry only. */
export function markTracing(on: boolean): void {
  tracing = on;
}

/** Spans are being recorded and exported in this process. */
export function tracingEnabled(): boolean {
  return tracing;
}

const tracer = () => trace.getTracer('longhaul');

/** The job attributes of the spans beneath (see `setJobAttributes`). */
const JOB_ATTRIBUTES = createContextKey('longhaul.job_attributes');
type JobAttributesHolder = { attributes?: Attributes };

/** BullMQ's control-flow signals: a work item moved to delayed or rate limited did not fail. */
const CONTROL_FLOW_ERRORS = new Set(['DelayedError', 'RateLimitError', 'WaitingChildrenError']);

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** A W3C `traceparent` header value as a remote span context; undefined when absent or malformed (version ff, all-zero ids). */
function parseTraceparent(value: unknown): SpanContext | undefined {
  if (typeof value !== 'string') return undefined;
  const m = TRACEPARENT.exec(value.trim().toLowerCase());
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined)) return undefined;
  const sc: SpanContext = { traceId: m[2]!, spanId: m[3]!, traceFlags: Number.parseInt(m[4]!, 16) & TraceFlags.SAMPLED, isRemote: true };
  return isSpanContextValid(sc) ? sc : undefined;
}

function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & TraceFlags.SAMPLED).toString(16).padStart(2, '0')}`;
}

/** The active span's `traceparent`, for a work item's payload; undefined when not tracing. */
export function currentTraceparent(): string | undefined {
  if (!tracing) return undefined;
  const sc = trace.getActiveSpan()?.spanContext();
  return sc && isSpanContextValid(sc) ? formatTraceparent(sc) : undefined;
}

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /**
   * The parent as a `traceparent` (a work item's, a request header's). Absent or malformed: the
   * active context's span, if any. Null: a new trace.
   */
  parent?: string | null;
  links?: Link[];
}

/**
 * Run `fn` inside a new active span, ended when `fn` settles; a throw is recorded as the span's
 * error (BullMQ's DelayedError/RateLimitError excepted). Not tracing: `fn(undefined)`, nothing else.
 */
export function withSpan<T>(name: string, options: SpanOptions, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!tracing) return fn(undefined);
  const active = context.active();
  const remote = options.parent ? parseTraceparent(options.parent) : undefined;
  const parentContext = remote ? trace.setSpanContext(active, remote) : options.parent === null ? trace.deleteSpan(active) : active;
  const inherited = (parentContext.getValue(JOB_ATTRIBUTES) as JobAttributesHolder | undefined)?.attributes;
  const attributes = inherited ? { ...inherited, ...options.attributes } : options.attributes;
  return tracer().startActiveSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes, links: options.links }, withHolder(parentContext, inherited), async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      recordError(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** A fresh holder per span (a child's `setJobAttributes` does not rename its parent), seeded with the inherited attributes. */
function withHolder(ctx: Context, inherited: Attributes | undefined): Context {
  return ctx.setValue(JOB_ATTRIBUTES, { attributes: inherited } satisfies JobAttributesHolder);
}

/** Record `err` on `span` as its error, unless it is one of BullMQ's control-flow signals. */
function recordError(span: Span, err: unknown): void {
  const name = err instanceof Error ? err.name : '';
  if (CONTROL_FLOW_ERRORS.has(name)) {
    span.setAttribute('longhaul.work_item.outcome', name === 'RateLimitError' ? 'rate_limited' : 'delayed');
    return;
  }
  // `error.type`: the error's stable code when it has one (a ProviderError's `provider_timeout`, ...), else its class.
  const code = (err as { code?: unknown } | null)?.code;
  span.setAttribute('error.type', typeof code === 'string' ? code : name || 'Error');
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** Mark the active span (and the spans later started beneath it) as being about this job. */
export function setJobAttributes(job: { id: string; tenantId: string }): void {
  if (!tracing) return;
  const attributes = { 'longhaul.job_id': job.id, 'longhaul.tenant_id': job.tenantId };
  trace.getActiveSpan()?.setAttributes(attributes);
  const holder = context.active().getValue(JOB_ATTRIBUTES) as JobAttributesHolder | undefined;
  if (holder) holder.attributes = { ...holder.attributes, ...attributes };
}

/** Set attributes on the active span (no-op when not tracing). */
export function setSpanAttributes(attributes: Attributes): void {
  if (!tracing) return;
  trace.getActiveSpan()?.setAttributes(attributes);
}
