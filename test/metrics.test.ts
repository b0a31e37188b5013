/**
 * GET /metrics on the API's and the worker's metrics listeners, scraped and parsed while jobs run:
 * the counters move with the work, and token and cost counters match what Postgres recorded for
 * the jobs. The API's tenant-facing port serves none (test/metrics-exposure.test.ts runs the real
 * processes, METRICS_TOKEN included).
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '@longhaul/webhooks';
import { type MetricsServer, startMetricsServer } from '@longhaul/metrics/server';
import { checkReadiness, createLogger, readinessResponse } from '@longhaul/runtime';
import { type OpsServer, startOpsServer, workerReadinessChecks } from '@longhaul/worker/http';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { type Sample, scrape, total } from './prometheus.ts';

let stack: Stack;
let ops: OpsServer;
/** The API's metrics listener, as apps/api/src/index.ts opens it beside the tenant-facing port. */
let apiOps: MetricsServer;

beforeAll(async () => {
  stack = await startStack({ webhooks: true });
  const logger = createLogger({ service: 'test', level: 'silent' });
  const checks = workerReadinessChecks({ db: stack.db, queues: stack.queues });
  ops = await startOpsServer({ port: 0, metrics: stack.workerMetrics, checks, logger });
  apiOps = await startMetricsServer({ port: 0, metrics: stack.apiMetrics, readiness: async () => readinessResponse(await checkReadiness(checks)), logger });
});
afterAll(async () => {
  await apiOps?.close();
  await ops?.close();
  await stack?.stop();
});

