/**
 * The callback delivery's operations for the ops diagnostic: what the deliver processor does for
 * one delivery (read it, sign it, POST it, record the attempt) and what dispatching it costs, each
 * measured alone, plus the same read as a raw prepared statement to price the obvious fix.
 * Deliveries are made the real way: an endpoint on a local receiver, then jobs moved to
 * `completed` through changeJobState, whose outbox writes one delivery each.
 */
import type pg from 'pg';
import type { JobStatus } from '@longhaul/core';
import { createAddressPolicy, sendCallback } from '@longhaul/callbacks';
import { changeJobState, createEndpoint, getDeliveryWork, recordAttempt, type DbHandle, type Job } from '@longhaul/db';
import type { Queues } from '@longhaul/queue';
import { generateWebhookSecret, signWebhook } from '@longhaul/webhooks';
import { startReceiver } from './receiver.ts';

export type OpPlanRow = [name: string, serverPids: () => Promise<number[]>, op: (i: number) => Promise<unknown> | unknown];

export interface CallbackOpsContext {
  handle: DbHandle;
  raw: pg.Pool;
  queues: Queues;
  tenantId: string;
  /** One fresh pending job per call. */
  newJob: () => Promise<Job>;
  lanes: number;
  pgPids: () => Promise<number[]>;
}

export async function callbackOps(ctx: CallbackOpsContext): Promise<{ plan: OpPlanRow[]; close: () => Promise<void> }> {
  const receiver = await startReceiver();
  const secret = generateWebhookSecret();
  await createEndpoint(
    ctx.handle.db,
    { tenantId: ctx.tenantId, url: `${receiver.url}/hook/0`, description: null, eventTypes: [], enabled: true, thinPayload: false, secret },
    new Date(),
  );
  // One delivery per lane (so the attempt updates do not queue on one row lock).
  const deliveryIds: string[] = [];
  for (let lane = 0; lane < ctx.lanes; lane++) {
    const job = await ctx.newJob();
    await changeJobState(ctx.handle.db, job.id, { source: 'poll', now: new Date() }, () => ({ ok: true, status: 'completed' as JobStatus, changed: true, fields: {} }));
    const { rows } = await ctx.raw.query<{ id: string }>('select id from callback_deliveries where job_id = $1', [job.id]);
    deliveryIds.push(rows[0]!.id);
  }
  const delivery = (i: number) => deliveryIds[i % deliveryIds.length]!;
  const work = (await getDeliveryWork(ctx.handle.db, delivery(0)))!;
  const body = JSON.stringify(work.event.payload);
  const policy = createAddressPolicy(['127.0.0.0/8']);
  const none = async () => [];
  let seq = 0;
  const plan: OpPlanRow[] = [
    ['callback: getDeliveryWork (drizzle, 3-table select)', ctx.pgPids, (i) => getDeliveryWork(ctx.handle.db, delivery(i))],
    [
      'callback: same select, raw pg prepared',
      ctx.pgPids,
      (i) =>
        ctx.raw.query({
          name: 'bench_delivery_work',
          text: 'select d.*, e.*, w.* from callback_deliveries d join callback_events e on e.id = d.event_id left join webhook_endpoints w on w.id = d.endpoint_id where d.id = $1',
          values: [delivery(i)],
        }),
    ],
    [
      'callback: recordAttempt tx (read, guarded write, attempt row)',
      ctx.pgPids,
      (i) => recordAttempt(ctx.handle.db, delivery(i), { statusCode: 200, latencyMs: 1, error: null, at: new Date() }, { type: 'attempt_succeeded', statusCode: 200 }),
    ],
    [
      'callback: stringify payload + signWebhook',
      none,
      () => signWebhook({ secrets: [secret], webhookId: work.event.id, payload: JSON.stringify(work.event.payload), now: new Date() }),
    ],
    [
      'callback: sendCallback POST (+ receiver, same process)',
      none,
      () =>
        sendCallback({
          url: `${receiver.url}/hook/0`,
          body,
          headers: signWebhook({ secrets: [secret], webhookId: work.event.id, payload: body, now: new Date() }),
          policy,
          timeoutMs: 10_000,
        }),
    ],
    ['redis: queues.add deliver (BullMQ, one per delivery)', none, (i) => ctx.queues.add('deliver', { deliveryId: delivery(i) }, { jobId: `bench-dlv-${seq++}` })],
  ];
  return {
    plan,
    close: async () => {
      receiver.arrivals.length = 0;
      await receiver.close();
    },
  };
}
