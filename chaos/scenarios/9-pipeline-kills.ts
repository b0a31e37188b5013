/**
 * 9. Pipeline runs and fallback chains (issue 16) while a random worker is SIGKILLed every few
 * seconds (3 running, each replaced at once). Each run is the README's planner → executor
 * pipeline: a plan with structured output (three steps), a fan-out over them (concurrency 2)
 * whose model is refused for its context length, so every executor job falls back to its second
 * model, and a compile step; each run has its own `callback_url`. One run in five is cancelled a
 * moment after it starts. Beside them, plain jobs with a fallback chain to the third attempt
 * (the first model fails, the second refuses).
 *
 * Expect: every run that was not cancelled completed, with its three executor jobs, each at
 * attempt 2, and the compile step's output as its output; a cancelled run ended cancelled with
 * no step job created after the cancel; every step job terminal; one terminal run event per run
 * in run_events, and one terminal callback per run at its URL (a redelivery keeps its
 * webhook-id). Every fallback job completed at attempt 3 on its third model, each attempt on
 * record. A step's job exists once (Postgres' unique index on run, step, element), and the
 * provider saw one create per attempt, plus one where a kill caught that job's create in flight
 * (the window Longhaul cannot close: the provider answered, the worker died before Postgres
 * recorded it).
 * Fault checks: the kills happened (each victim died of SIGKILL) and hit runs mid-way (a run with
 * step creates both before and after the kill).
 */
import type { Deployment } from '../cluster.ts';
import { createLoad, durationFor, jobBody } from '../load.ts';
import { startReceiver } from '../receiver.ts';
import { type Scenario, check, conclude, faultCheck, firstFew, killWorkers, killsDuringCreates, withDeployment } from '../scenario.ts';
import { sleep } from '../time.ts';

const META = { id: 9, name: 'pipelines and fallbacks through worker SIGKILLs' };
/** Elements of each plan, so executor jobs per run. */
const PLAN_ITEMS = 3;
/** One run in CANCEL_EVERY is cancelled CANCEL_AFTER_MS after it was accepted. */
const CANCEL_EVERY = 5;
const CANCEL_AFTER_MS = 700;
const TERMINAL_RUN = ['completed', 'failed', 'cancelled'];

/** `sim_duration_ms` for a real duration (the simulator runs at SIM_TIME_SCALE 0.01). */
const simMs = (realMs: number) => String(realMs * 100);

const plannerExecutor = {
  steps: [
    {
      name: 'plan',
      model: 'o3',
      reasoning: { effort: 'high' },
      instructions: 'Break the task into concrete steps.',
      input: '{{input.task}}',
      text: {
        format: {
          type: 'json_schema',
          name: 'plan',
          strict: true,
          schema: { type: 'object', properties: { steps: { type: 'array', items: { type: 'string' } } }, required: ['steps'], additionalProperties: false },
        },
      },
      metadata: { sim_array_items: String(PLAN_ITEMS), sim_duration_ms: simMs(500) },
    },
    {
      name: 'execute',
      model: 'gpt-4.1',
      for_each: '{{steps.plan.output.steps}}',
      concurrency: 2,
      instructions: 'Carry out this step of the plan for the task: {{input.task}}',
      input: '{{item}}',
      // The first model says the input is too long: every executor job runs its fallback.
      fallbacks: [{ model: 'gpt-5', input: 'truncate_half' }],
      metadata: { sim_outcomes: 'gpt-4.1=context_length_exceeded', sim_duration_ms: simMs(400) },
    },
    {
      name: 'compile',
      model: 'gpt-4.1',
      instructions: 'Compile the results into a final answer.',
      input: 'Task: {{input.task}}\nResults: {{steps.execute.output_text}}',
      metadata: { sim_duration_ms: simMs(300) },
    },
  ],
  output: '{{steps.compile.output_text}}',
};

interface SubmittedRun {
  id: string;
  /** Whether the scenario's cancel was accepted (the run was not over yet). */
  cancelled: boolean;
}

