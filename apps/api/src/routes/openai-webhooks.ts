/**
 * POST /webhooks/openai: OpenAI's project webhooks (response.completed|failed|cancelled|incomplete).
 *
 * Verified on the raw body (Standard Webhooks, every configured secret), recorded in the
 * Postgres inbox keyed by `webhook-id` (a redelivery is a 200 that changes nothing), and handed
 * to the worker, which retrieves the response and reconciles it. The work item carries the event and
 * the job it names (looked up by the inbox insert itself), so the worker reads neither again. The answer is immediate: the
 * provider call happens in the worker. A bad signature is a 400 and nothing else happens; so is
 * a signed body nested deeper than 64 levels, refused on its bytes before it is parsed.
 */
import express, { Router } from 'express';
import { z } from 'zod';
import { LonghaulError, ServiceUnavailableError, ValidationError } from '@longhaul/core';
import { markProviderBatchDue, recordWebhook, toJobSnapshot } from '@longhaul/db';
import { verifyWebhook } from '@longhaul/webhooks';
import type { ApiContext } from '../context.ts';
import { nestingError } from '../json-depth.ts';
import { unstorableTextError } from '../request-input.ts';

const eventSchema = z.object({
  id: z.string().min(1),
  object: z.literal('event').optional(),
  type: z.string().min(1),
  created_at: z.number().optional(),
  data: z.looseObject({ id: z.string().min(1) }).optional(),
});

export function openaiWebhooksRouter(deps: ApiContext): Router {
  const { db, queues, clock, config, metrics } = deps;
  const router = Router();

  router.post('/', express.raw({ type: () => true, limit: '256kb' }), async (req, res) => {
    const log = req.log.child({ webhook_id: req.get('webhook-id') ?? null });
    if (config.openaiWebhookSecrets.length === 0) {
      log.error({ code: 'webhook_secret_not_configured' }, 'OpenAI webhook received but OPENAI_WEBHOOK_SECRET is not set');
      throw new ServiceUnavailableError('Webhook receiver is not configured.', 'webhook_secret_not_configured');
    }
    const raw: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const verified = verifyWebhook({ payload: raw, header: (name) => req.get(name), secrets: config.openaiWebhookSecrets, now: clock() });
    if (!verified.ok) {
      log.warn({ code: 'webhook_rejected', reason: verified.reason }, 'OpenAI webhook rejected');
      metrics.openaiWebhook('rejected');
      throw new LonghaulError(`Webhook signature verification failed: ${verified.reason}.`, { code: 'invalid_webhook_signature', status: 400, type: 'invalid_request_error' });
    }

    // Refused before it is parsed, as every JSON body of the API is (json-depth.ts).
    const tooDeep = nestingError(raw);
    if (tooDeep) {
      log.warn({ code: 'webhook_malformed', param: tooDeep.param }, 'signed OpenAI webhook nested too deeply');
      metrics.openaiWebhook('malformed');
      throw new ValidationError(`Webhook body is not a valid event: ${tooDeep.message}`, tooDeep.param, 'invalid_webhook_payload');
    }
    let event: z.infer<typeof eventSchema>;
    try {
      event = eventSchema.parse(JSON.parse(raw.toString('utf8')));
    } catch {
      log.warn({ code: 'webhook_malformed' }, 'signed OpenAI webhook with a malformed body');
      metrics.openaiWebhook('malformed');
      throw new ValidationError('Webhook body is not a valid event.', null, 'invalid_webhook_payload');
    }
    // The event is stored as jsonb: text Postgres cannot hold is refused like a malformed body.
    const unstorable = unstorableTextError(event);
    if (unstorable) {
      log.warn({ code: 'webhook_malformed', param: unstorable.param }, 'signed OpenAI webhook with text Postgres cannot store');
      metrics.openaiWebhook('malformed');
      throw new ValidationError(`Webhook body is not a valid event: ${unstorable.message}`, unstorable.param, 'invalid_webhook_payload');
    }

    const responseId = event.type.startsWith('response.') ? (event.data?.id ?? null) : null;
    const recorded = await recordWebhook(db, {
      webhookId: verified.webhookId,
      eventId: event.id,
      eventType: event.type,
      responseId,
      payload: event as Record<string, unknown>,
      receivedAt: clock(),
    });
    const eventLog = log.child({ response_id: responseId, event_type: event.type });
    if (!recorded) {
      eventLog.info({ code: 'webhook_duplicate' }, 'duplicate OpenAI webhook ignored');
      metrics.openaiWebhook('duplicate');
      res.json({ received: true, duplicate: true });
      return;
    }
    // A Batch API batch moved: the worker's batch loop reads it at its next tick (batching.ts).
    if (event.type.startsWith('batch.') && event.data?.id) {
      const batchId = await markProviderBatchDue(db, event.data.id, clock());
      eventLog.info({ batch_id: batchId, provider_batch_id: event.data.id, code: batchId ? 'batch_due' : 'batch_unknown' }, 'OpenAI batch webhook');
    }
    try {
      const job = recorded.job ? toJobSnapshot(recorded.job) : undefined;
      await queues.add('webhook', { inboxId: recorded.id, event: { webhookId: verified.webhookId, eventType: event.type, responseId }, job });
    } catch (err) {
      eventLog.warn({ err, code: 'dispatch_deferred' }, 'could not reach Redis; the sweeper will process the webhook');
    }
    eventLog.info({ code: 'webhook_received' }, 'OpenAI webhook received');
    metrics.openaiWebhook('received');
    res.json({ received: true });
  });

  return router;
}
