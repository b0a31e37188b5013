/**
 * What the README promises about a job's life, each checked from outside the code that keeps it:
 * the API's job object and event log, the simulator's own record of the requests it received
 * (`GET /sim/request-log`, `/sim/stats`), the callbacks a real receiver got, the admin timeline.
 *
 * - a job whose deadline passes while the provider still works on it ends `expired` (`job_expired`),
 *   its response is cancelled, and callbacks announce `job.expired`;
 * - a create failing until the retries run out (by count or by time) fails the job with
 *   `provider_unavailable`, and each of Longhaul's attempts is one HTTP request (the SDK never
 *   retries a create);
 * - a response the provider forgets fails the job with `response_not_found`;
 * - a duplicate create after a crash: the job runs on the second response, the first runs to its
 *   end, and its webhook is recorded as a superseded response;
 * - idempotency keys expire after the configured TTL;
 * - PROVIDER_RATE_LIMIT_PER_SECOND caps creates across all workers;
 * - an inline file whose automatic upload fails is sent inline and the job completes;
 * - a finished job's event stream expires after the retention.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';
import { readSse } from './sse.ts';
import { exited, spawnWorker } from './worker-process.ts';

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Arrival {
  seq: number;
  at_ms: number;
  method: string;
  path: string;
  status: number | null;
  job_id: string | null;
}

/** The simulator's own log of the requests it received. */
const arrivals = async (stack: Stack): Promise<Arrival[]> => (await stack.simApi('GET', '/sim/request-log')).data;
const createsOf = async (stack: Stack, jobId: string) => (await arrivals(stack)).filter((a) => a.method === 'POST' && a.path === '/v1/responses' && a.job_id === jobId);

/** Spawned worker processes, killed when the file ends. */
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(children.map(exited));
});
function spawn(stack: Stack, env: Record<string, string> = {}): ChildProcess {
  const child = spawnWorker(stack, stack.redisUrl, env);
  children.push(child);
  return child;
}

describe('a job whose deadline passes while the provider is still working', () => {
  let stack: Stack;
  let receiver: Receiver;
  beforeAll(async () => {
    // A 3 s deadline; the sweeper runs every 0.5 s (FAST_WORKER_CONFIG).
    stack = await startStack({ api: { jobDeadlineMs: 3_000 } });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await stack?.stop();
    await receiver?.close();
  });

  it('ends expired with job_expired, its response cancelled at the provider, and callbacks announce job.expired', async () => {
    const endpoint = (await stack.api('POST', '/v1/webhook-endpoints', { url: receiver.url })).body;
    const own = await startReceiver();
    try {
      // 20 simulated minutes: about 12 s at the stack's time scale, far past the deadline.
      const created = await stack.api('POST', '/v1/jobs', jobBody({ callback_url: own.url }, 1_200_000));
      expect(created.status).toBe(202);
      const job = created.body;
      expect(job.expires_at - job.created_at).toBeGreaterThanOrEqual(1);
      // It reached the provider before its deadline.
      await stack.waitForJob(job.id, (j) => j.status === 'queued' || j.status === 'in_progress');

      const expired = await stack.waitForJob(job.id, isTerminalJob, 15_000);
      expect(expired.status).toBe('expired');
      expect(expired.error).toEqual({ code: 'job_expired', message: expect.any(String) });
      expect(expired.output_text).toBeNull();

      const events = (await stack.api('GET', `/v1/jobs/${job.id}/events`)).body.data;
      const last = events.at(-1);
      expect(last).toMatchObject({ to: 'expired', source: 'sweeper' });
      expect(['queued', 'in_progress']).toContain(last.from);
      // Not before the deadline (3 s after the job was accepted).
      expect(Date.parse(last.at) - Date.parse(events[0].at)).toBeGreaterThanOrEqual(3_000);

      // The provider was told to stop: nothing keeps running (and billing) for an expired job.
      const response = await until('the response cancelled at the provider', async () => {
        const r = await fetch(`${stack.simUrl}/v1/responses/${expired.response_id}`, { headers: { authorization: 'Bearer sk-test' } }).then((x) => x.json());
        return r.status === 'cancelled' ? r : null;
      });
      expect(response.status).toBe('cancelled');

      // The endpoint and the job's own callback_url both receive job.expired, signed.
      const { body: secret } = await stack.api('GET', '/v1/callback-secret');
      for (const [rx, key] of [
        [receiver, endpoint.secret],
        [own, secret.secret],
      ] as const) {
        const delivery = await until('job.expired callback', async () => rx.received[0]);
        const event = new Webhook(key).verify(delivery.body, delivery.headers as Record<string, string>) as any;
        expect(event).toMatchObject({ type: 'job.expired', data: { id: job.id, status: 'expired', error: { code: 'job_expired' } } });
      }
      // Terminal is sticky: the provider's cancellation does not move the job again.
      expect((await stack.api('GET', `/v1/jobs/${job.id}`)).body.status).toBe('expired');
      const terminal = (await stack.api('GET', `/v1/jobs/${job.id}/events`)).body.data.filter((e: any) =>
        ['completed', 'failed', 'cancelled', 'incomplete', 'expired'].includes(e.to),
      );
      expect(terminal).toHaveLength(1);
    } finally {
      await own.close();
    }
  });
});

