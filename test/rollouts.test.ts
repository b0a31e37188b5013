/**
 * Gradual rollouts (issue 18) end to end through plain HTTP against the simulator: live jobs that
 * name no version move to the candidate step by step while its metrics stay within the guard
 * (one rollout advances through every step and completes: the candidate becomes current), and a
 * candidate that fails is rolled back by itself (all traffic back to the baseline); every
 * decision is a prompt event with the figures it was taken on. Pause, resume and abort; a manual
 * traffic change and a second rollout are refused while one is active; bad definitions are 400s
 * naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from './harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ sim: { time_scale: 0.01 } });
});
afterAll(async () => {
  await stack?.stop();
});

const guard = { max_failure_rate_increase: 0.1, max_incomplete_rate_increase: 0.1, max_cost_ratio: 3 };

/** A prompt whose version 2 differs from version 1 by its model (and so by what the simulator does with it). */
async function promptWithTwoVersions(candidateModel: string): Promise<string> {
  const created = await stack.api('POST', '/v1/prompts', { name: 'support', template: { model: 'gpt-5', instructions: 'You answer support questions.', input: '{{question}}' } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const v2 = await stack.api('POST', `/v1/prompts/${created.body.id}/versions`, {
    template: { model: candidateModel, instructions: 'You answer support questions briefly.', input: '{{question}}' },
  });
  expect(v2.status).toBe(201);
  // Adding a version makes it current: the rollout starts from version 1.
  const back = await stack.api('POST', `/v1/prompts/${created.body.id}`, { current_version: 1 });
  expect(back.status).toBe(200);
  return created.body.id;
}

/** Live traffic: jobs naming the prompt but no version, until `stop` says so. */
async function traffic(promptId: string, metadata: Record<string, string>, stop: () => Promise<boolean>, timeoutMs = 45_000): Promise<string[]> {
  const ids: string[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!(await stop())) {
    if (Date.now() > deadline) throw new Error(`rollout still running after ${ids.length} jobs`);
    const batch = await Promise.all(
      Array.from({ length: 4 }, () =>
        stack.api('POST', '/v1/jobs', { prompt: { id: promptId, variables: { question: 'Where is my order?' } }, metadata: { sim_duration_ms: '20', ...metadata } }),
      ),
    );
    for (const res of batch) {
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      ids.push(res.body.id);
    }
    await new Promise((r) => setTimeout(r, 40));
  }
  return ids;
}

async function rollout(promptId: string): Promise<any> {
  return (await stack.api('GET', `/v1/prompts/${promptId}/rollout`)).body;
}

async function events(promptId: string): Promise<any[]> {
  const res = await stack.api('GET', `/v1/prompts/${promptId}/events?limit=100`);
  expect(res.status).toBe(200);
  return res.body.data;
}

describe('rollouts', () => {
  it('advances step by step while the candidate stays within the guard, and completes', async () => {
    const promptId = await promptWithTwoVersions('gpt-5');
    const started = await stack.api('POST', `/v1/prompts/${promptId}/rollout`, { candidate_version: 2, steps: [20, 50, 100], min_jobs_per_step: 6, guard });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    expect(started.body).toMatchObject({ object: 'prompt.rollout', status: 'running', candidate_version: 2, baseline_version: 1, step_index: 0, percent: 20 });
    expect((await stack.api('GET', `/v1/prompts/${promptId}`)).body.traffic).toEqual([
      { version: 1, weight: 80 },
      { version: 2, weight: 20 },
    ]);

    const jobs = await traffic(promptId, {}, async () => (await rollout(promptId)).status !== 'running');
    const done = await rollout(promptId);
    expect(done).toMatchObject({ status: 'completed', percent: 100, step_index: 2 });
    const prompt = (await stack.api('GET', `/v1/prompts/${promptId}`)).body;
    expect(prompt).toMatchObject({ current_version: 2, traffic: null });

    const log = await events(promptId);
    expect(log.map((e) => e.type)).toEqual(['started', 'advance', 'advance', 'complete']);
    expect(log.map((e) => e.traffic)).toEqual([
      [
        { version: 1, weight: 80 },
        { version: 2, weight: 20 },
      ],
      [
        { version: 1, weight: 50 },
        { version: 2, weight: 50 },
      ],
      [
        { version: 1, weight: 0 },
        { version: 2, weight: 100 },
      ],
      null,
    ]);
    // Every decision carries the figures it was taken on: enough candidate jobs, within the guard.
    for (const decision of log.slice(1)) {
      const f = decision.details.figures;
      expect(f.candidate.jobs).toBeGreaterThanOrEqual(6);
      expect(f.failureRateIncrease).toBeLessThanOrEqual(0.1);
      expect(f.costRatio).not.toBeNull();
    }
    // The last step gives the baseline no jobs: it is judged against the baseline's figures from the step before.
    expect(log[3].details.figures.comparedWith).toBe('reference');
    // The live jobs were split between the versions, the candidate's share growing with the steps.
    const versions = await Promise.all(jobs.map(async (id) => (await stack.api('GET', `/v1/jobs/${id}`)).body.prompt.version));
    expect(new Set(versions)).toEqual(new Set([1, 2]));
    const firstHalf = versions.slice(0, Math.floor(versions.length / 2));
    const secondHalf = versions.slice(Math.floor(versions.length / 2));
    const share = (vs: number[]) => vs.filter((v) => v === 2).length / vs.length;
    expect(share(secondHalf)).toBeGreaterThan(share(firstHalf));
  });

  it('rolls back by itself when the candidate fails more than the guard allows', async () => {
    const promptId = await promptWithTwoVersions('gpt-5-mini');
    const started = await stack.api('POST', `/v1/prompts/${promptId}/rollout`, { candidate_version: 2, steps: [50, 100], min_jobs_per_step: 5, guard });
    expect(started.status).toBe(201);
    // The simulator fails every response of the candidate's model.
    await traffic(promptId, { sim_outcomes: 'gpt-5-mini=failed' }, async () => (await rollout(promptId)).status !== 'running');
    const done = await rollout(promptId);
    expect(done).toMatchObject({ status: 'rolled_back', percent: 0 });
    expect((await stack.api('GET', `/v1/prompts/${promptId}`)).body).toMatchObject({ current_version: 1, traffic: null });
    const log = await events(promptId);
    expect(log.map((e) => e.type)).toEqual(['started', 'rollback']);
    const [breach] = log[1].details.breaches;
    expect(breach).toMatchObject({ guard: 'max_failure_rate_increase', limit: 0.1 });
    expect(breach.candidate).toBeGreaterThan(0.1);
    expect(log[1].details.figures.candidate.failed).toBeGreaterThan(0);
    // After the rollback, jobs that name no version run the baseline again.
    const after = await stack.api('POST', '/v1/jobs', { prompt: { id: promptId, variables: { question: 'Hi?' } } });
    expect(after.body.prompt.version).toBe(1);
  });

  it('pauses, resumes and aborts; refuses manual traffic changes and a second rollout meanwhile', async () => {
    const promptId = await promptWithTwoVersions('gpt-5');
    const started = await stack.api('POST', `/v1/prompts/${promptId}/rollout`, { candidate_version: 2, steps: [10, 100], min_jobs_per_step: 1000, guard });
    expect(started.status).toBe(201);
    const second = await stack.api('POST', `/v1/prompts/${promptId}/rollout`, { candidate_version: 2, steps: [10, 100], min_jobs_per_step: 5, guard });
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('rollout_in_progress');
    const manual = await stack.api('POST', `/v1/prompts/${promptId}`, { traffic: [{ version: 2, weight: 1 }] });
    expect(manual.status).toBe(409);
    expect(manual.body.error.code).toBe('rollout_in_progress');
    // Renaming is not routing: still allowed.
    expect((await stack.api('POST', `/v1/prompts/${promptId}`, { name: 'renamed' })).status).toBe(200);

    const paused = await stack.api('POST', `/v1/prompts/${promptId}/rollout/pause`);
    expect(paused.body).toMatchObject({ status: 'paused', percent: 10 });
    expect((await stack.api('POST', `/v1/prompts/${promptId}/rollout/resume`)).body.status).toBe('running');
    const resumeAgain = await stack.api('POST', `/v1/prompts/${promptId}/rollout/resume`);
    expect(resumeAgain.status).toBe(409);
    expect(resumeAgain.body.error.code).toBe('rollout_not_paused');
    const aborted = await stack.api('POST', `/v1/prompts/${promptId}/rollout/abort`);
    expect(aborted.body).toMatchObject({ status: 'aborted', percent: 0 });
    expect((await stack.api('GET', `/v1/prompts/${promptId}`)).body).toMatchObject({ current_version: 1, traffic: null });
    expect((await events(promptId)).map((e) => e.type)).toEqual(['started', 'paused', 'resumed', 'aborted']);
    // Once it ended, the prompt's routing is the tenant's again.
    expect((await stack.api('POST', `/v1/prompts/${promptId}`, { traffic: [{ version: 2, weight: 1 }] })).status).toBe(200);
  });

  it('refuses bad definitions with a 400 naming the field', async () => {
    const promptId = await promptWithTwoVersions('gpt-5');
    const base = { candidate_version: 2, steps: [10, 50, 100], min_jobs_per_step: 10, guard };
    const cases: [Record<string, unknown>, number, string, string][] = [
      [{ ...base, steps: [10, 50] }, 400, 'steps[1]', 'invalid_value'],
      [{ ...base, steps: [50, 10, 100] }, 400, 'steps[1]', 'invalid_value'],
      [{ ...base, steps: [100] }, 400, 'steps', 'invalid_value'],
      [{ ...base, candidate_version: 1 }, 400, 'candidate_version', 'rollout_candidate_is_current'],
      [{ ...base, candidate_version: 7 }, 400, 'candidate_version', 'prompt_version_not_found'],
      [{ ...base, guard: { ...guard, max_failure_rate_increase: 5 } }, 400, 'guard.max_failure_rate_increase', 'invalid_value'],
      [{ ...base, min_jobs_per_step: 0 }, 400, 'min_jobs_per_step', 'invalid_value'],
      [{ ...base, guard: { max_cost_ratio: 2 } }, 400, 'guard.max_failure_rate_increase', 'missing_required_parameter'],
    ];
    for (const [body, status, param, code] of cases) {
      const res = await stack.api('POST', `/v1/prompts/${promptId}/rollout`, body);
      expect({ status: res.status, param: res.body.error?.param, code: res.body.error?.code }, JSON.stringify(res.body)).toEqual({ status, param, code });
    }
    expect((await stack.api('GET', `/v1/prompts/${promptId}/rollout`)).status).toBe(404);
    expect((await stack.api('POST', `/v1/prompts/${promptId}/rollout/pause`)).status).toBe(404);
    expect((await stack.api('GET', `/v1/prompts/${promptId}/events?limit=0`)).status).toBe(400);
  });
});
