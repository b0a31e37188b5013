/**
 * OpenTelemetry end to end: a job submitted with a W3C `traceparent` is one trace, from the API
 * request through its submit and poll work items and provider calls to its callback delivery,
 * exported over OTLP/HTTP to a real receiver on loopback (the collector's protocol: POST
 * /v1/traces, JSON, as @opentelemetry/exporter-trace-otlp-http sends it). And untraced (no OTEL_*
 * variables) no SDK module is even loaded.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Telemetry, startTelemetry, tracingWanted } from '@longhaul/telemetry';
import { redactedUrl } from '@longhaul/callbacks';
import { type Stack, jobBody, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';
import { type AppProcess, spawnApp } from './app-process.ts';
import { workerTestEnv } from './worker-process.ts';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean>;
  status?: { code?: number };
  /** The exporting process's `service.name`. */
  service: string;
}

/** OTLP span kinds (SPAN_KIND_*). */
const KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;

interface OtlpReceiver {
  url: string;
  spans: OtlpSpan[];
  /** The raw request bodies (to check what never appears in an export). */
  bodies: string[];
  close(): Promise<void>;
}

type AnyValue = { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean };

function attributeValue(v: AnyValue): string | number | boolean {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  return v.boolValue ?? '';
}

/** A minimal OTLP/HTTP trace receiver: accepts ExportTraceServiceRequest JSON at POST /v1/traces. */
async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: OtlpSpan[] = [];
  const bodies: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        res.writeHead(404).end();
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      bodies.push(body);
      type Attribute = { key: string; value: AnyValue };
      const request = JSON.parse(body) as {
        resourceSpans: { resource?: { attributes?: Attribute[] }; scopeSpans: { spans: (Omit<OtlpSpan, 'attributes' | 'service'> & { attributes?: Attribute[] })[] }[] }[];
      };
      const record = (attributes: Attribute[] | undefined) => Object.fromEntries((attributes ?? []).map((a) => [a.key, attributeValue(a.value)]));
      for (const rs of request.resourceSpans) {
        const service = String(record(rs.resource?.attributes)['service.name'] ?? '');
        for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, attributes: record(s.attributes), service });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, spans, bodies, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// One SDK per process: this test process's (the in-process API and worker) exports to `otlp`, and
// so do the worker processes it spawns (they inherit the variables).
let otlp: OtlpReceiver;
let telemetry: Telemetry;
const saved = { ...process.env };
beforeAll(async () => {
  otlp = await startOtlpReceiver();
  // The standard variables, as an operator sets them (the SDK reads them itself).
  process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = `${otlp.url}/v1/traces`;
  process.env.OTEL_SERVICE_NAME = 'longhaul-telemetry-test';
  process.env.OTEL_BSP_SCHEDULE_DELAY = '100';
  telemetry = await startTelemetry({ serviceName: 'longhaul-test' });
});
afterAll(async () => {
  await telemetry?.shutdown();
  await otlp?.close();
  process.env = saved;
});

