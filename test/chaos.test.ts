/**
 * The chaos suite's fast variants (`npm run chaos -- --fast`), run by `npm test` through the same
 * code: its own Postgres and Redis on spare ports, and per scenario the simulator, 2 API and 3
 * worker processes (see chaos/). Each scenario must bring every accepted job to the outcome it
 * expects (completed), write no terminal transition twice, show that its fault really happened
 * (measured from outside Longhaul: the simulator's request log and counters, the callback
 * receiver's log, the load client's own record), and pass its own checks (202s while Redis is
 * down, 503s while Postgres is, Retry-After respected at the simulator and at the receiver,
 * duplicate creates only where a kill caught a create, clean shutdowns...). The full variants (a
 * 120 s Redis outage, 30 s of refused provider connections, a few hundred jobs each) run with
 * `npm run chaos`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Cluster, startCluster } from '../chaos/cluster.ts';
import { formatDetails, formatLine } from '../chaos/report.ts';
import { SCENARIOS } from '../chaos/scenarios/index.ts';

describe('chaos, fast variants', () => {
  let cluster: Cluster;
  let failed = false;
  beforeAll(async () => {
    cluster = await startCluster();
  }, 120_000);
  afterAll(async () => {
    // A failed scenario keeps the run directory: its process logs are the diagnosis.
    await cluster?.stop({ keep: failed });
    if (failed) console.info(`[chaos] logs kept in ${cluster.dir}/logs`);
  }, 120_000);

  for (const scenario of SCENARIOS) {
    it(`#${scenario.id} ${scenario.name}: every accepted job completed, no terminal transition twice, the fault happened`, async () => {
      let passed = false;
      try {
        const result = await scenario.run(cluster, { fast: true, log: () => {} });
        const report = [formatLine(result), ...formatDetails(result)].join('\n    ');
        console.info(`[chaos] ${report}`);
        expect(result.lost, report).toBe(0);
        expect(result.wrongOutcomes, report).toBe(0);
        expect(result.duplicateTerminalEvents, report).toBe(0);
        expect(
          result.checks.filter((c) => !c.ok),
          report,
        ).toEqual([]);
        passed = true;
      } finally {
        if (!passed) failed = true;
      }
    }, 300_000);
  }
});
