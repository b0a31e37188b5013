/**
 * @longhaul/client against a real stack: typed calls, jobs.wait over SSE and by polling, jobs.stream
 * resuming after dropped connections, typed errors, callbacks.verify on a real signed callback,
 * and the committed OpenAPI snapshot being what the API serves.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthenticationError,
  BadRequestError,
  CallbackVerificationError,
  ConflictError,
  type Job,
  LonghaulError,
  NotFoundError,
  type StreamEvent,
  WaitTimeoutError,
  createClient,
} from '@longhaul/client';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { startReceiver } from './receiver.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

/** A fetch that records what it was asked (method and path) and lets a test break some requests. */
function recordingFetch(intercept?: (request: Request) => Promise<Response> | undefined) {
  const calls: string[] = [];
  const fetchImpl = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    calls.push(`${request.method} ${new URL(request.url).pathname}`);
    return intercept?.(request) ?? fetch(request);
  };
  return { calls, fetch: fetchImpl as typeof fetch };
}

const client = (options: { fetch?: typeof fetch; apiKey?: string } = {}) => createClient({ baseUrl: stack.apiUrl, apiKey: options.apiKey ?? stack.apiKey, fetch: options.fetch });

async function collect(events: AsyncIterable<StreamEvent>, limit = Number.POSITIVE_INFINITY): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of events) {
    out.push(event);
    if (out.length >= limit) break;
  }
  return out;
}

describe('typed calls', () => {
  it('creates, gets, lists and cancels jobs', async () => {
    const lh = client();
    const job = await lh.jobs.create(jobBody({}, 0), { idempotencyKey: `k-${Date.now()}` });
    expect(job).toMatchObject({ object: 'job', status: 'pending', model: 'o3' });
    expect((await lh.jobs.get(job.id)).id).toBe(job.id);
    const list = await lh.jobs.list({ limit: 50 });
    expect(list.object).toBe('list');
    expect(list.data.map((j) => j.id)).toContain(job.id);

    const long = await lh.jobs.create(jobBody({}, 100_000));
    const cancelled = await lh.jobs.cancel(long.id);
    expect(['cancelling', 'cancelled']).toContain(cancelled.status);
    expect((await lh.jobs.wait(long.id, { timeoutMs: 30_000 })).status).toBe('cancelled');
    const events = await lh.jobs.events(long.id);
    expect(events.data.map((e) => e.to)).toContain('cancelled');
  });

  it('throws typed errors carrying the status, code, param and request id', async () => {
    const lh = client();
    const bad = await lh.jobs.create({ ...jobBody(), no_such_field: 1 } as never).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(BadRequestError);
    expect(bad).toBeInstanceOf(LonghaulError);
    expect(bad).toMatchObject({ name: 'BadRequestError', status: 400, code: 'unknown_parameter', param: 'no_such_field', type: 'invalid_request_error' });
    expect((bad as LonghaulError).requestId).toEqual(expect.any(String));

    const missing = await lh.jobs.get('job_doesnotexist1234').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing).toMatchObject({ status: 404, param: 'id' });

    const done = await lh.jobs.create(jobBody({}, 0));
    await lh.jobs.wait(done.id, { timeoutMs: 30_000 });
    const conflict = await lh.jobs.cancel(done.id).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect(conflict).toMatchObject({ status: 409, code: 'job_already_finished' });

    const unauthorized = await client({ apiKey: 'lh_sk_not_a_key' })
      .jobs.list()
      .catch((e: unknown) => e);
    expect(unauthorized).toBeInstanceOf(AuthenticationError);
    expect(unauthorized).toMatchObject({ status: 401, code: 'invalid_api_key' });
  });

  it('reads prompts and usage', async () => {
    const lh = client();
    const prompt = await lh.prompts.create({ name: 'client-test', template: { model: 'o3', input: 'Say {{word}}' } });
    expect((await lh.prompts.get(prompt.id)).name).toBe('client-test');
    expect((await lh.prompts.list()).data.map((p) => p.id)).toContain(prompt.id);
    expect((await lh.prompts.versions(prompt.id)).data[0]).toMatchObject({ prompt_id: prompt.id, version: 1 });
    const usage = await lh.usage.get({ group_by: 'model' });
    expect(usage).toMatchObject({ object: 'usage', group_by: 'model' });
    expect(usage.data.find((r) => r.model === 'o3')?.jobs).toBeGreaterThan(0);
  });
});

