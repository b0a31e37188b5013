import { describe, expect, it } from 'vitest';
import { type JobStatus, type PipelineDefinition, type RunView, type StepJobView, checkDefinition, planRun, runTransition, stepOrder } from '../src/index.ts';

const plannerExecutor = (concurrency = 2, onFailure?: 'continue'): PipelineDefinition => ({
  steps: [
    {
      name: 'plan',
      model: 'o3',
      input: 'Plan: {{input.task}}',
      text: { format: { type: 'json_schema', name: 'p', schema: { type: 'object' } } },
      ...(onFailure ? { on_failure: onFailure } : {}),
    },
    { name: 'execute', model: 'gpt-4.1', for_each: '{{steps.plan.output.steps}}', concurrency, instructions: 'Do it for {{input.task}}', input: '{{item}}' },
    { name: 'compile', model: 'gpt-4.1', input: 'Results: {{steps.execute.output_text}}' },
  ],
  output: '{{steps.compile.output_text}}',
});

const job = (step: string, item: number, status: JobStatus, outputText: string | null = null): StepJobView => ({
  step,
  item,
  jobId: `job_${step}_${item}`,
  status,
  outputText,
  error: null,
});
const view = (jobs: StepJobView[], extra: Partial<RunView> = {}): RunView => ({ status: 'running', inputs: { task: 'Oslo' }, cancelRequested: false, jobs, ...extra });
const plan = (steps: string[]) => job('plan', 0, 'completed', JSON.stringify({ steps }));

describe('planRun', () => {
  it('starts a pending run with its first step, the text rendered', () => {
    const p = planRun(plannerExecutor(), view([], { status: 'pending' }));
    expect(p.status).toBe('running');
    expect(p.events).toContainEqual({ type: 'started' });
    expect(p.create).toEqual([{ step: 'plan', item: 0, body: expect.objectContaining({ model: 'o3', input: 'Plan: Oslo' }) }]);
    expect(p.steps).toMatchObject({ plan: { status: 'running' }, execute: { status: 'waiting' }, compile: { status: 'waiting' } });
  });

  it('fans out over the plan under the cap, refills as elements finish, then compiles every result', () => {
    const def = plannerExecutor(2);
    const first = planRun(def, view([plan(['a', 'b', 'c'])]));
    expect(first.create.map((c) => [c.step, c.item, c.body.input])).toEqual([
      ['execute', 0, 'a'],
      ['execute', 1, 'b'],
    ]);
    expect(first.create[0]!.body.instructions).toBe('Do it for Oslo');
    // Asked again with nothing changed: the same plan (the jobs not created yet are asked for again).
    expect(planRun(def, view([plan(['a', 'b', 'c'])])).create).toEqual(first.create);
    const refill = planRun(def, view([plan(['a', 'b', 'c']), job('execute', 0, 'completed', 'A'), job('execute', 1, 'in_progress')]));
    expect(refill.create.map((c) => c.item)).toEqual([2]);
    expect(refill.steps.execute).toMatchObject({ status: 'running', items: 3, finished: 1 });
    const compile = planRun(def, view([plan(['a', 'b', 'c']), job('execute', 0, 'completed', 'A'), job('execute', 1, 'completed', 'B'), job('execute', 2, 'completed', 'C')]));
    expect(compile.create).toEqual([{ step: 'compile', item: 0, body: expect.objectContaining({ input: 'Results: ["A","B","C"]' }) }]);
    const done = planRun(def, view([plan(['a']), job('execute', 0, 'completed', 'A'), job('compile', 0, 'completed', 'Final')]));
    expect(done).toMatchObject({ status: 'completed', output: 'Final', create: [], cancelJobs: [] });
    expect(done.events).toContainEqual({ type: 'completed' });
  });

  it('completes an empty fan-out with an empty list', () => {
    const p = planRun(plannerExecutor(), view([plan([])]));
    expect(p.steps.execute).toMatchObject({ status: 'completed', items: 0 });
    expect(p.create[0]).toMatchObject({ step: 'compile', body: { input: 'Results: []' } });
  });

  it('fails the run at a failing element, creates nothing more, and cancels what runs', () => {
    const failed = { ...job('execute', 1, 'failed'), error: { code: 'server_error', message: 'boom' } };
    const p = planRun(plannerExecutor(), view([plan(['a', 'b', 'c']), job('execute', 0, 'in_progress'), failed]));
    expect(p.status).toBe('failed');
    expect(p.error).toEqual({ code: 'step_failed', message: 'step execute (item 1) failed: boom' });
    expect(p.create).toEqual([]);
    expect(p.cancelJobs).toEqual(['job_execute_0']);
    expect(p.steps.compile?.status).toBe('skipped');
  });

  it('goes on past a step with on_failure continue (its output reads as empty)', () => {
    const def: PipelineDefinition = {
      steps: [
        { name: 'a', model: 'o3', input: 'x', on_failure: 'continue' },
        { name: 'b', model: 'o3', input: 'after [{{steps.a.output_text}}]' },
      ],
    };
    const p = planRun(def, view([job('a', 0, 'failed')]));
    expect(p.status).toBe('running');
    expect(p.steps.a?.status).toBe('failed');
    expect(p.create).toEqual([{ step: 'b', item: 0, body: { model: 'o3', input: 'after []' } }]);
  });

  it('fails a step whose for_each is not an array, or whose reference names nothing', () => {
    expect(planRun(plannerExecutor(), view([job('plan', 0, 'completed', '{"steps": 3}')])).error).toMatchObject({ code: 'template_error' });
    expect(planRun(plannerExecutor(), view([job('plan', 0, 'completed', 'not json')])).error).toMatchObject({ code: 'template_error' });
  });

  it('cancels: nothing new, running jobs cancelled, unfinished steps cancelled or skipped', () => {
    const p = planRun(plannerExecutor(), view([plan(['a', 'b']), job('execute', 0, 'in_progress')], { cancelRequested: true }));
    expect(p).toMatchObject({ status: 'cancelled', create: [], cancelJobs: ['job_execute_0'] });
    expect(p.steps).toMatchObject({ plan: { status: 'completed' }, execute: { status: 'cancelled' }, compile: { status: 'skipped' } });
    // A finished run plans nothing, and cancels leftovers.
    expect(planRun(plannerExecutor(), view([job('plan', 0, 'in_progress')], { status: 'failed' }))).toMatchObject({ status: 'failed', create: [], cancelJobs: ['job_plan_0'] });
  });

  it('tells only what changed since the recorded steps', () => {
    const def = plannerExecutor();
    const before = planRun(def, view([job('plan', 0, 'in_progress')]));
    const after = planRun(def, view([plan(['a'])], { previousSteps: before.steps }));
    expect(after.events).toEqual([{ type: 'step_completed', step: 'plan' }]);
    expect(planRun(def, view([plan(['a'])], { previousSteps: after.steps })).events).toEqual([]);
  });

  it('plans a 1,000-element fan-out quickly', () => {
    const steps = Array.from({ length: 1000 }, (_, i) => `s${i}`);
    const jobs = [plan(steps), ...steps.slice(0, 900).map((_, i) => job('execute', i, 'completed', `r${i}`))];
    const started = performance.now();
    const p = planRun(plannerExecutor(100), view(jobs));
    const ms = performance.now() - started;
    expect(p.create).toHaveLength(100);
    console.log(`1,000-element fan-out planned in ${ms.toFixed(1)} ms`);
  });
});

