/**
 * 2. Redis stopped for 1 s (SIGKILL: a crash, up to a second of AOF lost), 10 s and 120 s
 * (SIGTERM), each time restarted on the same port, and FLUSHALL once, with jobs in flight and
 * arriving during each fault. The API keeps accepting (jobs are in Postgres; dispatch is
 * deferred), workers reconnect on their own, and the sweeper re-dispatches what Redis lost.
 *
 * "Workers reconnect on their own" is checked directly: BullMQ names each worker's blocking
 * connection, so after every fault every worker process must again be connected to every queue.
 * (The pinned BullMQ 6.7.0 has the fix for #4585, where a worker's blocking connection stayed
 * "reconnecting" forever after an outage longer than the drain delay; the 10 s and 120 s outages
 * would catch a regression.) Recovery is reported per fault: every worker consuming again, and
 * every job accepted so far terminal.
 */
import { createLoad, durationFor, jobBody } from '../load.ts';
import { waitForTerminal } from '../report.ts';
import { type Scenario, check, conclude, withDeployment } from '../scenario.ts';
import type { Deployment } from '../cluster.ts';
import { seconds, sleep } from '../time.ts';

type Fault = { label: string; kind: 'stop'; downMs: number; signal: 'SIGTERM' | 'SIGKILL' } | { label: string; kind: 'flushall' };

const FAULTS_FULL: Fault[] = [
  { label: 'stopped 1 s (SIGKILL)', kind: 'stop', downMs: 1_000, signal: 'SIGKILL' },
  { label: 'stopped 10 s', kind: 'stop', downMs: 10_000, signal: 'SIGTERM' },
  { label: 'stopped 120 s', kind: 'stop', downMs: 120_000, signal: 'SIGTERM' },
  { label: 'FLUSHALL', kind: 'flushall' },
];
const FAULTS_FAST: Fault[] = [FAULTS_FULL[0]!, FAULTS_FULL[1]!, FAULTS_FULL[3]!];

const META = { id: 2, name: 'Redis outages and FLUSHALL' };

/** Resolves when every live worker process is connected to every queue again (or null after `timeoutMs`). */
async function allWorkersConsuming(d: Deployment, timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const live = d.workers.filter((w) => w.exitStatus() === null).length;
    const consumers = await d.consumersPerQueue().catch(() => null);
    if (consumers && Object.values(consumers).every((n) => n >= live)) return Date.now();
    await sleep(200);
  }
  return null;
}

export const redisOutages: Scenario = {
  ...META,
  async run(cluster, options) {
    const startedAt = Date.now();
    const faults = options.fast ? FAULTS_FAST : FAULTS_FULL;
    const jobs = options.jobs ?? (options.fast ? 90 : 320);
    const perFault = Math.ceil(jobs / faults.length);
    return withDeployment(cluster, options, { name: 'redis_outages' }, async (d) => {
      const load = createLoad(d, 'redis');
      const notes: string[] = [];
      const recoveries: number[] = [];
      let everyWorkerBack = true;
      for (const fault of faults) {
        // The fault starts 1.5 s into 4 s of submissions: jobs are pending, at the provider and
        // arriving while Redis is gone.
        const submitting = load.submit(perFault, { ratePerSecond: perFault / 4, body: (i) => jobBody(i, durationFor(i, 200, 2_000)) });
        await sleep(1_500);
        if (fault.kind === 'stop') {
          await cluster.redis.stop(fault.signal);
          options.log(`  Redis ${fault.label}`);
          await sleep(fault.downMs);
          await cluster.redis.start();
        } else {
          await cluster.redis.flushAll();
          options.log('  Redis FLUSHALL');
        }
        const endedAt = Date.now();
        const consumingAt = await allWorkersConsuming(d, 60_000);
        await submitting;
        const drainedAt = await waitForTerminal(d, load.accepted(), 120_000);
        if (consumingAt === null) everyWorkerBack = false;
        if (drainedAt !== null) recoveries.push(drainedAt - endedAt);
        const line = `${fault.label}: every worker consuming again after ${consumingAt === null ? 'NEVER (60 s)' : seconds(consumingAt - endedAt)}, every job terminal after ${drainedAt === null ? 'NEVER' : seconds(drainedAt - endedAt)}`;
        notes.push(line);
        options.log(`  ${line}`);
      }
      return conclude(META, d, startedAt, {
        load,
        faultEndedAt: null,
        recoveryMs: recoveries.length === faults.length ? Math.max(...recoveries) : null,
        settleTimeoutMs: 60_000,
        checks: [check('every worker reconnected to every queue after each fault', everyWorkerBack, notes.join('; '))],
        notes: [...notes, `API answers during the faults: ${load.counts.accepted} accepted (dispatch deferred while Redis was down)`],
      });
    });
  },
};