describe('a job is one trace, exported over OTLP/HTTP', () => {
  let stack: Stack;
  let receiver: Receiver;
  beforeAll(async () => {
    stack = await startStack();
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await stack?.stop();
    await receiver?.close();
  });

  it('carries the incoming traceparent through the API, the work items, the provider calls and the callback', async () => {
    expect(telemetry.enabled).toBe(true);
    const traceId = randomBytes(16).toString('hex');
    const clientSpanId = randomBytes(8).toString('hex');
    const callbackUrl = `${receiver.url}/hook?token=s3cret-callback-token`;
    const created = await stack.api('POST', '/v1/jobs', jobBody({ callback_url: callbackUrl, service_tier: 'default' }, 100), {
      traceparent: `00-${traceId}-${clientSpanId}-01`,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const jobId: string = created.body.id;
    const job = await stack.waitForJob(jobId, (j) => j.status === 'completed', 20_000);
    await until('the callback', () => receiver.received.length > 0);

    const ofJob = () => otlp.spans.filter((s) => s.attributes['longhaul.job_id'] === jobId);
    const spans = await until('the callback delivery spans', async () => {
      await telemetry.flush();
      const found = ofJob();
      return found.some((s) => s.name === 'longhaul.deliver_callback') && found.some((s) => s.name === 'POST' && s.kind === KIND.client) ? found : undefined;
    });
    const named = (name: string) => spans.filter((s) => s.name === name);
    const one = (name: string) => {
      const found = named(name);
      expect(found, `${name} in ${spans.map((s) => s.name).join(', ')}`).toHaveLength(1);
      return found[0]!;
    };

    // One trace: the client's.
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([traceId]));
    for (const s of spans) expect(s.attributes['longhaul.tenant_id'], s.name).toBe(stack.tenantId);

    // The API's server span, the child of the client's span.
    const api = one('POST /v1/jobs');
    expect(api.kind).toBe(KIND.server);
    expect(api.parentSpanId).toBe(clientSpanId);
    expect(api.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/v1/jobs', 'http.response.status_code': 202 });

    // The submit work item, the child of the request that enqueued it; the create beneath it.
    const submit = one('longhaul.submit');
    expect(submit.kind).toBe(KIND.consumer);
    expect(submit.parentSpanId).toBe(api.spanId);
    expect(submit.attributes).toMatchObject({ 'messaging.system': 'bullmq', 'messaging.destination.name': 'submit', 'messaging.operation.type': 'process' });
    const create = one('chat o3');
    expect(create.kind).toBe(KIND.client);
    expect(create.parentSpanId).toBe(submit.spanId);
    expect(create.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'o3',
      'gen_ai.response.id': job.response_id,
      'openai.request.service_tier': 'default',
      'openai.api.type': 'responses',
    });

    // Polls, children of the submit that scheduled them; the retrieve that found it completed carries the usage.
    const polls = named('longhaul.poll');
    expect(polls.length).toBeGreaterThanOrEqual(1);
    for (const poll of polls) {
      expect(poll.kind).toBe(KIND.consumer);
      expect(poll.parentSpanId).toBe(submit.spanId);
    }
    const retrieves = named('retrieve o3');
    expect(retrieves.length).toBeGreaterThanOrEqual(1);
    for (const r of retrieves) {
      expect(r.kind).toBe(KIND.client);
      expect(polls.map((p) => p.spanId)).toContain(r.parentSpanId);
      expect(r.attributes).toMatchObject({ 'gen_ai.operation.name': 'retrieve', 'gen_ai.provider.name': 'openai', 'gen_ai.response.id': job.response_id });
    }
    const finished = retrieves.find((r) => r.attributes['longhaul.response.status'] === 'completed');
    expect(finished, 'a retrieve that saw the response completed').toBeDefined();
    expect(finished!.attributes).toMatchObject({
      'gen_ai.usage.input_tokens': job.usage.input_tokens,
      'gen_ai.usage.output_tokens': job.usage.output_tokens,
      'gen_ai.usage.reasoning.output_tokens': job.usage.output_tokens_details.reasoning_tokens,
      'gen_ai.usage.cache_read.input_tokens': job.usage.input_tokens_details?.cached_tokens ?? 0,
    });
    expect(job.usage.output_tokens).toBeGreaterThan(0);

    // The callback: its delivery joins the job's trace under its root (the outbox knows no spans),
    // and its HTTP attempt names the URL without the token in its query.
    const deliver = one('longhaul.deliver_callback');
    expect(deliver.kind).toBe(KIND.consumer);
    expect(deliver.parentSpanId).toBe(api.spanId);
    const post = spans.find((s) => s.name === 'POST' && s.parentSpanId === deliver.spanId);
    expect(post?.kind).toBe(KIND.client);
    expect(post?.attributes).toMatchObject({ 'http.request.method': 'POST', 'url.full': `${receiver.url}/hook?token=REDACTED`, 'http.response.status_code': 200 });
    expect(otlp.bodies.join('\n')).not.toContain('s3cret-callback-token');

    // Every parent is a span of the trace, or the client's.
    const ids = new Set([...spans.map((s) => s.spanId), clientSpanId]);
    for (const s of spans) expect(ids.has(s.parentSpanId ?? ''), `${s.name}'s parent`).toBe(true);
    // The callback carried no trace header to the tenant's receiver.
    expect(receiver.received[0]!.headers.traceparent).toBeUndefined();
  });

  it('starts a new trace for a request without a traceparent, and ignores a malformed one', async () => {
    const before = otlp.spans.length;
    const created = await stack.api('POST', '/v1/jobs', jobBody({}, 50), { traceparent: '00-00000000000000000000000000000000-0000000000000000-01' });
    expect(created.status).toBe(202);
    await stack.waitForJob(created.body.id, (j) => j.status === 'completed', 20_000);
    const api = await until('the API span', async () => {
      await telemetry.flush();
      return otlp.spans.slice(before).find((s) => s.name === 'POST /v1/jobs' && s.attributes['longhaul.job_id'] === created.body.id);
    });
    expect(api.traceId).not.toBe('00000000000000000000000000000000');
    expect(api.parentSpanId ?? '').toBe('');
    const submit = await until('the submit span', async () => {
      await telemetry.flush();
      return otlp.spans.find((s) => s.name === 'longhaul.submit' && s.attributes['longhaul.job_id'] === created.body.id);
    });
    expect(submit.traceId).toBe(api.traceId);
  });
});

describe('webhook completion', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ webhooks: true, worker: { completionMode: 'webhook', poll: { safetyIntervalMs: 60_000 } } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("an OpenAI webhook (no traceparent) is processed in the job's trace, with the usage on its retrieve", async () => {
    const traceId = randomBytes(16).toString('hex');
    const created = await stack.api('POST', '/v1/jobs', jobBody({}, 100), { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` });
    expect(created.status).toBe(202);
    const job = await stack.waitForJob(created.body.id, (j) => j.status === 'completed', 20_000);
    const spans = await until('the webhook span', async () => {
      await telemetry.flush();
      const found = otlp.spans.filter((s) => s.attributes['longhaul.job_id'] === job.id);
      return found.some((s) => s.name === 'longhaul.process_webhook') && found.some((s) => s.name === 'retrieve o3') ? found : undefined;
    });
    for (const s of spans) expect(s.traceId, s.name).toBe(traceId);
    const api = spans.find((s) => s.name === 'POST /v1/jobs')!;
    const webhook = spans.find((s) => s.name === 'longhaul.process_webhook')!;
    expect(webhook.kind).toBe(KIND.consumer);
    expect(webhook.parentSpanId).toBe(api.spanId);
    expect(webhook.attributes['longhaul.webhook_event_type']).toBe('response.completed');
    expect(spans.some((s) => s.name === 'longhaul.poll')).toBe(false);
    const retrieve = spans.find((s) => s.name === 'retrieve o3' && s.parentSpanId === webhook.spanId);
    expect(retrieve?.attributes['gen_ai.usage.output_tokens']).toBe(job.usage.output_tokens);
  });
});

describe('across processes', () => {
  let stack: Stack;
  let worker: AppProcess | undefined;
  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
  });
  afterAll(async () => {
    worker?.child.kill('SIGTERM');
    await worker?.exited();
    await stack?.stop();
  });

  it("a worker process's spans join the trace the API started, through the work items in Redis", async () => {
    worker = spawnApp('worker', { ...workerTestEnv(stack), OTEL_SERVICE_NAME: 'longhaul-worker-process' });
    await worker.waitForLog('tracing on', (l) => l.code === 'tracing_enabled', 30_000);
    const traceId = randomBytes(16).toString('hex');
    const created = await stack.api('POST', '/v1/jobs', jobBody({}, 50), { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` });
    expect(created.status).toBe(202);
    await stack.waitForJob(created.body.id, (j) => j.status === 'completed', 30_000);
    const spans = await until('the worker process spans', async () => {
      await telemetry.flush();
      const found = otlp.spans.filter((s) => s.attributes['longhaul.job_id'] === created.body.id);
      return found.some((s) => s.name === 'longhaul.poll') ? found : undefined;
    });
    const api = spans.find((s) => s.name === 'POST /v1/jobs')!;
    expect(api.service).toBe('longhaul-telemetry-test');
    const submit = spans.find((s) => s.name === 'longhaul.submit')!;
    expect(submit.service).toBe('longhaul-worker-process');
    expect(submit.parentSpanId).toBe(api.spanId);
    for (const s of spans) expect(s.traceId, s.name).toBe(traceId);
  });
});