describe('jobs.wait', () => {
  it('follows the job stream to the end (no polling)', async () => {
    const { calls, fetch } = recordingFetch();
    const lh = client({ fetch });
    const job = await lh.jobs.create(jobBody({}, 50_000));
    const seen: string[] = [];
    const done = await lh.jobs.wait(job.id, { timeoutMs: 30_000, onEvent: (e) => seen.push(e.type) });
    expect(done).toMatchObject({ id: job.id, status: 'completed', output_text: expect.any(String) });
    expect(seen.at(-1)).toBe('job.completed');
    // One stream, then one read of the final job.
    expect(calls.filter((c) => c.endsWith('/stream'))).toHaveLength(1);
    expect(calls.filter((c) => c === `GET /v1/jobs/${job.id}`)).toHaveLength(1);
  });

  it('falls back to polling when the stream cannot be opened', async () => {
    const { calls, fetch } = recordingFetch((request) => (request.url.endsWith('/stream') ? Promise.reject(new TypeError('fetch failed')) : undefined));
    const lh = client({ fetch });
    const job = await lh.jobs.create(jobBody({}, 300_000));
    const polled: string[] = [];
    const done = await lh.jobs.wait(job.id, { timeoutMs: 30_000, pollIntervalMs: 50, onPoll: (j) => polled.push(j.status) });
    expect(done.status).toBe('completed');
    expect(calls.filter((c) => c.endsWith('/stream')).length).toBeGreaterThanOrEqual(1);
    expect(polled.length).toBeGreaterThan(0);
  });

  it('falls back to polling when the server does not serve streams (a proxy answering 404 HTML)', async () => {
    const { fetch } = recordingFetch((request) => (request.url.endsWith('/stream') ? Promise.resolve(new Response('<html>nope</html>', { status: 404 })) : undefined));
    const done = await client({ fetch }).jobs.wait((await client().jobs.create(jobBody({}, 0))).id, { timeoutMs: 30_000, pollIntervalMs: 50 });
    expect(done.status).toBe('completed');
  });

  it('gives up after timeoutMs with a WaitTimeoutError, and stops at an abort', async () => {
    const lh = client();
    const job = await lh.jobs.create(jobBody({}, 1_000_000));
    const timedOut = await lh.jobs.wait(job.id, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(WaitTimeoutError);
    expect(timedOut).toMatchObject({ code: 'wait_timeout' });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('stop')), 200);
    await expect(lh.jobs.wait(job.id, { signal: controller.signal })).rejects.toThrow('stop');
    await lh.jobs.cancel(job.id);
  });
});

