/**
 * Listens on the Postgres channel the callback outbox notifies (on commit) and dispatches each
 * new delivery to the `deliver` queue. Every worker listens; work item ids are delivery ids, so
 * several listeners dispatching the same delivery create one work item. Notifications missed
 * while no worker listened (or while Postgres was down) are picked up by the sweeper.
 */
import pg from 'pg';
import { CALLBACK_NOTIFY_CHANNEL } from '@longhaul/db';
import { parsePayload } from '@longhaul/queue';
import type { WorkerDeps } from './deps.ts';

export interface OutboxListener {
  close(): Promise<void>;
}

export function startOutboxListener(deps: WorkerDeps): OutboxListener {
  const { queues, logger } = deps;
  let client: pg.Client | null = null;
  let closed = false;
  let retryTimer: NodeJS.Timeout | undefined;

  // One notification names every delivery of one state change (an event fanned out to all its
  // endpoints): they are dispatched in one Redis round trip. The work item id is the delivery id
  // (as `queues.add` would give it), so a delivery dispatched twice is one work item.
  const dispatch = (payload: string | undefined) => {
    const ids = (payload ?? '').split(',').filter(Boolean);
    if (ids.length === 0) return;
    const add = async () => {
      const items = ids.map((deliveryId) => ({ name: 'deliver', data: parsePayload('deliver', { deliveryId }), opts: { jobId: deliveryId } }));
      await queues.get('deliver').addBulk(items);
    };
    add().catch((err: unknown) => logger.warn({ err, delivery_ids: ids, code: 'dispatch_deferred' }, 'could not dispatch callbacks; the sweeper will'));
  };

  const connect = async (attempt = 0): Promise<void> => {
    if (closed) return;
    const c = new pg.Client({ connectionString: deps.db.connectionString, application_name: 'longhaul-outbox-listener' });
    c.on('notification', (msg) => dispatch(msg.payload));
    c.on('error', (err) => {
      logger.warn({ err, code: 'outbox_listener_lost' }, 'outbox listener lost its connection; reconnecting');
      void c.end().catch(() => {});
      if (client === c) client = null;
      scheduleReconnect(0);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${CALLBACK_NOTIFY_CHANNEL}`);
      if (closed) {
        await c.end();
        return;
      }
      client = c;
    } catch (err) {
      void c.end().catch(() => {});
      logger.warn({ err, attempt, code: 'outbox_listener_unavailable' }, 'outbox listener could not connect; retrying');
      scheduleReconnect(attempt + 1);
    }
  };
  const scheduleReconnect = (attempt: number) => {
    if (closed) return;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => void connect(attempt), Math.min(5_000, 250 * 2 ** attempt));
  };

  void connect();
  return {
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      await client?.end().catch(() => {});
      client = null;
    },
  };
}
