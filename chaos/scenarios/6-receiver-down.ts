/**
 * 6. The tenant's callback receiver is down for an hour (time-scaled with CALLBACK_TIME_SCALE),
 * then back. Down means: for the first half of the hour its load balancer answers 503 with
 * `Retry-After: 2`, for the rest its connections are dropped unanswered (the service behind it
 * crashed). Three destinations: endpoint A (all terminal events), each job's own `callback_url`,
 * and endpoint B, disabled (PATCH enabled=false) when the 503s give way to dropped connections,
 * while deliveries to it wait for their next retry. That switch comes half-way through the outage,
 * or later on a loaded machine (up to 80 % of it) until B has failed and Retry-After has held back
 * retries, so that both are exercised.
 *
 * Everything is measured at the receiver, which logs every request it read and what it answered:
 * - once it is back, every accepted job's terminal event (`job.completed`) is answered 2xx at A
 *   and at the job's URL, signed and verifiable;
 * - every retry arrives on the Standard Webhooks schedule (written out here from the spec, not
 *   taken from Longhaul): after the n-th failed attempt the next one arrives no earlier than the
 *   schedule's n-th delay −10 % (the jitter) and no earlier than the Retry-After the receiver sent,
 *   and not more than LATE_TOLERANCE_MS after the later of the two +10 %;
 * - nothing reaches B after it was disabled (a second's grace for a request already in flight),
 *   and its waiting deliveries are cancelled.
 * Fault checks: retries were observed at the receiver after dropped connections and after 503s
 * whose Retry-After outlasted the schedule's delay, and B was failing before it was disabled.
 */
import { Webhook } from 'standardwebhooks';
import { createLoad, durationFor, jobBody } from '../load.ts';
import { type ReceivedCallback, startReceiver } from '../receiver.ts';
import { waitForTerminal } from '../report.ts';
import { type Scenario, check, conclude, faultCheck, firstFew, withDeployment } from '../scenario.ts';
import { seconds, sleep } from '../time.ts';

const META = { id: 6, name: 'callback receiver down for an hour' };
const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;
/** Standard Webhooks' retry schedule: the delay before attempt n + 1 after n failed attempts (index n). */
const SPEC_SCHEDULE_MS = [0, 5_000, 5 * MINUTE_MS, 30 * MINUTE_MS, 2 * HOUR_MS, 5 * HOUR_MS, 10 * HOUR_MS, 14 * HOUR_MS, 20 * HOUR_MS, 24 * HOUR_MS];
/** The jitter the schedule allows each way. */
const JITTER = 0.1;
/**
 * `Retry-After` the receiver's load balancer sends with its 503s (real seconds, never scaled):
 * well above the schedule's first delays (8 ms and 450 ms at the fast scale) plus the queue's
 * re-delay latency on a loaded machine (up to a second or so), so a sender that ignores it shows.
 */
const RETRY_AFTER_S = 2;
/**
 * An attempt may arrive this much after its time (queue latency, a loaded machine: 3.8 s was seen
 * at a load average of 17 on 2 cores). Lateness is not the fault under test; arriving too early is.
 */
const LATE_TOLERANCE_MS = 8_000;
/** Clock and measurement slack on the early side. */
const EARLY_TOLERANCE_MS = 5;

interface RetryTiming {
  /** Pairs (failed attempt, next attempt) of one delivery seen at the receiver. */
  retries: number;
  afterDrop: number;
  /** Retries after a 503 whose Retry-After was longer than the schedule's delay. */
  retryAfterBinding: number;
  violations: string[];
  maxLateMs: number;
  /** The latest retry, described. */
  latest: string;
}

