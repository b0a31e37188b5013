/**
 * Flex processing (issue 17) through plain HTTP against the simulator's flex capacity
 * (`flex_unavailable_rate`: that share of `service_tier: "flex"` creates is answered 429 Resource
 * Unavailable): a flex job is retried on flex until the worker's flex window is over, then fails
 * with `flex_unavailable`, or with `flex_fallback: "auto"` runs at the standard tier; a flex job
 * that runs is priced at half the standard price; the retries neither pause the submit queue nor
 * charge the tenant's token budget again; and `flex_fallback` without flex is a 400.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, setTenantLimits } from '@longhaul/db';
import { toProviderError } from '@longhaul/provider';
import { fairQueueKey } from '@longhaul/queue';
import { type Stack, isTerminalJob, startStack } from './harness.ts';

/** The short stack's flex window: a handful of retries on the test backoff (50 ms doubling to 500 ms). */
const SHORT_WINDOW_MS = 1_500;
/** The tenant token budget's window: long enough that a second charge would stall a job for many seconds. */
const BUDGET_WINDOW_MS = 60_000;

let stack: Stack;
let long: Stack;
beforeAll(async () => {
  [stack, long] = await Promise.all([
    startStack({ sim: { time_scale: 0.01 }, worker: { flexRetryWindowMs: SHORT_WINDOW_MS, admission: { windowMs: BUDGET_WINDOW_MS } } }),
    startStack({ sim: { time_scale: 0.01 }, worker: { flexRetryWindowMs: 60_000 } }),
  ]);
});
afterAll(async () => {
  await Promise.all([stack?.stop(), long?.stop()]);
});

const flexBody = (extra: Record<string, unknown> = {}) => ({
  model: 'o3',
  input: 'Summarise the plan.',
  service_tier: 'flex',
  metadata: { sim_duration_ms: '50' },
  ...extra,
});

async function run(on: Stack, body: Record<string, unknown>, headers?: Record<string, string>): Promise<string> {
  const res = await on.api('POST', '/v1/jobs', body, headers);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id;
}

/** The statuses of the creates the simulator received for a job, in order. */
async function createsOf(on: Stack, jobId: string): Promise<number[]> {
  const log = await on.simApi('GET', '/sim/request-log');
  return log.data.filter((e: any) => e.job_id === jobId && e.method === 'POST' && e.path === '/v1/responses').map((e: any) => e.status);
}

async function eventsOf(on: Stack, jobId: string, headers?: Record<string, string>): Promise<any[]> {
  const res = await on.api('GET', `/v1/jobs/${jobId}/events`, undefined, headers);
  expect(res.status).toBe(200);
  return res.body.data;
}

/** o3 at the standard list price (DEFAULT_MODEL_PRICES: $2 input, $0.50 cached input, $8 output per 1M tokens). */
function o3StandardUsd(usage: any): number {
  const cached = usage.input_tokens_details?.cached_tokens ?? 0;
  return ((usage.input_tokens - cached) * 2 + cached * 0.5 + usage.output_tokens * 8) / 1e6;
}

