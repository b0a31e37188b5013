/**
 * /v1/webhook-endpoints: a tenant's callback endpoints, and /v1/deliveries: the delivery log,
 * dead letters and replays. Secrets are shown once, at creation and at rotation.
 */
import { Router, type Request } from 'express';
import { z } from 'zod';
import { DELIVERY_STATUSES, NotFoundError, ValidationError } from '@longhaul/core';
import { checkCallbackUrlResolved } from '@longhaul/callbacks';
import {
  CALLBACK_EVENT_TYPES,
  RUN_CALLBACK_EVENT_TYPES,
  createEndpoint,
  deleteEndpoint,
  getDelivery,
  getEndpoint,
  listDeliveries,
  listEndpoints,
  recoverEndpointDeliveries,
  retryDelivery,
  rotateEndpointSecret,
  tenantCallbackSecret,
  updateEndpoint,
  type CallbackAttempt,
  type CallbackDelivery,
  type WebhookEndpoint,
} from '@longhaul/db';
import { generateWebhookSecret } from '@longhaul/webhooks';
import type { ApiDeps } from '../context.ts';
import { checkPathIds, ids, parseInput } from '../request-input.ts';

const unix = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : null);

function toEndpointObject(e: WebhookEndpoint, secret?: string) {
  return {
    id: e.id,
    object: 'webhook_endpoint' as const,
    url: e.url,
    description: e.description,
    event_types: e.eventTypes,
    enabled: e.enabled,
    thin_payload: e.thinPayload,
    disabled_reason: e.disabledReason,
    failing_since: unix(e.failingSince),
    created_at: unix(e.createdAt),
    updated_at: unix(e.updatedAt),
    ...(secret ? { secret } : {}),
  };
}

function toDeliveryObject(d: CallbackDelivery, attempts?: CallbackAttempt[]) {
  return {
    id: d.id,
    object: 'delivery' as const,
    event_id: d.eventId,
    job_id: d.jobId,
    endpoint_id: d.endpointId,
    url: d.url,
    status: d.status,
    attempts: d.attempts,
    next_attempt_at: unix(d.nextAttemptAt),
    last_status_code: d.lastStatusCode,
    last_error: d.lastError,
    created_at: unix(d.createdAt),
    finished_at: unix(d.finishedAt),
    ...(attempts
      ? {
          attempt_log: attempts.map((a) => ({
            attempt: a.attempt,
            status_code: a.statusCode,
            latency_ms: a.latencyMs,
            error: a.error,
            at: unix(a.at),
            next_attempt_at: unix(a.nextAttemptAt),
          })),
        }
      : {}),
  };
}

/** Job events, and pipeline runs' (`run.running`, `run.completed`, …), which only endpoints that name them receive. */
const EVENT_TYPES = [...CALLBACK_EVENT_TYPES, ...RUN_CALLBACK_EVENT_TYPES] as [string, ...string[]];
const eventTypes = z.array(z.enum(EVENT_TYPES)).max(EVENT_TYPES.length);
export const createSchema = z.strictObject({
  url: z.string().max(2048),
  description: z.string().max(512).nullable().optional(),
  event_types: eventTypes.optional(),
  enabled: z.boolean().optional(),
  thin_payload: z.boolean().optional(),
});
export const patchSchema = createSchema.partial();
export const rotateSchema = z.strictObject({
  overlap_seconds: z
    .number()
    .int()
    .min(0)
    .max(7 * 86_400)
    .default(86_400),
});
/** Unix seconds up to the end of year 9999: a later `since` is no date at all (it was a 500, Invalid time value). */
export const recoverSchema = z.strictObject({ since: z.number().int().nonnegative().max(253_402_300_799) });
export const listDeliveriesSchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: ids.delivery.optional(),
  status: z.enum(DELIVERY_STATUSES).optional(),
  endpoint_id: ids.webhookEndpoint.optional(),
  job_id: ids.job.optional(),
});

