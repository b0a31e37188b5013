/**
 * 1. SIGKILL a random worker every few seconds while 3 workers run (a replacement is started at
 * once, as an orchestrator would). Recovery relies on BullMQ's stalled-job check (a dead
 * worker's locks lapse) and the sweeper (work whose next check is overdue is dispatched again).
 * Expect: 0 lost, every job terminal; duplicate provider creates only from submissions in flight
 * at a kill (≤ kills × SUBMIT_CONCURRENCY).
 */
import { CHAOS_WORKER_ENV } from '../cluster.ts';
import { createLoad, durationFor, jobBody } from '../load.ts';
import { type Scenario, check, conclude, withDeployment } from '../scenario.ts';
import { sleep, unitRandom } from '../time.ts';

const META = { id: 1, name: 'worker SIGKILLs' };

export const workerKills: Scenario = {
  ...META,
  async run(cluster, options) {
    const startedAt = Date.now();
    const jobs = options.jobs ?? (options.fast ? 100 : 300);
    const killWindowMs = options.fast ? 12_000 : 45_000;
    // The provider answers a create 300 ms after making the response: a kill in that window is
    // the crash window for duplicate creates.
    return withDeployment(cluster, options, { name: 'worker_kills', simEnv: { SIM_CREATE_ANSWER_DELAY_MS: '300' } }, async (d) => {
      const load = createLoad(d, 'kills');
      // Jobs arrive over most of the kill window and run 0.2–3 s, so kills hit every state.
      const submitting = load.submit(jobs, { ratePerSecond: jobs / ((killWindowMs * 0.75) / 1000), body: (i) => jobBody(i, durationFor(i, 200, 3_000)) });
      const until = Date.now() + killWindowMs;
      let kills = 0;
      let lastKillAt = Date.now();
      await sleep(1_500);
      while (Date.now() < until) {
        const live = d.workers.filter((w) => w.exitStatus() === null);
        const victim = live[Math.floor(unitRandom(kills, 11) * live.length)];
        if (victim) {
          d.expectExit(victim);
          victim.signal('SIGKILL');
          await victim.exited;
          kills += 1;
          lastKillAt = Date.now();
          options.log(`  SIGKILL ${victim.name} (${kills}); starting a replacement`);
          d.startWorker(false).catch((err: unknown) => options.log(`  could not start a replacement worker: ${String(err)}`));
        }
        await sleep(2_000 + unitRandom(kills, 13) * 2_000);
      }
      await submitting;
      const stats = await d.simStats();
      const duplicates = Object.values(stats.creates_by_job).reduce((sum, n) => sum + Math.max(0, n - 1), 0);
      const bound = kills * Number(CHAOS_WORKER_ENV.SUBMIT_CONCURRENCY);
      return conclude(META, d, startedAt, {
        load,
        faultEndedAt: lastKillAt,
        settleTimeoutMs: 90_000,
        checks: [check('duplicate creates within one per submission in flight at a kill', duplicates <= bound, `${duplicates} duplicates after ${kills} kills (bound ${bound})`)],
        notes: [
          `${kills} workers SIGKILLed (every 2–4 s, ${options.workers ?? 3} running, each replaced at once); ${duplicates} duplicate provider creates; recovery measured from the last kill`,
        ],
      });
    });
  },
};
