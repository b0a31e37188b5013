/**
 * The OpenAPI contract (apps/api/src/openapi): the document is valid OpenAPI 3.1; every route
 * Express has mounted under /v1 is in it and every documented route is mounted; and real answers
 * match it. The last part drives a broad tour of the API through `stack.api()`, whose
 * `onResponse` hook (test/harness.ts) hands every answer to an ajv validator compiled from the
 * document (status declared, content type declared, body valid against the schema), and checks
 * the callbacks a receiver gets against the document's `webhooks`. Zero violations is the bar.
 */
import { get } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Validator } from '@seriousme/openapi-schema-validator';
import { createServer } from '@longhaul/api';
import { OPERATIONS, mountedRoutes } from '@longhaul/api/openapi';
import { createAddressPolicy } from '@longhaul/callbacks';
import { Registry, createMetrics } from '@longhaul/metrics';
import { createLogger } from '@longhaul/runtime';
import { addFormats, createContract, document, pointer } from './contract.ts';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';

describe('the OpenAPI document', () => {
  it('is valid OpenAPI 3.1', async () => {
    const result = await new Validator().validate(structuredClone(document));
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(document.openapi).toMatch(/^3\.1\./);
  });

  it('holds JSON Schemas (draft 2020-12) that compile', () => {
    const ajv = new Ajv2020({ strict: false });
    addFormats(ajv);
    ajv.addSchema(document as object, 'openapi');
    for (const name of Object.keys(document.components.schemas)) expect(() => ajv.compile({ $ref: pointer('components', 'schemas', name) }), name).not.toThrow();
  });

  it('documents every operation with a tag, a security requirement and the error shape for 4xx', () => {
    expect(document.security).toEqual([{ apiKey: [] }]);
    for (const [path, item] of Object.entries(document.paths)) {
      for (const [method, op] of Object.entries(item) as [string, { tags: string[]; responses: Record<string, any> }][]) {
        expect(op.tags.length, `${method} ${path}`).toBe(1);
        for (const status of ['401', '403', '429', 'default'])
          expect(op.responses[status]?.content['application/json'].schema.$ref, `${method} ${path} ${status}`).toBe('#/components/schemas/Error');
      }
    }
    expect(Object.keys(document.webhooks as object).sort()).toEqual(['jobEvent', 'runEvent']);
  });
});

