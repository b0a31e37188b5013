/**
 * 4. Provider trouble, in three phases with new jobs in each:
 *   a. 50 % of creates answered 429 with `Retry-After: 2`;
 *   b. 10 % of every provider request answered 500;
 *   c. connection refusals for 30 s (a TCP proxy between the workers and the simulator stops
 *      listening and resets open connections; the simulator keeps its responses).
 * Expect: no job fails (every error here is transient), and submissions pause for Retry-After:
 * after a 429 reaches a worker, no create starts until Retry-After has passed, except those of
 * work already taken (the grace below); read from the workers' provider-call log.
 */
import { createLoad, durationFor, jobBody } from '../load.ts';
import { waitForTerminal } from '../report.ts';
import { type Scenario, check, conclude, withDeployment } from '../scenario.ts';
import type { Deployment } from '../cluster.ts';
import { seconds, sleep } from '../time.ts';

const META = { id: 4, name: 'provider 429s, 500s, refusals' };
const RETRY_AFTER_S = 2;
/**
 * A create may start this long after a 429 was answered: work a worker had already taken when
 * the 429 arrived (a burst of up to 3 × SUBMIT_CONCURRENCY claims) is still sent. What must not
 * happen is new work being taken while the pause lasts.
 */
const RATE_LIMIT_GRACE_MS = 1_000;

interface RateLimitCompliance {
  rateLimited: number;
  creates: number;
  /** Creates started inside another create's Retry-After window (after the grace). */
  early: number;
  createsPerSecond: number;
}

/** Read the create calls of the 429 phase from the provider-call log (flushed every second). */
async function rateLimitCompliance(d: Deployment, from: Date, to: Date): Promise<RateLimitCompliance> {
  const { rows } = await d.pool.query<{ at: Date; latency_ms: number; status_code: number | null }>(
    "select at, latency_ms, status_code from provider_calls where operation = 'create' and at >= $1 and at <= $2 order by at",
    [from, to],
  );
  const windows = rows.filter((r) => r.status_code === 429).map((r) => r.at.getTime() + r.latency_ms);
  let early = 0;
  for (const call of rows) {
    const at = call.at.getTime();
    if (windows.some((answered) => at > answered + RATE_LIMIT_GRACE_MS && at < answered + RETRY_AFTER_S * 1000)) early += 1;
  }
  const spanS = Math.max(1, (to.getTime() - from.getTime()) / 1000);
  return { rateLimited: windows.length, creates: rows.length, early, createsPerSecond: rows.length / spanS };
}

export const providerTrouble: Scenario = {
  ...META,
  async run(cluster, options) {
    const startedAt = Date.now();
    const jobs = options.jobs ?? (options.fast ? 90 : 300);
    const perPhase = Math.ceil(jobs / 3);
    const refuseMs = options.fast ? 6_000 : 30_000;
    return withDeployment(cluster, options, { name: 'provider_trouble', providerProxy: true }, async (d) => {
      const load = createLoad(d, 'provider');
      const body = (i: number) => jobBody(i, durationFor(i, 200, 2_000));

      // a. 429s on half the creates.
      await d.simConfig({ rate_limit_rate: 0.5, retry_after_s: RETRY_AFTER_S, fault_endpoints: ['create'] });
      const phaseA = new Date();
      await load.submit(perPhase, { ratePerSecond: 40, body });
      await waitForTerminal(d, load.accepted(), 120_000);
      const phaseAEnd = new Date();
      await d.simConfig({ rate_limit_rate: 0 });
      const statsA = await d.simStats();
      options.log(`  429 phase: ${statsA.rate_limited} creates answered 429`);

      // b. 500s on a tenth of every request.
      await d.simConfig({ error_rate: 0.1, fault_endpoints: ['create', 'retrieve', 'cancel'] });
      await load.submit(perPhase, { ratePerSecond: 40, body });
      await waitForTerminal(d, load.accepted(), 120_000);
      await d.simConfig({ error_rate: 0 });
      const statsB = await d.simStats();
      options.log(`  500 phase: ${statsB.errors} requests answered 500`);

      // c. connection refusals, with jobs submitted just before and during them.
      const submitting = load.submit(perPhase, { ratePerSecond: perPhase / 4, body });
      await sleep(1_000);
      await d.proxy!.refuse();
      options.log(`  provider connections refused for ${seconds(refuseMs)}`);
      await sleep(refuseMs);
      await d.proxy!.accept();
      const refusalsEndedAt = Date.now();
      await submitting;
      await sleep(1_500); // the provider-call log is flushed every second
      const compliance = await rateLimitCompliance(d, phaseA, phaseAEnd);

      const result = await conclude(META, d, startedAt, {
        load,
        faultEndedAt: refusalsEndedAt,
        settleTimeoutMs: 120_000,
        checks: [check('submissions paused for Retry-After after a 429', compliance.early === 0, `${compliance.early} creates started inside a Retry-After window`)],
        notes: [
          `429 phase: ${compliance.rateLimited} of ${compliance.creates} creates answered 429 (Retry-After ${RETRY_AFTER_S} s), ${compliance.createsPerSecond.toFixed(1)} creates/s, ${compliance.early} started inside a Retry-After window (${RATE_LIMIT_GRACE_MS} ms grace for work already claimed); 500 phase: ${statsB.errors} answers 500; refusals: ${seconds(refuseMs)}`,
        ],
      });
      const failed = result.accepted - result.completed;
      result.checks.unshift(check('no job failed because of a transient provider error', failed === 0, `${failed} accepted jobs did not complete`));
      result.passed &&= failed === 0;
      return result;
    });
  },
};
