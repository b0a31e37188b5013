/**
 * 8. Tool-call loops (issue 15) while a random worker is SIGKILLed every few seconds (3 running,
 * each replaced at once). Every job is a 4-turn loop (the simulator calls a function for 3 turns,
 * then answers). Half the jobs have a tool executor (a loopback server here that answers every
 * call at once); the other half are answered by the client, who lists its jobs in
 * `requires_action` and posts their outputs, as a tenant's own loop would. Kills land between a
 * turn's end and its executor call, during the call, and between the answer and the next create.
 *
 * Expect: every accepted job completed at turn 4, its answer quoting its last turn's output, each
 * turn on record (job_turns) and every turn's create chained on the previous turn's response
 * (`previous_response_id`, read from the simulator). A turn's response created twice only where a
 * kill caught that job's create in flight (the one window Longhaul cannot close: the provider
 * answered, the worker died before Postgres recorded the id), one per kill. An executor may see a
 * turn twice (a kill during its call), always with the same webhook-id.
 * Fault checks: the kills happened (each victim died of SIGKILL), and they hit loops mid-way
 * (jobs with creates both before and after the kill).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Deployment } from '../cluster.ts';
import { createLoad, durationFor, jobBody } from '../load.ts';
import { type Scenario, check, conclude, faultCheck, firstFew, killWorkers, killsDuringCreates, withDeployment } from '../scenario.ts';
import { sleep } from '../time.ts';

const META = { id: 8, name: 'tool loops through worker SIGKILLs' };
/** Responses per job: TOOL_TURNS turns that call the function, then the answer. */
const TOOL_TURNS = 3;
const TURNS = TOOL_TURNS + 1;

const weather = { type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: false };

interface ExecutorCall {
  jobId: string;
  turn: number;
  webhookId: string;
}

