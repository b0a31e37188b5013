/**
 * 3. Postgres restarted mid-run (`pg_ctl stop -m fast`, a pause, `pg_ctl start`) while jobs are
 * submitted and read. While it is down the API must answer 503 `database_unavailable` with
 * Retry-After (never a 500, never a hang); every job that got a 202 must finish; workers retry
 * their writes (BullMQ retries the work item; the sweeper re-dispatches what is overdue).
 */
import { createLoad, durationFor, jobBody } from '../load.ts';
import { type Scenario, check, conclude, withDeployment } from '../scenario.ts';
import { seconds, sleep } from '../time.ts';

const META = { id: 3, name: 'Postgres restart' };

export const postgresRestart: Scenario = {
  ...META,
  async run(cluster, options) {
    const startedAt = Date.now();
    const jobs = options.jobs ?? (options.fast ? 100 : 300);
    const submitSeconds = options.fast ? 12 : 25;
    const downMs = options.fast ? 5_000 : 10_000;
    return withDeployment(cluster, options, { name: 'postgres_restart' }, async (d) => {
      const load = createLoad(d, 'postgres');
      const submitting = load.submit(jobs, { ratePerSecond: jobs / submitSeconds, body: (i) => jobBody(i, durationFor(i, 200, 2_500)) });
      load.startReads(10);
      await sleep(4_000);
      const unavailableBefore = load.counts.unavailable;
      await cluster.postgres.stop('fast');
      const stoppedAt = Date.now();
      options.log(`  Postgres stopped for ${seconds(downMs)}`);
      await sleep(downMs);
      await cluster.postgres.start();
      const restartedAt = Date.now();
      options.log(`  Postgres started again after ${seconds(restartedAt - stoppedAt)}`);
      await submitting;
      await load.stopReads();
      const unavailable = load.counts.unavailable - unavailableBefore;
      return conclude(META, d, startedAt, {
        load,
        faultEndedAt: restartedAt,
        settleTimeoutMs: 90_000,
        checks: [
          check('the API answered 503 database_unavailable while Postgres was down', unavailable > 0, `${unavailable} answers were 503 database_unavailable`),
          check('every 503 carried Retry-After', load.counts.missingRetryAfter === 0, `${load.counts.missingRetryAfter} without`),
        ],
        notes: [
          `Postgres down ${seconds(restartedAt - stoppedAt)}; API answers: ${load.counts.accepted} jobs accepted, ${load.counts.unavailable} × 503 database_unavailable (all with Retry-After), ${load.counts.serverErrors} × 500, ${load.counts.hangs} hangs (> 10 s), ${load.counts.reads} reads; slowest answer ${seconds(load.maxLatencyMs)}`,
        ],
      });
    });
  },
};