describe('the OpenAPI contract', () => {
  let stack: Stack;
  let receiver: Receiver;
  const contract = createContract(document);

  beforeAll(async () => {
    receiver = await startReceiver();
    stack = await startStack({ onResponse: contract.check });
  });
  afterAll(async () => {
    await stack?.stop();
    await receiver?.close();
  });

  it('documents exactly the routes mounted under /v1', () => {
    const app = createServer({
      db: stack.db.db,
      queues: stack.queues,
      logger: createLogger({ service: 'test', level: 'silent' }),
      clock: () => new Date(),
      metrics: createMetrics(new Registry()),
      config: { bodyLimit: '1mb', jobDeadlineMs: 3_600_000, idempotencyTtlMs: 86_400_000, openaiWebhookSecrets: [], callbackPolicy: createAddressPolicy(['127.0.0.0/8']) },
    });
    const mounted = mountedRoutes(app, '/v1');
    const documented = OPERATIONS.map((op) => `${op.method.toUpperCase()} ${op.path}`).sort();
    expect(mounted.length).toBeGreaterThan(70);
    expect(
      mounted.filter((r) => !documented.includes(r)),
      'mounted but not documented',
    ).toEqual([]);
    expect(
      documented.filter((r) => !mounted.includes(r)),
      'documented but not mounted',
    ).toEqual([]);
    expect(new Set(documented).size).toBe(documented.length);
  });

  it('is served at GET /openapi.json without a key, cacheable', async () => {
    const res = await fetch(`${stack.apiUrl}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toMatch(/public, max-age=\d+/);
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(document)));
    const etag = res.headers.get('etag');
    expect(etag).toBeTruthy();
    // node:http, not fetch: fetch adds `Cache-Control: no-cache` to a conditional request, which defeats it.
    const status = await new Promise<number>((resolve, reject) => {
      get(`${stack.apiUrl}/openapi.json`, { headers: { 'if-none-match': etag! } }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      }).on('error', reject);
    });
    expect(status).toBe(304);
  });

  it('matches every answer of a tour of the API, and the callbacks it sends', async () => {
    const api = stack.api;
    const expectStatus = async (status: number, method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
      const res = await api(method, path, body, headers);
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.body).slice(0, 400)}`).toBe(status);
      return res.body;
    };
    const raw = async (method: string, path: string, init: RequestInit) => {
      const res = await fetch(stack.apiUrl + path, { method, ...init, headers: { authorization: `Bearer ${stack.apiKey}`, ...(init.headers as Record<string, string>) } });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {}
      contract.check({ method, path, status: res.status, contentType: res.headers.get('content-type'), body });
      return { status: res.status, body: body as any };
    };

    // Callbacks: an endpoint for every job and run event, and a job's own callback_url.
    const endpoint = await expectStatus(201, 'POST', '/v1/webhook-endpoints', {
      url: receiver.url,
      description: 'contract',
      event_types: ['job.completed', 'job.cancelled', 'job.queued', 'run.completed', 'run.running'],
    });
    await expectStatus(201, 'POST', '/v1/webhook-endpoints', { url: receiver.url, thin_payload: true, event_types: ['job.completed'] });
    await expectStatus(200, 'GET', '/v1/webhook-endpoints');
    await expectStatus(200, 'GET', `/v1/webhook-endpoints/${endpoint.id}`);
    await expectStatus(200, 'PATCH', `/v1/webhook-endpoints/${endpoint.id}`, { description: 'contract tour' });
    await expectStatus(200, 'POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, { overlap_seconds: 60 });
    await expectStatus(200, 'GET', '/v1/callback-secret');

    // Jobs.
    const job = await expectStatus(202, 'POST', '/v1/jobs', jobBody({ callback_url: receiver.url }, 50), { 'idempotency-key': 'contract-1' });
    await expectStatus(202, 'POST', '/v1/jobs', jobBody({ callback_url: receiver.url }, 50), { 'idempotency-key': 'contract-1' });
    const done = await stack.waitForJob(job.id, isTerminalJob);
    expect(done.status).toBe('completed');
    const followUp = await expectStatus(202, 'POST', '/v1/jobs', jobBody({ previous_job_id: job.id, input: 'And then?', reasoning: { effort: 'low' }, max_turns: 3 }, 50));
    await stack.waitForJob(followUp.id, isTerminalJob);
    await expectStatus(200, 'GET', `/v1/jobs/${followUp.id}`);
    await expectStatus(200, 'GET', '/v1/jobs?limit=5');
    await expectStatus(200, 'GET', `/v1/jobs?thread=${job.id}`);
    await expectStatus(200, 'GET', '/v1/jobs?status=completed');
    await expectStatus(200, 'GET', `/v1/jobs/${job.id}/events`);
    await expectStatus(200, 'GET', `/v1/jobs/${job.id}/stream`);
    await expectStatus(409, 'POST', `/v1/jobs/${job.id}/cancel`);
    await expectStatus(409, 'POST', `/v1/jobs/${job.id}/tool_outputs`, { tool_outputs: [{ call_id: 'call_1', output: 'x' }] });
    await expectStatus(409, 'POST', `/v1/jobs/${job.id}/approvals`, { approvals: [{ approval_request_id: 'apr_1', approve: true }] });
    const slow = await expectStatus(202, 'POST', '/v1/jobs', jobBody({}, 600_000));
    await expectStatus(409, 'DELETE', `/v1/jobs/${slow.id}`);
    await expectStatus(200, 'POST', `/v1/jobs/${slow.id}/cancel`);
    await stack.waitForJob(slow.id, isTerminalJob);
    await expectStatus(200, 'DELETE', `/v1/jobs/${followUp.id}`);
    await expectStatus(404, 'GET', '/v1/jobs/job_doesnotexist000');
    await expectStatus(400, 'GET', '/v1/jobs/not-a-job-id');
    await expectStatus(400, 'POST', '/v1/jobs', {});
    await expectStatus(400, 'POST', '/v1/jobs', '{"model": ');
    await expectStatus(400, 'POST', '/v1/jobs', { ...jobBody(), temperature_x: 1 });
    await expectStatus(400, 'GET', '/v1/jobs?limit=1000');
    await expectStatus(401, 'GET', '/v1/jobs', undefined, { authorization: 'Bearer lh_sk_nope' });
    await expectStatus(404, 'GET', '/v1/nothing-here');

    // The OpenAI-compatible surface.
    const response = await expectStatus(200, 'POST', '/v1/responses', { model: 'o3', input: 'Hello', background: true, metadata: { sim_duration_ms: '50' } });
    await expectStatus(200, 'GET', `/v1/responses/${response.id}`);
    await expectStatus(200, 'GET', `/v1/responses/${response.id}/input_items`);
    await expectStatus(200, 'POST', `/v1/responses/${response.id}/cancel`);
    await expectStatus(200, 'DELETE', `/v1/responses/${response.id}`);
    await expectStatus(404, 'GET', '/v1/responses/resp_nothing');
    await expectStatus(400, 'POST', '/v1/responses', { model: 'o3', input: 'x', background: 'yes' });

    // Prompts, versions, a rollout and its events.
    const prompt = await expectStatus(201, 'POST', '/v1/prompts', { name: 'contract', template: { model: 'o3', input: 'What is {{q}}?', reasoning: { effort: 'low' } } });
    await expectStatus(200, 'GET', '/v1/prompts');
    await expectStatus(200, 'GET', `/v1/prompts/${prompt.id}`);
    await expectStatus(201, 'POST', `/v1/prompts/${prompt.id}/versions`, { note: 'v2', cache: { ttl_seconds: 60 }, template: { model: 'o3', input: 'Compute {{q}}.' } });
    await expectStatus(200, 'GET', `/v1/prompts/${prompt.id}/versions`);
    await expectStatus(200, 'GET', `/v1/prompts/${prompt.id}/versions/1`);
    await expectStatus(404, 'GET', `/v1/prompts/${prompt.id}/versions/9`);
    await expectStatus(404, 'GET', `/v1/prompts/${prompt.id}/rollout`);
    await expectStatus(200, 'POST', `/v1/prompts/${prompt.id}`, {
      traffic: [
        { version: 1, weight: 1 },
        { version: 2, weight: 1 },
      ],
    });
    await expectStatus(200, 'POST', `/v1/prompts/${prompt.id}`, { traffic: null, current_version: 1 });
    await expectStatus(400, 'POST', `/v1/prompts/${prompt.id}`, { current_version: 7 });
    const guard = { max_failure_rate_increase: 0.1, max_incomplete_rate_increase: 0.1, max_cost_ratio: 2 };
    await expectStatus(201, 'POST', `/v1/prompts/${prompt.id}/rollout`, { candidate_version: 2, steps: [10, 50, 100], min_jobs_per_step: 1000, guard });
    await expectStatus(409, 'POST', `/v1/prompts/${prompt.id}/rollout`, { candidate_version: 2, steps: [10, 100], min_jobs_per_step: 1000, guard });
    await expectStatus(200, 'GET', `/v1/prompts/${prompt.id}/rollout`);
    await expectStatus(200, 'POST', `/v1/prompts/${prompt.id}/rollout/pause`);
    await expectStatus(200, 'POST', `/v1/prompts/${prompt.id}/rollout/resume`);
    await expectStatus(200, 'POST', `/v1/prompts/${prompt.id}/rollout/abort`);
    await expectStatus(200, 'GET', `/v1/prompts/${prompt.id}/events`);
    await expectStatus(202, 'POST', '/v1/jobs', { prompt: { id: prompt.id, variables: { q: '2+2' } }, metadata: { sim_duration_ms: '20' } });

    // Datasets (JSON and JSONL) and an eval over them.
    const dataset = await expectStatus(201, 'POST', '/v1/datasets', {
      name: 'sums',
      items: [
        { variables: { q: '1+1' }, expected: '2' },
        { variables: { q: '2+2' }, expected: '4', metadata: { k: 'v' } },
      ],
    });
    const jsonl = { 'content-type': 'application/x-ndjson' };
    const fromJsonl = await expectStatus(201, 'POST', '/v1/datasets?name=lines&note=upload', '{"variables":{"q":"3+3"},"expected":"6"}\n', jsonl);
    await expectStatus(201, 'POST', `/v1/datasets/${fromJsonl.id}/versions?note=second`, '{"variables":{"q":"4+4"}}\n', jsonl);
    await expectStatus(201, 'POST', `/v1/datasets/${dataset.id}/versions`, { note: 'v2', items: [{ variables: { q: '5+5' } }] });
    await expectStatus(400, 'POST', '/v1/datasets?name=bad', 'not json\n', jsonl);
    await expectStatus(200, 'GET', '/v1/datasets');
    await expectStatus(200, 'GET', `/v1/datasets/${dataset.id}`);
    await expectStatus(200, 'GET', `/v1/datasets/${dataset.id}/versions`);
    await expectStatus(200, 'GET', `/v1/datasets/${dataset.id}/versions/1`);
    await expectStatus(200, 'GET', `/v1/datasets/${dataset.id}/versions/1/items?limit=10`);
    await expectStatus(404, 'GET', `/v1/datasets/${dataset.id}/versions/5/items`);
    const evaluation = await expectStatus(201, 'POST', '/v1/evals', {
      prompt_id: prompt.id,
      versions: [1, 2],
      dataset_id: dataset.id,
      dataset_version: 1,
      graders: [{ type: 'exact' }],
    });
    await expectStatus(200, 'GET', '/v1/evals');
    const deadline = Date.now() + 30_000;
    while ((await expectStatus(200, 'GET', `/v1/evals/${evaluation.id}`)).status === 'running' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await expectStatus(200, 'GET', `/v1/evals/${evaluation.id}/results`);
    await expectStatus(200, 'GET', `/v1/evals/${evaluation.id}/results?version=1&item=0`);
    await expectStatus(409, 'POST', `/v1/evals/${evaluation.id}/cancel`);
    const rerun = await expectStatus(201, 'POST', `/v1/evals/${evaluation.id}/rerun`);
    await expectStatus(200, 'POST', `/v1/evals/${rerun.id}/cancel`);
    await expectStatus(400, 'POST', '/v1/evals', { prompt_id: prompt.id, versions: [1], dataset_id: dataset.id, graders: [{ type: 'nope' }] });
    await expectStatus(200, 'DELETE', `/v1/datasets/${fromJsonl.id}`);

    // Pipelines and runs.
    const definition = { steps: [{ name: 'answer', model: 'o3', input: 'Answer: {{input.task}}', metadata: { sim_duration_ms: '20' } }], output: '{{steps.answer.output_text}}' };
    const pipeline = await expectStatus(201, 'POST', '/v1/pipelines', { name: 'one step', definition });
    await expectStatus(200, 'GET', '/v1/pipelines');
    await expectStatus(200, 'GET', `/v1/pipelines/${pipeline.id}`);
    await expectStatus(201, 'POST', `/v1/pipelines/${pipeline.id}/versions`, { note: 'v2', definition });
    await expectStatus(200, 'GET', `/v1/pipelines/${pipeline.id}/versions/2`);
    await expectStatus(400, 'POST', '/v1/pipelines', { name: 'bad', definition: { steps: [{ name: 'a', model: 'o3', input: '{{steps.nope.output_text}}' }] } });
    await expectStatus(400, 'POST', `/v1/pipelines/${pipeline.id}/runs`, { inputs: {} });
    const run = await expectStatus(202, 'POST', `/v1/pipelines/${pipeline.id}/runs`, { inputs: { task: 'x' }, callback_url: receiver.url });
    const runDeadline = Date.now() + 30_000;
    while (!['completed', 'failed', 'cancelled'].includes((await expectStatus(200, 'GET', `/v1/runs/${run.id}`)).status) && Date.now() < runDeadline)
      await new Promise((r) => setTimeout(r, 200));
    await expectStatus(200, 'GET', '/v1/runs');
    await expectStatus(200, 'GET', `/v1/runs?pipeline=${pipeline.id}&status=completed`);
    await expectStatus(200, 'GET', `/v1/runs/${run.id}/events`);
    await expectStatus(200, 'GET', `/v1/runs/${run.id}/stream`);
    await expectStatus(409, 'POST', `/v1/runs/${run.id}/cancel`);
    const slowRun = await expectStatus(202, 'POST', `/v1/pipelines/${pipeline.id}/runs`, { inputs: { task: 'y' } });
    await expectStatus(200, 'POST', `/v1/runs/${slowRun.id}/cancel`);

    // Batches (none: the tour makes no batch jobs).
    await expectStatus(200, 'GET', '/v1/batches');
    await expectStatus(404, 'GET', '/v1/batches/lhb_doesnotexist00');
    await expectStatus(404, 'GET', '/v1/batches/lhb_doesnotexist00/events');

    // Files and conversations (the simulator plays OpenAI).
    const form = new FormData();
    form.append('purpose', 'user_data');
    form.append('file', new Blob([new Uint8Array(Buffer.from('%PDF-1.7\nhello'))], { type: 'application/pdf' }), 'hello.pdf');
    const file = await raw('POST', '/v1/files', { body: form });
    expect(file.status, JSON.stringify(file.body)).toBe(200);
    await expectStatus(400, 'POST', '/v1/files', { purpose: 'user_data' });
    await expectStatus(200, 'GET', '/v1/files');
    await expectStatus(200, 'GET', `/v1/files/${file.body.id}`);
    await expectStatus(200, 'DELETE', `/v1/files/${file.body.id}`);
    await expectStatus(404, 'GET', `/v1/files/${file.body.id}`);
    const conversation = await expectStatus(200, 'POST', '/v1/conversations', { metadata: { topic: 'contract' }, items: [{ type: 'message', role: 'user', content: 'hi' }] });
    await expectStatus(200, 'GET', `/v1/conversations/${conversation.id}`);
    await expectStatus(200, 'POST', `/v1/conversations/${conversation.id}`, { metadata: { topic: 'tour' } });
    await expectStatus(200, 'GET', `/v1/conversations/${conversation.id}/items?limit=5`);
    await expectStatus(200, 'DELETE', `/v1/conversations/${conversation.id}`);
    await expectStatus(404, 'GET', '/v1/conversations/conv_nothing');

    // Usage, the response cache, API keys.
    await expectStatus(200, 'GET', '/v1/usage');
    await expectStatus(200, 'GET', '/v1/usage?group_by=day');
    await expectStatus(200, 'GET', '/v1/usage?group_by=prompt_version');
    await expectStatus(400, 'GET', '/v1/usage?from=yesterday');
    await expectStatus(200, 'DELETE', '/v1/cache');
    await expectStatus(200, 'DELETE', `/v1/cache?prompt_id=${prompt.id}&version=1`);
    await expectStatus(400, 'DELETE', '/v1/cache?version=1');
    const key = await expectStatus(201, 'POST', '/v1/api-keys', { name: 'contract', expires_in_days: 1 });
    await expectStatus(200, 'GET', '/v1/api-keys');
    await expectStatus(200, 'GET', `/v1/api-keys/${key.id}`);
    await expectStatus(200, 'DELETE', `/v1/api-keys/${key.id}`);
    await expectStatus(404, 'GET', '/v1/api-keys/key_doesnotexist00');
    await expectStatus(400, 'POST', '/v1/api-keys', { name: 'x', scopes: ['nope:nope'] });

    // Deliveries: the callbacks of the tour, one of them retried (a delivered one cannot be).
    const deliveriesDeadline = Date.now() + 20_000;
    let deliveries: any[] = [];
    while (Date.now() < deliveriesDeadline) {
      deliveries = (await expectStatus(200, 'GET', `/v1/deliveries?endpoint_id=${endpoint.id}&limit=100`)).data;
      if (deliveries.some((d) => d.status === 'succeeded') && receiver.received.some((r) => r.body.includes('"run.completed"'))) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const delivered = deliveries.find((d) => d.status === 'succeeded');
    expect(delivered, JSON.stringify(deliveries)).toBeDefined();
    await expectStatus(200, 'GET', `/v1/deliveries/${delivered.id}`);
    await expectStatus(200, 'GET', `/v1/deliveries?status=succeeded&job_id=${job.id}`);
    await expectStatus(400, 'POST', `/v1/deliveries/${delivered.id}/retry`);
    await expectStatus(404, 'POST', '/v1/deliveries/dlv_00000000000000000000000000000000/retry');
    await expectStatus(202, 'POST', `/v1/webhook-endpoints/${endpoint.id}/recover`, { since: Math.floor(Date.now() / 1000) - 3600 });
    await expectStatus(200, 'DELETE', `/v1/webhook-endpoints/${endpoint.id}`);
    await expectStatus(404, 'GET', `/v1/webhook-endpoints/${endpoint.id}`);

    for (const callback of receiver.received) {
      const body = JSON.parse(callback.body) as { type: string };
      contract.checkCallback(body.type.startsWith('run.') ? 'runEvent' : 'jobEvent', body);
    }
    expect(contract.hits.has('WEBHOOK jobEvent')).toBe(true);
    expect(contract.hits.has('WEBHOOK runEvent')).toBe(true);

    expect(contract.problems).toEqual([]);
    expect(contract.checked()).toBeGreaterThan(120);
    // The tour reaches every documented operation.
    const untouched = OPERATIONS.map((op) => `${op.method.toUpperCase()} ${op.path}`).filter((r) => !contract.hits.has(r));
    expect(untouched).toEqual([]);
  }, 120_000);
});
