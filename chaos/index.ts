/**
 * `pnpm chaos` / `npm run chaos`: break a real Longhaul deployment in the ways production does
 * and check that every accepted job reaches the outcome it should (completed), none finishes
 * twice, and the fault really happened (measured from outside Longhaul: the simulator's request
 * log and counters, the callback receiver's log, the load client's own record).
 *
 *   --only N[,M...]  run only these scenarios (1–10)
 *   --fast           the shortened variants (what `npm test` runs in test/chaos.test.ts)
 *   --jobs N         jobs per scenario (default: each scenario's own, a few hundred)
 *   --apis N         API processes per scenario (default 2)
 *   --workers M      worker processes per scenario (default 3)
 *   --keep           keep the run directory (process logs, Postgres data, Redis AOF)
 *
 * It starts its own Postgres (initdb, on a spare port) and Redis (AOF everysec, noeviction), and
 * for each scenario the simulator, N API and M worker processes on a fresh database. Each
 * scenario prints one line (accepted, terminal, completed, not as expected, lost, duplicate
 * creates, duplicate terminal events, max time-to-terminal, recovery) and any failed check, then
 * a table of all of them. Exits non-zero
 * when a scenario fails; the run directory is then kept for its logs.
 */
import { parseArgs } from 'node:util';
import { startCluster, type Cluster } from './cluster.ts';
import { type ScenarioResult, formatDetails, formatLine, formatTable } from './report.ts';
import { SCENARIOS } from './scenarios/index.ts';
import { seconds } from './time.ts';

function parseCli(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      fast: { type: 'boolean', default: false },
      jobs: { type: 'string' },
      keep: { type: 'boolean', default: false },
      apis: { type: 'string', default: '2' },
      workers: { type: 'string', default: '3' },
    },
    strict: true,
  });
  const only = values.only?.split(',').map((v) => Number(v.trim()));
  if (only?.some((n) => !SCENARIOS.some((s) => s.id === n))) throw new Error(`--only takes scenario numbers 1–${SCENARIOS.length}, e.g. --only 2 or --only 1,3`);
  const jobs = values.jobs === undefined ? undefined : Number(values.jobs);
  if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 10)) throw new Error('--jobs must be an integer ≥ 10');
  const apis = Number(values.apis);
  const workers = Number(values.workers);
  if (!Number.isInteger(apis) || apis < 1) throw new Error('--apis must be an integer ≥ 1');
  if (!Number.isInteger(workers) || workers < 2) throw new Error('--workers must be an integer ≥ 2 (scenarios kill and restart workers)');
  return { only, fast: values.fast, jobs, keep: values.keep, apis, workers };
}

async function main(): Promise<number> {
  const options = parseCli(process.argv.slice(2));
  const scenarios = SCENARIOS.filter((s) => !options.only || options.only.includes(s.id));
  const log = (line: string) => console.log(line);
  const started = Date.now();
  log(`Longhaul chaos suite: ${scenarios.length} scenario(s)${options.fast ? ', fast variants' : ''}; starting Postgres and Redis...`);
  let cluster: Cluster | undefined;
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('interrupted: stopping every process...');
    void (cluster?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  cluster = await startCluster({ keep: options.keep });
  log(`Postgres on ${cluster.postgres.port}, Redis on ${cluster.redis.port}; logs under ${cluster.dir}/logs`);
  const results: ScenarioResult[] = [];
  let failed = 0;
  for (const scenario of scenarios) {
    log(`\n[${scenario.id}] ${scenario.name}`);
    try {
      const result = await scenario.run(cluster, { fast: options.fast, jobs: options.jobs, apis: options.apis, workers: options.workers, log });
      results.push(result);
      if (!result.passed) failed += 1;
      log(formatLine(result));
      for (const line of formatDetails(result)) log(`    ${line}`);
      log(`    (${seconds(result.durationMs)})`);
    } catch (err) {
      failed += 1;
      log(`#${scenario.id} ${scenario.name}: could not run — ${(err as Error).stack ?? String(err)}`);
    }
  }
  log(`\n${formatTable(results)}\n`);
  log(`${results.filter((r) => r.passed).length} of ${scenarios.length} scenarios passed in ${seconds(Date.now() - started)}.`);
  await cluster.stop({ keep: options.keep || failed > 0 });
  if (failed > 0) log(`Logs kept in ${cluster.dir}/logs`);
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
