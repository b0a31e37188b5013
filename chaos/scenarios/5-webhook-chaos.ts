/**
 * 5. OpenAI webhooks misbehaving, with workers in `webhook` completion mode (a safety poll every
 * SAFETY_POLL_MS is the only polling): 30 % dropped, every one duplicated (each is sent 2–3
 * times with the same webhook-id, to both API processes), reordered, early (the provider answers
 * a create CREATE_ANSWER_DELAY_MS after making the response, so responses finish, and their
 * webhook is sent and acted on, before the submission has committed its response id: the
 * webhook waits and is processed again), and for the second half of the jobs delayed until well
 * after the safety poll has finished the job.
 * Expect: every accepted job completed, one terminal transition per job, one terminal callback
 * event per job (and one distinct `webhook-id` per job at the tenant's receiver, answered 2xx),
 * every inbox row settled.
 * Fault checks, from the simulator's counters and request log and the receiver's log: webhooks
 * were dropped and duplicated; webhooks were acted on before their create was answered (the
 * response was retrieved at the simulator before its create's answer, when only its webhook
 * could have named it); in the second half, jobs' callbacks reached the tenant before the
 * provider had even sent their webhook, and webhooks were still delivered to the API after every
 * job was terminal. (Reordering is configured but not measured.)
 */
import { createLoad, durationFor, jobBody } from '../load.ts';
import { startReceiver } from '../receiver.ts';
import { TERMINAL_STATUSES, waitForTerminal } from '../report.ts';
import { type Scenario, check, conclude, faultCheck, withDeployment } from '../scenario.ts';
import { sleep } from '../time.ts';
import { SIM_TIME_SCALE } from '../cluster.ts';

const META = { id: 5, name: 'webhooks dropped, duplicated, reordered, late' };
const SAFETY_POLL_MS = 1_500;
/** Second half: webhooks sent this long (real time) after the response finished. */
const LATE_WEBHOOK_MS = 4_000;
/**
 * The provider answers a create this long after making the response: every response (0.1–1.2 s)
 * finishes and has its webhook sent before, with time to spare on a loaded machine for the API and
 * a worker to act on the webhook before the submission commits the response id.
 */
const CREATE_ANSWER_DELAY_MS = 2_000;
const REORDER_WINDOW_MS = 300;

