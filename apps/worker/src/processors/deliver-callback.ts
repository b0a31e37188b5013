/**
 * deliver: send one callback delivery (an event to a tenant endpoint or a job's callback_url),
 * signed with Standard Webhooks (`webhook-id` = the event id, stable across retries). Each
 * attempt is recorded in Postgres before the next is scheduled. Retries follow the configured
 * schedule as a re-delayed work item; `Retry-After` on 429/503 is a minimum; 410 disables the
 * endpoint; an endpoint failing continuously for `disableAfterMs` is disabled; after the last
 * attempt the delivery is `failed` (a dead letter that can be retried over the API).
 *
 * Every status change goes through the guarded writes of delivery-transitions.ts (the core's
 * `deliveryTransition`, guarded by the row's status): when the endpoint is deleted or disabled
 * while a request is in flight, the answer is logged but neither revives the cancelled delivery
 * nor schedules a retry.
 *
 * Cost per delivery: the work items running at once in this process share their Postgres round
 * trips. The reads that start in the same turn of the event loop are one statement
 * (`getDeliveryWork`), and so are the answers recorded in the same turn (`recordAttempts`: state
 * change and attempt log together), so under load a delivery costs a fraction of a statement
 * instead of a read plus a four-statement transaction. An event's body is parsed and serialized
 * once per process (recent events are kept; events never change), not once per endpoint.
 */
import { DelayedError, UnrecoverableError, type Job as QueueJob } from 'bullmq';
import { DeliveryStatus, shouldDisableEndpoint } from '@longhaul/core';
import {
  type AttemptRecord,
  type DeliveryChangeResult,
  type DeliveryWork,
  activeSecrets,
  changeDeliveryState,
  disableEndpoint,
  getDeliveryWork,
  markEndpointFailing,
  markEndpointHealthy,
  recordAttempts,
  tenantCallbackSecret,
} from '@longhaul/db';
import { sendCallback } from '@longhaul/callbacks';
import { parsePayload } from '@longhaul/queue';
import { generateWebhookSecret, signWebhook } from '@longhaul/webhooks';
import type { WorkerDeps } from '../deps.ts';
import { setJobAttributes, setSpanAttributes } from '@longhaul/telemetry';
import { jobWorkSpan } from '../tracing.ts';

/** Most items one batched statement carries; more in one turn make several statements. */
const MAX_BATCH = 100;
/** Recent events whose bodies are kept (a fan-out's deliveries arrive together, event by event). */
const KEPT_EVENTS = 64;

/**
 * Coalesces the calls made in one turn of the event loop into one call of `run`, which answers
 * one result per input, in order. A failure fails every call of that batch.
 */
export function batched<In, Out>(run: (inputs: In[]) => Promise<Out[]>, maxBatch = MAX_BATCH): (input: In) => Promise<Out> {
  let queue: { input: In; resolve: (out: Out) => void; reject: (err: unknown) => void }[] = [];
  const flush = () => {
    const batch = queue;
    queue = [];
    for (let from = 0; from < batch.length; from += maxBatch) {
      const part = batch.slice(from, from + maxBatch);
      run(part.map((p) => p.input)).then(
        (outs) => {
          for (const [i, p] of part.entries()) p.resolve(outs[i] as Out);
        },
        (err: unknown) => {
          for (const p of part) p.reject(err);
        },
      );
    }
  };
  return (input) =>
    new Promise<Out>((resolve, reject) => {
      if (queue.length === 0) setImmediate(flush);
      queue.push({ input, resolve, reject });
    });
}

interface EventBody {
  full: string;
  thin?: string;
  payload: Record<string, unknown>;
}

/** The thin form (`data: {id}`: the job's, or a pipeline run's for `run.*` events) of an event's body, serialized on first use. */
function thinBody(body: EventBody, jobId: string | null): string {
  const data = body.payload.data as { id?: unknown } | undefined;
  body.thin ??= JSON.stringify({ ...body.payload, data: { id: jobId ?? data?.id ?? null } });
  return body.thin;
}

/** Serialized bodies of the most recent events, by event id (least recently used dropped first). */
function eventBodies(capacity: number) {
  const kept = new Map<string, EventBody>();
  const keep = (id: string, body: EventBody) => {
    kept.delete(id);
    kept.set(id, body);
    if (kept.size > capacity) kept.delete(kept.keys().next().value!);
    return body;
  };
  return {
    /** What is kept now: the ids to name as known, and the bodies they stand for. */
    snapshot: () => new Map(kept),
    resolve(work: DeliveryWork, known: Map<string, EventBody>): EventBody {
      const { id, payloadJson } = work.event;
      const held = kept.get(id) ?? known.get(id);
      if (held) return keep(id, held);
      if (payloadJson === null) throw new Error(`event ${id} came without its payload and is not kept`);
      const payload = JSON.parse(payloadJson) as Record<string, unknown>;
      return keep(id, { full: JSON.stringify(payload), payload });
    },
  };
}

