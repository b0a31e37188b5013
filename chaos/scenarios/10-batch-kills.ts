/**
 * 10. Batch jobs (issue 17) while a random worker is SIGKILLed every few seconds (3 running, each
 * replaced at once), Redis is flushed once half-way (FLUSHALL), the simulator's `batch.*` webhooks dropped (40 %), duplicated and reordered,
 * and one batch in five expiring half-way (its unrun jobs sent again in a new batch). Batches are
 * small (BATCH_MAX_JOBS 10) and go out a second after their first job, so kills land while a
 * batch is being collected, uploaded, created, followed and reconciled. Workers hold a batch for
 * 4 s (BATCH_LEASE_SECONDS) and poll it every 2 s when no webhook says it moved.
 *
 * Expect: every accepted job completed, ended by its batch (its terminal event's source `batch`),
 * once (no terminal transition twice: a line read again after a kill, or in a duplicated
 * webhook's wake, is refused by the job's guarded change); every Longhaul batch reconciled; a
 * job's answer taken from one provider batch's output, or from two only where a kill caught
 * that batch's create in flight (`create_attempts` > 1: the one window Longhaul cannot close);
 * every provider batch is one of Longhaul's, or such a duplicate.
 * Fault checks: the kills happened (each victim died of SIGKILL) and hit batches mid-way (a batch
 * with events before and after a kill), Redis was flushed with batches under way, webhooks were
 * dropped and duplicated, a batch expired.
 */
import type { Deployment } from '../cluster.ts';
import { createLoad } from '../load.ts';
import { type Scenario, check, conclude, faultCheck, firstFew, killWorkers, withDeployment } from '../scenario.ts';
import { sleep } from '../time.ts';

const META = { id: 10, name: 'batch jobs through worker SIGKILLs and webhook chaos' };

interface ProviderBatchView {
  id: string;
  status: string;
  output_file_id?: string;
  metadata?: Record<string, string>;
}

/** Every batch the simulator holds (newest first, paged as OpenAI's list is). */
async function providerBatches(d: Deployment): Promise<ProviderBatchView[]> {
  const all: ProviderBatchView[] = [];
  let after: string | undefined;
  for (;;) {
    const page = (await (await fetch(`${d.simUrl}/v1/batches?limit=100${after ? `&after=${after}` : ''}`, { headers: { authorization: 'Bearer sk-chaos' } })).json()) as {
      data: ProviderBatchView[];
      has_more: boolean;
    };
    all.push(...page.data);
    if (!page.has_more || page.data.length === 0) return all;
    after = page.data.at(-1)!.id;
  }
}

/** The jobs a provider batch's output file answered (2xx lines). */
async function answeredJobs(d: Deployment, batch: ProviderBatchView): Promise<string[]> {
  if (!batch.output_file_id) return [];
  const text = await (await fetch(`${d.simUrl}/v1/files/${batch.output_file_id}/content`, { headers: { authorization: 'Bearer sk-chaos' } })).text();
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { custom_id: string; response?: { status_code: number } })
    .filter((l) => (l.response?.status_code ?? 0) < 300)
    .map((l) => l.custom_id);
}

