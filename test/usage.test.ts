/**
 * Cost tracking end to end: each finished job stores its cost estimate (from the worker's price
 * table), and GET /v1/usage sums tokens, cached ratio and cost per model or per day, matching
 * the jobs one by one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_PRICES, estimateCostUsd } from '@longhaul/core';
import { createTenant } from '@longhaul/db';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';

let stack: Stack;
let jobs: any[];
const CUSTOM = { input: 3, cachedInput: 1, output: 12 };

beforeAll(async () => {
  stack = await startStack({ worker: { prices: { ...DEFAULT_MODEL_PRICES, 'house-model': CUSTOM } } });
  // A long shared prefix makes the simulator report cached input tokens on the repeats.
  const longPrompt = `${'Otters hold hands while they sleep so they do not drift apart. '.repeat(90)}`;
  const bodies = [
    ...Array.from({ length: 3 }, (_, i) => jobBody({ model: 'o3', input: `${longPrompt} Part ${i}.` })),
    ...Array.from({ length: 2 }, (_, i) => jobBody({ model: 'gpt-5-mini', input: `Mini story ${i}` })),
    jobBody({ model: 'house-model', input: 'Priced by configuration' }),
    jobBody({ model: 'unpriced-model', input: 'No price for this one' }),
  ];
  const ids: string[] = [];
  for (const body of bodies) {
    const res = await stack.api('POST', '/v1/jobs', body);
    expect(res.status).toBe(202);
    ids.push(res.body.id);
  }
  jobs = await stack.waitForAll(ids, isTerminalJob, 30_000);
  expect(jobs.every((j) => j.status === 'completed' && j.usage)).toBe(true);
});
afterAll(async () => {
  await stack?.stop();
});

const priceOf = (model: string) => (model === 'house-model' ? CUSTOM : DEFAULT_MODEL_PRICES[model]);

async function storedCosts(): Promise<Map<string, number | null>> {
  const { rows } = await stack.db.pool.query<{ id: string; cost_usd: string | null }>('select id, cost_usd from jobs');
  return new Map(rows.map((r) => [r.id, r.cost_usd === null ? null : Number(r.cost_usd)]));
}

describe('cost tracking', () => {
  it('stores each job’s cost estimate at the configured prices; null without a price', async () => {
    const costs = await storedCosts();
    expect(jobs.some((j) => j.usage.input_tokens_details.cached_tokens > 0)).toBe(true);
    for (const job of jobs) {
      const price = priceOf(job.model);
      if (!price) expect(costs.get(job.id)).toBeNull();
      else expect(costs.get(job.id)).toBeCloseTo(estimateCostUsd(job.usage, price), 9);
      // The job object shows the same estimate.
      expect(job.cost_usd).toBe(costs.get(job.id));
    }
  });

  it('sums usage per model, matching the jobs', async () => {
    const res = await stack.api('GET', '/v1/usage?group_by=model');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ object: 'usage', group_by: 'model' });
    const costs = await storedCosts();
    const models = [...new Set(jobs.map((j) => j.model))].sort();
    expect(res.body.data.map((r: any) => r.model)).toEqual(models);
    for (const row of res.body.data) {
      const mine = jobs.filter((j) => j.model === row.model);
      const sum = (pick: (u: any) => number) => mine.reduce((n, j) => n + pick(j.usage), 0);
      expect(row.jobs).toBe(mine.length);
      expect(row.input_tokens).toBe(sum((u) => u.input_tokens));
      expect(row.cached_tokens).toBe(sum((u) => u.input_tokens_details.cached_tokens));
      expect(row.output_tokens).toBe(sum((u) => u.output_tokens));
      expect(row.reasoning_tokens).toBe(sum((u) => u.output_tokens_details.reasoning_tokens));
      expect(row.total_tokens).toBe(sum((u) => u.total_tokens));
      expect(row.cached_ratio).toBeCloseTo(row.cached_tokens / row.input_tokens, 12);
      expect(row.cost_usd).toBeCloseTo(
        mine.reduce((n, j) => n + (costs.get(j.id) ?? 0), 0),
        9,
      );
      expect(row.unpriced_jobs).toBe(priceOf(row.model) ? 0 : mine.length);
    }
    expect(res.body.total.jobs).toBe(jobs.length);
    expect(res.body.total.cost_usd).toBeCloseTo(
      [...costs.values()].reduce((n: number, c) => n + (c ?? 0), 0),
      9,
    );
    expect(res.body.total.cost_usd).toBeGreaterThan(0);
  });

  it('sums usage per UTC day, and honours from/to', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const byDay = await stack.api('GET', '/v1/usage?group_by=day');
    expect(byDay.status).toBe(200);
    expect(byDay.body.data).toHaveLength(1);
    expect(byDay.body.data[0]).toMatchObject({ day: today, jobs: jobs.length });
    const byModel = await stack.api('GET', '/v1/usage?group_by=model');
    expect(byDay.body.total).toEqual(byModel.body.total);

    const future = Math.floor(Date.now() / 1000) + 3600;
    const empty = await stack.api('GET', `/v1/usage?from=${future}&to=${future + 60}`);
    expect(empty.body).toMatchObject({ data: [], total: { jobs: 0, cost_usd: 0, cached_ratio: 0 } });
    const iso = await stack.api('GET', `/v1/usage?from=${today}&to=${new Date(Date.now() + 86_400_000).toISOString()}`);
    expect(iso.body.total.jobs).toBe(jobs.length);
  });

  it('validates the query', async () => {
    for (const q of ['group_by=week', 'from=yesterday', 'from=2000&to=1000', 'colour=blue']) {
      const res = await stack.api('GET', `/v1/usage?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body.error.type).toBe('invalid_request_error');
    }
  });

  it('is scoped to the calling tenant', async () => {
    const other = await createTenant(stack.db.db, 'other tenant');
    const res = await stack.api('GET', '/v1/usage', undefined, { authorization: `Bearer ${other.apiKey}` });
    expect(res.status).toBe(200);
    expect(res.body.total.jobs).toBe(0);
    expect((await stack.api('GET', '/v1/usage', undefined, { authorization: 'Bearer nope' })).status).toBe(401);
  });
});
