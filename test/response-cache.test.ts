/**
 * Response caching through the API with real services: an identical request of the same tenant
 * is answered from the earlier job's result with no provider call (the simulator's create count
 * says so), marked `cached_from`, at no cost, with the same callbacks as any job; anything the
 * model is asked differently misses; other tenants miss; 50 identical concurrent submissions make
 * one provider call (single flight); tools, continuations and sources that did not complete are
 * never reused; entries expire, can be cleared, and go with their erased source.
 */
import { createTenant, setTenantLimits } from '@longhaul/db';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, isTerminalJob, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';

let stack: Stack;
let receiver: Receiver;
beforeAll(async () => {
  stack = await startStack();
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await stack?.stop();
});

let n = 0;
/** A request no other test sends (the cache is per tenant and request). */
function body(overrides: Record<string, unknown> = {}, durationMs = 20) {
  n += 1;
  return { model: 'o3', input: `Plan bridge number ${n} of ${Date.now()}.`, reasoning: { effort: 'low' }, metadata: { sim_duration_ms: String(durationMs) }, ...overrides };
}

const creates = async () => (await stack.simApi('GET', '/sim/stats')).creates as number;

async function run(request: Record<string, unknown>, headers?: Record<string, string>) {
  const res = await stack.api('POST', '/v1/jobs', request, headers);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return stack.waitForJob(res.body.id, isTerminalJob);
}

