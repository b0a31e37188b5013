/**
 * Pipelines (issue 16) end to end, through plain HTTP against the simulator: the guide's
 * planner → executor definition (the README's) runs as is: the plan's structured output fans out
 * into one executor job per step, with a concurrency cap, and the compile step sees every result;
 * a failing step fails the run (nothing after it starts) unless it says `on_failure: "continue"`;
 * a cancelled run cancels its running jobs; the run's events come as a list, as SSE and as a
 * signed `run.completed` callback; bad definitions and inputs are 400s naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { createTenant } from '@longhaul/db';
import { type Stack, isTerminalJob, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';
import { readSse } from './sse.ts';

let stack: Stack;
let receiver: Receiver;
beforeAll(async () => {
  receiver = await startReceiver();
  stack = await startStack({ sim: { time_scale: 0.01 } });
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
});

const planSchema = {
  type: 'object',
  properties: { steps: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 8 } },
  required: ['steps'],
  additionalProperties: false,
};

/** The README's planner → executor pipeline, with the simulator's directives in each step's metadata. */
function plannerExecutor(items: number, extra: { concurrency?: number; planMeta?: Record<string, string>; executeMeta?: Record<string, string>; onFailure?: 'continue' } = {}) {
  return {
    steps: [
      {
        name: 'plan',
        model: 'o3',
        reasoning: { effort: 'high' },
        instructions: 'Break the task into concrete steps.',
        input: '{{input.task}}',
        text: { format: { type: 'json_schema', name: 'plan', schema: planSchema, strict: true } },
        metadata: { sim_array_items: String(items), sim_duration_ms: '100', ...extra.planMeta },
        ...(extra.onFailure ? { on_failure: extra.onFailure } : {}),
      },
      {
        name: 'execute',
        model: 'gpt-4.1',
        for_each: '{{steps.plan.output.steps}}',
        concurrency: extra.concurrency ?? 4,
        instructions: 'Carry out this step of the plan for the task: {{input.task}}',
        input: '{{item}}',
        metadata: { sim_duration_ms: '100', ...extra.executeMeta },
      },
      {
        name: 'compile',
        model: 'gpt-4.1',
        instructions: 'Compile the results into a final answer.',
        input: 'Task: {{input.task}}\nResults: {{steps.execute.output_text}}',
        metadata: { sim_duration_ms: '50' },
      },
    ],
    output: '{{steps.compile.output_text}}',
  };
}

/** The same pipeline without the plan's structured output: the executor fans out over an input list. */
function overInputs(extra: Parameters<typeof plannerExecutor>[1] = {}) {
  const definition = plannerExecutor(1, { concurrency: 3, ...extra });
  const execute = definition.steps[1] as Record<string, unknown>;
  execute.for_each = '{{input.items}}';
  execute.depends_on = ['plan'];
  return definition;
}

