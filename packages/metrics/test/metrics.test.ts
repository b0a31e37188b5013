import { describe, expect, it } from 'vitest';
import { Registry, boundedLabel, createMetrics, disabledMetrics } from '../src/index.ts';

async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  // Histogram series (`_sum`, `_count`, `_bucket`) are values of their histogram, named by `metricName`.
  const values = (await registry.getMetricsAsJSON()).flatMap((m) => m.values.map((v) => ({ ...v, name: (v as { metricName?: string }).metricName ?? m.name })));
  const match = values.find((v) => v.name === name && Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want));
  return match?.value;
}

describe('createMetrics', () => {
  it('keeps each registry separate (several stacks in one process)', async () => {
    const a = new Registry();
    const b = new Registry();
    createMetrics(a).jobCreated('o3');
    createMetrics(b);
    expect(await value(a, 'longhaul_jobs_created_total', { model: 'o3' })).toBe(1);
    expect(await value(b, 'longhaul_jobs_created_total', { model: 'o3' })).toBeUndefined();
  });

  it('records a finished job: outcome, durations, tokens by kind, cost', async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry);
    metrics.jobFinished({
      tenantId: 'ten_1',
      model: 'o3',
      status: 'completed',
      createdAt: new Date(0),
      submittedAt: new Date(1_000),
      finishedAt: new Date(11_000),
      usage: { input_tokens: 100, input_tokens_details: { cached_tokens: 40 }, output_tokens: 50, output_tokens_details: { reasoning_tokens: 30 } },
      costUsd: 0.25,
    });
    expect(await value(registry, 'longhaul_jobs_finished_total', { status: 'completed', model: 'o3' })).toBe(1);
    expect(await value(registry, 'longhaul_tokens_total', { tenant: 'ten_1', kind: 'cached_input' })).toBe(40);
    expect(await value(registry, 'longhaul_tokens_total', { tenant: 'ten_1', kind: 'reasoning' })).toBe(30);
    expect(await value(registry, 'longhaul_cost_usd_total', { tenant: 'ten_1', model: 'o3' })).toBe(0.25);
    expect(await value(registry, 'longhaul_job_duration_seconds_sum', { model: 'o3' })).toBe(11);
    expect(await value(registry, 'longhaul_job_provider_seconds_sum', { model: 'o3' })).toBe(10);
  });

  it('counts 429s and labels provider requests by endpoint and status', async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry);
    metrics.providerRequest({ endpoint: 'create', status: 429, durationMs: 5 });
    metrics.providerRequest({ endpoint: 'retrieve', status: 'timeout', durationMs: 5 });
    expect(await value(registry, 'longhaul_provider_rate_limited_total', { endpoint: 'create' })).toBe(1);
    expect(await value(registry, 'longhaul_provider_requests_total', { endpoint: 'retrieve', status_code: 'timeout' })).toBe(1);
  });

  it('reads queue depth at scrape time and survives a failing source', async () => {
    const registry = new Registry();
    const metrics = createMetrics(registry);
    let depth = 3;
    metrics.setQueueDepthSource(async () => [{ queue: 'submit', state: 'waiting', count: depth }]);
    expect(await value(registry, 'longhaul_queue_jobs', { queue: 'submit', state: 'waiting' })).toBe(3);
    depth = 7;
    expect(await value(registry, 'longhaul_queue_jobs', { queue: 'submit', state: 'waiting' })).toBe(7);
    metrics.setQueueDepthSource(async () => {
      throw new Error('redis down');
    });
    expect(await metrics.render()).toContain('longhaul_jobs_created_total');
    expect(await value(registry, 'longhaul_queue_jobs', { queue: 'submit' })).toBeUndefined();
  });

  it('bounds client-controlled label values', () => {
    const label = boundedLabel(2);
    expect([label('a'), label('b'), label('c'), label('a'), label(null)]).toEqual(['a', 'b', 'other', 'a', 'none']);
  });

  it('has a disabled variant that records nothing', async () => {
    const metrics = disabledMetrics();
    metrics.jobCreated('o3');
    expect(metrics.enabled).toBe(false);
    expect(await metrics.render()).toBe('');
  });
});
