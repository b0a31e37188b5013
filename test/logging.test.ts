/**
 * Logs: one JSON line per request with its request id (an incoming X-Request-Id is kept),
 * job_id / tenant_id / response_id on every job-related line, and no secret ever written:
 * API keys, the admin token and its session cookie, Basic credentials, the metrics token and
 * the webhook signing secret are exercised through real requests while every line (trace level)
 * of the API and the worker is captured.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '@longhaul/webhooks';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';

const ADMIN_TOKEN = 'adm_tok_0123456789abcdefSECRET';
const BASIC_PASSWORD = 'basic-pass-9876543210SECRET';
const METRICS_TOKEN = 'met_tok_0123456789abcdefSECRET';
const WRONG_KEY = 'lh_sk_wrong_key_0123456789SECRET';

let stack: Stack;
let receiver: Receiver;
const lines: string[] = [];
const records = () => lines.map((l) => JSON.parse(l) as Record<string, any>);

beforeAll(async () => {
  // The first delivery of each callback fails: the retry's log lines are captured too.
  const seen = new Set<string>();
  receiver = await startReceiver((req) => {
    const id = String(req.headers['webhook-id']);
    if (seen.has(id)) return 200;
    seen.add(id);
    return 500;
  });
  stack = await startStack({
    webhooks: true,
    logLevel: 'trace',
    logDestination: { write: (chunk: string) => void lines.push(...chunk.split('\n').filter(Boolean)) },
    api: { admin: { token: ADMIN_TOKEN, basicAuth: `ops:${BASIC_PASSWORD}` }, metricsToken: METRICS_TOKEN },
  });
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
});

describe('logs', () => {
  it('never contain a secret', async () => {
    // API key (valid and wrong), job traffic through the worker, signed webhooks from the simulator.
    const res = await stack.api('POST', '/v1/jobs', jobBody({}, 100));
    await stack.waitForJob(res.body.id, isTerminalJob);
    await stack.api('GET', '/v1/jobs', undefined, { authorization: `Bearer ${WRONG_KEY}` });
    // A forged webhook.
    const payload = JSON.stringify({ id: 'evt_forged', object: 'event', type: 'response.completed', data: { id: 'resp_x' } });
    await fetch(`${stack.apiUrl}/webhooks/openai`, {
      method: 'POST',
      headers: {
        ...signWebhook({ secrets: [`whsec_${Buffer.alloc(32, 1).toString('base64')}`], webhookId: 'wh_forged', payload, now: new Date() }),
        'content-type': 'application/json',
      },
      body: payload,
    });
    // Admin: bearer, Basic, a failed and a successful login, then the session cookie.
    await fetch(`${stack.apiUrl}/admin/jobs`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    await fetch(`${stack.apiUrl}/admin/jobs`, { headers: { authorization: `Basic ${Buffer.from(`ops:${BASIC_PASSWORD}`).toString('base64')}` } });
    await fetch(`${stack.apiUrl}/admin/login`, { method: 'POST', body: new URLSearchParams({ token: `${ADMIN_TOKEN}x`, next: '/admin/jobs' }), redirect: 'manual' });
    const login = await fetch(`${stack.apiUrl}/admin/login`, { method: 'POST', body: new URLSearchParams({ token: ADMIN_TOKEN, next: '/admin/jobs' }), redirect: 'manual' });
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const session = cookie.split('=')[1]!;
    expect((await fetch(`${stack.apiUrl}/admin/jobs`, { headers: { cookie } })).status).toBe(200);
    // Metrics token.
    expect((await fetch(`${stack.apiUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status).toBe(200);
    expect((await fetch(`${stack.apiUrl}/metrics`)).status).toBe(401);
    await new Promise((r) => setTimeout(r, 200));

    const all = lines.join('\n');
    expect(lines.length).toBeGreaterThan(10);
    expect(all).toContain('[redacted]');
    const secrets = {
      apiKey: stack.apiKey,
      wrongKey: WRONG_KEY,
      adminToken: ADMIN_TOKEN,
      basicPassword: BASIC_PASSWORD,
      basicHeader: Buffer.from(`ops:${BASIC_PASSWORD}`).toString('base64'),
      metricsToken: METRICS_TOKEN,
      session,
      webhookSecret: stack.webhookSecret,
      webhookSecretBytes: stack.webhookSecret.slice('whsec_'.length),
    };
    for (const [name, secret] of Object.entries(secrets)) expect(all.includes(secret), `${name} appears in the logs`).toBe(false);
  });

  it("never contain a job's input, instructions, metadata, output or callback body", async () => {
    const MARKER = 'walrus-obsidian-4417';
    const content = { input: `Plan the ${MARKER} expedition.`, instructions: `You are ${MARKER}.` };
    const ids: string[] = [];
    const submit = async (body: Record<string, unknown>, expected = 202) => {
      const res = await stack.api('POST', '/v1/jobs', body);
      expect(res.status, JSON.stringify(res.body)).toBe(expected);
      if (expected === 202) ids.push(res.body.id);
      return res;
    };
    // A job with a callback (delivered on its second attempt), a streamed one, one the provider
    // refuses with a message echoing the tenant's value, one cut short, and one deleted.
    await submit(jobBody({ ...content, callback_url: receiver.url, metadata: { sim_duration_ms: '50', note: MARKER } }));
    await submit(jobBody({ ...content, stream: true, metadata: { sim_duration_ms: '50', note: MARKER } }));
    await submit(jobBody({ ...content, metadata: { sim_duration_ms: '50', sim_outcome: MARKER } }));
    await submit(jobBody({ ...content, metadata: { sim_duration_ms: '50', sim_outcome: 'incomplete', note: MARKER } }));
    // A tool-call loop: the call waits for the tenant's output, which is the tenant's content too.
    const tool = { type: 'function', name: 'lookup', description: `Looks up ${MARKER}.`, parameters: { type: 'object', properties: {} }, strict: false };
    const looping = (await submit(jobBody({ ...content, tools: [tool], metadata: { sim_duration_ms: '50' } }))).body.id;
    const waiting = await stack.waitForJob(looping, (j) => j.status === 'requires_action' || isTerminalJob(j));
    const [call] = waiting.required_action.tool_calls;
    const answered = await stack.api('POST', `/v1/jobs/${looping}/tool_outputs`, { tool_outputs: [{ call_id: call.call_id, output: `The ${MARKER} ledger.` }] });
    expect(answered.status, JSON.stringify(answered.body)).toBe(200);
    // Refused by our own validation, with the tenant's text in the body.
    await submit({ ...jobBody(content), metadata: { note: 5, other: MARKER } }, 400);
    // The OpenAI-compatible surface: a synchronous create and a streamed one.
    const sync = await stack.api('POST', '/v1/responses', { model: 'o3', ...content, metadata: { note: MARKER } });
    expect(sync.status, JSON.stringify(sync.body)).toBe(200);
    const streamed = await fetch(`${stack.apiUrl}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'o3', ...content, stream: true, metadata: { sim_duration_ms: '50' } }),
    });
    expect(streamed.status).toBe(200);
    const sse = await streamed.text();
    const jobs = [];
    for (const id of ids) jobs.push(await stack.waitForJob(id, isTerminalJob));
    expect(
      jobs.map((j) => j.status),
      JSON.stringify(jobs.map((j) => j.error)),
    ).toEqual(['completed', 'completed', 'failed', 'incomplete', 'completed']);
    await new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const tick = () => (receiver.received.length >= 2 ? resolve() : Date.now() - started > 15_000 ? reject(new Error('callback not retried')) : setTimeout(tick, 50));
      tick();
    });
    expect((await stack.api('DELETE', `/v1/jobs/${jobs[0].id}`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));

    // What the tenant sent and what the model wrote: the marker, and a stretch of each output.
    const outputs = [...jobs.map((j) => j.output_text), sync.body.output?.at(-1)?.content?.[0]?.text].filter((t): t is string => typeof t === 'string' && t.length > 0);
    expect(outputs.length).toBeGreaterThanOrEqual(3);
    expect(sse).toContain('response.output_text.delta');
    const all = lines.join('\n');
    expect(all).toContain(jobs[0].id);
    expect(all.includes(MARKER), 'the tenant text appears in the logs').toBe(false);
    for (const text of outputs) expect(all.includes(text.slice(0, 40)), `output appears in the logs: ${text.slice(0, 40)}`).toBe(false);
  });

  it('has one line per request with its request id, incoming X-Request-Id kept', async () => {
    const res = await stack.api('GET', '/v1/jobs', undefined, { 'x-request-id': 'trace-abc.123' });
    expect(res.headers.get('x-request-id')).toBe('trace-abc.123');
    await new Promise((r) => setTimeout(r, 50));
    const requestLines = records().filter((r) => r.msg === 'request completed' && r.req?.url === '/v1/jobs');
    expect(requestLines.filter((r) => r.request_id === 'trace-abc.123')).toHaveLength(1);
    // Each key once per line (JSON with duplicate keys confuses log pipelines).
    const raw = lines.find((l) => l.includes('"request_id":"trace-abc.123"') && l.includes('request completed'))!;
    expect(raw.match(/"request_id":/g)).toHaveLength(1);
    const generated = await stack.api('GET', '/v1/jobs?limit=1');
    await new Promise((r) => setTimeout(r, 50));
    const id = generated.headers.get('x-request-id')!;
    expect(id).toMatch(/^req_[0-9a-f]{32}$/);
    expect(records().filter((r) => r.msg === 'request completed' && r.request_id === id)).toHaveLength(1);
  });

  it('puts job_id, tenant_id and response_id on every job-related line', async () => {
    const created = await stack.api('POST', '/v1/jobs', jobBody({}, 100));
    const job = await stack.waitForJob(created.body.id, isTerminalJob);
    await stack.api('GET', `/v1/jobs/${job.id}`);
    await new Promise((r) => setTimeout(r, 100));
    const about = records().filter((r) => r.job_id === job.id);
    expect(about.length).toBeGreaterThan(3);
    for (const r of about) expect(r.tenant_id, JSON.stringify(r)).toBe(stack.tenantId);
    // Request lines of the job's routes, and the worker's lines once the response exists.
    // The last read (earlier ones, made while waiting, ran before the response existed).
    const read = about.filter((r) => r.msg === 'request completed' && r.req?.url === `/v1/jobs/${job.id}`).at(-1);
    expect(read).toMatchObject({ job_id: job.id, tenant_id: stack.tenantId, response_id: job.response_id });
    const accepted = about.find((r) => r.msg === 'request completed' && r.req?.method === 'POST');
    expect(accepted).toMatchObject({ job_id: job.id, tenant_id: stack.tenantId });
    for (const r of about.filter((l) => ['response created', 'job status changed'].includes(l.msg))) expect(r.response_id).toBe(job.response_id);
    expect(about.some((r) => r.msg === 'job status changed')).toBe(true);
  });
});