describe('response cache', () => {
  it('answers an identical request from the earlier result, with no provider call and no cost', async () => {
    const request = body({ cache: { ttl_seconds: 3600 } });
    const first = await run(request);
    expect(first.status).toBe('completed');
    expect(first.cached_from).toBeNull();
    const before = await creates();
    // Key order and Longhaul-only or delivery-only fields do not matter.
    const { input, model, ...rest } = request;
    const second = await run({ ...rest, metadata: { other: 'label' }, input, model, callback_url: receiver.url });
    expect(await creates()).toBe(before);
    expect(second).toMatchObject({ status: 'completed', cached_from: first.id, output_text: first.output_text, usage: first.usage, cost_usd: 0, response_id: null });
    expect(second.saved_usd).toBe(first.cost_usd);
    expect(second.reasoning_summary).toEqual(first.reasoning_summary);
    // Its callback goes out as any job's.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !receiver.received.some((r) => r.body.includes(second.id))) await new Promise((r) => setTimeout(r, 50));
    expect(receiver.received.some((r) => r.body.includes(second.id) && r.body.includes('job.completed'))).toBe(true);
    const events = await stack.api('GET', `/v1/jobs/${second.id}/events`);
    expect(events.body.data.at(-1)).toMatchObject({ from: 'pending', to: 'completed', source: 'cache', details: { cached_from: first.id } });
  });

  it('misses on any change to what the model is asked, and never caches a job that asks not to be', async () => {
    const request = body({ cache: { ttl_seconds: 3600 } });
    await run(request);
    const before = await creates();
    for (const changed of [
      { ...request, input: `${request.input} Now.` },
      { ...request, model: 'o4-mini' },
      { ...request, reasoning: { effort: 'high' } },
      { ...request, instructions: 'Be brief.' },
      { ...request, max_output_tokens: 4000 },
    ]) {
      const job = await run(changed);
      expect(job.cached_from).toBeNull();
    }
    const optedOut = await run({ ...request, cache: false });
    expect(optedOut.cached_from).toBeNull();
    const unasked = await run({ ...request, cache: undefined });
    expect(unasked.cached_from).toBeNull();
    expect(await creates()).toBe(before + 7);
  });

  it("scopes entries to their tenant: another tenant's identical request runs", async () => {
    const request = body({ cache: { ttl_seconds: 3600 } });
    await run(request);
    const other = await createTenant(stack.db.db, 'other tenant');
    const before = await creates();
    const res = await stack.api('POST', '/v1/jobs', request, { authorization: `Bearer ${other.apiKey}` });
    let job = res.body;
    while (!isTerminalJob(job)) {
      await new Promise((r) => setTimeout(r, 50));
      job = (await stack.api('GET', `/v1/jobs/${job.id}`, undefined, { authorization: `Bearer ${other.apiKey}` })).body;
    }
    expect(job.cached_from).toBeNull();
    expect(await creates()).toBe(before + 1);
  });

  it('makes one provider call for 50 identical concurrent submissions (single flight)', async () => {
    const request = body({ cache: { ttl_seconds: 3600 } }, 2_000);
    const before = await creates();
    const submitted = await Promise.all(Array.from({ length: 50 }, () => stack.api('POST', '/v1/jobs', request)));
    for (const res of submitted) expect(res.status).toBe(202);
    const jobs = await stack.waitForAll(
      submitted.map((r) => r.body.id),
      isTerminalJob,
      30_000,
    );
    expect(await creates()).toBe(before + 1);
    const sources = jobs.filter((j) => j.cached_from === null);
    expect(sources).toHaveLength(1);
    for (const job of jobs) expect(job).toMatchObject({ status: 'completed', output_text: sources[0].output_text });
    expect(jobs.filter((j) => j.cached_from === sources[0].id)).toHaveLength(49);
  });

  it('lets waiters run themselves when the source does not complete, and never reuses a failed source', async () => {
    const request = body({ cache: { ttl_seconds: 3600 }, metadata: { sim_duration_ms: '2000', sim_outcome: 'failed' } });
    const before = await creates();
    const [a, b] = await Promise.all([stack.api('POST', '/v1/jobs', request), stack.api('POST', '/v1/jobs', request)]);
    const [ja, jb] = await stack.waitForAll([a.body.id, b.body.id], isTerminalJob, 30_000);
    // Both ran (the waiter after the source failed), both failed at the provider.
    expect([ja.status, jb.status]).toEqual(['failed', 'failed']);
    expect(await creates()).toBe(before + 2);
    const again = await run(request);
    expect(again.cached_from).toBeNull();
    expect(again.status).toBe('failed');
  });

  it('never caches tools or continuations, unless continuations are allowed', async () => {
    const tools = body({ cache: { ttl_seconds: 3600 }, tools: [{ type: 'function', name: 'lookup', parameters: { type: 'object', properties: {} } }] });
    await run(tools);
    expect((await run(tools)).cached_from).toBeNull();
    const first = await run(body());
    const continuation = body({ cache: { ttl_seconds: 3600 }, previous_job_id: first.id });
    await run(continuation);
    expect((await run(continuation)).cached_from).toBeNull();
    const allowed = { ...continuation, cache: { ttl_seconds: 3600, continuations: true } };
    const source = await run(allowed);
    expect((await run(allowed)).cached_from).toBe(source.id);
  });

  it('expires entries after their TTL, and DELETE /v1/cache clears them', async () => {
    const short = body({ cache: { ttl_seconds: 1 } });
    await run(short);
    await new Promise((r) => setTimeout(r, 1_600));
    expect((await run(short)).cached_from).toBeNull();

    const long = body({ cache: { ttl_seconds: 3600 } });
    await run(long);
    const cleared = await stack.api('DELETE', '/v1/cache');
    expect(cleared.status).toBe(200);
    expect(cleared.body.deleted).toBeGreaterThan(0);
    expect((await run(long)).cached_from).toBeNull();
  });

  it("takes a prompt version's default, and a tenant's", async () => {
    const prompt = await stack.api('POST', '/v1/prompts', {
      name: 'cached-planner',
      cache: { ttl_seconds: 3600 },
      template: { model: 'o3', reasoning: { effort: 'low' }, input: 'Plan {{thing}}, at {{at}}.' },
    });
    expect(prompt.status, JSON.stringify(prompt.body)).toBe(201);
    const request = { prompt: { id: prompt.body.id, variables: { thing: 'a bridge', at: String(Date.now()) } }, metadata: { sim_duration_ms: '20' } };
    const source = await run(request);
    expect((await run(request)).cached_from).toBe(source.id);
    // Clearing one prompt's entries.
    expect((await stack.api('DELETE', `/v1/cache?prompt_id=${prompt.body.id}&version=1`)).body.deleted).toBe(1);

    const tenant = await createTenant(stack.db.db, 'caching tenant');
    await setTenantLimits(stack.db.db, tenant.tenantId, { cacheTtlSeconds: 3600 });
    const auth = { authorization: `Bearer ${tenant.apiKey}` };
    const asTenant = async (req: Record<string, unknown>) => {
      const res = await stack.api('POST', '/v1/jobs', req, auth);
      let job = res.body;
      while (!isTerminalJob(job)) {
        await new Promise((r) => setTimeout(r, 50));
        job = (await stack.api('GET', `/v1/jobs/${job.id}`, undefined, auth)).body;
      }
      return job;
    };
    const plain = body();
    const first = await asTenant(plain);
    expect((await asTenant(plain)).cached_from).toBe(first.id);
    const usage = await stack.api('GET', '/v1/usage', undefined, auth);
    expect(usage.body.total).toMatchObject({ jobs: 2, cached_jobs: 1 });
    expect(usage.body.total.saved_usd).toBe(usage.body.total.cost_usd);
  });

  it('answers through the OpenAI-compatible surface too, and an erased source answers no more', async () => {
    const client = new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.apiUrl}/v1`, maxRetries: 0 });
    const params = { model: 'o3', input: `Plan a tunnel ${Date.now()}.`, metadata: { sim_duration_ms: '20' } };
    const first = await client.responses.create(params, { headers: { 'Longhaul-Cache-Ttl': '3600' } });
    const second = await client.responses.create(params, { headers: { 'Longhaul-Cache-Ttl': '3600' } });
    expect(second.output_text).toBe(first.output_text);
    const job = await stack.api('GET', `/v1/jobs/${second.metadata?.longhaul_job_id}`);
    expect(job.body.cached_from).toBe(first.metadata?.longhaul_job_id);
    // A streamed hit: the events a finished response has, from its row.
    const stream = await client.responses.create({ ...params, stream: true }, { headers: { 'Longhaul-Cache-Ttl': '3600' } });
    const types: string[] = [];
    let streamedText = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.completed')
        streamedText = event.response.output
          .flatMap((item) => (item.type === 'message' ? item.content : []))
          .map((c) => (c.type === 'output_text' ? c.text : ''))
          .join('');
    }
    expect(types).toEqual(['response.created', 'response.completed']);
    expect(streamedText).toBe(first.output_text);
    await client.responses.delete(first.id);
    const third = await client.responses.create(params, { headers: { 'Longhaul-Cache-Ttl': '3600' } });
    const thirdJob = await stack.api('GET', `/v1/jobs/${third.metadata?.longhaul_job_id}`);
    expect(thirdJob.body.cached_from).toBeNull();
  });
});