describe('a create that keeps failing', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Creates always answer 500; retrieves and cancels work.
    stack = await startStack({ startWorker: false, sim: { error_rate: 1, fault_endpoints: ['create'] } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('fails the job with provider_unavailable once SUBMIT_MAX_ATTEMPTS are used, one HTTP request per attempt (the SDK never retries a create)', async () => {
    // A real worker process, wired as in production: its provider client lets the SDK retry
    // reads (2 retries by default), so a create retried by the SDK would show up here as 3
    // requests per attempt.
    const worker = spawn(stack, { SUBMIT_MAX_ATTEMPTS: '3', RETRY_BASE_MS: '50', RETRY_MAX_MS: '100' });
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
    const failed = await stack.waitForJob(job.id, isTerminalJob, 30_000);
    expect(failed.status).toBe('failed');
    expect(failed.error).toEqual({ code: 'provider_unavailable', message: expect.stringContaining('after 3 attempts') });
    expect(failed.response_id).toBeNull();

    const creates = await createsOf(stack, job.id);
    expect(creates.map((c) => c.status)).toEqual([500, 500, 500]);
    expect((await stack.simApi('GET', '/sim/stats')).errors).toBe(3);
    const { rows } = await stack.db.pool.query<{ submit_attempts: number }>('select submit_attempts from jobs where id = $1', [job.id]);
    expect(rows[0]!.submit_attempts).toBe(3);
    worker.kill('SIGTERM');
    await exited(worker);
  });

  it('honours a SUBMIT_MAX_ATTEMPTS above 50 too: the job fails after exactly that many creates', async () => {
    const many = await startStack({ sim: { error_rate: 1, fault_endpoints: ['create'] }, worker: { retry: { baseMs: 10, maxMs: 20, maxAttempts: 55, maxElapsedMs: 600_000 } } });
    try {
      const { body: job } = await many.api('POST', '/v1/jobs', jobBody({}, 0));
      const failed = await many.waitForJob(job.id, isTerminalJob, 30_000);
      expect(failed.status).toBe('failed');
      expect(failed.error).toEqual({ code: 'provider_unavailable', message: expect.stringContaining('after 55 attempts') });
      expect(await createsOf(many, job.id)).toHaveLength(55);
    } finally {
      await many.stop();
    }
  });

  it('fails the job with provider_unavailable once SUBMIT_RETRY_WINDOW_SECONDS has passed since the first failed create', async () => {
    const windowed = await startStack({
      sim: { error_rate: 1, fault_endpoints: ['create'] },
      worker: { retry: { baseMs: 100, maxMs: 200, maxAttempts: 1_000, maxElapsedMs: 1_500 } },
    });
    try {
      const { body: job } = await windowed.api('POST', '/v1/jobs', jobBody({}, 0));
      const failed = await windowed.waitForJob(job.id, isTerminalJob, 20_000);
      expect(failed.status).toBe('failed');
      expect(failed.error.code).toBe('provider_unavailable');
      const creates = await createsOf(windowed, job.id);
      expect(creates.length).toBeGreaterThan(2);
      expect(creates.every((c) => c.status === 500)).toBe(true);
      // It kept trying for the whole window: the last create the simulator saw came the window
      // after the first (less the moments between a turn's start, which the window counts from,
      // and its request's arrival).
      expect(creates.at(-1)!.at_ms - creates[0]!.at_ms).toBeGreaterThanOrEqual(1_500 - 100);
      const events = (await windowed.api('GET', `/v1/jobs/${job.id}/events`)).body.data;
      expect(events.at(-1)).toMatchObject({ from: 'pending', to: 'failed', source: 'submit' });
    } finally {
      await windowed.stop();
    }
  });
});

describe('a response the provider forgets', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('fails the job with response_not_found', async () => {
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 1_200_000));
    const atProvider = await stack.waitForJob(job.id, (j) => j.status === 'queued' || j.status === 'in_progress');
    // The simulator forgets every response (as OpenAI does after its retention).
    await stack.simApi('POST', '/sim/reset', {});
    const failed = await stack.waitForJob(job.id, isTerminalJob, 15_000);
    expect(failed.status).toBe('failed');
    expect(failed.error).toEqual({ code: 'response_not_found', message: expect.stringContaining(atProvider.response_id) });
    // What the provider answered: a 404 for that response.
    const asked = (await arrivals(stack)).filter((a) => a.path === `/v1/responses/${atProvider.response_id}`);
    expect(asked.map((a) => a.status)).toContain(404);
    const events = (await stack.api('GET', `/v1/jobs/${job.id}/events`)).body.data;
    expect(events.at(-1)).toMatchObject({ to: 'failed', source: 'poll' });
  });
});

