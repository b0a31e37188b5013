/**
 * 6. The tenant's callback receiver is down for an hour (time-scaled with CALLBACK_TIME_SCALE),
 * then back. Three destinations: endpoint A (all terminal events), each job's own
 * `callback_url`, and endpoint B, disabled (PATCH enabled=false) half-way through the outage, while
 * deliveries to it wait for their next retry.
 * Expect: once the receiver is back every event reaches A and the job URLs (signed, verifiable);
 * every retry follows the Standard Webhooks schedule (the delay recorded after each failure is
 * the schedule's ±10 % jitter, and the next attempt starts on time); nothing reaches B after it
 * was disabled, and its pending deliveries are cancelled.
 */
import { Webhook } from 'standardwebhooks';
import { STANDARD_WEBHOOKS_SCHEDULE_MS } from '@longhaul/core';
import { createLoad, durationFor, jobBody } from '../load.ts';
import { startReceiver } from '../receiver.ts';
import { waitForTerminal } from '../report.ts';
import { type Scenario, check, conclude, withDeployment } from '../scenario.ts';
import type { Deployment } from '../cluster.ts';
import { seconds, sleep } from '../time.ts';

const META = { id: 6, name: 'callback receiver down for an hour' };
const HOUR_MS = 3_600_000;
/** An attempt may start this much after its scheduled time (queue latency, a loaded machine). */
const LATE_TOLERANCE_MS = 5_000;

interface AttemptRow {
  delivery_id: string;
  attempt: number;
  at: Date;
  latency_ms: number;
  next_attempt_at: Date | null;
  status_code: number | null;
}

/** Check every retry of the given deliveries against the schedule; returns violations and the worst lateness. */
async function scheduleCompliance(d: Deployment, endpointB: string, scale: number): Promise<{ checked: number; violations: string[]; maxLateMs: number; maxAttempts: number }> {
  const { rows } = await d.pool.query<AttemptRow>(
    `select a.delivery_id, a.attempt, a.at, a.latency_ms, a.next_attempt_at, a.status_code
       from callback_attempts a join callback_deliveries d on d.id = a.delivery_id
      where d.endpoint_id is distinct from $1
      order by a.delivery_id, a.attempt`,
    [endpointB],
  );
  const violations: string[] = [];
  let maxLateMs = 0;
  let checked = 0;
  let maxAttempts = 0;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    maxAttempts = Math.max(maxAttempts, row.attempt);
    if (!row.next_attempt_at) continue;
    checked += 1;
    const planned = STANDARD_WEBHOOKS_SCHEDULE_MS[row.attempt]! * scale;
    const delay = row.next_attempt_at.getTime() - row.at.getTime();
    if (delay < planned * 0.9 - 5 || delay > planned * 1.1 + 5)
      violations.push(`${row.delivery_id} attempt ${row.attempt}: next in ${delay} ms, schedule says ${Math.round(planned)} ms ±10 %`);
    const next = rows[i + 1];
    if (next && next.delivery_id === row.delivery_id) {
      const startedAt = next.at.getTime() - next.latency_ms;
      const late = startedAt - row.next_attempt_at.getTime();
      maxLateMs = Math.max(maxLateMs, late);
      if (late < -100 || late > LATE_TOLERANCE_MS) violations.push(`${row.delivery_id} attempt ${next.attempt} started ${late} ms from its scheduled time`);
    }
  }
  return { checked, violations, maxLateMs, maxAttempts };
}