describe('runTransition', () => {
  it('moves pending → running → completed; cancels; terminal is sticky', () => {
    expect(runTransition({ status: 'pending' }, { type: 'started' })).toEqual({ ok: true, status: 'running', changed: true });
    expect(runTransition({ status: 'running' }, { type: 'completed' })).toEqual({ ok: true, status: 'completed', changed: true });
    expect(runTransition({ status: 'running' }, { type: 'cancel_requested' })).toEqual({ ok: true, status: 'cancelled', changed: true });
    expect(runTransition({ status: 'cancelled' }, { type: 'cancel_requested' })).toEqual({ ok: true, status: 'cancelled', changed: false });
    expect(runTransition({ status: 'completed' }, { type: 'cancel_requested' })).toMatchObject({ ok: false, error: { code: 'run_terminal' } });
  });
});

describe('checkDefinition', () => {
  it('accepts the planner → executor and orders its steps', () => {
    expect(checkDefinition(plannerExecutor())).toBeNull();
    expect(
      stepOrder({
        steps: [
          { name: 'b', model: 'x', input: '{{steps.a.output_text}}' },
          { name: 'a', model: 'x', input: 'y' },
        ],
      }),
    ).toEqual(['a', 'b']);
  });

  it('names what is wrong', () => {
    const cycle = checkDefinition({
      steps: [
        { name: 'a', model: 'x', input: '{{steps.b.output_text}}' },
        { name: 'b', model: 'x', input: 'y', depends_on: ['a'] },
      ],
    });
    expect(cycle).toMatchObject({ code: 'pipeline_cycle', param: 'steps[0].depends_on' });
    expect(cycle!.message).toContain('a -> b -> a');
    expect(checkDefinition({ steps: [{ name: 'a', model: 'x', input: '{{steps.nope.output_text}}' }] })).toMatchObject({ code: 'unknown_reference', param: 'steps[0].input' });
    expect(checkDefinition({ steps: [{ name: 'a', model: 'x', input: '{{item}}' }] })).toMatchObject({ code: 'invalid_reference', param: 'steps[0].input' });
    expect(
      checkDefinition({
        steps: [
          { name: 'a', model: 'x', input: 'y' },
          { name: 'a', model: 'x', input: 'y' },
        ],
      }),
    ).toMatchObject({ code: 'duplicate_step', param: 'steps[1].name' });
    expect(checkDefinition({ steps: [{ name: 'Bad', model: 'x', input: 'y' }] })).toMatchObject({ param: 'steps[0].name' });
    expect(checkDefinition({ steps: [{ name: 'a', input: 'y' }] })).toMatchObject({ param: 'steps[0].model' });
    expect(checkDefinition({ steps: [{ name: 'a', model: 'x', input: 'y', depends_on: ['z'] }] })).toMatchObject({ code: 'unknown_step', param: 'steps[0].depends_on[0]' });
    expect(checkDefinition({ steps: [{ name: 'a', model: 'x', input: 'y', for_each: 'not a reference' }] })).toMatchObject({ param: 'steps[0].for_each' });
    expect(checkDefinition({ steps: [{ name: 'a', model: 'x', input: 'y' }], output: '{{steps.b.output_text}}' })).toMatchObject({ code: 'unknown_reference', param: 'output' });
    expect(checkDefinition({ steps: [{ name: 'a', model: 'x', input: '{{bogus.x}}' }] })).toMatchObject({ code: 'invalid_reference' });
  });
});