describe('a duplicate create after a worker crash', () => {
  const ADMIN_TOKEN = 'admin_token_for_promise_tests_0123';
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ startWorker: false, webhooks: true, api: { admin: { token: ADMIN_TOKEN } } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('runs the job on the second response; the first runs to its end and its webhook is recorded as superseded', async () => {
    // The provider makes the response at once but answers the create 30 s later: the crash window.
    await stack.simApi('POST', '/sim/config', { create_answer_delay_ms: 30_000 });
    const first = spawn(stack);
    // About 8 s of provider time: the first response finishes after the second is committed.
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 800_000));
    await until('the first create at the provider', async () => (await createsOf(stack, job.id)).length === 1);
    first.kill('SIGKILL');
    await exited(first);
    await stack.simApi('POST', '/sim/config', { create_answer_delay_ms: 0 });
    spawn(stack);

    const done = await stack.waitForJob(job.id, isTerminalJob, 40_000);
    expect(done.status).toBe('completed');
    const creates = await createsOf(stack, job.id);
    expect(creates).toHaveLength(2);
    const stats = await stack.simApi('GET', '/sim/stats');
    expect(stats.creates_by_job[job.id]).toBe(2);
    const responses = Object.keys(stats.by_response);
    const superseded = responses.find((id) => id !== done.response_id)!;
    expect(responses).toHaveLength(2);

    // The first response was not cancelled: it ran to its end at the provider (and is billed).
    const extra = await fetch(`${stack.simUrl}/v1/responses/${superseded}`, { headers: { authorization: 'Bearer sk-test' } }).then((r) => r.json());
    expect(extra).toMatchObject({ status: 'completed', metadata: { longhaul_job_id: job.id } });

    // Its webhook is recorded against the job as a superseded response, and the admin timeline shows it.
    const inbox = await until('the superseded webhook settled', async () => {
      const { rows } = await stack.db.pool.query<{ status: string; job_id: string; note: string }>('select status, job_id, note from webhook_inbox where response_id = $1', [
        superseded,
      ]);
      return rows[0]?.status === 'orphan' ? rows[0] : null;
    });
    expect(inbox).toEqual({ status: 'orphan', job_id: job.id, note: 'superseded response (duplicate create)' });
    const page = await (await fetch(`${stack.apiUrl}/admin/jobs/${job.id}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    expect(page).toContain('superseded response (duplicate create)');
    expect(page).toMatch(/Provider creates \/ polls<\/dt><dd>2 \//);
    // The job's own response's webhook was applied as usual; one terminal event.
    const terminal = (await stack.api('GET', `/v1/jobs/${job.id}/events`)).body.data.filter((e: any) => e.to === 'completed');
    expect(terminal).toHaveLength(1);
  });
});

describe('idempotency keys', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ startWorker: false, api: { idempotencyTtlMs: 1_000 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('expire after the configured TTL: the same key then creates a new job', async () => {
    const headers = { 'Idempotency-Key': 'ttl-key-1' };
    const body = jobBody({ input: 'idempotency ttl' });
    const sentAt = Date.now();
    const first = await stack.api('POST', '/v1/jobs', body, headers);
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const replay = await stack.api('POST', '/v1/jobs', body, headers);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.id).toBe(first.body.id);

    // Repeat until the key is forgotten: each repeat before then is a replay.
    const fresh = await until(
      'the key to expire',
      async () => {
        const res = await stack.api('POST', '/v1/jobs', body, headers);
        expect(res.status).toBe(202);
        return res.headers.get('idempotent-replayed') === null ? res : null;
      },
      10_000,
    );
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(1_000);
    expect(fresh.body.id).not.toBe(first.body.id);
    // The key now stands for the new job (and its body) for another TTL.
    const again = await stack.api('POST', '/v1/jobs', body, headers);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.id).toBe(fresh.body.id);
    expect((await stack.api('POST', '/v1/jobs', jobBody({ input: 'another body' }), headers)).status).toBe(422);
    // Both jobs exist.
    expect((await stack.api('GET', `/v1/jobs/${first.body.id}`)).status).toBe(200);
  });
});

describe('PROVIDER_RATE_LIMIT_PER_SECOND', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('caps response creates per second across all workers, measured at the provider', async () => {
    const PER_SECOND = 5;
    const JOBS = 30;
    const workers = [spawn(stack, { PROVIDER_RATE_LIMIT_PER_SECOND: String(PER_SECOND) }), spawn(stack, { PROVIDER_RATE_LIMIT_PER_SECOND: String(PER_SECOND) })];
    const ids: string[] = [];
    for (const res of await Promise.all(Array.from({ length: JOBS }, (_, i) => stack.api('POST', '/v1/jobs', jobBody({ input: `rate ${i}` }, 0))))) ids.push(res.body.id);
    const done = await stack.waitForAll(ids, isTerminalJob, 60_000);
    expect(done.every((j) => j.status === 'completed')).toBe(true);

    const creates = (await arrivals(stack)).filter((a) => a.method === 'POST' && a.path === '/v1/responses').map((a) => a.at_ms);
    expect(creates).toHaveLength(JOBS);
    creates.sort((a, b) => a - b);
    // The limiter admits at most PER_SECOND creates per one-second window, each window starting
    // after the last one ended: JOBS creates need at least ceil(JOBS / PER_SECOND) windows. From
    // the second window on (the first may include a cold worker's slow first requests), the last
    // create comes at least (windows - 2) s after the (PER_SECOND + 1)-th, and any 2 × PER_SECOND
    // consecutive creates after it span at least a second. The slack covers the moment between a
    // work item being admitted and its request reaching the simulator (a few hundred ms on a busy
    // machine).
    const SLACK_MS = 500;
    const fromSecondWindow = creates.slice(PER_SECOND);
    expect(fromSecondWindow.at(-1)! - fromSecondWindow[0]!).toBeGreaterThanOrEqual((Math.ceil(JOBS / PER_SECOND) - 2) * 1_000 - SLACK_MS);
    for (let i = 0; i + 2 * PER_SECOND < fromSecondWindow.length; i++) {
      expect(fromSecondWindow[i + 2 * PER_SECOND]! - fromSecondWindow[i]!).toBeGreaterThanOrEqual(1_000 - SLACK_MS);
    }
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map(exited));
  });
});

describe('a PROVIDER_RATE_LIMIT_PER_SECOND below one', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('is a create every 1 / limit seconds, not one a second', async () => {
    const worker = spawn(stack, { PROVIDER_RATE_LIMIT_PER_SECOND: '0.5' });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await stack.api('POST', '/v1/jobs', jobBody({ input: `slow rate ${i}` }, 0))).body.id);
    await stack.waitForAll(ids, isTerminalJob, 30_000);
    const creates = (await arrivals(stack))
      .filter((a) => a.method === 'POST' && a.path === '/v1/responses')
      .map((a) => a.at_ms)
      .sort((a, b) => a - b);
    expect(creates).toHaveLength(4);
    // One create per 2 s window; from the second on (the first may be a cold worker's slow one).
    expect(creates[3]! - creates[1]!).toBeGreaterThanOrEqual(2 * 2_000 - 500);
    worker.kill('SIGTERM');
    await exited(worker);
  });
});

describe('an inline file whose automatic upload fails', () => {
  let stack: Stack;
  beforeAll(async () => {
    // The provider refuses every upload over 1 KB (413 file_too_large).
    stack = await startStack({ api: { bodyLimit: '64mb' }, sim: { max_file_bytes: 1024 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('is sent inline and the job completes', async () => {
    const MiB = 1024 * 1024;
    const data = Buffer.alloc(2 * MiB, 3);
    data.write('%PDF-1.7\n');
    const fileData = `data:application/pdf;base64,${data.toString('base64')}`;
    const body = jobBody(
      {
        input: [
          {
            role: 'user',
            content: [
              { type: 'input_text', text: 'Summarise this.' },
              { type: 'input_file', filename: 'big.pdf', file_data: fileData },
            ],
          },
        ],
        reasoning: { effort: 'low' },
      },
      50,
    );
    const res = await stack.api('POST', '/v1/jobs', body);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const done = await stack.waitForJob(res.body.id, isTerminalJob);
    expect(done.status, JSON.stringify(done.error)).toBe('completed');

    // The upload was tried and refused by the provider...
    const uploads = (await arrivals(stack)).filter((a) => a.method === 'POST' && a.path === '/v1/files');
    expect(uploads.map((u) => u.status)).toEqual([413]);
    expect((await stack.simApi('GET', '/sim/stats')).files.created).toBe(0);
    // ...so the create carried the file inline, byte for byte, and the model read it (2 MiB = 42 pages).
    const sent = await stack.simApi('GET', `/sim/requests/${done.response_id}`);
    expect(sent.input[0].content[1]).toEqual({ type: 'input_file', filename: 'big.pdf', file_data: fileData });
    expect(done.usage.input_tokens).toBeGreaterThanOrEqual(42_000);
    expect((await stack.api('GET', '/v1/files')).body.data).toEqual([]);
  });
});

describe('the event stream of a finished job', () => {
  let stack: Stack;
  const RETENTION_S = 3;
  beforeAll(async () => {
    stack = await startStack({ worker: { streamRetentionSeconds: RETENTION_S } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('is replayed in full, then expires STREAM_RETENTION_SECONDS after the job finished (only the final state, from Postgres, remains)', async () => {
    const auth = { authorization: `Bearer ${stack.apiKey}` };
    // Watched from the start (a job nobody watches keeps no events: test/waiting-job-redis.test.ts).
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 500_000));
    const live = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: auth });
    const done = await stack.waitForJob(job.id, isTerminalJob);
    const full = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: auth });
    expect(full.events).toEqual(live.events);
    expect(full.events.length).toBeGreaterThanOrEqual(2);
    expect(full.events[0]!.event).toBe('job.queued');
    expect(full.events.at(-1)!.event).toBe('job.completed');

    const expiredAt = await until(
      'the stream to expire',
      async () => {
        const replay = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: auth });
        return replay.events.length === 1 ? Date.now() : null;
      },
      15_000,
    );
    // Not before the retention has passed since the job finished (finished_at is whole seconds, rounded down).
    expect(expiredAt).toBeGreaterThanOrEqual(done.finished_at * 1000 + RETENTION_S * 1000);
    const after = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: auth });
    expect(after.events.map((e) => [e.id, e.event])).toEqual([['-1.1', 'job.completed']]);
    expect(JSON.parse(after.events[0]!.data).job).toMatchObject({ id: job.id, status: 'completed' });
  });
});
