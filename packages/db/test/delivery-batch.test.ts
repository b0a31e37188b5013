/**
 * The deliver processor's batched statements against a real Postgres: many deliveries read in
 * one statement, and many attempts' answers recorded in one, with the guarantees of the
 * one-at-a-time path (a delivery that moved meanwhile is decided again on its fresh row, every
 * attempt is logged exactly once).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createEndpoint, deleteEndpoint, getDelivery, getDeliveryWork, recordAttempts, schema, tenantCallbackSecret, type CallbackDelivery, type DbHandle } from '../src/index.ts';
import { newId } from '../src/ids.ts';
import { useTestDatabase } from './test-database.ts';

const now = new Date('2026-01-01T00:00:00Z');
const later = new Date('2026-01-01T00:00:05Z');
const retry = { schedule: { jitter: 0 }, random: 0.5 };
const testDb = useTestDatabase('delivery-batches');
let handle: DbHandle;
let tenantId: string;
beforeAll(() => {
  ({ handle, tenantId } = testDb);
});

const newEndpoint = (secret = 'whsec_test') =>
  createEndpoint(handle.db, { tenantId, url: 'https://example.com/hook', description: null, eventTypes: [], enabled: true, thinPayload: false, secret }, now);

async function newEvent(payload: Record<string, unknown> = {}): Promise<string> {
  const eventId = newId('evt');
  await handle.db
    .insert(schema.callbackEvents)
    .values({ id: eventId, tenantId, jobId: null, type: 'job.completed', sequence: 1, payload: { id: eventId, ...payload }, createdAt: now });
  return eventId;
}

async function newDelivery(endpointId: string | null, eventId?: string): Promise<CallbackDelivery> {
  const [row] = await handle.db
    .insert(schema.callbackDeliveries)
    .values({
      id: newId('dlv'),
      tenantId,
      eventId: eventId ?? (await newEvent()),
      endpointId,
      url: 'https://example.com/hook',
      nextAttemptAt: now,
      createdAt: now,
      updatedAt: now,
    })
    .returning();
  return row!;
}

const answer = (statusCode: number) => ({ statusCode, latencyMs: 3, error: statusCode < 300 ? null : `HTTP ${statusCode}`, at: later });

describe('recordAttempts', () => {
  it('writes each answer decided on its row in hand, and decides again on a row that moved', async () => {
    const endpoint = await newEndpoint();
    const ok = await newDelivery(endpoint.id);
    const failing = await newDelivery(endpoint.id);
    const removed = await newDelivery((await newEndpoint()).id);
    await deleteEndpoint(handle.db, tenantId, removed.endpointId!, now);

    const results = await recordAttempts(handle.db, [
      { delivery: ok, attempt: answer(200), event: { type: 'attempt_succeeded', statusCode: 200 } },
      { delivery: failing, attempt: answer(500), event: { type: 'attempt_failed', statusCode: 500, error: 'HTTP 500', retry } },
      { delivery: removed, attempt: answer(200), event: { type: 'attempt_succeeded', statusCode: 200 } },
    ]);

    expect(results).toMatchObject([
      { ok: true, changed: true, from: 'pending', delivery: { id: ok.id, status: 'succeeded', attempts: 1, finishedAt: later } },
      { ok: true, changed: true, from: 'pending', delivery: { id: failing.id, status: 'pending', attempts: 1, nextAttemptAt: new Date(later.getTime() + 5_000) } },
      { ok: false, error: { code: 'delivery_terminal' }, delivery: { id: removed.id, status: 'cancelled' } },
    ]);
    const stored = async (d: CallbackDelivery) => (await getDelivery(handle.db, tenantId, d.id))!;
    expect(await stored(ok)).toMatchObject({
      delivery: { status: 'succeeded', attempts: 1, lastStatusCode: 200, lastError: null, updatedAt: later, finishedAt: later },
      attempts: [{ attempt: 1, statusCode: 200, latencyMs: 3, error: null, at: later, nextAttemptAt: null }],
    });
    expect(await stored(failing)).toMatchObject({
      delivery: { status: 'pending', attempts: 1, lastStatusCode: 500, lastError: 'HTTP 500', nextAttemptAt: new Date(later.getTime() + 5_000) },
      attempts: [{ attempt: 1, statusCode: 500, error: 'HTTP 500', nextAttemptAt: new Date(later.getTime() + 5_000) }],
    });
    // The late answer is logged once, and changes nothing.
    expect(await stored(removed)).toMatchObject({
      delivery: { status: 'cancelled', attempts: 0, lastError: 'endpoint deleted', finishedAt: now },
      attempts: [{ attempt: 1, statusCode: 200, nextAttemptAt: null }],
    });
    expect((await stored(removed)).attempts).toHaveLength(1);
  });

  it('records a delivery named twice in one batch once as applied, the second answer on the fresh row', async () => {
    const d = await newDelivery(null);
    const results = await recordAttempts(handle.db, [
      { delivery: d, attempt: answer(200), event: { type: 'attempt_succeeded', statusCode: 200 } },
      { delivery: d, attempt: answer(200), event: { type: 'attempt_succeeded', statusCode: 200 } },
    ]);
    expect(results).toMatchObject([
      { ok: true, changed: true, delivery: { status: 'succeeded', attempts: 1 } },
      { ok: false, error: { code: 'delivery_terminal' } },
    ]);
    const stored = (await getDelivery(handle.db, tenantId, d.id))!;
    expect(stored.delivery).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(stored.attempts.map((a) => a.attempt)).toEqual([1, 2]);
  });
});

describe('getDeliveryWork', () => {
  it('reads several deliveries in one statement, with their event, endpoint and the callback secret', async () => {
    const endpoint = await newEndpoint('whsec_endpoint');
    const shared = await newEvent({ type: 'job.completed', data: { id: 'job_x', output_text: 'hi' } });
    const toEndpoint = await newDelivery(endpoint.id, shared);
    const toCallbackUrl = await newDelivery(null, shared);
    const other = await newDelivery(endpoint.id);
    const secret = await tenantCallbackSecret(handle.db, tenantId, () => 'whsec_tenant');

    const work = await getDeliveryWork(handle.db, [toEndpoint.id, toCallbackUrl.id, other.id, 'dlv_missing']);
    const byId = new Map(work.map((w) => [w.delivery.id, w]));
    expect(work).toHaveLength(3);
    expect(byId.get(toEndpoint.id)).toEqual({
      delivery: toEndpoint,
      event: { id: shared, createdAt: now, payloadJson: expect.any(String) },
      endpoint: { id: endpoint.id, enabled: true, deletedAt: null, secrets: endpoint.secrets, failingSince: null },
      tenantSecret: null,
    });
    expect(JSON.parse(byId.get(toEndpoint.id)!.event.payloadJson!)).toEqual({ id: shared, type: 'job.completed', data: { id: 'job_x', output_text: 'hi' } });
    expect(byId.get(toCallbackUrl.id)).toMatchObject({ delivery: toCallbackUrl, endpoint: null, tenantSecret: secret });

    // An event the caller holds comes without its payload; the others still carry theirs.
    const again = await getDeliveryWork(handle.db, [toEndpoint.id, toCallbackUrl.id, other.id], [shared]);
    for (const w of again) expect(w.event.payloadJson === null).toBe(w.event.id === shared);
  });

  it('shows an endpoint removed after the delivery was written', async () => {
    const endpoint = await newEndpoint();
    const d = await newDelivery(endpoint.id);
    await deleteEndpoint(handle.db, tenantId, endpoint.id, later);
    const [work] = await getDeliveryWork(handle.db, [d.id]);
    expect(work).toMatchObject({ delivery: { status: 'cancelled' }, endpoint: { id: endpoint.id, enabled: false, deletedAt: later } });
  });
});
