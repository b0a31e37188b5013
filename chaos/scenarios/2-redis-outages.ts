/**
 * 2. Redis stopped for 1 s (SIGKILL: a crash, up to a second of AOF lost), 10 s and 120 s
 * (SIGTERM), each time restarted on the same port, and FLUSHALL once, with jobs in flight and
 * arriving during each fault. The API keeps accepting (jobs are in Postgres; dispatch is
 * deferred), workers reconnect on their own, and the sweeper re-dispatches what Redis lost.
 *
 * Expect: every accepted job completed. The API answered 202 while Redis was down: from the load
 * client's own record, at least one submission sent and answered inside each outage window
 * (Redis stopped → restart begun). "Workers reconnect on their own" is checked directly: BullMQ
 * names each worker's blocking connection, so after every fault every worker process must again
 * be connected to every queue. (The pinned BullMQ 6.7.0 has the fix for #4585, where a worker's
 * blocking connection stayed "reconnecting" forever after an outage longer than the drain delay;
 * the 10 s and 120 s outages would catch a regression.)
 * Fault checks, from the orchestrator's own connections: during each stop Redis refused
 * connections and accepted jobs were unfinished; FLUSHALL removed live work items. Recovery is
 * reported per fault: every worker consuming again, and every job accepted so far terminal.
 */
import { connect } from 'node:net';
import { queueDepths } from '@longhaul/queue';
import { createLoad, durationFor, jobBody } from '../load.ts';
import { waitForTerminal } from '../report.ts';
import { type Scenario, check, conclude, faultCheck, withDeployment } from '../scenario.ts';
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

/** Whether a fresh TCP connection to the port is refused (the server is really gone). */
function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function unfinished(d: Deployment, ids: string[]): Promise<number> {
  const { rows } = await d.pool.query<{ n: number }>('select count(*)::int as n from jobs where id = any($1) and finished_at is null', [ids]);
  return rows[0]?.n ?? 0;
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
      const faultProblems: string[] = [];
      const acceptedWhileDown: { label: string; n: number }[] = [];
      let everyWorkerBack = true;
      for (const fault of faults) {
        // The fault starts 1.5 s into 4 s of submissions: jobs are pending, at the provider and
        // arriving while Redis is gone.
        const submitting = load.submit(perFault, { ratePerSecond: perFault / 4, body: (i) => jobBody(i, durationFor(i, 200, 2_000)) });
        await sleep(1_500);
        const inFlight = await unfinished(d, load.accepted());
        if (inFlight === 0) faultProblems.push(`${fault.label}: no accepted job was unfinished when it began`);
        let during = '';
        if (fault.kind === 'stop') {
          await cluster.redis.stop(fault.signal);
          const downAt = Date.now();
          options.log(`  Redis ${fault.label}`);
          if (!(await refusesConnections(cluster.redis.port))) faultProblems.push(`${fault.label}: Redis still accepted connections after the stop`);
          await sleep(fault.downMs);
          const restartAt = Date.now();
          await cluster.redis.start();
          const answered = load.acceptedBetween(downAt, restartAt).length;
          acceptedWhileDown.push({ label: fault.label, n: answered });
          during = `${answered} submissions sent and answered 202 while it was down, `;
        } else {
          const items = (await queueDepths(d.queues)).reduce((sum, x) => sum + x.count, 0);
          await cluster.redis.flushAll();
          options.log(`  Redis FLUSHALL (${items} work items in Redis)`);
          if (items === 0) faultProblems.push('FLUSHALL: there were no work items in Redis to lose');
          during = `${items} work items flushed, `;
        }
        const endedAt = Date.now();
        const consumingAt = await allWorkersConsuming(d, 60_000);
        await submitting;
        const drainedAt = await waitForTerminal(d, load.accepted(), 120_000);
        if (consumingAt === null) everyWorkerBack = false;
        if (drainedAt !== null) recoveries.push(drainedAt - endedAt);
        const line = `${fault.label} with ${inFlight} accepted jobs unfinished: ${during}every worker consuming again after ${consumingAt === null ? 'NEVER (60 s)' : seconds(consumingAt - endedAt)}, every job terminal after ${drainedAt === null ? 'NEVER' : seconds(drainedAt - endedAt)}`;
        notes.push(line);
        options.log(`  ${line}`);
      }
      return conclude(META, d, startedAt, {
        load,
        faultEndedAt: null,
        recoveryMs: recoveries.length === faults.length ? Math.max(...recoveries) : null,
        settleTimeoutMs: 60_000,
        checks: [
          faultCheck('Redis refused connections while stopped and lost live work at FLUSHALL, with jobs in flight each time', faultProblems.length === 0, faultProblems.join('; ')),
          check(
            'the API answered 202 while Redis was down (client’s record: sent and answered inside each outage)',
            acceptedWhileDown.every((x) => x.n > 0),
            acceptedWhileDown.map((x) => `${x.label}: ${x.n}`).join(', '),
          ),
          check('every worker reconnected to every queue after each fault', everyWorkerBack, notes.join('; ')),
        ],
        notes,
      });
    });
  },
};
