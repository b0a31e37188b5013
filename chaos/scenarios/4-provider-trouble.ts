/**
 * 4. Provider trouble, in three phases with new jobs in each:
 *   a. 50 % of creates and of retrieves answered 429 with `Retry-After: 2`, with the provider's
 *      webhooks off so that polling is the only way a job finishes (the SDK retries a read twice
 *      on its own; a poll that meets a third 429 must back off, not give up);
 *   b. 10 % of every provider request answered 500;
 *   c. connection refusals for 30 s (a TCP proxy between the workers and the simulator stops
 *      listening and resets open connections; the simulator keeps its responses).
 * Expect: every accepted job completed (every error here is transient), and submissions pause for
 * Retry-After: after a 429 is answered, no create reaches the provider until Retry-After has
 * passed, except those of work already taken (the grace below). Measured at the simulator (its
 * request log: arrival times and the status it answered), not from Longhaul's own call log.
 * Fault checks, from the same log: 429s answered to creates, with creates waiting behind the
 * pause, and to retrieves, three in a row for some response (past the SDK's own retries, so the
 * poller itself met the 429); 500s answered; no request reached the simulator while connections
 * were refused, and jobs were accepted during the refusals.
 */
import { createLoad, durationFor, jobBody } from '../load.ts';
import { waitForTerminal } from '../report.ts';
import { type Scenario, check, conclude, faultCheck, withDeployment } from '../scenario.ts';
import type { SimArrival } from '../cluster.ts';
import { seconds, sleep } from '../time.ts';

const META = { id: 4, name: 'provider 429s, 500s, refusals' };
const RETRY_AFTER_S = 2;
/**
 * A create may reach the provider this long after a 429 was answered: work a worker had already
 * taken when the 429 arrived (a burst of up to 3 × SUBMIT_CONCURRENCY claims) is still sent.
 * What must not happen is new work being taken while the pause lasts.
 */
const RATE_LIMIT_GRACE_MS = 1_000;
/** A request written just before the proxy stopped may still reach the simulator this long after. */
const REFUSAL_SLACK_MS = 500;

interface RateLimitCompliance {
  rateLimited: number;
  creates: number;
  /** Creates that reached the simulator inside another create's Retry-After window (after the grace). */
  early: SimArrival[];
  /** 429s followed by a create right after their Retry-After (work was waiting behind the pause). */
  resumedAfter: number;
  createsPerSecond: number;
}

const isCreate = (r: SimArrival) => r.method === 'POST' && r.path === '/v1/responses';
const isRetrieve = (r: SimArrival) => r.method === 'GET' && r.path.startsWith('/v1/responses/');

/** Responses whose retrieves were answered 429 three times in a row: the SDK's two retries were spent. */
function retrieveRateLimitStreaks(log: SimArrival[], from: number, to: number): number {
  const streak = new Map<string, number>();
  const surfaced = new Set<string>();
  for (const r of log) {
    if (!isRetrieve(r) || r.at_ms < from || r.at_ms > to) continue;
    const n = r.status === 429 ? (streak.get(r.path) ?? 0) + 1 : 0;
    streak.set(r.path, n);
    if (n >= 3) surfaced.add(r.path);
  }
  return surfaced.size;
}

