/**
 * 1. SIGKILL a random worker every few seconds while 3 workers run (a replacement is started at
 * once, as an orchestrator would). Recovery relies on BullMQ's stalled-job check (a dead
 * worker's locks lapse) and the sweeper (work whose next check is overdue is dispatched again).
 *
 * Expect: every accepted job completed. Duplicate provider creates only where a kill caught a
 * create in flight, measured at the simulator once every job has settled: a job may have one
 * extra create per kill that happened while one of its creates was in flight (it arrived at the
 * simulator at most CREATE_ANSWER_DELAY_MS + COMMIT_SLACK_MS before the kill), and no other.
 * Fault checks: the kills happened (each victim died of SIGKILL) and caught creates in flight.
 */
import { createLoad, durationFor, jobBody } from '../load.ts';
import { type Scenario, check, conclude, faultCheck, firstFew, killWorkers, killsDuringCreates, withDeployment } from '../scenario.ts';

const META = { id: 1, name: 'worker SIGKILLs' };
/** The provider answers a create this long after making the response: the crash window for duplicates. */
const CREATE_ANSWER_DELAY_MS = 300;

export const workerKills: Scenario = {
  ...META,
  async run(cluster, options) {
    const startedAt = Date.now();
    const jobs = options.jobs ?? (options.fast ? 100 : 300);
    const killWindowMs = options.fast ? 12_000 : 45_000;
    return withDeployment(cluster, options, { name: 'worker_kills', simEnv: { SIM_CREATE_ANSWER_DELAY_MS: String(CREATE_ANSWER_DELAY_MS) } }, async (d) => {
      const load = createLoad(d, 'kills');
      // Jobs arrive over most of the kill window and run 0.2–3 s, so kills hit every state.
      const submitting = load.submit(jobs, { ratePerSecond: jobs / ((killWindowMs * 0.75) / 1000), body: (i) => jobBody(i, durationFor(i, 200, 3_000)) });
      const { killedAt, notKilledBySigkill } = await killWorkers(d, options, Date.now() + killWindowMs, { victim: 11, pause: 13 });
      await submitting;
      const kills = killedAt.length;
      return conclude(META, d, startedAt, {
        load,
        faultEndedAt: killedAt.at(-1) ?? null,
        settleTimeoutMs: 90_000,
        checks: [faultCheck('workers were SIGKILLed', kills >= 2 && notKilledBySigkill.length === 0, `${kills} kills; ${notKilledBySigkill.join(', ') || 'each died of SIGKILL'}`)],
        settled: async () => {
          // Measured once every job has settled: a duplicate created by a late retry counts too.
          const stats = await d.simStats();
          const creates = (await d.simRequestLog()).filter((r) => r.method === 'POST' && r.path === '/v1/responses');
          const hits = killsDuringCreates(creates, killedAt, CREATE_ANSWER_DELAY_MS);
          const killsWithCreatesInFlight = killedAt.filter((k) => killsDuringCreates(creates, [k], CREATE_ANSWER_DELAY_MS).size > 0).length;
          const createsByJob = Object.entries(stats.creates_by_job);
          const duplicates = createsByJob.reduce((sum, [, n]) => sum + Math.max(0, n - 1), 0);
          const unexplained = createsByJob.filter(([job, n]) => n - 1 > (hits.get(job) ?? 0));
          const moreThanTwice = createsByJob.filter(([, n]) => n > 2);
          const allowed = [...hits.values()].reduce((sum, n) => sum + n, 0);
          const show = ([job, n]: [string, number]) => `${job} created ${n}× with ${hits.get(job) ?? 0} kill(s) during its creates`;
          return {
            checks: [
              faultCheck(
                'kills caught provider creates in flight',
                killsWithCreatesInFlight > 0,
                `${killsWithCreatesInFlight} of ${kills} kills had a create in flight at the simulator`,
              ),
              check(
                'duplicate creates only where a kill caught that job’s create in flight (one per kill)',
                unexplained.length === 0,
                `${duplicates} duplicates; ${unexplained.length} jobs with more: ${firstFew(unexplained, show)}`,
              ),
              check(
                'no job created more than twice, unless two kills each caught one of its creates',
                moreThanTwice.every(([job, n]) => n - 1 <= (hits.get(job) ?? 0)),
                `${moreThanTwice.length} jobs created more than twice: ${firstFew(moreThanTwice, show)}`,
              ),
            ],
            notes: [
              `${kills} workers SIGKILLed (every 2–4 s, ${options.workers ?? 3} running, each replaced at once), ${killsWithCreatesInFlight} with creates in flight; ${duplicates} duplicate provider creates (${allowed} jobs×kills had a create in flight, the most there could be), ${moreThanTwice.length} jobs created more than twice; recovery measured from the last kill`,
            ],
          };
        },
      });
    });
  },
};
