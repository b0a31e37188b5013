/**
 * 7. Graceful shutdown under load: SIGTERM to every Longhaul process at once (both APIs, all
 * workers) while jobs are being submitted, created (the provider takes 300 ms to answer a
 * create), polled and their callbacks delivered to a receiver that is not answering, so some
 * work cannot finish within the workers' SHUTDOWN_TIMEOUT_MS.
 * Expect: every process exits 0 within its timeout; in-flight work either finishes (creates:
 * no duplicate at the simulator) or is handed back (the callbacks still in flight stay locked in
 * Redis until their lock lapses, then a restarted worker takes them up as stalled and sends them
 * again with the same webhook-id); once restarted nothing stays `active`, every accepted job
 * completed and its callback was answered 2xx at the receiver; the APIs finished the requests they
 * had taken (the client retries refused submissions with the same Idempotency-Key, and none of
 * its requests was processed and then dropped unanswered: a retry answered as a replay says so).
 * Fault checks: from the receiver's log, callbacks were held in flight when the signal came, and
 * some of them were sent again after the restart with the same webhook-id and answered 2xx; from
 * the client's record, submissions (a burst of BURST just before the signal) were in flight at
 * the APIs when it arrived.
 */
import { CHAOS_WORKER_ENV } from '../cluster.ts';
import { createLoad, durationFor, jobBody } from '../load.ts';
import { describeExit } from '../processes.ts';
import { startReceiver } from '../receiver.ts';
import { type Scenario, check, conclude, faultCheck, firstFew, withDeployment } from '../scenario.ts';
import { seconds, sleep } from '../time.ts';

const META = { id: 7, name: 'graceful shutdown under load' };
const SHUTDOWN_TIMEOUT_MS = 3_000;
/** Submissions fired just before the signal, so that some are being processed when it arrives. */
const BURST = 20;
const BURST_LEAD_MS = 15;