export const webhookChaos: Scenario = {
  ...META,
  async run(cluster, options) {
    const startedAt = Date.now();
    const jobs = options.jobs ?? (options.fast ? 100 : 300);
    const receiver = await startReceiver();
    try {
      return await withDeployment(
        cluster,
        options,
        {
          name: 'webhook_chaos',
          webhooks: 'all',
          workerEnv: { COMPLETION_MODE: 'webhook', SAFETY_POLL_MS: String(SAFETY_POLL_MS) },
          simEnv: {
            SIM_WEBHOOK_DROP_RATE: '0.3',
            SIM_WEBHOOK_DUPLICATE_RATE: '1',
            SIM_WEBHOOK_REORDER: 'true',
            SIM_WEBHOOK_REORDER_WINDOW_MS: String(REORDER_WINDOW_MS),
            SIM_CREATE_ANSWER_DELAY_MS: String(CREATE_ANSWER_DELAY_MS),
          },
        },
        async (d) => {
          const endpoint = await fetch(`${d.apiUrls[0]}/v1/webhook-endpoints`, {
            method: 'POST',
            headers: { authorization: `Bearer ${d.apiKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ url: `${receiver.url}/tenant` }),
          });
          if (endpoint.status !== 201) throw new Error(`could not register the callback endpoint: ${endpoint.status} ${await endpoint.text()}`);
          const load = createLoad(d, 'webhooks');
          // Responses of 0.1–1.2 s: the first safety poll (1.5 s after the create) finds them done;
          // most finish before their create is answered.
          const body = (i: number) => jobBody(i, durationFor(i, 100, 1_200));
          const half = Math.ceil(jobs / 2);
          await load.submit(half, { ratePerSecond: 30, body });
          await waitForTerminal(d, load.accepted(), 60_000);
          const firstHalf = new Set(load.accepted());
          await d.simConfig({ webhook_delay_ms: LATE_WEBHOOK_MS / SIM_TIME_SCALE });
          options.log(`  webhooks now sent ${LATE_WEBHOOK_MS} ms after the response finished (safety poll every ${SAFETY_POLL_MS} ms)`);
          await load.submit(jobs - half, { ratePerSecond: 30, body });
          await waitForTerminal(d, load.accepted(), 60_000);
          const deliveredWhenAllTerminal = (await d.simStats()).webhooks.delivered;
          // Let the late webhooks (and their duplicates) arrive and be processed: every response's
          // webhook to each API was dropped or sent, none is in flight, no inbox row is open.
          const settled = async () => {
            const s = await d.simStats();
            const firstSends = s.webhooks.sent - s.webhooks.duplicated;
            const { rows } = await d.pool.query<{ n: number }>("select count(*)::int as n from webhook_inbox where status in ('received', 'waiting')");
            return s.webhooks.dropped + firstSends >= s.creates * d.apiUrls.length && s.webhooks.delivered + s.webhooks.failed_attempts >= s.webhooks.sent && rows[0]!.n === 0;
          };
          for (const deadline = Date.now() + LATE_WEBHOOK_MS + 20_000; Date.now() < deadline && !(await settled()); ) await sleep(250);
          const stats = await d.simStats();
          const { rows: inbox } = await d.pool.query<{ status: string; late: boolean; n: number }>(
            "select status, coalesce(note like 'job already %', false) as late, count(*)::int as n from webhook_inbox group by 1, 2",
          );
          const inboxCount = (pred: (r: { status: string; late: boolean }) => boolean) => inbox.filter(pred).reduce((s, r) => s + r.n, 0);
          const open = inboxCount((r) => r.status === 'received' || r.status === 'waiting');
          const late = inboxCount((r) => r.late);
          const { rows: bySource } = await d.pool.query<{ source: string; n: number }>(
            'select source, count(*)::int as n from job_events where to_status = any($1) group by source',
            [TERMINAL_STATUSES],
          );
          // One distinct terminal event per job at the tenant's receiver (redeliveries share a
          // webhook-id), answered 2xx; when it first arrived, and the response it names.
          const accepted = load.accepted();
          const idsPerJob = new Map<string, Set<string>>();
          const firstCallback = new Map<string, { at: number; responseId: string | null }>();
          const readCallbacks = () => {
            idsPerJob.clear();
            firstCallback.clear();
            for (const r of receiver.received) {
              if (r.status === null || r.status >= 300) continue;
              const event = JSON.parse(r.body) as { type: string; data: { id: string; response_id?: string | null } };
              if (!event.type.startsWith('job.')) continue;
              const set = idsPerJob.get(event.data.id) ?? new Set<string>();
              set.add(r.webhookId);
              idsPerJob.set(event.data.id, set);
              if (!firstCallback.has(event.data.id)) firstCallback.set(event.data.id, { at: r.at, responseId: event.data.response_id ?? null });
            }
          };
          readCallbacks();
          for (const settledBy = Date.now() + 20_000; Date.now() < settledBy && accepted.some((id) => !idsPerJob.has(id)); readCallbacks()) await sleep(250);
          const missing = accepted.filter((id) => !idsPerJob.has(id)).length;
          const multiple = [...idsPerJob.values()].filter((s) => s.size > 1).length;

          // Late: a second-half job whose callback reached the tenant before the provider sent its
          // webhook (LATE_WEBHOOK_MS after the response finished), i.e. the safety poll finished it.
          const finishedBeforeWebhook = accepted.filter((id) => {
            const cb = firstCallback.get(id);
            const terminalAt = cb?.responseId ? stats.terminal_at_ms[cb.responseId] : undefined;
            return !firstHalf.has(id) && cb !== undefined && terminalAt !== undefined && cb.at < terminalAt + LATE_WEBHOOK_MS;
          }).length;
          const lateDeliveries = stats.webhooks.delivered - deliveredWhenAllTerminal;
          // Early: a response whose webhook was sent (at the latest REORDER_WINDOW_MS after it
          // finished) before the provider answered its create; and one the worker acted on before
          // that: a retrieve of the response reached the simulator before its create was answered,
          // when only the webhook could have named it.
          const requestLog = await d.simRequestLog();
          const createdAt = new Map<string, number>();
          for (const r of requestLog) if (r.method === 'POST' && r.path === '/v1/responses' && r.job_id && !createdAt.has(r.job_id)) createdAt.set(r.job_id, r.at_ms);
          const firstRetrieve = new Map<string, number>();
          for (const r of requestLog) if (r.method === 'GET' && r.path.startsWith('/v1/responses/') && !firstRetrieve.has(r.path)) firstRetrieve.set(r.path, r.at_ms);
          let webhookBeforeCreateAnswered = 0;
          let processedBeforeCommit = 0;
          for (const id of accepted) {
            const responseId = firstCallback.get(id)?.responseId;
            const created = createdAt.get(id);
            if (!responseId || created === undefined) continue;
            const terminalAt = stats.terminal_at_ms[responseId];
            if (terminalAt !== undefined && terminalAt + REORDER_WINDOW_MS < created + CREATE_ANSWER_DELAY_MS) webhookBeforeCreateAnswered += 1;
            const retrievedAt = firstRetrieve.get(`/v1/responses/${responseId}`);
            if (retrievedAt !== undefined && retrievedAt < created + CREATE_ANSWER_DELAY_MS) processedBeforeCommit += 1;
          }
          return conclude(META, d, startedAt, {
            load,
            faultEndedAt: null,
            settleTimeoutMs: 60_000,
            checks: [
              faultCheck(
                'webhooks were dropped and duplicated (simulator’s counters)',
                stats.webhooks.dropped > 0 && stats.webhooks.duplicated > 0,
                `${stats.webhooks.dropped} dropped, ${stats.webhooks.duplicated} duplicate sends`,
              ),
              faultCheck(
                'webhooks acted on before their create was answered (the response retrieved at the simulator before its id was answered)',
                processedBeforeCommit > 0,
                `${processedBeforeCommit} responses retrieved before their create was answered (${webhookBeforeCreateAnswered} had their webhook sent before it)`,
              ),
              faultCheck(
                'late webhooks: jobs finished before their webhook was sent, and webhooks still delivered after every job was terminal',
                finishedBeforeWebhook > 0 && lateDeliveries > 0,
                `${finishedBeforeWebhook} second-half jobs’ callbacks reached the receiver before their webhook was sent; ${lateDeliveries} webhook deliveries to the API after every job was terminal`,
              ),
              check('every OpenAI webhook settled in the inbox', open === 0, `${open} inbox rows still open`),
              check(
                'one distinct terminal callback per job at the receiver, answered 2xx',
                missing === 0 && multiple === 0,
                `${missing} jobs without, ${multiple} with several webhook-ids`,
              ),
            ],
            notes: [
              `simulator webhooks: ${stats.webhooks.sent} sent, ${stats.webhooks.dropped} dropped, ${stats.webhooks.duplicated} duplicate sends, ${lateDeliveries} delivered after every job was terminal; ${webhookBeforeCreateAnswered} webhooks sent and ${processedBeforeCommit} acted on before their create was answered; ${finishedBeforeWebhook} jobs finished before their webhook was sent; inbox: ${inbox.reduce((s, r) => s + r.n, 0)} distinct webhooks, ${late} arrived after the job was already terminal (no-ops); terminal transitions by ${bySource.map((r) => `${r.source} ${r.n}`).join(', ')}`,
            ],
          });
        },
      );
    } finally {
      await receiver.close();
    }
  },
};