export function deliverCallbackProcessor(deps: WorkerDeps) {
  const { db, clock, config } = deps;
  const bodies = eventBodies(KEPT_EVENTS);
  const readWork = batched(async (ids: string[]) => {
    // The bodies named as known are the ones held here, whatever is dropped meanwhile.
    const known = bodies.snapshot();
    const rows = await getDeliveryWork(db.db, ids, [...known.keys()]);
    const byId = new Map(rows.map((work) => [work.delivery.id, { work, body: bodies.resolve(work, known) }]));
    return ids.map((id) => byId.get(id) ?? null);
  });
  const record = batched((records: AttemptRecord[]) => recordAttempts(db.db, records));

  return async (work: QueueJob, token?: string): Promise<void> => {
    const { deliveryId, traceparent } = parsePayload('deliver', work.data);
    const found = await readWork(deliveryId);
    if (!found) throw new UnrecoverableError(`delivery ${deliveryId} does not exist`);
    // In its job's trace (the outbox dispatches without a traceparent: the job's root is recalled).
    const { delivery } = found.work;
    return jobWorkSpan(deps.queues, 'longhaul.deliver_callback', 'deliver', work, { jobId: delivery.jobId, traceparent }, () => {
      if (delivery.jobId) setJobAttributes({ id: delivery.jobId, tenantId: delivery.tenantId });
      setSpanAttributes({ 'longhaul.delivery_id': delivery.id, 'longhaul.event_id': found.work.event.id });
      return deliver(work, token, found);
    });
  };

  async function deliver(work: QueueJob, token: string | undefined, found: { work: DeliveryWork; body: EventBody }): Promise<void> {
    const { delivery, event, endpoint, tenantSecret } = found.work;
    if (delivery.status !== DeliveryStatus.Pending) return;
    const ids = { delivery_id: delivery.id, event_id: event.id, job_id: delivery.jobId, tenant_id: delivery.tenantId, endpoint_id: delivery.endpointId };
    const now = clock();
    if (delivery.nextAttemptAt && delivery.nextAttemptAt.getTime() > now.getTime() + 50) {
      // Dispatched early (recovery, duplicate notification): wait for the scheduled time.
      await work.moveToDelayed(delivery.nextAttemptAt.getTime(), token);
      throw new DelayedError();
    }
    if (endpoint && (!endpoint.enabled || endpoint.deletedAt)) {
      // Nothing is sent, so no attempt is logged (removing the endpoint normally cancelled it already).
      await changeDeliveryState(db.db, delivery, { type: 'endpoint_removed', reason: endpoint.deletedAt ? 'endpoint deleted' : 'endpoint disabled' }, now);
      return;
    }

    const secrets = endpoint
      ? activeSecrets(endpoint.secrets, now).map((s) => s.secret)
      : [tenantSecret ?? (await tenantCallbackSecret(db.db, delivery.tenantId, generateWebhookSecret))];
    const body = delivery.thinPayload ? thinBody(found.body, delivery.jobId) : found.body.full;
    const result = await sendCallback({
      url: delivery.url,
      body,
      headers: signWebhook({ secrets, webhookId: event.id, payload: body, now }),
      policy: config.callbacks.policy,
      timeoutMs: config.callbacks.timeoutMs,
      now: clock,
    });
    const at = clock();
    config.callbacks.onAttempt?.({ outcome: result.outcome, latencyMs: result.latencyMs, deliveryLatencyMs: at.getTime() - event.createdAt.getTime() });
    const logged = { statusCode: result.statusCode, latencyMs: result.latencyMs, error: result.error, at };
    const late = (fields: Record<string, unknown>, recorded: DeliveryChangeResult) =>
      deps.logger.info(
        { ...ids, ...fields, code: 'callback_answer_late', status: recorded.delivery?.status },
        'callback answered after its delivery finished; logged, not applied',
      );

    if (result.outcome === 'success') {
      const recorded = await record({ delivery, attempt: logged, event: { type: 'attempt_succeeded', statusCode: result.statusCode ?? 200 } });
      if (endpoint?.failingSince) await markEndpointHealthy(db.db, endpoint.id);
      const fields = { attempt: recorded.ok ? recorded.delivery.attempts : undefined, status_code: result.statusCode, latency_ms: result.latencyMs };
      if (recorded.ok) deps.logger.info({ ...ids, ...fields }, 'callback delivered');
      else late(fields, recorded);
      return;
    }

    let disabledReason: string | null = null;
    if (endpoint && result.outcome === 'gone') disabledReason = 'endpoint answered 410 Gone';
    else if (endpoint && shouldDisableEndpoint(await markEndpointFailing(db.db, endpoint.id, at), at, config.callbacks.disableAfterMs)) {
      disabledReason = `failing continuously for ${Math.round(config.callbacks.disableAfterMs / 1000)} s`;
    }
    const retryable = !disabledReason && result.outcome !== 'gone' && result.outcome !== 'blocked';
    const recorded = await record({
      delivery,
      attempt: logged,
      event: {
        type: 'attempt_failed',
        statusCode: result.statusCode,
        error: result.error ?? result.outcome,
        retry: retryable ? { schedule: config.callbacks.schedule, random: Math.random(), retryAfterMs: result.retryAfterMs } : null,
      },
    });
    const next = recorded.ok && recorded.delivery.status === DeliveryStatus.Pending ? recorded.delivery.nextAttemptAt : null;
    const fields = {
      attempt: recorded.ok ? recorded.delivery.attempts : undefined,
      outcome: result.outcome,
      status_code: result.statusCode,
      error: result.error,
      next_attempt_at: next?.toISOString() ?? null,
    };
    if (result.redirectHost)
      deps.logger.debug({ ...ids, ...fields, redirect_host: result.redirectHost }, 'callback endpoint redirected; not followed (the tenant sees the status only)');
    if (disabledReason && endpoint && (await disableEndpoint(db.db, endpoint.id, disabledReason, at))) {
      deps.logger.warn({ ...ids, ...fields, code: 'endpoint_disabled', reason: disabledReason }, 'webhook endpoint disabled');
    }
    if (!recorded.ok) {
      late(fields, recorded);
      return;
    }
    if (!next) {
      deps.logger.warn({ ...ids, ...fields, code: 'callback_dead_letter' }, 'callback delivery failed for good');
      return;
    }
    deps.logger.info({ ...ids, ...fields, code: 'callback_retry' }, 'callback attempt failed, will retry');
    await work.moveToDelayed(next.getTime(), token);
    throw new DelayedError();
  }
}
