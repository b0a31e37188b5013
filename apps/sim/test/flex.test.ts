import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { loadEnv } from '../src/env.ts';
import { responseSchemaErrors, sleep, startSim, type TestSim } from './helpers.ts';

let sim: TestSim;

beforeEach(async () => {
  sim = await startSim({ time_scale: 0.001 });
});
afterEach(async () => {
  await sim.close();
});

const flexCreate = (metadata: Record<string, string> = {}) => sim.client.responses.create({ model: 'o3', input: 'slow and cheap', service_tier: 'flex', metadata });

describe('flex processing', () => {
  test('by default a flex request runs and reports service_tier flex', async () => {
    const response = await flexCreate();
    expect(response).toMatchObject({ status: 'completed', service_tier: 'flex' });
    expect(responseSchemaErrors(response)).toBeNull();
    expect((await sim.client.responses.retrieve(response.id)).service_tier).toBe('flex');
  });

  test('flex_unavailable_rate 1: every flex create is a 429 Resource Unavailable, nothing is stored, other tiers run', async () => {
    await sim.sim('/config', { flex_unavailable_rate: 1 });
    const error = await flexCreate().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const apiError = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(apiError.status).toBe(429);
    expect(apiError.error).toEqual({
      message: expect.stringMatching(/^Resource Unavailable/),
      type: 'rate_limit_error',
      param: null,
      code: 'resource_unavailable',
    });
    const standard = await sim.client.responses.create({ model: 'o3', input: 'standard', service_tier: 'default' });
    expect(standard.service_tier).toBe('default');
    const stats = await sim.sim('/stats');
    expect(stats).toMatchObject({ creates: 1, flex_unavailable: 1, rate_limited: 0 });
    const log = (await sim.sim('/request-log')).data.map((entry: any) => entry.status);
    expect(log).toEqual([429, 200]);
  });

  test('a configured share of flex creates is refused, seeded reproducibly', async () => {
    const refusedWith = async (seed: number): Promise<boolean[]> => {
      await sim.sim('/reset');
      await sim.sim('/config', { flex_unavailable_rate: 0.3, seed });
      const refused: boolean[] = [];
      for (let i = 0; i < 60; i++)
        refused.push(
          await flexCreate().then(
            () => false,
            (e: unknown) => e instanceof OpenAI.RateLimitError,
          ),
        );
      return refused;
    };
    const first = await refusedWith(5);
    const count = first.filter(Boolean).length;
    expect(count).toBeGreaterThan(6);
    expect(count).toBeLessThan(36);
    expect((await sim.sim('/stats')).flex_unavailable).toBe(count);
    expect(await refusedWith(5)).toEqual(first);
  });

  test('batch lines asking for flex are not refused (a batch is not a flex request)', async () => {
    await sim.sim('/config', { flex_unavailable_rate: 1, batch_duration_ms: 20_000 });
    const body = { model: 'o3', input: 'in a batch', service_tier: 'flex' };
    const jsonl = `${JSON.stringify({ custom_id: 'f', method: 'POST', url: '/v1/responses', body })}\n`;
    const file = await sim.client.files.create({ file: await OpenAI.toFile(Buffer.from(jsonl), 'flex.jsonl'), purpose: 'batch' });
    const batch = await sim.client.batches.create({ input_file_id: file.id, endpoint: '/v1/responses', completion_window: '24h' });
    let done = batch;
    while (done.status !== 'completed') {
      await sleep(2);
      done = await sim.client.batches.retrieve(batch.id);
    }
    const content = await (await sim.client.files.content(done.output_file_id as string)).text();
    expect(JSON.parse(content).response).toMatchObject({ status_code: 200, body: { service_tier: 'flex', status: 'completed' } });
    expect((await sim.sim('/stats')).flex_unavailable).toBe(0);
  });
});

describe('environment', () => {
  test('SIM_FLEX_UNAVAILABLE_RATE and the SIM_BATCH_* variables reach the options', () => {
    const env = loadEnv({
      SIM_FLEX_UNAVAILABLE_RATE: '0.25',
      SIM_BATCH_DURATION_MS: '5000',
      SIM_BATCH_COMPLETION_WINDOW_MS: '60000',
      SIM_BATCH_LINE_FAILURE_RATE: '0.1',
      SIM_BATCH_EXPIRE_RATE: '0.5',
    });
    expect(env.options).toMatchObject({
      flex_unavailable_rate: 0.25,
      batch_duration_ms: 5000,
      batch_completion_window_ms: 60_000,
      batch_line_failure_rate: 0.1,
      batch_expire_rate: 0.5,
    });
    expect(() => loadEnv({ SIM_FLEX_UNAVAILABLE_RATE: '2' })).toThrow(/SIM_FLEX_UNAVAILABLE_RATE/);
  });
});
