/**
 * deliver: send one callback delivery (an event to a tenant endpoint or a job's callback_url),
 * signed with Standard Webhooks (`webhook-id` = the event id, stable across retries). Each
 * attempt is recorded in Postgres before the next is scheduled. Retries follow the configured
 * schedule as a re-delayed work item; `Retry-After` on 429/503 is a minimum; 410 disables the
 * endpoint; an endpoint failing continuously for `disableAfterMs` is disabled; after the last
 * attempt the delivery is `failed` (a dead letter that can be retried over the API).
 *
 * Every status change goes through changeDeliveryState (the core's `deliveryTransition`, guarded
 * by the row's status): when the endpoint is deleted or disabled while a request is in flight,
 * the answer is logged but neither revives the cancelled delivery nor schedules a retry.
 */
import { DelayedError, UnrecoverableError, type Job as QueueJob } from 'bullmq';
import { DeliveryStatus, shouldDisableEndpoint } from '@longhaul/core';
import { activeSecrets, changeDeliveryState, disableEndpoint, getDeliveryWork, markEndpointFailing, markEndpointHealthy, recordAttempt, tenantCallbackSecret } from '@longhaul/db';
import { sendCallback } from '@longhaul/callbacks';
import { parsePayload } from '@longhaul/queue';
import { generateWebhookSecret, signWebhook } from '@longhaul/webhooks';
import type { WorkerDeps } from '../deps.ts';

export function deliverCallbackProcessor(deps: WorkerDeps) {
  const { db, clock, config } = deps;
  return async (work: QueueJob, token?: string): Promise<void> => {
    const { deliveryId } = parsePayload('deliver', work.data);
    const found = await getDeliveryWork(db.db, deliveryId);
    if (!found) throw new UnrecoverableError(`delivery ${deliveryId} does not exist`);
    const { delivery, event, endpoint } = found;
    if (delivery.status !== DeliveryStatus.Pending) return;
    const log = deps.logger.child({ delivery_id: delivery.id, event_id: event.id, job_id: delivery.jobId, tenant_id: delivery.tenantId, endpoint_id: delivery.endpointId });
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

    const secrets = endpoint ? activeSecrets(endpoint.secrets, now).map((s) => s.secret) : [await tenantCallbackSecret(db.db, delivery.tenantId, generateWebhookSecret)];
    const payload = delivery.thinPayload ? { ...event.payload, data: { id: delivery.jobId } } : event.payload;
    const body = JSON.stringify(payload);
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

    if (result.outcome === 'success') {
      const recorded = await recordAttempt(db.db, delivery, logged, { type: 'attempt_succeeded', statusCode: result.statusCode ?? 200 });
      if (endpoint?.failingSince) await markEndpointHealthy(db.db, endpoint.id);
      const fields = { attempt: recorded.ok ? recorded.delivery.attempts : undefined, status_code: result.statusCode, latency_ms: result.latencyMs };
      if (recorded.ok) log.info(fields, 'callback delivered');
      else log.info({ ...fields, code: 'callback_answer_late', status: recorded.delivery?.status }, 'callback answered after its delivery finished; logged, not applied');
      return;
    }

    let disabledReason: string | null = null;
    if (endpoint && result.outcome === 'gone') disabledReason = 'endpoint answered 410 Gone';
    else if (endpoint && shouldDisableEndpoint(await markEndpointFailing(db.db, endpoint.id, at), at, config.callbacks.disableAfterMs)) {
      disabledReason = `failing continuously for ${Math.round(config.callbacks.disableAfterMs / 1000)} s`;
    }
    const retryable = !disabledReason && result.outcome !== 'gone' && result.outcome !== 'blocked';
    const recorded = await recordAttempt(db.db, delivery, logged, {
      type: 'attempt_failed',
      statusCode: result.statusCode,
      error: result.error ?? result.outcome,
      retry: retryable ? { schedule: config.callbacks.schedule, random: Math.random(), retryAfterMs: result.retryAfterMs } : null,
    });
    const next = recorded.ok && recorded.delivery.status === DeliveryStatus.Pending ? recorded.delivery.nextAttemptAt : null;
    const fields = {
      attempt: recorded.ok ? recorded.delivery.attempts : undefined,
      outcome: result.outcome,
      status_code: result.statusCode,
      error: result.error,
      next_attempt_at: next?.toISOString() ?? null,
    };
    if (result.redirectHost) log.debug({ ...fields, redirect_host: result.redirectHost }, 'callback endpoint redirected; not followed (the tenant sees the status only)');
    if (disabledReason && endpoint && (await disableEndpoint(db.db, endpoint.id, disabledReason, at))) {
      log.warn({ ...fields, code: 'endpoint_disabled', reason: disabledReason }, 'webhook endpoint disabled');
    }
    if (!recorded.ok) {
      log.info({ ...fields, code: 'callback_answer_late', status: recorded.delivery?.status }, 'callback answered after its delivery finished; logged, not applied');
      return;
    }
    if (!next) {
      log.warn({ ...fields, code: 'callback_dead_letter' }, 'callback delivery failed for good');
      return;
    }
    log.info({ ...fields, code: 'callback_retry' }, 'callback attempt failed, will retry');
    await work.moveToDelayed(next.getTime(), token);
    throw new DelayedError();
  };
}