describe('classification', () => {
  it('a flex 429 Resource Unavailable is its own kind, not a rate limit', async () => {
    await stack.simApi('POST', '/sim/config', { flex_unavailable_rate: 1 });
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${stack.simUrl}/v1`, maxRetries: 0 });
    const thrown = await client.responses.create({ model: 'o3', input: 'x', service_tier: 'flex' }).catch((e: unknown) => e);
    const error = toProviderError(thrown, new Date());
    expect(error).toMatchObject({ kind: 'unavailable', status: 429, code: 'resource_unavailable' });
  });
});

describe('flex unavailable for the whole window', () => {
  it('fails the job with flex_unavailable after retrying flex, without pausing the submit queue', async () => {
    await stack.simApi('POST', '/sim/config', { flex_unavailable_rate: 1 });
    const id = await run(stack, flexBody());
    // Sampled while the job retries: a provider rate limit would pause the whole submit queue
    // (`queue.rateLimit`, which fills the limiter key; the worker's own limiter never reaches that).
    const rateLimitTtls: number[] = [];
    let job: any;
    for (;;) {
      rateLimitTtls.push(await stack.queues.get('submit').getRateLimitTtl(Number.MAX_SAFE_INTEGER));
      job = (await stack.api('GET', `/v1/jobs/${id}`)).body;
      if (isTerminalJob(job)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(job.status, JSON.stringify(job)).toBe('failed');
    expect(job.error.code).toBe('flex_unavailable');
    expect(job.error.message).toMatch(/Flex processing had no capacity.*flex_fallback/);
    expect(job).toMatchObject({ service_tier: null, flex_fallback: null, cost_usd: null, response_id: null });
    const creates = await createsOf(stack, id);
    expect(creates.length).toBeGreaterThan(1);
    expect(new Set(creates)).toEqual(new Set([429]));
    expect((await stack.simApi('GET', '/sim/stats')).flex_unavailable).toBeGreaterThanOrEqual(creates.length);
    expect(
      rateLimitTtls.every((ttl) => ttl <= 0),
      JSON.stringify(rateLimitTtls),
    ).toBe(true);

    const failed = (await eventsOf(stack, id)).find((e) => e.to === 'failed');
    expect(failed).toMatchObject({ source: 'submit', details: { status: 429, code: 'resource_unavailable' } });
    // Given up once the window was over, not before, and not long after (the last wait ends at the window's end).
    expect(failed.details.flex_unavailable_for_ms).toBeGreaterThanOrEqual(SHORT_WINDOW_MS);
    expect(failed.details.flex_unavailable_for_ms).toBeLessThan(SHORT_WINDOW_MS + 1_000);
  });

  it('runs the job at the standard tier with flex_fallback auto, priced at the standard price', async () => {
    await stack.simApi('POST', '/sim/config', { flex_unavailable_rate: 1 });
    const id = await run(stack, flexBody({ flex_fallback: 'auto' }));
    const job = await stack.waitForJob(id, isTerminalJob);
    expect(job.status, JSON.stringify(job)).toBe('completed');
    expect(job).toMatchObject({ service_tier: 'default', flex_fallback: 'auto' });
    expect(job.usage.output_tokens).toBeGreaterThan(0);
    expect(job.cost_usd).toBeCloseTo(o3StandardUsd(job.usage), 9);
    expect(job.saved_usd ?? 0).toBe(0);

    // Flex refused until the window was over, then one create at service_tier default.
    const creates = await createsOf(stack, id);
    expect(creates.length).toBeGreaterThan(2);
    expect(creates.slice(0, -1).every((s) => s === 429)).toBe(true);
    expect(creates.at(-1)).toBe(200);
    expect((await stack.simApi('GET', `/sim/requests/${job.response_id}`)).service_tier).toBe('default');
    const submitted = (await eventsOf(stack, id)).find((e) => e.details?.response_id === job.response_id && e.source === 'submit');
    expect(submitted.details).toMatchObject({ flex_fallback: 'auto', service_tier: 'default' });
    expect(submitted.details.flex_unavailable_for_ms).toBeGreaterThanOrEqual(SHORT_WINDOW_MS);
  });

  it('charges the tenant token budget once, however many times flex is retried', async () => {
    await stack.simApi('POST', '/sim/config', { flex_unavailable_rate: 1 });
    // 150 tokens per 60 s: the job's 100 tokens leave 50, so a second charge would wait ~20 s.
    const { apiKey, tenantId } = await createTenant(stack.db.db, 'flex budget');
    await setTenantLimits(stack.db.db, tenantId, { tpmLimit: 150 });
    const auth = { authorization: `Bearer ${apiKey}` };
    const res = await stack.api('POST', '/v1/jobs', flexBody({ input: 'x'.repeat(400) }), auth);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.estimated_input_tokens).toBe(100);
    const started = Date.now();
    let job: any;
    do {
      await new Promise((r) => setTimeout(r, 100));
      job = (await stack.api('GET', `/v1/jobs/${res.body.id}`, undefined, auth)).body;
    } while (!isTerminalJob(job) && Date.now() - started < 15_000);
    expect(job).toMatchObject({ status: 'failed', error: { code: 'flex_unavailable' } });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await createsOf(stack, res.body.id)).length).toBeGreaterThan(2);
    // Taken from the bucket once: 150 − 100 (a second take would have left it at or below 0, or waited).
    const level = Number(await stack.redis.hget(`${fairQueueKey(stack.prefix)}bucket:${tenantId}`, 'level'));
    expect(level).toBeCloseTo(50, 0);
  });
});

describe('flex that runs', () => {
  it('completes at service_tier flex at half the standard price, the other half saved', async () => {
    await stack.simApi('POST', '/sim/config', { flex_unavailable_rate: 0 });
    const id = await run(stack, flexBody());
    const job = await stack.waitForJob(id, isTerminalJob);
    expect(job.status, JSON.stringify(job)).toBe('completed');
    expect(job).toMatchObject({ service_tier: 'flex', flex_fallback: null });
    const standard = o3StandardUsd(job.usage);
    expect(standard).toBeGreaterThan(0);
    expect(job.cost_usd).toBeCloseTo(standard / 2, 9);
    expect(job.saved_usd).toBeCloseTo(standard / 2, 9);
    expect(job.cost_usd + job.saved_usd).toBeCloseTo(standard, 9);
    expect(await createsOf(stack, id)).toEqual([200]);
  });

  it('completes at flex after retries when only part of flex capacity is short (long window)', async () => {
    await long.simApi('POST', '/sim/config', { flex_unavailable_rate: 0.6, seed: 17 });
    const ids = await Promise.all(Array.from({ length: 8 }, () => run(long, flexBody({ flex_fallback: 'auto' }))));
    const jobs = await long.waitForAll(ids, isTerminalJob, 60_000);
    for (const job of jobs) {
      expect(job.status, JSON.stringify(job)).toBe('completed');
      // Never fell back: flex ran within the window.
      expect(job.service_tier).toBe('flex');
      expect(job.cost_usd).toBeCloseTo(o3StandardUsd(job.usage) / 2, 9);
    }
    const creates = await Promise.all(ids.map((id) => createsOf(long, id)));
    for (const c of creates) {
      // Refused some times, then one create that ran.
      expect(c.at(-1)).toBe(200);
      expect(c.slice(0, -1).every((s) => s === 429)).toBe(true);
    }
    // 0.6 refused: some job was retried (all eight taken at the first try would be 0.4⁸ ≈ 0.07 %).
    expect(creates.some((c) => c.length > 1)).toBe(true);
    expect((await long.simApi('GET', '/sim/stats')).flex_unavailable).toBe(creates.reduce((n, c) => n + c.length - 1, 0));
  });
});

describe('flex_fallback validation', () => {
  it('refuses flex_fallback without service_tier flex, or with another value', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ flex_fallback: 'auto' }, 'unsupported_parameter'],
      [{ flex_fallback: 'auto', service_tier: 'default' }, 'unsupported_parameter'],
      [{ flex_fallback: 'auto', service_tier: 'auto' }, 'unsupported_parameter'],
      [{ flex_fallback: 'standard', service_tier: 'flex' }, 'invalid_value'],
      [{ flex_fallback: null, service_tier: 'flex' }, 'invalid_value'],
      [{ flex_fallback: true, service_tier: 'flex' }, 'invalid_value'],
    ];
    for (const [extra, code] of cases) {
      const res = await stack.api('POST', '/v1/jobs', { model: 'o3', input: 'x', ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.body.error, JSON.stringify(res.body)).toMatchObject({ type: 'invalid_request_error', param: 'flex_fallback', code });
    }
  });
});
