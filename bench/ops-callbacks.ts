/**
 * The callback delivery's operations for the ops diagnostic: what the deliver processor does for
 * one delivery (read it, sign it, POST it, record the attempt) and what dispatching it costs, each
 * measured alone (and the batched read and answer statements the processor uses under load, 10
 * deliveries each), plus the read as a raw pg prepared statement for comparison.
 * Deliveries are made the real way: an endpoint on a local receiver, then jobs moved to
 * `completed` through changeJobState, whose outbox writes one delivery each.
 */
import type pg from 'pg';
import type { JobStatus } from '@longhaul/core';
import { createAddressPolicy, sendCallback } from '@longhaul/callbacks';
import { changeJobState, createEndpoint, getDeliveryWork, recordAttempt, recordAttempts, type DbHandle, type Job } from '@longhaul/db';
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
  const newDelivery = async () => {
    const job = await ctx.newJob();
    await changeJobState(ctx.handle.db, job.id, { source: 'poll', now: new Date() }, () => ({ ok: true, status: 'completed' as JobStatus, changed: true, fields: {} }));
    const { rows } = await ctx.raw.query<{ id: string }>('select id from callback_deliveries where job_id = $1', [job.id]);
    return rows[0]!.id;
  };
  // One delivery per lane (so the attempt updates do not queue on one row lock).
  const deliveryIds: string[] = [];
  for (let lane = 0; lane < ctx.lanes; lane++) deliveryIds.push(await newDelivery());
  // For the batched answers: deliveries kept pending by failed attempts with a schedule that never runs out.
  const pendingIds: string[] = [];
  for (let lane = 0; lane < ctx.lanes; lane++) pendingIds.push(await newDelivery());
  const pendingRows = (await getDeliveryWork(ctx.handle.db, pendingIds)).map((w) => w.delivery);
  const stillPending = {
    type: 'attempt_failed',
    statusCode: 500,
    error: 'HTTP 500',
    retry: { schedule: { scheduleMs: new Array<number>(1_000_000).fill(0) }, random: 0 },
  } as const;
  const delivery = (i: number) => deliveryIds[i % deliveryIds.length]!;
  const [work] = await getDeliveryWork(ctx.handle.db, [delivery(0)]);
  const eventId = work!.event.id;
  const body = JSON.stringify(JSON.parse(work!.event.payloadJson!));
  const policy = createAddressPolicy(['127.0.0.0/8']);
  const none = async () => [];
  let seq = 0;
  const plan: OpPlanRow[] = [
    ['callback: getDeliveryWork (prepared, one delivery)', ctx.pgPids, (i) => getDeliveryWork(ctx.handle.db, [delivery(i)])],
    ['callback: getDeliveryWork, 10 deliveries in one statement (per delivery: divide by 10)', ctx.pgPids, () => getDeliveryWork(ctx.handle.db, deliveryIds, [eventId])],
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
      'callback: recordAttempts, 10 answers in one statement (per delivery: divide by 10)',
      ctx.pgPids,
      () =>
        recordAttempts(
          ctx.handle.db,
          pendingRows.map((row) => ({ delivery: row, attempt: { statusCode: 500, latencyMs: 1, error: 'HTTP 500', at: new Date() }, event: stillPending })),
        ),
    ],
    [
      'callback: stringify payload + signWebhook',
      none,
      () => signWebhook({ secrets: [secret], webhookId: eventId, payload: JSON.stringify(JSON.parse(work!.event.payloadJson!)), now: new Date() }),
    ],
    [
      'callback: sendCallback POST (+ receiver, same process)',
      none,
      () =>
        sendCallback({
          url: `${receiver.url}/hook/0`,
          body,
          headers: signWebhook({ secrets: [secret], webhookId: eventId, payload: body, now: new Date() }),
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
