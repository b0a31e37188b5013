/**
 * Fallbacks and validation (issue 16) through plain HTTP against the simulator's per-model
 * outcomes: a chain reaches its third attempt (each attempt a response of its own, recorded with
 * its model; usage summed), an output failing `validate` makes the next attempt, a job out of
 * fallbacks ends with its last attempt's outcome, and bad fields are 400s naming them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, isTerminalJob, startStack } from './harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ sim: { time_scale: 0.01 } });
});
afterAll(async () => {
  await stack?.stop();
});

async function run(body: Record<string, unknown>): Promise<any> {
  const res = await stack.api('POST', '/v1/jobs', { input: 'Summarise the plan.', ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return stack.waitForJob(res.body.id, isTerminalJob);
}

describe('fallbacks', () => {
  it('tries each fallback in order and ends with the first attempt that passes', async () => {
    const job = await run({
      model: 'o3',
      fallbacks: [{ model: 'gpt-5' }, { model: 'gpt-4.1' }],
      metadata: { sim_outcomes: 'o3=failed,gpt-5=refusal', sim_duration_ms: '50' },
    });
    expect(job.status, JSON.stringify(job)).toBe('completed');
    expect(job.attempt).toBe(3);
    expect(job.model).toBe('o3');
    const models = job.attempts.map((a: any) => a.model);
    expect(models.slice(0, 2)).toEqual(['o3', 'gpt-5']);
    expect(job.attempts[0]).toMatchObject({ attempt: 1, status: 'failed', error: { code: 'server_error' } });
    expect(job.attempts[1]).toMatchObject({ attempt: 2, error: { code: 'refusal' } });
    const responses = job.attempts.map((a: any) => a.response_id).filter(Boolean);
    expect(new Set(responses).size).toBe(responses.length);
    const sent = await Promise.all(responses.map((id: string) => stack.simApi('GET', `/sim/requests/${id}`)));
    expect(sent.map((r: any) => r.model).slice(0, 2)).toEqual(['o3', 'gpt-5']);
    const summed = job.attempts.reduce((n: number, a: any) => n + (a.usage?.total_tokens ?? 0), 0);
    // Every attempt is on record, the last included, and the job's usage is their sum.
    expect(job.attempts).toHaveLength(3);
    expect(job.attempts[2]).toMatchObject({ attempt: 3, model: 'gpt-4.1', status: 'completed' });
    expect(job.usage.total_tokens).toBe(summed);
  });

  it('makes the next attempt when the output fails validation', async () => {
    const job = await run({ model: 'o3', fallbacks: [{ model: 'gpt-4.1' }], validate: { min_output_chars: 40 }, metadata: { sim_outcomes: 'o3=short', sim_duration_ms: '50' } });
    expect(job.status, JSON.stringify(job)).toBe('completed');
    expect(job.attempt).toBe(2);
    expect(job.attempts[0]).toMatchObject({ model: 'o3', error: { code: 'validation_failed' } });
    expect(job.output_text.length).toBeGreaterThanOrEqual(40);
  });

  it('ends with the last attempt’s outcome when every attempt fails', async () => {
    const failed = await run({ model: 'o3', fallbacks: [{ model: 'gpt-4.1' }], metadata: { sim_outcome: 'failed', sim_duration_ms: '50' } });
    expect(failed).toMatchObject({ status: 'failed', attempt: 2 });
    const invalid = await run({ model: 'o3', fallbacks: [{ model: 'gpt-4.1' }], validate: { must_include: ['nowhere-to-be-found'] }, metadata: { sim_duration_ms: '50' } });
    expect(invalid).toMatchObject({ status: 'failed', attempt: 2, error: { code: 'validation_failed' } });
  });

  it('does not retry a failure another attempt cannot fix, or a job without fallbacks', async () => {
    const plain = await run({ model: 'o3', metadata: { sim_outcome: 'failed', sim_duration_ms: '50' } });
    expect(plain).toMatchObject({ status: 'failed', attempt: 1 });
  });

  it('refuses bad fallbacks and validations, naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ fallbacks: [] }, 'fallbacks'],
      [{ fallbacks: [{ model: 'gpt-4.1', temperature: 1 }] }, 'fallbacks[0]'],
      [{ fallbacks: Array.from({ length: 6 }, () => ({ model: 'gpt-4.1' })) }, 'fallbacks'],
      [{ validate: { min_output_chars: -1 } }, 'validate.min_output_chars'],
      [{ validate: { json_schema: { type: 'nonsense' } } }, 'validate.json_schema'],
      // Single-response jobs only: a tool-call loop or a live stream has no clean next attempt.
      [{ fallbacks: [{ model: 'gpt-4.1' }], tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: {} } }] }, 'fallbacks'],
      [{ validate: { min_output_chars: 10 }, tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: {} } }] }, 'validate'],
      [{ validate: { min_output_chars: 10 }, stream: true }, 'validate'],
    ];
    for (const [extra, param] of cases) {
      const res = await stack.api('POST', '/v1/jobs', { model: 'o3', input: 'x', ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.body.error.param, JSON.stringify(res.body)).toContain(param);
    }
  });
});