export const receiverDown: Scenario = {
  ...META,
  async run(cluster, options) {
    const startedAt = Date.now();
    const jobs = options.jobs ?? (options.fast ? 75 : 240);
    const scale = options.fast ? 0.0015 : 0.004;
    const outageMs = HOUR_MS * scale;
    const receiver = await startReceiver();
    try {
      return await withDeployment(cluster, options, { name: 'receiver_down', workerEnv: { CALLBACK_TIME_SCALE: String(scale) } }, async (d) => {
        const api = async (method: string, path: string, body?: unknown) => {
          const res = await fetch(`${d.apiUrls[0]}${path}`, {
            method,
            headers: { authorization: `Bearer ${d.apiKey}`, 'content-type': 'application/json' },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
          return (await res.json()) as Record<string, string>;
        };
        const a = await api('POST', '/v1/webhook-endpoints', { url: `${receiver.url}/a` });
        const b = await api('POST', '/v1/webhook-endpoints', { url: `${receiver.url}/b` });
        const { secret: jobSecret } = await api('GET', '/v1/callback-secret');
        const load = createLoad(d, 'receiver');
        const body = (i: number) => jobBody(i, durationFor(i, 200, 1_500), { callback_url: `${receiver.url}/job` });
        /** Pending deliveries (to A and the job URLs; with `includeB`, to B as well). */
        const pendingDeliveries = async (includeB = false) =>
          (
            await d.pool.query<{ n: number }>("select count(*)::int as n from callback_deliveries where status = 'pending' and ($2 or endpoint_id is distinct from $1)", [
              b.id,
              includeB,
            ])
          ).rows[0]!.n;

        // Before the outage: everything is delivered, to B as well.
        const before = Math.ceil(jobs / 3);
        await load.submit(before, { ratePerSecond: 30, body });
        await waitForTerminal(d, load.accepted(), 60_000);
        for (const deadline = Date.now() + 30_000; Date.now() < deadline && (await pendingDeliveries(true)) > 0; ) await sleep(200);

        // The outage: the receiver goes away while jobs keep finishing; half-way through, B (with
        // deliveries failing and waiting for their next retry) is disabled.
        await receiver.down();
        const downAt = Date.now();
        options.log(`  receiver down for ${seconds(outageMs)} (1 h at CALLBACK_TIME_SCALE ${scale})`);
        await load.submit(jobs - before, { ratePerSecond: (jobs - before) / ((outageMs * 0.4) / 1000), body });
        await sleep(Math.max(0, downAt + outageMs / 2 - Date.now()));
        await api('PATCH', `/v1/webhook-endpoints/${b.id}`, { enabled: false });
        const disabledAt = Date.now();
        options.log('  endpoint B disabled');
        await sleep(Math.max(0, downAt + outageMs - Date.now()));
        await receiver.up();
        const backAt = Date.now();
        options.log('  receiver back');

        // After: the next scheduled retry (2 h after the 35 min one, scaled) delivers the rest;
        // B's waiting deliveries are cancelled when their retry comes.
        const settleBy = backAt + 3 * 2 * HOUR_MS * scale + 30_000;
        let deliveredAt: number | null = null;
        while (Date.now() < settleBy) {
          if (deliveredAt === null && (await pendingDeliveries()) === 0) deliveredAt = Date.now();
          if (deliveredAt !== null && (await pendingDeliveries(true)) === 0) break;
          await sleep(250);
        }

        const { rows: deliveries } = await d.pool.query<{ event_id: string; url: string; endpoint_id: string | null; status: string; created_at: Date }>(
          'select event_id, url, endpoint_id, status, created_at from callback_deliveries',
        );
        const toAOrJobs = deliveries.filter((x) => x.endpoint_id !== b.id);
        const notSucceeded = toAOrJobs.filter((x) => x.status !== 'succeeded');
        const got = new Set(receiver.received.map((r) => `${r.path} ${r.webhookId}`));
        const notReceived = toAOrJobs.filter((x) => !got.has(`${new URL(x.url).pathname} ${x.event_id}`));
        const toB = deliveries.filter((x) => x.endpoint_id === b.id);
        const bAfterDisable = receiver.received.filter((r) => r.path === '/b' && r.at > disabledAt);
        const bCreatedAfter = toB.filter((x) => x.created_at.getTime() > disabledAt + 1_000);
        const bStillPending = toB.filter((x) => x.status === 'pending');
        const bCancelled = toB.filter((x) => x.status === 'cancelled').length;
        const verifiers = { '/a': new Webhook(a.secret!), '/job': new Webhook(jobSecret!) } as Record<string, Webhook>;
        let badSignatures = 0;
        for (const r of receiver.received) {
          const verifier = verifiers[r.path];
          if (!verifier) continue;
          try {
            verifier.verify(r.body, r.headers as Record<string, string>);
          } catch {
            badSignatures += 1;
          }
        }
        const schedule = await scheduleCompliance(d, b.id!, scale);
        return conclude(META, d, startedAt, {
          load,
          faultEndedAt: backAt,
          recoveryMs: deliveredAt === null ? null : deliveredAt - backAt,
          settleTimeoutMs: 30_000,
          checks: [
            check(
              'every delivery to A and to the jobs’ callback_url succeeded once the receiver was back',
              notSucceeded.length === 0 && notReceived.length === 0,
              `${notSucceeded.length} not succeeded, ${notReceived.length} never received`,
            ),
            check('callbacks are signed and verify', badSignatures === 0, `${badSignatures} failed verification`),
            check('retries follow the schedule', schedule.violations.length === 0, schedule.violations.slice(0, 5).join('; ')),
            check(
              'nothing delivered to the disabled endpoint; its waiting deliveries cancelled',
              bAfterDisable.length === 0 && bCreatedAfter.length === 0 && bStillPending.length === 0 && bCancelled > 0,
              `${bAfterDisable.length} requests to B after it was disabled, ${bCreatedAfter.length} deliveries created for it, ${bStillPending.length} still pending, ${bCancelled} cancelled`,
            ),
          ],
          notes: [
            `receiver down ${seconds(outageMs)} (= 1 h × ${scale}); ${toAOrJobs.length} deliveries to A and job URLs, all delivered ${deliveredAt === null ? 'NEVER' : seconds(deliveredAt - backAt)} after it came back; ${schedule.checked} retries checked against the schedule (up to attempt ${schedule.maxAttempts}, latest start ${schedule.maxLateMs} ms after its time); endpoint B (disabled half-way): ${bCancelled} waiting deliveries cancelled, ${bAfterDisable.length} requests after it was disabled`,
          ],
        });
      });
    } finally {
      await receiver.close();
    }
  },
};
