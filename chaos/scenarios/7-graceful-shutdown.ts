/**
 * 7. Graceful shutdown under load: SIGTERM to every Longhaul process at once (both APIs, all
 * workers) while jobs are being submitted, created (the provider takes 300 ms to answer a
 * create), polled and their callbacks delivered to a receiver that is not answering, so some
 * work cannot finish within the workers' SHUTDOWN_TIMEOUT_MS.
 * Expect: every process exits 0 within its timeout; in-flight work either finishes (creates:
 * no duplicate) or is handed back (the callbacks still in flight stay locked in Redis until their
 * lock lapses, then a restarted worker takes them up as stalled and sends them again with the
 * same webhook-id); once restarted nothing stays `active`, and every accepted job finishes (the
 * client retries refused submissions with the same Idempotency-Key).
 */
import { CHAOS_WORKER_ENV } from '../cluster.ts';
import { createLoad, durationFor, jobBody } from '../load.ts';
import { describeExit } from '../processes.ts';
import { startReceiver } from '../receiver.ts';
import { type Scenario, check, conclude, withDeployment } from '../scenario.ts';
import { seconds, sleep } from '../time.ts';

const META = { id: 7, name: 'graceful shutdown under load' };
const SHUTDOWN_TIMEOUT_MS = 3_000;

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
          const submitting = load.submit(jobs, {
            ratePerSecond: jobs / submitSeconds,
            body: (i) => jobBody(i, durationFor(i, 300, 3_000), { callback_url: `${receiver.url}/job` }),
          });
          await sleep(submitSeconds * 400);

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
          await Promise.all([d.restartApis(), ...processes.filter((p) => p.kind === 'worker').map(() => d.startWorker(true))]);
          const restartedAt = Date.now();
          await submitting;
          const result = await conclude(META, d, startedAt, { load, faultEndedAt: restartedAt, settleTimeoutMs: 90_000 });

          // Handed-back work is taken up again once its lock lapses (LOCK_DURATION_MS + STALLED_INTERVAL_MS).
          const pendingDeliveries = async () => (await d.pool.query<{ n: number }>("select count(*)::int as n from callback_deliveries where status = 'pending'")).rows[0]!.n;
          let stillActive = handedBack;
          for (const deadline = Date.now() + 30_000 + Number(CHAOS_WORKER_ENV.LOCK_DURATION_MS); Date.now() < deadline; await sleep(250)) {
            stillActive = await d.activeWorkItems();
            if (Object.values(stillActive).every((n) => n === 0) && (await pendingDeliveries()) === 0) break;
          }
          const stuck = Object.entries(stillActive).filter(([, n]) => n > 0);
          const { rows: delivered } = await d.pool.query<{ event_id: string; status: string }>('select event_id, status from callback_deliveries');
          const got = new Map<string, number>();
          for (const r of receiver.received) got.set(r.webhookId, (got.get(r.webhookId) ?? 0) + 1);
          const undelivered = delivered.filter((x) => x.status !== 'succeeded' || !got.has(x.event_id)).length;
          const redelivered = [...got.values()].filter((n) => n > 1).length;
          result.checks.unshift(
            check('every process exited 0 within SHUTDOWN_TIMEOUT_MS', unclean.length === 0, unclean.map((e) => `${e.name} ${describeExit(e.status)} after ${e.ms} ms`).join(', ')),
            check('no work item stays active', stuck.length === 0, JSON.stringify(stillActive)),
            check('every callback delivered after the restart', undelivered === 0, `${undelivered} of ${delivered.length} deliveries not delivered`),
          );
          result.passed &&= result.checks.every((c) => c.ok);
          result.notes.push(
            `${processes.length} processes SIGTERMed under load, all exited within ${seconds(slowest)} (${[...new Set(exits.map((e) => describeExit(e.status)))].join(', ')}); ${handedBackCount} work items still running at the deadline were handed back and redone after the restart (${redelivered} callbacks sent again with the same webhook-id); client saw ${load.counts.refused} refused and ${load.counts.reset} reset connections, retried with the same Idempotency-Key; recovery measured from the restart`,
          );
          return result;
        },
      );
    } finally {
      await receiver.close();
    }
  },
};