async function api(d: Deployment, i: number, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${d.apiUrls[i % d.apiUrls.length]}${path}`, {
    method,
    headers: { authorization: `Bearer ${d.apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

export const pipelineKills: Scenario = {
  ...META,
  async run(cluster, options) {
    const startedAt = Date.now();
    const runCount = options.jobs ?? (options.fast ? 15 : 60);
    const fallbackJobs = Math.ceil(runCount / 2);
    const killWindowMs = options.fast ? 14_000 : 45_000;
    const receiver = await startReceiver();
    try {
      return await withDeployment(cluster, options, { name: 'pipeline_kills' }, async (d) => {
        const created = await api(d, 0, 'POST', '/v1/pipelines', { name: 'planner-executor', definition: plannerExecutor });
        if (created.status !== 201) throw new Error(`could not define the pipeline: ${created.status} ${JSON.stringify(created.body)}`);
        const pipelineId = created.body.id as string;

        const runs: SubmittedRun[] = [];
        const refusals: string[] = [];
        const cancels: Promise<void>[] = [];
        const submitRuns = (async () => {
          const gapMs = (killWindowMs * 0.6) / runCount;
          for (let i = 0; i < runCount; i++) {
            const res = await api(d, i, 'POST', `/v1/pipelines/${pipelineId}/runs`, {
              inputs: { task: `Chaos run ${i}: plan a trip for otters to the moon.` },
              callback_url: `${receiver.url}/runs`,
            }).catch((err: unknown) => ({ status: 0, body: String(err) }));
            if (res.status !== 202) {
              refusals.push(`run ${i}: ${res.status} ${JSON.stringify(res.body)}`);
              continue;
            }
            const run: SubmittedRun = { id: res.body.id, cancelled: false };
            runs.push(run);
            if (i % CANCEL_EVERY === CANCEL_EVERY - 1) {
              cancels.push(
                sleep(CANCEL_AFTER_MS).then(async () => {
                  const r = await api(d, i + 1, 'POST', `/v1/runs/${run.id}/cancel`);
                  // 409: it had ended already; it is then held to the runs' common outcome.
                  if (r.status === 200 || r.status === 202) run.cancelled = true;
                  else if (r.status !== 409) refusals.push(`cancel ${run.id}: ${r.status} ${JSON.stringify(r.body)}`);
                }),
              );
            }
            await sleep(gapMs);
          }
        })();

        const load = createLoad(d, 'fallbacks');
        const submitting = load.submit(fallbackJobs, {
          ratePerSecond: fallbackJobs / ((killWindowMs * 0.6) / 1000),
          body: (i) => {
            const body = jobBody(i, durationFor(i, 200, 600), { fallbacks: [{ model: 'gpt-5' }, { model: 'gpt-4.1' }] });
            (body.metadata as Record<string, string>).sim_outcomes = 'o3=failed,gpt-5=refusal';
            return body;
          },
        });
        const { killedAt, notKilledBySigkill } = await killWorkers(d, options, Date.now() + killWindowMs, { victim: 23, pause: 29 });
        await Promise.all([submitting, submitRuns]);
        await Promise.all(cancels);
        const kills = killedAt.length;

        // Runs are not the load's jobs: wait for them here, then for the fallback jobs in conclude.
        const runDeadline = Date.now() + 90_000;
        let runRows: { id: string; status: string; steps: Record<string, { status: string; job_ids: string[] }>; output: unknown; cancel_requested_at: Date | null }[] = [];
        for (;;) {
          ({ rows: runRows } = await d.pool.query('select id, status, steps, output, cancel_requested_at from pipeline_runs where id = any($1)', [runs.map((r) => r.id)]));
          if (runRows.every((r) => TERMINAL_RUN.includes(r.status)) || Date.now() > runDeadline) break;
          await sleep(250);
        }

        return await conclude(META, d, startedAt, {
          load,
          faultEndedAt: killedAt.at(-1) ?? null,
          settleTimeoutMs: 90_000,
          checks: [
            faultCheck('workers were SIGKILLed', kills >= 2 && notKilledBySigkill.length === 0, `${kills} kills; ${notKilledBySigkill.join(', ') || 'each died of SIGKILL'}`),
            check('every run was accepted (202) and every cancel answered', refusals.length === 0, `${refusals.length} refused: ${firstFew(refusals, (s) => s)}`),
          ],
          settled: async () => {
            const runIds = runs.map((r) => r.id);
            const cancelledIds = new Set(runs.filter((r) => r.cancelled).map((r) => r.id));
            const { rows: stepJobs } = await d.pool.query<{ id: string; run_id: string; run_step: string; status: string; attempt: number; model: string; created_at: Date }>(
              'select id, run_id, run_step, status, attempt, model, created_at from jobs where run_id = any($1)',
              [runIds],
            );
            const jobsOf = new Map<string, typeof stepJobs>();
            for (const j of stepJobs) jobsOf.set(j.run_id, [...(jobsOf.get(j.run_id) ?? []), j]);

            const wrongRuns = runRows.filter((r) => {
              if (cancelledIds.has(r.id)) return r.status !== 'cancelled';
              const executors = (jobsOf.get(r.id) ?? []).filter((j) => j.run_step === 'execute');
              return (
                r.status !== 'completed' ||
                typeof r.output !== 'string' ||
                r.output.length === 0 ||
                executors.length !== PLAN_ITEMS ||
                executors.some((j) => j.status !== 'completed' || j.attempt !== 2) ||
                Object.values(r.steps).some((s) => s.status !== 'completed')
              );
            });
            const showRun = (r: (typeof runRows)[number]) =>
              `${r.id} ${r.status}${cancelledIds.has(r.id) ? ' (cancelled)' : ''}: ${Object.entries(r.steps)
                .map(([name, s]) => `${name}=${s.status}`)
                .join(',')}; jobs ${(jobsOf.get(r.id) ?? []).map((j) => `${j.run_step}:${j.status}@${j.attempt}`).join(',')}`;
            const unfinishedStepJobs = stepJobs.filter((j) => !['completed', 'failed', 'cancelled', 'incomplete', 'expired'].includes(j.status));
            const cancelRow = new Map(runRows.map((r) => [r.id, r.cancel_requested_at]));
            const startedAfterCancel = stepJobs.filter((j) => {
              const at = cancelRow.get(j.run_id);
              return at !== null && at !== undefined && j.created_at.getTime() > at.getTime();
            });

            const { rows: terminalEvents } = await d.pool.query<{ run_id: string; n: number }>(
              "select run_id, count(*)::int as n from run_events where run_id = any($1) and to_status = any($2) and details->>'kind' = 'status' group by run_id",
              [runIds, TERMINAL_RUN],
            );
            const terminalEventsOf = new Map(terminalEvents.map((e) => [e.run_id, e.n]));
            const wrongEventCounts = runIds.filter((id) => terminalEventsOf.get(id) !== 1);

            // The receiver's view: per run, the distinct webhook-ids of its terminal callbacks, answered 2xx.
            const callbackIds = new Map<string, Set<string>>();
            for (const r of receiver.received) {
              const event = JSON.parse(r.body) as { type: string; data: { id: string } };
              if (!TERMINAL_RUN.map((s) => `run.${s}`).includes(event.type) || r.status === null || r.status >= 300) continue;
              callbackIds.set(event.data.id, (callbackIds.get(event.data.id) ?? new Set()).add(r.webhookId));
            }
            const wrongCallbacks = runIds.filter((id) => callbackIds.get(id)?.size !== 1);

            const { rows: fallbackRows } = await d.pool.query<{ id: string; attempt: number; attempts: { model: string; status: string }[] }>(
              'select id, attempt, attempts from jobs where id = any($1)',
              [load.accepted()],
            );
            const wrongChains = fallbackRows.filter(
              (j) => j.attempt !== 3 || j.attempts.map((a) => a.model).join(',') !== 'o3,gpt-5,gpt-4.1' || j.attempts[2]?.status !== 'completed',
            );

            // Provider creates per job against its attempts, explained by kills during its creates.
            const creates = (await d.simRequestLog()).filter((r) => r.method === 'POST' && r.path === '/v1/responses' && r.job_id !== null);
            const attemptsOf = new Map<string, number>([...stepJobs.map((j) => [j.id, j.attempt] as const), ...fallbackRows.map((j) => [j.id, j.attempt] as const)]);
            const createsByJob = new Map<string, number>();
            for (const c of creates) createsByJob.set(c.job_id!, (createsByJob.get(c.job_id!) ?? 0) + 1);
            const hits = killsDuringCreates(creates, killedAt);
            const extra = [...attemptsOf].map(([job, n]) => [job, (createsByJob.get(job) ?? 0) - n] as [string, number]).filter(([, n]) => n !== 0);
            const unexplained = extra.filter(([job, n]) => n < 0 || n > (hits.get(job) ?? 0));
            const duplicates = extra.reduce((sum, [, n]) => sum + Math.max(0, n), 0);
            const showExtra = ([job, n]: [string, number]) => `${job} ${n > 0 ? `${n} extra` : `${-n} missing`} create(s) with ${hits.get(job) ?? 0} kill(s) during its creates`;

            const runOfJob = new Map(stepJobs.map((j) => [j.id, j.run_id]));
            const midRunKills = killedAt.filter((k) => {
              const before = new Set(creates.filter((c) => c.at_ms < k && runOfJob.has(c.job_id!)).map((c) => runOfJob.get(c.job_id!)));
              return creates.some((c) => c.at_ms > k && before.has(runOfJob.get(c.job_id!)));
            }).length;

            return {
              checks: [
                faultCheck('kills hit runs mid-way (a run with step creates before and after the kill)', midRunKills > 0, `${midRunKills} of ${kills} kills`),
                check(
                  `every run completed with ${PLAN_ITEMS} executor jobs at their fallback, or ended cancelled when cancelled`,
                  wrongRuns.length === 0 && runRows.length === runs.length,
                  `${wrongRuns.length} of ${runRows.length} did not: ${firstFew(wrongRuns, showRun)}`,
                ),
                check(
                  'every step job terminal',
                  unfinishedStepJobs.length === 0,
                  `${unfinishedStepJobs.length} not: ${firstFew(unfinishedStepJobs, (j) => `${j.id} ${j.status}`)}`,
                ),
                check(
                  'a cancelled run started no step job after the cancel',
                  startedAfterCancel.length === 0,
                  `${startedAfterCancel.length} did: ${firstFew(startedAfterCancel, (j) => `${j.run_id} ${j.id}`)}`,
                ),
                check(
                  'one terminal run event per run',
                  wrongEventCounts.length === 0,
                  `${wrongEventCounts.length} runs: ${firstFew(wrongEventCounts, (id) => `${id} ${terminalEventsOf.get(id) ?? 0}`)}`,
                ),
                check(
                  'one terminal callback per run at its callback_url (a redelivery keeps its webhook-id)',
                  wrongCallbacks.length === 0,
                  `${wrongCallbacks.length} runs: ${firstFew(wrongCallbacks, (id) => `${id} ${callbackIds.get(id)?.size ?? 0} webhook-ids`)}`,
                ),
                check(
                  'every fallback job completed at attempt 3 (o3 failed, gpt-5 refused, gpt-4.1 answered)',
                  wrongChains.length === 0,
                  `${wrongChains.length} did not: ${firstFew(wrongChains, (j) => `${j.id} attempt ${j.attempt}: ${j.attempts.map((a) => `${a.model}:${a.status}`).join(',')}`)}`,
                ),
                check(
                  'one provider create per attempt, plus one only where a kill caught that job’s create in flight',
                  unexplained.length === 0,
                  `${duplicates} duplicate creates; ${unexplained.length} jobs unexplained: ${firstFew(unexplained, showExtra)}`,
                ),
              ],
              notes: [
                `${kills} workers SIGKILLed (every 2–4 s), ${midRunKills} mid-run; ${runs.length} runs (${cancelledIds.size} cancelled) with ${stepJobs.length} step jobs; ${fallbackRows.length} fallback jobs × 3 attempts; ${duplicates} creates made twice (kills caught them in flight)`,
              ],
            };
          },
        });
      });
    } finally {
      await receiver.close();
    }
  },
};