export const batchKills: Scenario = {
  ...META,
  async run(cluster, options) {
    const startedAt = Date.now();
    const jobs = options.jobs ?? (options.fast ? 150 : 600);
    const killWindowMs = options.fast ? 14_000 : 45_000;
    return withDeployment(
      cluster,
      options,
      {
        name: 'batch_kills',
        // The batches' files are kept: the checks read every provider batch's output afterwards.
        workerEnv: { BATCH_MAX_JOBS: '10', BATCH_MAX_WAIT_SECONDS: '1', BATCH_TICK_MS: '200', BATCH_POLL_SECONDS: '2', BATCH_LEASE_SECONDS: '4', BATCH_DELETE_FILES: 'false' },
        simEnv: {
          // A batch takes 3 s (300 simulated seconds); one in five expires half-way.
          SIM_BATCH_DURATION_MS: '300000',
          SIM_BATCH_EXPIRE_RATE: '0.2',
          // Enough batches (about 20 in the fast variant) and drops that the fault check cannot miss by
          // chance (0.6^20 ≈ 0.004 %; with 25-job batches and 30 % about 4 % of runs dropped nothing).
          SIM_WEBHOOK_DROP_RATE: '0.4',
          SIM_WEBHOOK_DUPLICATE_RATE: '0.5',
          SIM_WEBHOOK_REORDER: 'true',
        },
      },
      async (d) => {
        const load = createLoad(d, 'batches');
        const submitting = load.submit(jobs, {
          ratePerSecond: jobs / ((killWindowMs * 0.6) / 1000),
          body: (i) => ({ model: 'gpt-4.1', input: `Chaos batch job ${i}: classify this ticket.`, processing: 'batch', metadata: { chaos_index: String(i) } }),
        });
        // Half-way, Redis loses everything (FLUSHALL): batches live in Postgres and must not notice.
        const flush = (async () => {
          await sleep(killWindowMs / 2);
          const { rows } = await d.pool.query<{ n: number }>('select count(*)::int as n from batches where reconciled_at is null');
          await cluster.redis.flushAll();
          options.log(`  Redis FLUSHALL (${rows[0]!.n} batches under way)`);
          return rows[0]!.n;
        })();
        const { killedAt, notKilledBySigkill } = await killWorkers(d, options, Date.now() + killWindowMs, { victim: 31, pause: 37 });
        await submitting;
        const batchesAtFlush = await flush;
        const kills = killedAt.length;
        return conclude(META, d, startedAt, {
          load,
          faultEndedAt: killedAt.at(-1) ?? null,
          settleTimeoutMs: 120_000,
          checks: [
            faultCheck('workers were SIGKILLed', kills >= 2 && notKilledBySigkill.length === 0, `${kills} kills; ${notKilledBySigkill.join(', ') || 'each died of SIGKILL'}`),
            faultCheck('Redis was flushed with batches under way', batchesAtFlush > 0, `${batchesAtFlush} batches not yet reconciled at the FLUSHALL`),
          ],
          settled: async () => {
            const accepted = load.accepted();
            const { rows: ends } = await d.pool.query<{ job_id: string; source: string }>(
              `select job_id, source from job_events where job_id = any($1) and to_status in ('completed','failed','cancelled','incomplete','expired')`,
              [accepted],
            );
            const notByBatch = ends.filter((e) => e.source !== 'batch');
            const { rows: batches } = await d.pool.query<{
              id: string;
              provider_batch_id: string | null;
              status: string;
              create_attempts: number;
              reconciled_at: Date | null;
              first_ms: number;
              last_ms: number;
            }>(
              `select b.id, b.provider_batch_id, b.status, b.create_attempts, b.reconciled_at,
                      (select extract(epoch from min(at)) * 1000 from batch_events e where e.batch_id = b.id)::float8 as first_ms,
                      (select extract(epoch from max(at)) * 1000 from batch_events e where e.batch_id = b.id)::float8 as last_ms
                 from batches b`,
            );
            const unreconciled = batches.filter((b) => b.reconciled_at === null);
            const retriedCreates = new Set(batches.filter((b) => b.create_attempts > 1).map((b) => b.id));
            const ours = new Map(batches.filter((b) => b.provider_batch_id).map((b) => [b.provider_batch_id!, b.id]));
            const atProvider = await providerBatches(d);
            const strays = atProvider.filter((p) => !ours.has(p.id) && !retriedCreates.has(p.metadata?.longhaul_batch_id ?? ''));
            const answers = new Map<string, string[]>();
            for (const p of atProvider) for (const job of await answeredJobs(d, p)) answers.set(job, [...(answers.get(job) ?? []), p.id]);
            const twice = [...answers].filter(([, ps]) => ps.length > 1);
            const unexplained = twice.filter(([, ps]) => !ps.some((p) => retriedCreates.has(atProvider.find((b) => b.id === p)?.metadata?.longhaul_batch_id ?? '')));
            const expired = atProvider.filter((p) => p.status === 'expired').length;
            const midBatchKills = killedAt.filter((k) => batches.some((b) => b.first_ms < k && b.last_ms > k)).length;
            const stats = (await d.simStats()).webhooks;
            return {
              checks: [
                faultCheck('kills hit batches mid-way (a batch with events before and after the kill)', midBatchKills > 0, `${midBatchKills} of ${kills} kills`),
                faultCheck('batch webhooks were dropped and duplicated', stats.dropped > 0 && stats.duplicated > 0, `${stats.dropped} dropped, ${stats.duplicated} duplicated`),
                faultCheck('a batch expired (its unrun jobs sent again)', expired > 0, `${expired} of ${atProvider.length} provider batches expired`),
                check('every job was ended by its batch', notByBatch.length === 0, `${notByBatch.length} not: ${firstFew(notByBatch, (e) => `${e.job_id} by ${e.source}`)}`),
                check('every batch reconciled', unreconciled.length === 0, `${unreconciled.length} not: ${firstFew(unreconciled, (b) => `${b.id} ${b.status}`)}`),
                check(
                  'a job answered by two provider batches only where a kill caught a create in flight (create_attempts > 1)',
                  unexplained.length === 0,
                  `${twice.length} answered twice, ${unexplained.length} unexplained: ${firstFew(unexplained, ([job, ps]) => `${job} in ${ps.length} batches (${ps.slice(0, 2).join(', ')}${ps.length > 2 ? ', …' : ''})`)}`,
                ),
                check(
                  'every provider batch is one of Longhaul’s (or a create retried after a kill)',
                  strays.length === 0,
                  `${strays.length} strays: ${firstFew(strays, (p) => p.id)}`,
                ),
              ],
              notes: [
                `${kills} workers SIGKILLed (every 2–4 s), ${midBatchKills} mid-batch; ${accepted.length} jobs in ${batches.length} batches (${atProvider.length} at the provider, ${expired} expired, ${retriedCreates.size} with a create retried after a kill); webhooks ${stats.sent} sent, ${stats.dropped} dropped, ${stats.duplicated} duplicated`,
              ],
            };
          },
        });
      },
    );
  },
};