describe('untraced', () => {
  it('tracing is wanted only when the standard variables ask for an export', () => {
    expect(tracingWanted({})).toBe(false);
    expect(tracingWanted({ OTEL_SERVICE_NAME: 'x' })).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
  });

  it('redacts credentials and query values from a callback URL', () => {
    expect(redactedUrl('https://user:pw@example.com/hook?token=abc&x=1&x=2')).toBe('https://example.com/hook?token=REDACTED&x=REDACTED');
    expect(redactedUrl('not a url')).toBe('(unparsable)');
  });

  it('without OTEL_* variables, a process loads no SDK module and makes no span', () => {
    // A fresh process (this one has started the SDK), recording every @opentelemetry module it resolves.
    const hooks = `export async function resolve(specifier, context, next) {
      const resolved = await next(specifier, context);
      if (resolved.url.includes('/@opentelemetry/')) (await import('node:fs')).writeSync(2, 'LOADED ' + resolved.url + '\\n');
      return resolved;
    }`;
    const script = `
      import { register } from 'node:module';
      register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));
      const t = await import('@longhaul/telemetry');
      const telemetry = await t.startTelemetry({ serviceName: 'untraced' });
      let seen = 'none';
      await t.withSpan('x', {}, async (span) => { seen = span === undefined ? 'undefined' : 'span'; });
      const registered = Object.keys(globalThis[Symbol.for('opentelemetry.js.api.1')] ?? {});
      console.log(JSON.stringify({ enabled: telemetry.enabled, tracing: t.tracingEnabled(), seen, traceparent: t.currentTraceparent() ?? null, registered }));
    `;
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_')));
    const run = spawnSync(process.execPath, ['--conditions=@longhaul/source', '--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url).pathname,
      env,
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout.trim().split('\n').at(-1)!)).toEqual({ enabled: false, tracing: false, seen: 'undefined', traceparent: null, registered: [] });
    const loaded = run.stderr
      .split('\n')
      .filter((l) => l.startsWith('LOADED '))
      .map((l) => /\/@opentelemetry\/([^/]+)\//.exec(l)?.[1]);
    // The API package only (the no-op tracer): no SDK, exporter or resources.
    expect(loaded.length).toBeGreaterThan(0);
    expect(new Set(loaded)).toEqual(new Set(['api']));
  });
});