export const gracefulShutdown: Scenario = {
  ...META,
  async run(cluster, options) {
    const startedAt = Date.now();
    const jobs = options.jobs ?? (options.fast ? 100 : 300);
    const submitSeconds = options.fast ? 8 : 15;
    const receiver = await startReceiver();
    try {
      return await withDeployment(
        cluster,
        options,
        {
          name: 'graceful_shutdown',
          simEnv: { SIM_CREATE_ANSWER_DELAY_MS: '300' },
          // A callback attempt outlasts the shutdown deadline: it must be handed back, not lost.
          workerEnv: { SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS), CALLBACK_TIMEOUT_MS: '20000' },
        },
        async (d) => {
          const load = createLoad(d, 'shutdown');
          receiver.hang();
          const body = (i: number) => jobBody(i, durationFor(i, 300, 3_000), { callback_url: `${receiver.url}/job` });
          const submitting = load.submit(jobs, { ratePerSecond: jobs / submitSeconds, body });
          await sleep(submitSeconds * 400);
          const burst = load.submit(BURST, { ratePerSecond: 5_000, body });
          await sleep(BURST_LEAD_MS);

          const processes = [...d.apis, ...d.workers.filter((w) => w.exitStatus() === null)];
          const signalledAt = Date.now();
          for (const p of processes) {
            d.expectExit(p);
            p.signal('SIGTERM');
          }
          options.log(`  SIGTERM to ${processes.map((p) => p.name).join(', ')}`);
          const exits = await Promise.all(
            processes.map(async (p) => {
              const killer = setTimeout(() => p.signal('SIGKILL'), SHUTDOWN_TIMEOUT_MS + 10_000);
              const status = await p.exited;
              clearTimeout(killer);
              return { name: p.name, status, ms: Date.now() - signalledAt };
            }),
          );
          const unclean = exits.filter((e) => e.status.code !== 0 || e.ms > SHUTDOWN_TIMEOUT_MS + 2_000);
          const slowest = Math.max(...exits.map((e) => e.ms));
          const handedBack = await d.activeWorkItems();
          const handedBackCount = Object.values(handedBack).reduce((s, n) => s + n, 0);
          options.log(`  every process exited within ${seconds(slowest)}; work items left active (locked until their lock lapses): ${JSON.stringify(handedBack)}`);

          receiver.answer();
          const answeredAt = Date.now();
          /** Callbacks the hanging receiver held when the processes went away: never answered. */
          const held = receiver.received.filter((r) => r.at < answeredAt && r.status === null);
          await Promise.all([d.restartApis(), ...processes.filter((p) => p.kind === 'worker').map(() => d.startWorker(true))]);
          const restartedAt = Date.now();
          await Promise.all([submitting, burst]);
          return conclude(META, d, startedAt, {
            load,
            faultEndedAt: restartedAt,
            settleTimeoutMs: 90_000,
            checks: [
              check(
                'every process exited 0 within SHUTDOWN_TIMEOUT_MS',
                unclean.length === 0,
                unclean.map((e) => `${e.name} ${describeExit(e.status)} after ${e.ms} ms`).join(', '),
              ),
            ],
            settled: async () => {
              // Handed-back work is taken up again once its lock lapses (LOCK_DURATION_MS + STALLED_INTERVAL_MS).
              const pendingDeliveries = async () => (await d.pool.query<{ n: number }>("select count(*)::int as n from callback_deliveries where status = 'pending'")).rows[0]!.n;
              const answered2xx = () => new Set(receiver.received.filter((r) => r.status !== null && r.status < 300).map((r) => r.webhookId));
              const jobsWithoutCallback = () => {
                const delivered = new Set<string>();
                for (const r of receiver.received) {
                  if (r.status === null || r.status >= 300) continue;
                  const event = JSON.parse(r.body) as { type: string; data: { id: string } };
                  if (event.type === 'job.completed') delivered.add(event.data.id);
                }
                return load.accepted().filter((id) => !delivered.has(id));
              };
              let stillActive = handedBack;
              for (const deadline = Date.now() + 30_000 + Number(CHAOS_WORKER_ENV.LOCK_DURATION_MS); Date.now() < deadline; await sleep(250)) {
                stillActive = await d.activeWorkItems();
                if (Object.values(stillActive).every((n) => n === 0) && (await pendingDeliveries()) === 0 && jobsWithoutCallback().length === 0) break;
              }
              const stuck = Object.entries(stillActive).filter(([, n]) => n > 0);
              const ok = answered2xx();
              const heldIds = [...new Set(held.map((r) => r.webhookId))];
              const redone = heldIds.filter((id) => ok.has(id));
              const neverAnswered = [...new Set(receiver.received.map((r) => r.webhookId))].filter((id) => !ok.has(id));
              const missing = jobsWithoutCallback();
              const stats = await d.simStats();
              const createdTwice = Object.entries(stats.creates_by_job).filter(([, n]) => n > 1);
              const dropped = load.droppedInFlight();
              const inFlightAtSignal = load.requests.filter((r) => r.method === 'POST' && r.sentAt < signalledAt && r.endedAt >= signalledAt);
              return {
                checks: [
                  faultCheck(
                    'callbacks were in flight at the shutdown and handed back: sent again after the restart with the same webhook-id (receiver’s log)',
                    heldIds.length > 0 && redone.length > 0,
                    `${heldIds.length} callbacks held unanswered when the processes exited, ${redone.length} of them sent again and answered 2xx`,
                  ),
                  faultCheck(
                    'submissions were in flight at the APIs when SIGTERM arrived (client’s record)',
                    inFlightAtSignal.length > 0,
                    `${inFlightAtSignal.length} sent before the signal and ended after it: ${[...new Set(inFlightAtSignal.map((r) => r.outcome))].join(', ')}`,
                  ),
                  check('no work item stays active', stuck.length === 0, JSON.stringify(stillActive)),
                  check(
                    'every job’s callback answered 2xx at the receiver after the restart, every callback seen eventually answered',
                    missing.length === 0 && neverAnswered.length === 0,
                    `${missing.length} jobs without a 2xx-answered job.completed (${firstFew(missing, (x) => x)}); ${neverAnswered.length} webhook-ids never answered 2xx`,
                  ),
                  check(
                    'no provider create duplicated by the shutdown (simulator)',
                    createdTwice.length === 0,
                    firstFew(createdTwice, ([job, n]) => `${job} created ${n}×`),
                  ),
                  check(
                    'the APIs dropped no request they had processed (client’s record: a reset answered later as a replay)',
                    dropped.length === 0,
                    firstFew(dropped, (r) => `${r.key} to ${r.apiUrl}: ${r.outcome}, sent ${r.sentAt - signalledAt} ms from the signal`),
                  ),
                ],
                notes: [
                  `${processes.length} processes SIGTERMed under load, all exited within ${seconds(slowest)} (${[...new Set(exits.map((e) => describeExit(e.status)))].join(', ')}); ${handedBackCount} work items still running at the deadline; at the receiver ${heldIds.length} callbacks were held unanswered, ${redone.length} sent again after the restart with the same webhook-id; client: ${inFlightAtSignal.length} submissions in flight at the signal (${inFlightAtSignal.filter((r) => r.outcome === 'accepted').length} answered 202), ${load.counts.retries} retries (${load.counts.refused} refused connections, ${load.counts.reset} connections closed unanswered, ${dropped.length} of them after the API had processed the request); recovery measured from the restart`,
                ],
              };
            },
          });
        },
      );
    } finally {
      await receiver.close();
    }
  },
};