/** Check every retry the receiver saw (attempts of one delivery share path and webhook-id). */
function retryTiming(received: ReceivedCallback[], scale: number): RetryTiming {
  const deliveries = new Map<string, ReceivedCallback[]>();
  for (const r of received) {
    const key = `${r.path} ${r.webhookId}`;
    const list = deliveries.get(key) ?? [];
    list.push(r);
    deliveries.set(key, list);
  }
  const t: RetryTiming = { retries: 0, afterDrop: 0, retryAfterBinding: 0, violations: [], maxLateMs: 0, latest: '' };
  for (const [key, attempts] of deliveries) {
    attempts.sort((x, y) => x.at - y.at);
    for (let n = 1; n < attempts.length; n++) {
      const failed = attempts[n - 1]!;
      const next = attempts[n]!;
      if (failed.status !== null && failed.status < 300) {
        t.violations.push(`${key}: attempt ${n + 1} arrived after attempt ${n} was answered ${failed.status}`);
        continue;
      }
      t.retries += 1;
      const planned = (SPEC_SCHEDULE_MS[n] ?? SPEC_SCHEDULE_MS.at(-1)!) * scale;
      const retryAfterMs = (failed.retryAfterS ?? 0) * 1000;
      if (failed.status === null) t.afterDrop += 1;
      else if (retryAfterMs > planned * (1 + JITTER)) t.retryAfterBinding += 1;
      const earliest = Math.max(planned * (1 - JITTER), retryAfterMs) - EARLY_TOLERANCE_MS;
      const latest = Math.max(planned * (1 + JITTER), retryAfterMs) + LATE_TOLERANCE_MS;
      const gap = next.at - failed.at;
      const why = failed.status === null ? 'dropped' : `answered ${failed.status} with Retry-After ${failed.retryAfterS ?? '–'} s`;
      const described = `${key}: attempt ${n} ${why}, attempt ${n + 1} arrived ${gap} ms later (schedule ${Math.round(planned)} ms ±10 %, Retry-After ${retryAfterMs} ms)`;
      const late = Math.round(gap - Math.max(planned * (1 + JITTER), retryAfterMs));
      if (late >= t.maxLateMs) {
        t.maxLateMs = late;
        t.latest = described;
      }
      if (gap < earliest || gap > latest) t.violations.push(described);
    }
  }
  return t;
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
        /** Accepted jobs whose `job.completed` has not been answered 2xx at `path` (receiver's log). */
        const undelivered = (path: string) => {
          const delivered = new Set<string>();
          for (const r of receiver.received) {
            if (r.path !== path || r.status === null || r.status >= 300) continue;
            const event = JSON.parse(r.body) as { type: string; data: { id: string } };
            if (event.type === 'job.completed') delivered.add(event.data.id);
          }
          return load.accepted().filter((id) => !delivered.has(id));
        };

        // Before the outage: everything is delivered, to B as well.
        const before = Math.ceil(jobs / 3);
        await load.submit(before, { ratePerSecond: 30, body });
        await waitForTerminal(d, load.accepted(), 60_000);
        for (const deadline = Date.now() + 30_000; Date.now() < deadline && (await pendingDeliveries(true)) > 0; ) await sleep(200);

        // The outage: the receiver fails every request while jobs keep finishing (503s with
        // Retry-After, then dropped connections); half-way through, B (with deliveries failing
        // and waiting for their next retry) is disabled.
        receiver.fail({ status: 503, retryAfterS: RETRY_AFTER_S });
        const downAt = Date.now();
        options.log(`  receiver down for ${seconds(outageMs)} (1 h at CALLBACK_TIME_SCALE ${scale}): 503 Retry-After ${RETRY_AFTER_S} s, then connections dropped`);
        await load.submit(jobs - before, { ratePerSecond: (jobs - before) / ((outageMs * 0.4) / 1000), body });
        // Half-way, or later on a loaded machine (where the outage's first callbacks come late).
        const exercised = () =>
          receiver.received.filter((r) => r.path === '/b' && r.at >= downAt).length >= 3 &&
          retryTiming(
            receiver.received.filter((r) => r.path !== '/b'),
            scale,
          ).retryAfterBinding >= 3;
        for (const latest = downAt + outageMs * 0.8; Date.now() < latest && (Date.now() < downAt + outageMs / 2 || !exercised()); ) await sleep(50);
        const switchedAt = Date.now();
        receiver.fail('drop');
        await api('PATCH', `/v1/webhook-endpoints/${b.id}`, { enabled: false });
        const disabledAt = Date.now();
        options.log('  endpoint B disabled');
        await sleep(Math.max(0, downAt + outageMs - Date.now()));
        receiver.answer();
        const backAt = Date.now();
        options.log('  receiver back');

        // After: the next scheduled retry (2 h after the 30 min one, scaled) delivers the rest;
        // B's waiting deliveries are cancelled when their retry comes.
        const settleBy = backAt + 3 * 2 * HOUR_MS * scale + 30_000;
        let deliveredAt: number | null = null;
        while (Date.now() < settleBy) {
          if (deliveredAt === null && undelivered('/a').length === 0 && undelivered('/job').length === 0) deliveredAt = Date.now();
          if (deliveredAt !== null && (await pendingDeliveries(true)) === 0) break;
          await sleep(250);
        }

        const { rows: deliveries } = await d.pool.query<{ event_id: string; endpoint_id: string | null; status: string; created_at: Date }>(
          'select event_id, endpoint_id, status, created_at from callback_deliveries',
        );
        const notSucceeded = deliveries.filter((x) => x.endpoint_id !== b.id && x.status !== 'succeeded');
        const missingA = undelivered('/a');
        const missingJob = undelivered('/job');
        const toB = deliveries.filter((x) => x.endpoint_id === b.id);
        const bAfterDisable = receiver.received.filter((r) => r.path === '/b' && r.at > disabledAt + 1_000);
        const bFailingBefore = receiver.received.filter((r) => r.path === '/b' && r.at >= downAt && r.at <= disabledAt);
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
        const timing = retryTiming(
          receiver.received.filter((r) => r.path !== '/b'),
          scale,
        );
        return conclude(META, d, startedAt, {
          load,
          faultEndedAt: backAt,
          recoveryMs: deliveredAt === null ? null : deliveredAt - backAt,
          settleTimeoutMs: 30_000,
          checks: [
            faultCheck(
              'retries seen at the receiver after dropped connections and after 503s whose Retry-After outlasted the schedule; B failing before it was disabled',
              timing.afterDrop > 0 && timing.retryAfterBinding > 0 && bFailingBefore.length > 0,
              `${timing.retries} retries: ${timing.afterDrop} after a dropped connection, ${timing.retryAfterBinding} after a 503 whose Retry-After was longer than the schedule; ${bFailingBefore.length} failed requests to B before it was disabled`,
            ),
            check(
              'every job’s terminal event answered 2xx at A and at its callback_url once the receiver was back (receiver’s log)',
              missingA.length === 0 && missingJob.length === 0 && notSucceeded.length === 0,
              `${missingA.length} jobs never delivered to A, ${missingJob.length} to their URL (${firstFew([...missingA, ...missingJob], (x) => x)}); ${notSucceeded.length} deliveries not succeeded in Postgres`,
            ),
            check('callbacks are signed and verify', badSignatures === 0, `${badSignatures} failed verification`),
            check(
              'every retry arrived on the Standard Webhooks schedule and no earlier than Retry-After (receiver’s log)',
              timing.violations.length === 0,
              `${timing.violations.length} of ${timing.retries}: ${firstFew(timing.violations, (x) => x)}`,
            ),
            check(
              'nothing delivered to the disabled endpoint; its waiting deliveries cancelled',
              bAfterDisable.length === 0 && bCreatedAfter.length === 0 && bStillPending.length === 0 && bCancelled > 0,
              `${bAfterDisable.length} requests to B after it was disabled, ${bCreatedAfter.length} deliveries created for it, ${bStillPending.length} still pending, ${bCancelled} cancelled`,
            ),
          ],
          notes: [
            `receiver down ${seconds(outageMs)} (= 1 h × ${scale}; 503s for the first ${seconds(switchedAt - downAt)}); every job's event delivered to A and its URL ${deliveredAt === null ? 'NEVER' : `${seconds(deliveredAt - backAt)} after it came back`}; ${timing.retries} retries timed at the receiver (${timing.afterDrop} after a dropped connection, ${timing.retryAfterBinding} held back by Retry-After; the latest ${timing.maxLateMs} ms after its time: ${timing.latest}); endpoint B (disabled when the 503s stopped): ${bFailingBefore.length} failed requests before, ${bCancelled} waiting deliveries cancelled, ${bAfterDisable.length} requests after`,
          ],
        });
      });
    } finally {
      await receiver.close();
    }
  },
};
