import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { startSim, type TestSim } from './helpers.ts';

let sim: TestSim;

beforeEach(async () => {
  sim = await startSim({ default_duration_ms: 20 });
});
afterEach(async () => {
  await sim.close();
});

const body = { model: 'gpt-5', input: 'x', background: true } as const;

describe('request faults', () => {
  test('rate_limit_rate 1 answers 429 with Retry-After; the SDK raises RateLimitError', async () => {
    const config = await sim.sim('/config', { rate_limit_rate: 1, retry_after_s: 7 });
    expect(config).toMatchObject({ rate_limit_rate: 1, retry_after_s: 7, error_rate: 0 });
    const error = await sim.client.responses.create(body).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    const apiError = error as InstanceType<typeof OpenAI.APIError>;
    expect(apiError.status).toBe(429);
    expect(apiError.headers?.get('retry-after')).toBe('7');
    expect(apiError.code).toBe('rate_limit_exceeded');
    expect(apiError.type).toBe('rate_limit_error');

    await sim.sim('/config', { rate_limit_rate: 0 });
    expect((await sim.client.responses.create(body)).status).toBe('queued');
    const stats = await sim.sim('/stats');
    expect(stats).toMatchObject({ creates: 1, rate_limited: 1 });
  });

  test('error_rate 1 answers 500 server_error; the SDK raises InternalServerError', async () => {
    await sim.sim('/config', { error_rate: 1 });
    const error = await sim.client.responses.create(body).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as InstanceType<typeof OpenAI.APIError>).type).toBe('server_error');
    expect((await sim.sim('/stats')).errors).toBe(1);
  });

  test('fault_endpoints limits which endpoints fail', async () => {
    const created = await sim.client.responses.create({ ...body, metadata: { sim_duration_ms: '60000' } });
    await sim.sim('/config', { error_rate: 1, fault_endpoints: ['retrieve'] });
    await expect(sim.client.responses.retrieve(created.id)).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    expect((await sim.client.responses.create(body)).status).toBe('queued');
    await expect(sim.client.responses.cancel(created.id)).resolves.toBeTruthy();
  });

  test('latency_ms delays answers', async () => {
    await sim.sim('/config', { latency_ms: 120 });
    const started = Date.now();
    await sim.client.responses.create(body);
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
  });

  test('a seed makes partial rates reproducible', async () => {
    const outcomes = async (): Promise<number[]> => {
      await sim.sim('/config', { seed: 42, rate_limit_rate: 0.5 });
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) statuses.push((await sim.api('/responses', { body })).status);
      return statuses;
    };
    const first = await outcomes();
    expect(first).toContain(429);
    expect(first).toContain(200);
    expect(await outcomes()).toEqual(first);
  });
});

describe('control endpoints', () => {
  test('config rejects unknown keys and bad values with a 400', async () => {
    for (const patch of [{ nope: 1 }, { error_rate: 2 }, { webhook_secret: 'plain' }, { fault_endpoints: ['purge'] }]) {
      const res = await fetch(`${sim.url}/sim/config`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(patch),
      });
      expect(res.status).toBe(400);
      expect((await res.json()).error.type).toBe('invalid_request_error');
    }
  });

  test('stats count creates per longhaul_job_id, retrieves and cancels per response; reset clears everything', async () => {
    const a = await sim.client.responses.create({ ...body, metadata: { longhaul_job_id: 'job-a', sim_duration_ms: '5000' } });
    await sim.client.responses.create({ ...body, metadata: { longhaul_job_id: 'job-a' } });
    await sim.client.responses.create({ ...body, metadata: { longhaul_job_id: 'job-b' } });
    await sim.client.responses.retrieve(a.id);
    await sim.client.responses.retrieve(a.id);
    await sim.client.responses.cancel(a.id);
    await sim.sim('/config', { time_scale: 0.5 });

    const stats = await sim.sim('/stats');
    expect(stats).toMatchObject({ creates: 3, retrieves: 2, cancels: 1, creates_by_job: { 'job-a': 2, 'job-b': 1 } });
    expect(stats.by_response[a.id]).toEqual({ retrieves: 2, cancels: 1 });

    await sim.sim('/reset', {});
    expect(await sim.sim('/stats')).toMatchObject({ creates: 0, by_response: {}, creates_by_job: {} });
    expect((await sim.sim('/config')).time_scale).toBe(1);
    expect((await sim.api(`/responses/${a.id}`)).status).toBe(404);
  });

  test('unknown routes answer 404 in OpenAI shape', async () => {
    const res = await sim.api('/models');
    expect(res.status).toBe(404);
    expect(res.json.error.message).toBe('Invalid URL (GET /v1/models)');
  });
});