/** The creates of the 429 phase, as the simulator received and answered them. */
function rateLimitCompliance(log: SimArrival[], from: number, to: number): RateLimitCompliance {
  const creates = log.filter((r) => isCreate(r) && r.at_ms >= from && r.at_ms <= to);
  const windows = creates.filter((r) => r.status === 429).map((r) => r.at_ms);
  const early = creates.filter((c) => windows.some((answered) => c.at_ms > answered + RATE_LIMIT_GRACE_MS && c.at_ms < answered + RETRY_AFTER_S * 1000));
  const resumedAfter = windows.filter((answered) => creates.some((c) => c.at_ms >= answered + RETRY_AFTER_S * 1000 && c.at_ms < answered + RETRY_AFTER_S * 1000 + 3_000)).length;
  const spanS = Math.max(1, (to - from) / 1000);
  return { rateLimited: windows.length, creates: creates.length, early, resumedAfter, createsPerSecond: creates.length / spanS };
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

      // a. 429s on half the creates and half the retrieves, webhooks off.
      const { webhook_urls: webhookUrls } = (await (await fetch(`${d.simUrl}/sim/config`)).json()) as { webhook_urls: string[] };
      await d.simConfig({ rate_limit_rate: 0.5, retry_after_s: RETRY_AFTER_S, fault_endpoints: ['create', 'retrieve'], webhook_urls: [] });
      const sentRetryAfter = ((await (await fetch(`${d.simUrl}/sim/config`)).json()) as { retry_after_s: number }).retry_after_s;
      const phaseA = Date.now();
      await load.submit(perPhase, { ratePerSecond: 40, body });
      await waitForTerminal(d, load.accepted(), 120_000);
      const phaseAEnd = Date.now();
      await d.simConfig({ rate_limit_rate: 0, webhook_urls: webhookUrls });

      // b. 500s on a tenth of every request.
      await d.simConfig({ error_rate: 0.1, fault_endpoints: ['create', 'retrieve', 'cancel'] });
      const phaseB = Date.now();
      await load.submit(perPhase, { ratePerSecond: 40, body });
      await waitForTerminal(d, load.accepted(), 120_000);
      await d.simConfig({ error_rate: 0 });
      const phaseBEnd = Date.now();

      // c. connection refusals, with jobs submitted just before and during them.
      const submitting = load.submit(perPhase, { ratePerSecond: perPhase / 4, body });
      await sleep(1_000);
      await d.proxy!.refuse();
      const refusedAt = Date.now();
      options.log(`  provider connections refused for ${seconds(refuseMs)}`);
      await sleep(refuseMs);
      const acceptAt = Date.now();
      await d.proxy!.accept();
      const refusalsEndedAt = Date.now();
      await submitting;

      const log = await d.simRequestLog();
      const compliance = rateLimitCompliance(log, phaseA, phaseAEnd);
      const retrieves429 = log.filter((r) => isRetrieve(r) && r.status === 429 && r.at_ms >= phaseA && r.at_ms <= phaseAEnd).length;
      const pollerMet429 = retrieveRateLimitStreaks(log, phaseA, phaseAEnd);
      const answered500 = log.filter((r) => r.status === 500 && r.at_ms >= phaseB && r.at_ms <= phaseBEnd).length;
      const duringRefusals = log.filter((r) => r.at_ms > refusedAt + REFUSAL_SLACK_MS && r.at_ms < acceptAt).length;
      const acceptedDuringRefusals = load.acceptedBetween(refusedAt, acceptAt).length;
      options.log(`  429 phase: ${compliance.rateLimited} creates and ${retrieves429} retrieves answered 429; 500 phase: ${answered500} answered 500`);

      return conclude(META, d, startedAt, {
        load,
        faultEndedAt: refusalsEndedAt,
        settleTimeoutMs: 120_000,
        checks: [
          faultCheck(
            `the simulator answered 429 with Retry-After ${RETRY_AFTER_S} s to creates (with work waiting behind the pause) and to retrieves (three in a row for some response)`,
            sentRetryAfter === RETRY_AFTER_S && compliance.rateLimited > 0 && compliance.resumedAfter > 0 && pollerMet429 > 0,
            `Retry-After ${sentRetryAfter} s; ${compliance.rateLimited} creates answered 429, ${compliance.resumedAfter} of them followed by a create once it passed; ${retrieves429} retrieves answered 429, ${pollerMet429} responses three times in a row`,
          ),
          faultCheck('the simulator answered 500s', answered500 > 0, `${answered500} requests answered 500`),
          faultCheck(
            'no request reached the simulator while connections were refused, and jobs were accepted meanwhile',
            duringRefusals === 0 && acceptedDuringRefusals > 0,
            `${duringRefusals} requests arrived during the refusals; ${acceptedDuringRefusals} jobs accepted during them`,
          ),
          check(
            'no create reached the provider inside a Retry-After window (simulator’s log)',
            compliance.early.length === 0,
            `${compliance.early.length} creates arrived inside a Retry-After window, e.g. ${compliance.early
              .slice(0, 3)
              .map((c) => `${c.job_id} at +${c.at_ms - phaseA} ms`)
              .join(', ')}`,
          ),
        ],
        notes: [
          `429 phase: ${compliance.rateLimited} of ${compliance.creates} creates and ${retrieves429} retrieves answered 429 (Retry-After ${RETRY_AFTER_S} s; ${pollerMet429} responses' polls past the SDK's retries), ${compliance.createsPerSecond.toFixed(1)} creates/s, ${compliance.early.length} arrived inside a Retry-After window (${RATE_LIMIT_GRACE_MS} ms grace for work already claimed); 500 phase: ${answered500} answers 500; refusals: ${seconds(refuseMs)}, ${acceptedDuringRefusals} jobs accepted during them`,
        ],
      });
    });
  },
};