async function definePipeline(definition: unknown, name = 'planner-executor'): Promise<string> {
  const res = await stack.api('POST', '/v1/pipelines', { name, definition });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function startRun(pipelineId: string, body: Record<string, unknown>): Promise<any> {
  const res = await stack.api('POST', `/v1/pipelines/${pipelineId}/runs`, body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

async function waitForRun(runId: string, timeoutMs = 30_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = (await stack.api('GET', `/v1/runs/${runId}`)).body;
    if (['completed', 'failed', 'cancelled'].includes(run.status)) return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} still ${run.status}: ${JSON.stringify(run.steps)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const job = async (id: string) => (await stack.api('GET', `/v1/jobs/${id}`)).body;

describe('pipelines', () => {
  it('runs the planner → executor example: fan-out of 5 under a cap of 2, compiled from every result', async () => {
    const pipelineId = await definePipeline(plannerExecutor(5, { concurrency: 2, executeMeta: { sim_duration_ms: '20000' } }));
    const got = await stack.api('GET', `/v1/pipelines/${pipelineId}`);
    expect(got.body).toMatchObject({ object: 'pipeline', latest_version: 1, definition: { steps: [{ name: 'plan' }, { name: 'execute' }, { name: 'compile' }] } });

    const created = await startRun(pipelineId, { inputs: { task: 'Plan a week in Oslo' }, callback_url: receiver.url });
    expect(created).toMatchObject({ object: 'pipeline.run', status: 'pending', pipeline_version: 1, inputs: { task: 'Plan a week in Oslo' } });
    const run = await waitForRun(created.id);
    expect(run.status, JSON.stringify(run)).toBe('completed');
    expect(run.steps.plan).toMatchObject({ status: 'completed', job_ids: [expect.stringMatching(/^job_/)] });
    expect(run.steps.execute).toMatchObject({ status: 'completed', items: 5, finished: 5 });
    expect(run.steps.execute.job_ids).toHaveLength(5);
    expect(run.steps.compile.job_ids).toHaveLength(1);

    // Each executor job got its own element of the plan's structured output, in order.
    const plan = await job(run.steps.plan.job_ids[0]);
    const steps: string[] = JSON.parse(plan.output_text).steps;
    expect(steps).toHaveLength(5);
    const executes = await Promise.all(run.steps.execute.job_ids.map(job));
    const requests = await Promise.all(executes.map((j: any) => stack.simApi('GET', `/sim/requests/${j.response_id}`)));
    expect(requests.map((r: any) => r.input)).toEqual(steps);
    expect(requests[0].instructions).toBe('Carry out this step of the plan for the task: Plan a week in Oslo');
    // The cap: never more than 2 executor responses at the provider at once (the simulator's clock).
    const timings = await Promise.all(executes.map((j: any) => stack.simApi('GET', `/sim/responses/${j.response_id}/timing`)));
    let most = 0;
    for (const t of timings) {
      const overlapping = timings.filter((o: any) => o.created_at_ms < t.terminal_at_ms && o.terminal_at_ms > t.created_at_ms);
      most = Math.max(most, overlapping.length);
    }
    // Two at once (the cap), never more: each runs 200 ms, so five take three rounds.
    expect(most).toBe(2);
    // The compile step saw every result; the run's output is its answer.
    const compile = await job(run.steps.compile.job_ids[0]);
    const compileRequest = await stack.simApi('GET', `/sim/requests/${compile.response_id}`);
    for (const e of executes) expect(compileRequest.input).toContain(e.output_text);
    expect(run.output).toBe(compile.output_text);

    // Its events, as a list and as SSE, end with run.completed; the callback is signed.
    const events = (await stack.api('GET', `/v1/runs/${run.id}/events`)).body.data;
    expect(events[0]).toMatchObject({ type: 'run.pending' });
    expect(events.at(-1)).toMatchObject({ type: 'run.completed' });
    expect(events.map((e: any) => e.type)).toContain('run.running');
    const sse = await readSse(`${stack.apiUrl}/v1/runs/${run.id}/stream`, { headers: { authorization: `Bearer ${stack.apiKey}` } });
    expect(sse.closedByServer).toBe(true);
    expect(sse.events.map((e) => e.event)).toEqual(events.map((e: any) => e.type));
    const resumed = await readSse(`${stack.apiUrl}/v1/runs/${run.id}/stream`, { headers: { authorization: `Bearer ${stack.apiKey}`, 'last-event-id': String(events[1].id) } });
    expect(resumed.events.map((e) => Number(e.id))).toEqual(events.slice(2).map((e: any) => e.id));

    await expect.poll(() => receiver.received.find((r) => JSON.parse(r.body).type === 'run.completed'), { timeout: 10_000 }).toBeTruthy();
    const delivered = receiver.received.find((r) => JSON.parse(r.body).type === 'run.completed')!;
    const secret = (await stack.api('GET', '/v1/callback-secret')).body.secret;
    const verified = new Webhook(secret).verify(delivered.body, delivered.headers as Record<string, string>) as any;
    expect(verified.data).toMatchObject({ id: run.id, status: 'completed', output: run.output });

    // Listed by pipeline.
    const listed = await stack.api('GET', `/v1/runs?pipeline=${pipelineId}`);
    expect(listed.body.data.map((r: any) => r.id)).toEqual([run.id]);
  });

  it('fails the run at a failing step and starts nothing after it; with on_failure continue it goes on', async () => {
    const failing = await definePipeline(overInputs({ executeMeta: { sim_outcome: 'failed' } }), 'failing');
    const failed = await waitForRun((await startRun(failing, { inputs: { task: 'x', items: ['a', 'b', 'c'] } })).id);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'step_failed' } });
    expect(failed.error.message).toContain('execute');
    expect(failed.steps.compile.job_ids).toEqual([]);

    const goesOn = await definePipeline(overInputs({ planMeta: { sim_outcome: 'failed' }, onFailure: 'continue' }), 'lenient');
    const done = await waitForRun((await startRun(goesOn, { inputs: { task: 'y', items: ['a', 'b'] } })).id);
    expect(done.status, JSON.stringify(done)).toBe('completed');
    expect(done.steps.plan.status).toBe('failed');
    expect(done.steps.execute).toMatchObject({ status: 'completed', items: 2 });
  });

  it('cancels a run and its running jobs', async () => {
    const slow = await definePipeline(overInputs({ concurrency: 3, executeMeta: { sim_duration_ms: '6000000' } }), 'slow');
    const created = await startRun(slow, { inputs: { task: 'z', items: ['a', 'b', 'c'] } });
    const deadline = Date.now() + 20_000;
    let run: any;
    do {
      run = (await stack.api('GET', `/v1/runs/${created.id}`)).body;
      await new Promise((r) => setTimeout(r, 50));
    } while ((run.steps.execute?.job_ids.length ?? 0) < 3 && Date.now() < deadline);
    expect(run.steps.execute.job_ids, JSON.stringify(run)).toHaveLength(3);
    await stack.waitForAll(run.steps.execute.job_ids, (j) => j.status === 'in_progress' || j.status === 'queued');
    const cancelled = await stack.api('POST', `/v1/runs/${created.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    const jobs = await stack.waitForAll(run.steps.execute.job_ids, isTerminalJob);
    expect(jobs.map((j) => j.status)).toEqual(['cancelled', 'cancelled', 'cancelled']);
    const final = await waitForRun(created.id);
    expect(final.steps.compile.job_ids).toEqual([]);
    expect((await stack.api('POST', `/v1/runs/${created.id}/cancel`)).status).toBe(200);
  });

  it('refuses bad definitions and inputs with 400s naming the field, and other tenants with 404s', async () => {
    const cycle = {
      steps: [
        { name: 'a', model: 'o3', input: '{{steps.b.output_text}}' },
        { name: 'b', model: 'o3', input: 'x', depends_on: ['a'] },
      ],
    };
    const res = await stack.api('POST', '/v1/pipelines', { name: 'bad', definition: cycle });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'pipeline_cycle' });
    expect(res.body.error.param).toMatch(/^definition\.steps\[\d\]/);
    const unknown = await stack.api('POST', '/v1/pipelines', { name: 'bad', definition: { steps: [{ name: 'a', model: 'o3', input: '{{steps.nope.output_text}}' }] } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: 'unknown_reference', param: 'definition.steps[0].input' });
    const shape = await stack.api('POST', '/v1/pipelines', { name: 'bad', definition: { steps: [{ name: 'a', model: 'o3', input: 'x', temperature: 3 }] } });
    expect(shape.status).toBe(400);
    expect(shape.body.error.param).toContain('definition.steps[0]');
    expect((await stack.api('POST', '/v1/pipelines', { name: 'bad', definition: { steps: [] } })).status).toBe(400);

    const pipelineId = await definePipeline(plannerExecutor(2), 'ok');
    const missing = await stack.api('POST', `/v1/pipelines/${pipelineId}/runs`, { inputs: {} });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({ code: 'missing_input', param: 'inputs.task' });
    expect((await stack.api('POST', `/v1/pipelines/${pipelineId}/runs`, { inputs: { task: 'x' }, version: 9 })).status).toBe(400);
    expect((await stack.api('GET', '/v1/runs/run_doesnotexist00')).status).toBe(404);

    const { apiKey: key } = await createTenant(stack.db.db, 'other');
    expect((await stack.api('GET', `/v1/pipelines/${pipelineId}`, undefined, { authorization: `Bearer ${key}` })).status).toBe(404);
    expect((await stack.api('POST', `/v1/pipelines/${pipelineId}/runs`, { inputs: { task: 'x' } }, { authorization: `Bearer ${key}` })).status).toBe(404);
  });
});
