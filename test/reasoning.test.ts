/**
 * Reasoning settings through the whole pipeline: effort levels, summaries stored apart from the
 * answer, reasoning tokens on the job, and max_output_tokens ending a job `incomplete`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function run(body: Record<string, unknown>) {
  const res = await stack.api('POST', '/v1/jobs', body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return stack.waitForJob(res.body.id, isTerminalJob);
}

describe('reasoning', () => {
  it('stores the reasoning summary apart from the answer and exposes reasoning tokens', async () => {
    const done = await run(jobBody({ model: 'gpt-5', reasoning: { effort: 'high', summary: 'detailed' } }, 50));
    expect(done.status).toBe('completed');
    expect(done.reasoning_summary.length).toBeGreaterThan(0);
    for (const part of done.reasoning_summary) expect(part).toEqual({ type: 'summary_text', text: expect.any(String) });
    // The summary is not part of the answer text.
    expect(done.output_text).not.toContain(done.reasoning_summary[0].text);
    expect(done.reasoning_tokens).toBe(done.usage.output_tokens_details.reasoning_tokens);
    expect(done.reasoning_tokens).toBeGreaterThan(0);
    const sent = await stack.simApi('GET', `/sim/requests/${done.response_id}`);
    expect(sent.reasoning).toEqual({ effort: 'high', summary: 'detailed' });
  });

  it('has no summary unless one is asked for', async () => {
    const done = await run(jobBody({ model: 'gpt-5', reasoning: { effort: 'low' } }, 50));
    expect(done.status).toBe('completed');
    expect(done.reasoning_summary).toBeNull();
  });

  it('spends more reasoning at higher effort, and accepts minimal where the model allows it', async () => {
    const [minimal, low, high] = await Promise.all(
      (['minimal', 'low', 'high'] as const).map((effort) => run(jobBody({ model: 'gpt-5', input: 'Plan a bridge.', reasoning: { effort } }, 50))),
    );
    for (const job of [minimal, low, high]) expect(job.status, JSON.stringify(job.error)).toBe('completed');
    expect(minimal.reasoning_tokens).toBeLessThan(low.reasoning_tokens);
    expect(low.reasoning_tokens).toBeLessThan(high.reasoning_tokens);
  });

  it('ends a job that runs out of output tokens as incomplete, with the reason', async () => {
    const done = await run(jobBody({ model: 'o3', reasoning: { effort: 'high' }, max_output_tokens: 300 }, 50));
    expect(done.status).toBe('incomplete');
    expect(done.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(done.usage.output_tokens).toBeLessThanOrEqual(300);
    expect(done.reasoning_tokens).toBeGreaterThan(0);
  });

  it('refuses an effort the model does not allow at submission, and lets the provider judge models it does not know', async () => {
    const refused = await stack.api('POST', '/v1/jobs', jobBody({ model: 'o3', reasoning: { effort: 'minimal' } }));
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'unsupported_value', param: 'reasoning.effort' });
    expect(refused.body.error.message).toContain("'low', 'medium', 'high'");
    const unknownModel = await run(jobBody({ model: 'acme-reasoner-1', reasoning: { effort: 'minimal' } }, 50));
    expect(unknownModel.status, JSON.stringify(unknownModel.error)).toBe('completed');
  });

  it('refuses unknown effort and summary values', async () => {
    const effort = await stack.api('POST', '/v1/jobs', jobBody({ reasoning: { effort: 'extreme' } }));
    expect(effort.status).toBe(400);
    expect(effort.body.error.param).toBe('reasoning.effort');
    const summary = await stack.api('POST', '/v1/jobs', jobBody({ reasoning: { summary: 'verbose' } }));
    expect(summary.status).toBe(400);
    expect(summary.body.error.param).toBe('reasoning.summary');
  });
});