async function submit(body: Record<string, unknown>) {
  const res = await stack.api('POST', '/v1/jobs', body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id as string;
}

/** Scrape until `check` passes (counters move asynchronously with the pipeline). */
async function eventually(url: string, check: (s: Sample[]) => void, timeoutMs = 15_000): Promise<Sample[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const samples = await scrape(url);
    try {
      check(samples);
      return samples;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('metrics', () => {
  it('counts jobs, durations, provider requests, polls, tokens and cost as jobs run', async () => {
    // Polls alone finish these jobs (no webhook races them), so every count below is exact.
    await stack.simApi('POST', '/sim/config', { webhook_urls: [] });
    const apiBefore = await scrape(apiOps.url);
    const workerBefore = await scrape(ops.url);
    const ids = await Promise.all([
      // 30 simulated seconds = 300 ms here: polled while in progress.
      ...Array.from({ length: 6 }, (_, i) => submit(jobBody({ input: `metrics story ${i}` }, 30_000))),
      submit(jobBody({ model: 'gpt-5-mini', input: 'metrics mini' }, 300)),
      submit(jobBody({ metadata: { sim_duration_ms: '100', sim_outcome: 'failed' } })),
    ]);
    const jobs = await stack.waitForAll(ids, isTerminalJob, 30_000);
    await stack.simApi('POST', '/sim/config', { webhook_urls: [`${stack.apiUrl}/webhooks/openai`] });

    const api = await scrape(apiOps.url);
    expect(total(api, 'longhaul_jobs_created_total', { model: 'o3' }) - total(apiBefore, 'longhaul_jobs_created_total', { model: 'o3' })).toBe(7);
    expect(total(api, 'longhaul_jobs_created_total', { model: 'gpt-5-mini' }) - total(apiBefore, 'longhaul_jobs_created_total', { model: 'gpt-5-mini' })).toBe(1);
    expect(total(api, 'longhaul_http_requests_total', { method: 'POST', route: '/v1/jobs/', status_code: '202' })).toBeGreaterThanOrEqual(8);
    expect(total(api, 'longhaul_http_request_duration_seconds_count', { route: '/v1/jobs/:id' })).toBeGreaterThan(0);

    const worker = await eventually(ops.url, (s) => {
      expect(total(s, 'longhaul_jobs_finished_total') - total(workerBefore, 'longhaul_jobs_finished_total')).toBe(8);
    });
    const moved = (name: string, labels: Record<string, string> = {}) => total(worker, name, labels) - total(workerBefore, name, labels);
    expect(moved('longhaul_jobs_finished_total', { status: 'completed', model: 'o3' })).toBe(6);
    expect(moved('longhaul_jobs_finished_total', { status: 'completed', model: 'gpt-5-mini' })).toBe(1);
    expect(moved('longhaul_jobs_finished_total', { status: 'failed', model: 'o3' })).toBe(1);
    for (const histogram of ['longhaul_job_duration_seconds_count', 'longhaul_job_provider_seconds_count']) expect(moved(histogram)).toBe(8);
    expect(moved('longhaul_job_queued_seconds_count')).toBe(8);
    expect(moved('longhaul_provider_requests_total', { endpoint: 'create', status_code: '200' })).toBe(8);
    expect(moved('longhaul_provider_requests_total', { endpoint: 'retrieve', status_code: '200' })).toBeGreaterThanOrEqual(8);
    expect(moved('longhaul_provider_request_duration_seconds_count', { endpoint: 'create' })).toBe(8);
    // One poll per job found it terminal; every other one rescheduled it and bumped jobs.polls.
    expect(moved('longhaul_polls_total', { result: 'terminal' })).toBe(8);
    const polled = await stack.db.pool.query<{ n: number }>('select coalesce(sum(polls), 0)::int as n from jobs where id = any($1)', [ids]);
    expect(moved('longhaul_polls_total', { result: 'pending' }) + moved('longhaul_polls_total', { result: 'error' })).toBe(polled.rows[0]!.n);

    // Tokens and cost: exactly what the jobs recorded.
    const sumUsage = (pick: (u: any) => number) => jobs.reduce((n, j) => n + (j.usage ? pick(j.usage) : 0), 0);
    const tenant = stack.tenantId;
    expect(moved('longhaul_tokens_total', { tenant, kind: 'input' })).toBe(sumUsage((u) => u.input_tokens));
    expect(moved('longhaul_tokens_total', { tenant, kind: 'cached_input' })).toBe(sumUsage((u) => u.input_tokens_details.cached_tokens));
    expect(moved('longhaul_tokens_total', { tenant, kind: 'output' })).toBe(sumUsage((u) => u.output_tokens));
    expect(moved('longhaul_tokens_total', { tenant, kind: 'reasoning' })).toBe(sumUsage((u) => u.output_tokens_details.reasoning_tokens));
    const { rows } = await stack.db.pool.query<{ cost: string }>('select coalesce(sum(cost_usd), 0)::text as cost from jobs where id = any($1)', [ids]);
    expect(Number(rows[0]!.cost)).toBeGreaterThan(0);
    expect(moved('longhaul_cost_usd_total', { tenant })).toBeCloseTo(Number(rows[0]!.cost), 9);
  });

  it('reports queue depth per queue and state at scrape time, on both processes', async () => {
    for (const url of [apiOps.url, ops.url]) {
      const samples = await scrape(url);
      const queues = new Set(samples.filter((s) => s.name === 'longhaul_queue_jobs').map((s) => s.labels.queue));
      expect([...queues]).toEqual(expect.arrayContaining(['submit', 'poll', 'cancel', 'webhook']));
      for (const state of ['waiting', 'active', 'delayed', 'failed']) {
        expect(samples.some((s) => s.name === 'longhaul_queue_jobs' && s.labels.queue === 'poll' && s.labels.state === state)).toBe(true);
      }
    }
    // A job waiting far in the future sits in the poll queue's delayed set.
    await stack.queues.add('poll', { jobId: 'job_metricsdelayed0001', attempt: 0 }, { delayMs: 3_600_000 });
    await eventually(apiOps.url, (s) => expect(total(s, 'longhaul_queue_jobs', { queue: 'poll', state: 'delayed' })).toBeGreaterThanOrEqual(1));
    await stack.queues.get('poll').remove('job_metricsdelayed0001');
  });

  it('counts OpenAI webhooks received, duplicate and rejected', async () => {
    const before = await scrape(apiOps.url);
    // The simulator delivers signed webhooks for every finished response (the stack wires them).
    const id = await submit(jobBody({ input: 'webhook metrics' }, 100));
    const job = await stack.waitForJob(id, isTerminalJob);
    const payload = JSON.stringify({
      id: `evt_metrics_${id}`,
      object: 'event',
      type: 'response.completed',
      created_at: Math.floor(Date.now() / 1000),
      data: { id: job.response_id },
    });
    const headers = signWebhook({ secrets: [stack.webhookSecret], webhookId: `wh_metrics_${id}`, payload, now: new Date() });
    const post = (h: Record<string, string>) => fetch(`${stack.apiUrl}/webhooks/openai`, { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: payload });
    expect((await post(headers)).status).toBe(200);
    expect((await post(headers)).status).toBe(200);
    expect((await post({ ...headers, 'webhook-signature': 'v1,AAAA' })).status).toBe(400);
    const after = await eventually(apiOps.url, (s) =>
      expect(total(s, 'longhaul_openai_webhooks_total', { result: 'received' }) - total(before, 'longhaul_openai_webhooks_total', { result: 'received' })).toBeGreaterThanOrEqual(
        2,
      ),
    );
    const moved = (result: string) => total(after, 'longhaul_openai_webhooks_total', { result }) - total(before, 'longhaul_openai_webhooks_total', { result });
    expect(moved('duplicate')).toBeGreaterThanOrEqual(1);
    expect(moved('rejected')).toBe(1);
  });

  it('counts 429s from the provider', async () => {
    const before = await scrape(ops.url);
    await stack.simApi('POST', '/sim/config', { rate_limit_rate: 1, fault_endpoints: ['create'], retry_after_s: 0 });
    const id = await submit(jobBody({ input: 'rate limited' }, 100));
    try {
      await eventually(ops.url, (s) =>
        expect(
          total(s, 'longhaul_provider_rate_limited_total', { endpoint: 'create' }) - total(before, 'longhaul_provider_rate_limited_total', { endpoint: 'create' }),
        ).toBeGreaterThanOrEqual(1),
      );
    } finally {
      await stack.simApi('POST', '/sim/config', { rate_limit_rate: 0 });
    }
    await stack.waitForJob(id, isTerminalJob);
    const after = await scrape(ops.url);
    expect(total(after, 'longhaul_provider_requests_total', { endpoint: 'create', status_code: '429' })).toBeGreaterThanOrEqual(1);
  });

  it('counts callback attempts by result, with delivery latency', async () => {
    let received = 0;
    const receiver: Server = createHttpServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received += 1;
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    try {
      const before = await scrape(ops.url);
      const id = await submit(jobBody({ input: 'callback metrics', callback_url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook` }, 100));
      await stack.waitForJob(id, isTerminalJob);
      const after = await eventually(ops.url, (s) =>
        expect(
          total(s, 'longhaul_callback_attempts_total', { result: 'success' }) - total(before, 'longhaul_callback_attempts_total', { result: 'success' }),
        ).toBeGreaterThanOrEqual(1),
      );
      expect(total(after, 'longhaul_callback_delivery_latency_seconds_count') - total(before, 'longhaul_callback_delivery_latency_seconds_count')).toBeGreaterThanOrEqual(1);
      expect(received).toBeGreaterThanOrEqual(1);
    } finally {
      await new Promise<void>((r) => {
        receiver.close(() => r());
        receiver.closeAllConnections();
      });
    }
  });

  it('serves no /metrics on the API’s tenant-facing port without METRICS_TOKEN', async () => {
    const res = await fetch(`${stack.apiUrl}/metrics`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { type: 'not_found_error', code: 'not_found' } });
    // The listener has them, tenants and models included.
    expect((await scrape(apiOps.url)).some((s) => s.name === 'longhaul_jobs_created_total')).toBe(true);
  });

  it('serves /healthz and /readyz on the worker too, and nothing else', async () => {
    expect(await (await fetch(`${ops.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${ops.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', checks: { postgres: { ok: true }, redis: { ok: true }, migrations: { ok: true } } });
    expect((await fetch(`${ops.url}/v1/jobs`)).status).toBe(404);
  });
});