export function webhookEndpointsRouter(deps: ApiDeps): Router {
  const { db, clock, config } = deps;
  const router = Router();
  checkPathIds(router, { id: ids.webhookEndpoint });
  const tenantOf = (req: Request) => req.tenantId!;

  async function checkUrl(url: string): Promise<void> {
    const checked = await checkCallbackUrlResolved(url, config.callbackPolicy);
    if (!checked.ok) throw new ValidationError(`Invalid 'url': ${checked.reason}.`, 'url', 'url_not_allowed');
  }

  async function found(req: Request): Promise<WebhookEndpoint> {
    const endpoint = await getEndpoint(db, tenantOf(req), String(req.params.id));
    if (!endpoint) throw new NotFoundError(`No webhook endpoint with id '${req.params.id}'.`, 'id');
    return endpoint;
  }

  router.post('/', async (req, res) => {
    const body = parseInput(createSchema, req.body);
    await checkUrl(body.url);
    const secret = generateWebhookSecret();
    const endpoint = await createEndpoint(
      db,
      {
        tenantId: tenantOf(req),
        url: body.url,
        description: body.description ?? null,
        eventTypes: body.event_types ?? [],
        enabled: body.enabled ?? true,
        thinPayload: body.thin_payload ?? false,
        secret,
      },
      clock(),
    );
    req.log.info({ endpoint_id: endpoint.id, tenant_id: endpoint.tenantId }, 'webhook endpoint created');
    res.status(201).json(toEndpointObject(endpoint, secret));
  });

  router.get('/', async (req, res) => {
    const endpoints = await listEndpoints(db, tenantOf(req));
    res.json({ object: 'list', data: endpoints.map((e) => toEndpointObject(e)), has_more: false });
  });

  router.get('/:id', async (req, res) => {
    res.json(toEndpointObject(await found(req)));
  });

  router.patch('/:id', async (req, res) => {
    const body = parseInput(patchSchema, req.body);
    await found(req);
    if (body.url !== undefined) await checkUrl(body.url);
    const updated = await updateEndpoint(
      db,
      tenantOf(req),
      String(req.params.id),
      { url: body.url, description: body.description, eventTypes: body.event_types, enabled: body.enabled, thinPayload: body.thin_payload },
      clock(),
    );
    if (!updated) throw new NotFoundError(`No webhook endpoint with id '${req.params.id}'.`, 'id');
    res.json(toEndpointObject(updated));
  });

  router.delete('/:id', async (req, res) => {
    if (!(await deleteEndpoint(db, tenantOf(req), String(req.params.id), clock()))) throw new NotFoundError(`No webhook endpoint with id '${req.params.id}'.`, 'id');
    res.json({ id: req.params.id, object: 'webhook_endpoint', deleted: true });
  });

  router.post('/:id/rotate-secret', async (req, res) => {
    const body = parseInput(rotateSchema, req.body);
    const secret = generateWebhookSecret();
    const updated = await rotateEndpointSecret(db, tenantOf(req), String(req.params.id), secret, body.overlap_seconds * 1000, clock());
    if (!updated) throw new NotFoundError(`No webhook endpoint with id '${req.params.id}'.`, 'id');
    res.json(toEndpointObject(updated, secret));
  });

  router.post('/:id/recover', async (req, res) => {
    const body = parseInput(recoverSchema, req.body);
    const endpoint = await found(req);
    const ids = await recoverEndpointDeliveries(db, tenantOf(req), endpoint.id, new Date(body.since * 1000), clock());
    await dispatchAll(deps, req, ids);
    res.status(202).json({ object: 'recovery', endpoint_id: endpoint.id, deliveries: ids.length });
  });

  return router;
}

async function dispatchAll(deps: ApiDeps, req: Request, ids: string[]): Promise<void> {
  for (const deliveryId of ids) {
    try {
      await deps.queues.add('deliver', { deliveryId });
    } catch (err) {
      req.log.warn({ err, delivery_id: deliveryId, code: 'dispatch_deferred' }, 'could not reach Redis; the sweeper will dispatch the delivery');
      return;
    }
  }
}

export function deliveriesRouter(deps: ApiDeps): Router {
  const { db, clock } = deps;
  const router = Router();
  checkPathIds(router, { id: ids.delivery });
  const tenantOf = (req: Request) => req.tenantId!;

  router.get('/', async (req, res) => {
    const q = parseInput(listDeliveriesSchema, req.query);
    const { data, hasMore } = await listDeliveries(db, { tenantId: tenantOf(req), limit: q.limit, after: q.after, status: q.status, endpointId: q.endpoint_id, jobId: q.job_id });
    res.json({ object: 'list', data: data.map((d) => toDeliveryObject(d)), first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore });
  });

  router.get('/:id', async (req, res) => {
    const found = await getDelivery(db, tenantOf(req), String(req.params.id));
    if (!found) throw new NotFoundError(`No delivery with id '${req.params.id}'.`, 'id');
    res.json(toDeliveryObject(found.delivery, found.attempts));
  });

  router.post('/:id/retry', async (req, res) => {
    const retried = await retryDelivery(db, tenantOf(req), String(req.params.id), clock());
    if (!retried.delivery) throw new NotFoundError(`No delivery with id '${req.params.id}'.`, 'id');
    if (!retried.ok)
      throw new ValidationError(
        `Delivery ${retried.delivery.id} is ${retried.delivery.status}; only failed or cancelled deliveries can be retried.`,
        'id',
        'delivery_not_retryable',
      );
    await dispatchAll(deps, req, [retried.delivery.id]);
    res.status(202).json(toDeliveryObject(retried.delivery));
  });

  return router;
}

/** GET /v1/callback-secret: the secret that signs callbacks to jobs' own callback_url. */
export function callbackSecretRouter(deps: ApiDeps): Router {
  const router = Router();
  router.get('/', async (req, res) => {
    const secret = await tenantCallbackSecret(deps.db, req.tenantId!, generateWebhookSecret);
    res.json({ object: 'callback_secret', secret });
  });
  return router;
}
