import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function submit(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await stack.api('POST', '/v1/jobs', body, headers);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

describe('background job pipeline', () => {
  it('runs a job to completion with output text and usage', async () => {
    const job = await submit(jobBody());
    expect(job).toMatchObject({ object: 'job', status: 'pending', model: 'o3', response_id: null, metadata: { sim_duration_ms: '200' } });
    expect(job.id).toMatch(/^job_/);

    const done = await stack.waitForJob(job.id, isTerminalJob);
    expect(done.status).toBe('completed');
    expect(done.response_id).toMatch(/^resp_/);
    expect(done.output_text.length).toBeGreaterThan(20);
    expect(done.usage.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
    expect(done.usage.input_tokens_details).toHaveProperty('cached_tokens');
    expect(done.finished_at).toBeGreaterThanOrEqual(done.created_at);

    const events = await stack.api('GET', `/v1/jobs/${job.id}/events`);
    const path = events.body.data.map((e: any) => `${e.from ?? '∅'}→${e.to}@${e.source}`);
    expect(path[0]).toBe('∅→pending@api');
    expect(path[1]).toMatch(/^pending→(queued|in_progress)@submit$/);
    expect(path.at(-1)).toMatch(/→completed@poll$/);
    expect(events.body.data.filter((e: any) => e.to === 'completed')).toHaveLength(1);
  });

  it('completes 50 jobs of mixed durations, one provider create each', async () => {
    const durations = Array.from({ length: 50 }, (_, i) => (i % 5) * 2000); // 0–8 simulated s
    const jobs = await Promise.all(durations.map((d, i) => submit(jobBody({ input: `Story number ${i} about otters.` }, d))));
    const done = await stack.waitForAll(
      jobs.map((j) => j.id),
      isTerminalJob,
      45_000,
    );
    for (const job of done) {
      expect(job.status).toBe('completed');
      expect(job.output_text).toBeTruthy();
      expect(job.usage.total_tokens).toBeGreaterThan(0);
    }
    const stats = await stack.simApi('GET', '/sim/stats');
    for (const job of jobs) expect(stats.creates_by_job[job.id]).toBe(1);
  });

  it('records a failed response with the provider error', async () => {
    const job = await submit(jobBody({ metadata: { sim_duration_ms: '100', sim_outcome: 'failed' } }));
    const done = await stack.waitForJob(job.id, isTerminalJob);
    expect(done.status).toBe('failed');
    expect(done.error).toMatchObject({ code: 'server_error' });
    expect(done.error.message).toBeTruthy();
  });

  it('records an incomplete response when max_output_tokens is too small', async () => {
    const job = await submit(jobBody({ max_output_tokens: 16 }));
    const done = await stack.waitForJob(job.id, isTerminalJob);
    expect(done.status).toBe('incomplete');
    expect(done.incomplete_details).toEqual({ reason: 'max_output_tokens' });
  });

  it('fails a job the provider rejects, with the provider error', async () => {
    const job = await submit(jobBody({ previous_response_id: 'resp_does_not_exist' }));
    const done = await stack.waitForJob(job.id, isTerminalJob);
    expect(done.status).toBe('failed');
    expect(done.error.code).toBe('previous_response_not_found');
    expect(done.response_id).toBeNull();
  });

  it('cancels an in-flight job at the provider', async () => {
    const job = await submit(jobBody({}, 600_000));
    await stack.waitForJob(job.id, (j) => j.status === 'queued' || j.status === 'in_progress');
    const cancel = await stack.api('POST', `/v1/jobs/${job.id}/cancel`);
    expect(cancel.status).toBe(200);
    expect(cancel.body.status).toBe('cancelling');
    const done = await stack.waitForJob(job.id, isTerminalJob);
    expect(done.status).toBe('cancelled');
    const simView = await stack.simApi('GET', '/sim/stats');
    expect(simView.by_response[done.response_id].cancels).toBeGreaterThanOrEqual(1);

    const again = await stack.api('POST', `/v1/jobs/${job.id}/cancel`);
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('cancelled');
  });

  it('refuses to cancel a finished job with 409', async () => {
    const job = await submit(jobBody({}, 0));
    await stack.waitForJob(job.id, (j) => j.status === 'completed');
    const res = await stack.api('POST', `/v1/jobs/${job.id}/cancel`);
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ type: 'conflict_error', code: 'job_already_finished' });
  });
});

describe('cancellation without a running worker', () => {
  let quiet: Stack;
  beforeAll(async () => {
    quiet = await startStack({ startWorker: false });
  });
  afterAll(async () => {
    await quiet?.stop();
  });

  it('cancels a pending job locally, never reaching the provider', async () => {
    const { body: job } = await quiet.api('POST', '/v1/jobs', jobBody());
    const res = await quiet.api('POST', `/v1/jobs/${job.id}/cancel`);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('cancelled');
    // One submission at a time, in order: once a job sent after the cancelled one has reached the
    // provider and no submit work is left, the worker has handled the cancelled job's turn.
    const worker = quiet.startWorker({ submitConcurrency: 1 });
    const { body: later } = await quiet.api('POST', '/v1/jobs', jobBody({}, 0));
    await quiet.waitForJob(later.id, isTerminalJob);
    const submitQueue = quiet.queues.get('submit');
    for (;;) {
      const counts = await submitQueue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      if (Object.values(counts).every((n) => n === 0)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await worker.close();
    const stats = await quiet.simApi('GET', '/sim/stats');
    expect(stats.creates_by_job[later.id]).toBe(1);
    expect(stats.creates_by_job[job.id] ?? 0).toBe(0);
    expect((await quiet.api('GET', `/v1/jobs/${job.id}`)).body.status).toBe('cancelled');
  });

  it('lets a completion that won the race with a cancel stand', async () => {
    // Submit, then stop the worker so nobody polls; the response completes at the provider
    // before the cancel arrives. The provider refuses the cancel and its final state wins.
    const worker = quiet.startWorker({ poll: { initialMs: 60_000, maxMs: 60_000 } });
    const { body: job } = await quiet.api('POST', '/v1/jobs', jobBody({}, 100));
    const queued = await quiet.waitForJob(job.id, (j) => j.response_id !== null);
    // 100 simulated ms × 0.01 scale: the provider finishes at once; nobody polls it for this job.
    const providerView = async () => fetch(`${quiet.simUrl}/v1/responses/${queued.response_id}`, { headers: { authorization: 'Bearer sk-test' } }).then((r) => r.json());
    const deadline = Date.now() + 10_000;
    while ((await providerView()).status !== 'completed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect((await providerView()).status).toBe('completed');
    expect((await quiet.api('GET', `/v1/jobs/${job.id}`)).body.status).not.toBe('completed');

    const cancel = await quiet.api('POST', `/v1/jobs/${job.id}/cancel`);
    expect(cancel.body.status).toBe('cancelling');
    const done = await quiet.waitForJob(job.id, isTerminalJob);
    expect(done.status).toBe('completed');
    expect(done.output_text).toBeTruthy();
    await worker.close();
  });
});
