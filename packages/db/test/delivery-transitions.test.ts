/**
 * The guarded delivery write against a real Postgres: a decision taken on a row that moved
 * meanwhile is taken again on the fresh row, so an endpoint removal wins over an answer that
 * arrives after it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  changeDeliveryState,
  createEndpoint,
  deleteEndpoint,
  getDelivery,
  recordAttempt,
  retryDelivery,
  schema,
  updateEndpoint,
  type CallbackDelivery,
  type DbHandle,
} from '../src/index.ts';
import { newId } from '../src/ids.ts';
import { useTestDatabase } from './test-database.ts';

const now = new Date('2026-01-01T00:00:00Z');
const later = new Date('2026-01-01T00:00:05Z');
const retry = { schedule: { jitter: 0 }, random: 0.5 };
const testDb = useTestDatabase('deliveries');
let handle: DbHandle;
let tenantId: string;
beforeAll(() => {
  ({ handle, tenantId } = testDb);
});

async function newEndpoint() {
  return createEndpoint(handle.db, { tenantId, url: 'https://example.com/hook', description: null, eventTypes: [], enabled: true, thinPayload: false, secret: 'whsec_test' }, now);
}

async function newDelivery(endpointId: string | null, status: CallbackDelivery['status'] = 'pending'): Promise<CallbackDelivery> {
  const eventId = newId('evt');
  await handle.db.insert(schema.callbackEvents).values({ id: eventId, tenantId, jobId: null, type: 'job.completed', sequence: 1, payload: { id: eventId }, createdAt: now });
  const [row] = await handle.db
    .insert(schema.callbackDeliveries)
    .values({
      id: newId('dlv'),
      tenantId,
      eventId,
      endpointId,
      url: 'https://example.com/hook',
      status,
      nextAttemptAt: now,
      createdAt: now,
      updatedAt: now,
      finishedAt: status === 'pending' ? null : now,
    })
    .returning();
  return row!;
}

describe('changeDeliveryState', () => {
  it('writes a decision on the row in hand when nothing moved', async () => {
    const d = await newDelivery(null);
    const r = await recordAttempt(
      handle.db,
      d,
      { statusCode: 500, latencyMs: 3, error: 'HTTP 500', at: later },
      { type: 'attempt_failed', statusCode: 500, error: 'HTTP 500', retry },
    );
    expect(r).toMatchObject({ ok: true, changed: true, from: 'pending', delivery: { status: 'pending', attempts: 1, nextAttemptAt: new Date(later.getTime() + 5_000) } });
    const stored = await getDelivery(handle.db, tenantId, d.id);
    expect(stored!.delivery).toMatchObject({ status: 'pending', attempts: 1, lastStatusCode: 500, lastError: 'HTTP 500', updatedAt: later });
    expect(stored!.attempts).toMatchObject([{ attempt: 1, statusCode: 500, nextAttemptAt: new Date(later.getTime() + 5_000) }]);
  });

  it('an answer decided on a stale row is decided again on the cancelled one, and only logged', async () => {
    for (const remove of [(id: string) => deleteEndpoint(handle.db, tenantId, id, now), (id: string) => updateEndpoint(handle.db, tenantId, id, { enabled: false }, now)]) {
      for (const event of [
        { type: 'attempt_succeeded', statusCode: 200 },
        { type: 'attempt_failed', statusCode: 500, error: 'HTTP 500', retry },
      ] as const) {
        const endpoint = await newEndpoint();
        const inHand = await newDelivery(endpoint.id);
        await remove(endpoint.id);
        const r = await recordAttempt(handle.db, inHand, { statusCode: event.statusCode, latencyMs: 3, error: null, at: later }, event);
        expect(r).toMatchObject({ ok: false, error: { code: 'delivery_terminal' }, delivery: { status: 'cancelled' } });
        const stored = await getDelivery(handle.db, tenantId, inHand.id);
        expect(stored!.delivery).toMatchObject({ status: 'cancelled', attempts: 0, nextAttemptAt: null, finishedAt: now });
        expect(stored!.attempts).toMatchObject([{ attempt: 1, statusCode: event.statusCode, nextAttemptAt: null }]);
      }
    }
  });

  it('removing an endpoint cancels only its pending deliveries', async () => {
    const endpoint = await newEndpoint();
    const pending = await Promise.all([0, 1, 2].map(() => newDelivery(endpoint.id)));
    const succeeded = await newDelivery(endpoint.id, 'succeeded');
    const elsewhere = await newDelivery(null);
    expect(await deleteEndpoint(handle.db, tenantId, endpoint.id, later)).toBe(true);
    for (const d of pending)
      expect((await getDelivery(handle.db, tenantId, d.id))!.delivery).toMatchObject({ status: 'cancelled', lastError: 'endpoint deleted', finishedAt: later });
    expect((await getDelivery(handle.db, tenantId, succeeded.id))!.delivery).toMatchObject({ status: 'succeeded', finishedAt: now });
    expect((await getDelivery(handle.db, tenantId, elsewhere.id))!.delivery.status).toBe('pending');
  });

  it('a redelivery restarts a failed or cancelled delivery and refuses others', async () => {
    const failed = await newDelivery(null, 'failed');
    expect(await retryDelivery(handle.db, tenantId, failed.id, later)).toMatchObject({
      ok: true,
      changed: true,
      from: 'failed',
      delivery: { status: 'pending', attempts: 0, nextAttemptAt: later, finishedAt: null },
    });
    expect(await retryDelivery(handle.db, tenantId, failed.id, later)).toMatchObject({ ok: false, error: { code: 'delivery_not_retryable' } });
    expect(await retryDelivery(handle.db, 'tn_other', failed.id, later)).toMatchObject({ ok: false, error: { code: 'delivery_not_found' }, delivery: null });
  });

  it('a stale refusal is checked against a fresh row', async () => {
    const d = await newDelivery(null, 'failed');
    const stale = { ...d, status: 'succeeded' as const };
    expect(await changeDeliveryState(handle.db, stale, { type: 'redelivery_requested' }, later)).toMatchObject({ ok: true, from: 'failed', delivery: { status: 'pending' } });
  });
});
