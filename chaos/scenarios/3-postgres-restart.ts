/**
 * 3. Postgres restarted mid-run (`pg_ctl stop -m fast`, a pause, `pg_ctl start`) while jobs are
 * submitted and read. While it is down the API must answer 503 `database_unavailable` with
 * Retry-After (never a 500, never a hang); every job that got a 202 must complete; workers retry
 * their writes (BullMQ retries the work item; the sweeper re-dispatches what is overdue).
 * The 503s are counted from the load client's own record, answered inside the outage window.
 * Fault checks: the orchestrator's own Postgres connection failed during the outage, and accepted
 * jobs were unfinished when it began.
 */
import { createLoad, durationFor, jobBody } from '../load.ts';
import { type Scenario, check, conclude, faultCheck, withDeployment } from '../scenario.ts';
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
      const { rows } = await d.pool.query<{ n: number }>('select count(*)::int as n from jobs where id = any($1) and finished_at is null', [load.accepted()]);
      const unfinished = rows[0]?.n ?? 0;
      await cluster.postgres.stop('fast');
      const stoppedAt = Date.now();
      options.log(`  Postgres stopped for ${seconds(downMs)}`);
      const reachable = await d.pool.query('select 1').then(
        () => 'answered',
        (err: unknown) => `refused (${(err as Error).message})`,
      );
      await sleep(downMs);
      const restartAt = Date.now();
      await cluster.postgres.start();
      const restartedAt = Date.now();
      options.log(`  Postgres started again after ${seconds(restartedAt - stoppedAt)}`);
      await submitting;
      await load.stopReads();
      const unavailable = load.requests.filter((r) => r.outcome === 'unavailable' && r.endedAt >= stoppedAt && r.endedAt <= restartAt).length;
      return conclude(META, d, startedAt, {
        load,
        faultEndedAt: restartedAt,
        settleTimeoutMs: 90_000,
        checks: [
          faultCheck(
            'Postgres was down (the orchestrator’s own query failed) with accepted jobs unfinished',
            reachable !== 'answered' && unfinished > 0,
            `a query while it was down: ${reachable}; ${unfinished} accepted jobs unfinished when it stopped`,
          ),
          check(
            'the API answered 503 database_unavailable while Postgres was down (client’s record)',
            unavailable > 0,
            `${unavailable} answers inside the outage were 503 database_unavailable`,
          ),
          check('every 503 carried Retry-After', load.counts.missingRetryAfter === 0, `${load.counts.missingRetryAfter} without`),
        ],
        notes: [
          `Postgres down ${seconds(restartedAt - stoppedAt)} with ${unfinished} accepted jobs unfinished; API answers: ${load.counts.accepted} jobs accepted, ${load.counts.unavailable} × 503 database_unavailable (${unavailable} inside the outage; all with Retry-After), ${load.counts.serverErrors} × 500, ${load.counts.hangs} hangs (> 10 s), ${load.counts.reads} reads; slowest answer ${seconds(load.maxLatencyMs)}`,
        ],
      });
    });
  },
};