describe('jobs.stream', () => {
  it('resumes after the caller drops it: iterating again from the last id loses and repeats nothing', async () => {
    const lh = client();
    const job = await lh.jobs.create({ ...jobBody({}, 100_000), stream: true });
    const first = await collect(lh.jobs.stream(job.id), 6); // break: the connection is closed mid-stream
    expect(first).toHaveLength(6);
    const rest = await collect(lh.jobs.stream(job.id, { after: first.at(-1)!.id }));
    expect(rest.at(-1)!.type).toBe('job.completed');
    // The whole stream again, from its first event, now that the job has finished.
    const all = await collect(lh.jobs.stream(job.id));
    expect([...first, ...rest].map((e) => e.id)).toEqual(all.map((e) => e.id));
    expect(all.map((e) => e.type)).toContain('response.output_text.delta');
    const text = all.filter((e) => e.type === 'response.output_text.delta').map((e) => (e.data as { delta: string }).delta);
    expect(text.join('')).toBe(((await lh.jobs.get(job.id)) as Job).output_text);
  });

  it('reconnects by itself with Last-Event-ID when the connection breaks', async () => {
    const cursors: (string | null)[] = [];
    let connections = 0;
    const { fetch } = recordingFetch((request) => {
      if (!request.url.endsWith('/stream')) return undefined;
      cursors.push(request.headers.get('last-event-id'));
      connections += 1;
      if (connections > 1) return undefined;
      // The first connection breaks after a few chunks, as a dropped network would.
      return globalThis.fetch(request).then((res) => {
        const reader = res.body!.getReader();
        let chunks = 0;
        const broken = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const { value, done } = await reader.read();
            if (done || ++chunks > 4) {
              await reader.cancel();
              controller.error(new TypeError('terminated'));
              return;
            }
            controller.enqueue(value);
          },
        });
        return new Response(broken, { status: res.status, headers: res.headers });
      });
    });
    const job = await client().jobs.create({ ...jobBody({}, 100_000), stream: true });
    const events = await collect(client({ fetch }).jobs.stream(job.id, { reconnectDelayMs: 10 }));
    expect(connections).toBeGreaterThanOrEqual(2);
    expect(cursors[0]).toBeNull();
    expect(cursors[1]).toEqual(expect.any(String));
    expect(events.at(-1)!.type).toBe('job.completed');
    const ids = events.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual((await collect(client().jobs.stream(job.id))).map((e) => e.id));
  });

  it('ends at once for a cursor past the end (204)', async () => {
    const lh = client();
    const job = await lh.jobs.create(jobBody({}, 0));
    await stack.waitForJob(job.id, isTerminalJob);
    const all = await collect(lh.jobs.stream(job.id));
    expect(await collect(lh.jobs.stream(job.id, { after: all.at(-1)!.id }))).toEqual([]);
  });
});

describe('callbacks.verify', () => {
  it('accepts a real signed callback and rejects a tampered or forged one', async () => {
    const receiver = await startReceiver();
    try {
      const lh = client();
      const job = await lh.jobs.create(jobBody({ callback_url: receiver.url }, 0));
      await lh.jobs.wait(job.id, { timeoutMs: 30_000 });
      const deadline = Date.now() + 15_000;
      while (receiver.received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const [callback] = receiver.received;
      expect(callback).toBeDefined();
      const { body: secret } = await stack.api('GET', '/v1/callback-secret');

      const event = lh.callbacks.verify(callback!.body, callback!.headers, secret.secret);
      expect(event).toMatchObject({ type: 'job.completed', data: { id: job.id, status: 'completed' } });
      // Headers as fetch gives them, bytes as a server reads them, and a rotation's list of secrets.
      const headers = new Headers(callback!.headers as Record<string, string>);
      const bytes = new TextEncoder().encode(callback!.body);
      expect(lh.callbacks.verify(bytes, headers, ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', secret.secret]).id).toBe(event.id);

      const tampered = callback!.body.replace('"completed"', '"failed"');
      expect(tampered).not.toBe(callback!.body);
      const refused = (() => {
        try {
          lh.callbacks.verify(tampered, callback!.headers, secret.secret);
        } catch (err) {
          return err;
        }
      })();
      expect(refused).toBeInstanceOf(CallbackVerificationError);
      expect(refused).toMatchObject({ code: 'invalid_signature' });
      expect(() => lh.callbacks.verify(callback!.body, callback!.headers, 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toThrow(CallbackVerificationError);
    } finally {
      await receiver.close();
    }
  });
});

describe('the client core', () => {
  it('uses nothing Node-only (it runs in browsers): no node: modules, process or Buffer outside the CLI', () => {
    const src = path.join(path.dirname(createRequire(import.meta.url).resolve('@longhaul/client/openapi.json')), 'src');
    const core = readdirSync(src).filter((f) => f.endsWith('.ts') && f !== 'cli.ts');
    expect(core).toContain('client.ts');
    for (const file of core) {
      const code = readFileSync(path.join(src, file), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      expect(code, file).not.toMatch(/from 'node:|\bprocess\.|\bBuffer\b|require\(/);
    }
  });
});

describe('the OpenAPI snapshot the client is generated from', () => {
  it('is what the API serves at GET /openapi.json (if not: `npm run generate` in packages/client)', async () => {
    const res = await fetch(`${stack.apiUrl}/openapi.json`);
    expect(res.status).toBe(200);
    const served = await res.json();
    const snapshot = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('@longhaul/client/openapi.json'), 'utf8'));
    expect(snapshot).toEqual(served);
  });
});