/** A tenant's tool executor: records each call and answers every tool call with `out-<call_id>`. */
async function startExecutor(): Promise<{ url: string; calls: ExecutorCall[]; close(): Promise<void> }> {
  const calls: ExecutorCall[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { job_id: string; turn: number; tool_calls: { call_id: string }[] };
      calls.push({ jobId: body.job_id, turn: body.turn, webhookId: String(req.headers['webhook-id']) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ tool_outputs: body.tool_calls.map((c) => ({ call_id: c.call_id, output: `out-${c.call_id}` })) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/tools`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The client's own loop: answer each of its jobs waiting in requires_action; returns how many it answered. */
async function answerWaiting(d: Deployment): Promise<number> {
  const headers = { authorization: `Bearer ${d.apiKey}`, 'content-type': 'application/json' };
  const api = d.apiUrls[0]!;
  const list = (await (await fetch(`${api}/v1/jobs?status=requires_action&limit=100`, { headers })).json()) as {
    data: { id: string; tool_executor: { url: string } | null; required_action: { tool_calls: { call_id: string }[] } }[];
  };
  let answered = 0;
  // Its executor's jobs are the executor's to answer.
  for (const job of list.data.filter((j) => j.tool_executor === null)) {
    const res = await fetch(`${api}/v1/jobs/${job.id}/tool_outputs`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ tool_outputs: job.required_action.tool_calls.map((c) => ({ call_id: c.call_id, output: `out-${c.call_id}` })) }),
    });
    // 409: the job moved on meanwhile (its executor answered, or an earlier round did).
    if (res.ok) answered++;
    else await res.body?.cancel();
  }
  return answered;
}

export const toolLoopKills: Scenario = {
  ...META,
  async run(cluster, options) {
    const startedAt = Date.now();
    const jobs = options.jobs ?? (options.fast ? 40 : 150);
    const killWindowMs = options.fast ? 12_000 : 45_000;
    const executor = await startExecutor();
    try {
      return await withDeployment(cluster, options, { name: 'tool_loop_kills' }, async (d) => {
        const load = createLoad(d, 'loops');
        let clientAnswers = 0;
        let answering = true;
        const client = (async () => {
          while (answering) {
            clientAnswers += await answerWaiting(d).catch(() => 0);
            await sleep(200);
          }
        })();
        // Each turn runs 0.2–0.8 s: a job takes a few seconds, so kills catch loops at every step.
        const submitting = load.submit(jobs, {
          ratePerSecond: jobs / ((killWindowMs * 0.6) / 1000),
          body: (i) => {
            const body = jobBody(i, durationFor(i, 200, 800), { tools: [weather], ...(i % 2 === 0 ? { tool_executor: { url: executor.url } } : {}) });
            (body.metadata as Record<string, string>).sim_tool_turns = String(TOOL_TURNS);
            return body;
          },
        });
        const { killedAt, notKilledBySigkill } = await killWorkers(d, options, Date.now() + killWindowMs, { victim: 17, pause: 19 });
        await submitting;
        const kills = killedAt.length;
        return await conclude(META, d, startedAt, {
          load,
          faultEndedAt: killedAt.at(-1) ?? null,
          settleTimeoutMs: 90_000,
          checks: [
            faultCheck('workers were SIGKILLed', kills >= 2 && notKilledBySigkill.length === 0, `${kills} kills; ${notKilledBySigkill.join(', ') || 'each died of SIGKILL'}`),
          ],
          settled: async () => {
            answering = false;
            await client;
            const accepted = load.accepted();
            const creates = (await d.simRequestLog()).filter((r) => r.method === 'POST' && r.path === '/v1/responses' && r.job_id !== null);
            const midLoopKills = killedAt.filter((k) => {
              const before = new Set(creates.filter((c) => c.at_ms < k).map((c) => c.job_id));
              return creates.some((c) => c.at_ms > k && before.has(c.job_id));
            }).length;

            const { rows: jobRows } = await d.pool.query<{ id: string; turn: number; output_text: string | null; tool_executor_url: string | null }>(
              'select id, turn, output_text, tool_executor_url from jobs where id = any($1)',
              [accepted],
            );
            const { rows: turnRows } = await d.pool.query<{ job_id: string; turn: number; response_id: string; status: string; answered_by: string | null }>(
              'select job_id, turn, response_id, status, answered_by from job_turns where job_id = any($1) order by job_id, turn',
              [accepted],
            );
            const turnsOf = new Map<string, typeof turnRows>();
            for (const t of turnRows) turnsOf.set(t.job_id, [...(turnsOf.get(t.job_id) ?? []), t]);
            const wrongTurns = jobRows.filter((j) => {
              const turns = turnsOf.get(j.id) ?? [];
              const shape = turns.map((t) => `${t.turn}:${t.status}:${t.answered_by}`).join(',');
              const by = j.tool_executor_url ? 'tool_executor' : 'api';
              const expected = [1, 2, 3]
                .map((n) => `${n}:requires_action:${by}`)
                .concat(`${TURNS}:completed:null`)
                .join(',');
              return j.turn !== TURNS || shape !== expected;
            });
            const unquoted = jobRows.filter((j) => !/out-call_/.test(j.output_text ?? ''));
            // Each turn's create follows the previous turn's response.
            const unchained: string[] = [];
            for (const [jobId, turns] of turnsOf) {
              for (const [i, t] of turns.entries()) {
                if (i === 0) continue;
                const body = (await (await fetch(`${d.simUrl}/sim/requests/${t.response_id}`)).json()) as { previous_response_id?: string };
                if (body.previous_response_id !== turns[i - 1]!.response_id) unchained.push(`${jobId} turn ${t.turn}`);
              }
            }
            const createsByJob = new Map<string, number>();
            for (const c of creates) createsByJob.set(c.job_id!, (createsByJob.get(c.job_id!) ?? 0) + 1);
            const hits = killsDuringCreates(creates, killedAt);
            const extra = [...createsByJob].map(([job, n]) => [job, n - TURNS] as [string, number]).filter(([, n]) => n !== 0);
            const unexplained = extra.filter(([job, n]) => n < 0 || n > (hits.get(job) ?? 0));
            const duplicates = extra.reduce((sum, [, n]) => sum + Math.max(0, n), 0);
            const callsByTurn = new Map<string, ExecutorCall[]>();
            for (const c of executor.calls) callsByTurn.set(`${c.jobId}:${c.turn}`, [...(callsByTurn.get(`${c.jobId}:${c.turn}`) ?? []), c]);
            const repeatedCalls = [...callsByTurn.values()].filter((calls) => calls.length > 1);
            const unstableIds = repeatedCalls.filter((calls) => new Set(calls.map((c) => c.webhookId)).size > 1);
            const executorJobs = jobRows.filter((j) => j.tool_executor_url !== null).length;
            const show = ([job, n]: [string, number]) => `${job} ${n > 0 ? `${n} extra` : `${-n} missing`} create(s) with ${hits.get(job) ?? 0} kill(s) during its creates`;
            return {
              checks: [
                faultCheck('kills hit loops mid-way (a job with creates before and after the kill)', midLoopKills > 0, `${midLoopKills} of ${kills} kills`),
                check(
                  `every job ended at turn ${TURNS}, each turn on record (3 answered by its executor or its client, then completed)`,
                  wrongTurns.length === 0,
                  `${wrongTurns.length} jobs did not: ${firstFew(wrongTurns, (j) => `${j.id} at turn ${j.turn}: ${(turnsOf.get(j.id) ?? []).map((t) => `${t.turn}:${t.status}:${t.answered_by}`).join(',')}`)}`,
                ),
                check('every answer quotes its last turn’s tool output', unquoted.length === 0, `${unquoted.length} did not: ${firstFew(unquoted, (j) => j.id)}`),
                check(
                  'every turn created after the previous turn’s response (previous_response_id)',
                  unchained.length === 0,
                  `${unchained.length} not: ${firstFew(unchained, (s) => s)}`,
                ),
                check(
                  'a turn created twice only where a kill caught that job’s create in flight (one per kill)',
                  unexplained.length === 0,
                  `${duplicates} duplicate creates; ${unexplained.length} jobs unexplained: ${firstFew(unexplained, show)}`,
                ),
                check('an executor that saw a turn twice saw the same webhook-id', unstableIds.length === 0, `${unstableIds.length} turns with differing ids`),
              ],
              notes: [
                `${kills} workers SIGKILLed (every 2–4 s), ${midLoopKills} mid-loop; ${accepted.length} jobs × ${TURNS} turns (${executorJobs} with an executor, the rest answered by the client: ${clientAnswers} answers); ${duplicates} turns created twice (kills caught their create in flight); executor calls ${executor.calls.length} for ${callsByTurn.size} turns (${repeatedCalls.length} seen twice after a kill, same webhook-id)`,
              ],
            };
          },
        });
      });
    } finally {
      await executor.close();
    }
  },
};
