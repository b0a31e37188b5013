/**
 * Per-tenant admission through the API with real services: the requests-per-minute limit (429 with
 * Retry-After and OpenAI's x-ratelimit headers, one count per tenant), the tokens-per-window
 * budget toward the provider (jobs over it wait in `pending`, never fail, and do not hold back
 * another tenant), and fair share of the submit queue (a tenant arriving after another's burst is
 * served next, not after the burst).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, setTenantLimits } from '@longhaul/db';
import { fairQueueKey } from '@longhaul/queue';
import { type Stack, deletePrefix, jobBody, startStack } from './harness.ts';

const WINDOW_MS = 3_000;
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    // Submissions one at a time against a slow create: a burst builds a real backlog.
    worker: { submitConcurrency: 1, admission: { windowMs: WINDOW_MS } },
    sim: { latency_ms: 40, fault_endpoints: ['create'] },
  });
});

afterAll(async () => {
  await stack?.stop();
});

/** When each job reached the provider, in ms (the API shows whole seconds). */
async function submittedAtMs(ids: string[], on: Stack = stack): Promise<Map<string, number>> {
  const { rows } = await on.db.pool.query<{ id: string; submitted_at: Date }>('select id, submitted_at from jobs where id = any($1)', [ids]);
  return new Map(rows.map((r) => [r.id, r.submitted_at.getTime()]));
}

async function tenant(name: string, limits: { rpmLimit?: number; tpmLimit?: number } = {}) {
  const { apiKey, tenantId } = await createTenant(stack.db.db, name);
  if (limits.rpmLimit !== undefined || limits.tpmLimit !== undefined) await setTenantLimits(stack.db.db, tenantId, limits);
  const auth = { authorization: `Bearer ${apiKey}` };
  const api = (method: string, path: string, body?: unknown) => stack.api(method, path, body, auth);
  /** Polls the tenant's own jobs (the stack's helpers use the stack's tenant). */
  const waitForAll = async (ids: string[], predicate: (job: any) => boolean, timeoutMs = 30_000): Promise<any[]> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const jobs = await Promise.all(ids.map(async (id) => (await api('GET', `/v1/jobs/${id}`)).body));
      if (jobs.every(predicate)) return jobs;
      if (Date.now() > deadline) throw new Error(`jobs did not reach the expected state in ${timeoutMs} ms: ${JSON.stringify(jobs.filter((j) => !predicate(j)).slice(0, 2))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return { tenantId, api, waitForAll, waitForJob: async (id: string, predicate: (job: any) => boolean, timeoutMs?: number) => (await waitForAll([id], predicate, timeoutMs))[0] };
}

describe('requests per minute', () => {
  it('answers 429 rate_limit_exceeded with Retry-After once a tenant is over its limit', async () => {
    const limited = await tenant('limited', { rpmLimit: 3 });
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await limited.api('GET', '/v1/jobs');
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit-requests')).toBe('3');
      expect(res.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+s$/);
      remaining.push(res.headers.get('x-ratelimit-remaining-requests')!);
    }
    expect(remaining).toEqual(['2', '1', '0']);

    const refused = await limited.api('POST', '/v1/jobs', jobBody());
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded', param: null });
    expect(refused.body.error.request_id).toMatch(/\S/);
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    // The refused job was not created: the tenant has no job at all (its own list would be refused
    // too while it is over the limit, so Postgres is asked).
    const { rows } = await stack.db.pool.query<{ n: number }>('select count(*)::int n from jobs where tenant_id = $1', [limited.tenantId]);
    expect(rows[0]!.n).toBe(0);
  });

  it("counts each tenant on its own: one tenant's exhausted limit does not touch another's", async () => {
    const first = await tenant('first', { rpmLimit: 2 });
    const second = await tenant('second', { rpmLimit: 2 });
    expect((await first.api('GET', '/v1/jobs')).status).toBe(200);
    expect((await first.api('GET', '/v1/jobs')).status).toBe(200);
    expect((await first.api('GET', '/v1/jobs')).status).toBe(429);
    const other = await second.api('GET', '/v1/jobs');
    expect(other.status).toBe(200);
    expect(other.headers.get('x-ratelimit-remaining-requests')).toBe('1');
    // A tenant without a limit (and the default of 0 = unlimited) gets no rate-limit headers.
    const unlimited = await tenant('unlimited');
    const res = await unlimited.api('GET', '/v1/jobs');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ratelimit-limit-requests')).toBeNull();
  });
});

describe('tokens per minute', () => {
  it('keeps jobs over the budget pending (never failed) and submits them as the budget refills; another tenant is not held back', async () => {
    // 400 characters of input: 100 tokens each; a budget of 150 tokens per 3 s window.
    const small = await tenant('small budget', { tpmLimit: 150 });
    const other = await tenant('other');
    const body = jobBody({ input: 'x'.repeat(400) }, 50);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await small.api('POST', '/v1/jobs', body);
      expect(res.status).toBe(202);
      expect(res.body.estimated_input_tokens).toBe(100);
      ids.push(res.body.id);
    }
    const otherJob = await other.api('POST', '/v1/jobs', body);
    expect(otherJob.status).toBe(202);

    // The budget admits the first job at once, then one every 100 / 150 × 3 s = 2 s (the second after
    // 1 s: 50 tokens were left over): the last can go no earlier than 5 s after the first.
    const last = await small.api('GET', `/v1/jobs/${ids[3]}`);
    expect(last.body.status).toBe('pending');
    expect(last.body.submitted_at).toBeNull();

    const otherDone = await other.waitForJob(otherJob.body.id, (j) => j.status === 'completed', 30_000);
    const stillWaiting = await small.api('GET', `/v1/jobs/${ids[3]}`);
    expect(stillWaiting.body.status).toBe('pending');
    expect(otherDone.submitted_at).not.toBeNull();

    const done = await small.waitForAll(ids, (j) => j.status !== 'pending' && j.status !== 'queued' && j.status !== 'in_progress', 30_000);
    expect(done.map((j) => j.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
    const at = await submittedAtMs([...ids, otherJob.body.id]);
    const submitted = ids.map((id) => at.get(id)!).sort((a, b) => a - b);
    expect(submitted[3]! - submitted[0]!).toBeGreaterThanOrEqual(4_000);
    expect(at.get(otherJob.body.id)!).toBeLessThan(submitted[3]!);
  });
});

describe('one admission setting for API and worker', () => {
  // The deployment default budget, given to both processes under the same name: 150 tokens per 3 s.
  const admission = { defaultTokenLimit: 150, windowMs: WINDOW_MS };
  let shared: Stack;
  beforeAll(async () => {
    shared = await startStack({ api: { admission }, worker: { admission }, startWorker: false });
  });
  afterAll(async () => {
    await shared?.stop();
  });

  it('keeps the default budget for jobs the API admitted and jobs the worker re-admitted after Redis lost them', async () => {
    const limitInRedis = () => shared.redis.hget(`${fairQueueKey(shared.prefix)}limits`, shared.tenantId);
    const body = jobBody({ input: 'x'.repeat(400) }, 50);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await shared.api('POST', '/v1/jobs', body);
      expect(res.status).toBe(202);
      expect(res.body.estimated_input_tokens).toBe(100);
      ids.push(res.body.id);
    }
    // The stack's tenant has no limit of its own: the API pushed the deployment default.
    expect(await limitInRedis()).toBe('150');

    // Redis loses the fair queue before any worker ran: the worker's turns (and its sweeper) push
    // the jobs again, with the limit the worker resolves for the tenant.
    await deletePrefix(shared.redis, `${shared.prefix}:fairq`);
    expect(await limitInRedis()).toBeNull();
    shared.startWorker();
    const done = await shared.waitForAll(ids, (j) => j.status === 'completed', 30_000);
    expect(done.map((j) => j.status)).toEqual(['completed', 'completed', 'completed']);
    expect(await limitInRedis()).toBe('150');

    // The budget held: 100 tokens each against 150 per 3 s admits the first at once, the second 1 s
    // later and the third 2 s after that. An unlimited push would have sent all three at once.
    const at = await submittedAtMs(ids, shared);
    const submitted = ids.map((id) => at.get(id)!).sort((a, b) => a - b);
    expect(submitted[2]! - submitted[0]!).toBeGreaterThanOrEqual(2_000);
  });
});

describe('fair share', () => {
  it("serves a tenant arriving after another's burst next, not after the burst", async () => {
    const bursty = await tenant('bursty');
    const quiet = await tenant('quiet');
    const burst = await Promise.all(Array.from({ length: 30 }, () => bursty.api('POST', '/v1/jobs', jobBody({}, 50))));
    expect(burst.every((r) => r.status === 202)).toBe(true);
    const late = await quiet.api('POST', '/v1/jobs', jobBody({}, 50));
    expect(late.status).toBe(202);

    const lateDone = await quiet.waitForJob(late.body.id, (j) => j.status === 'completed', 30_000);
    const burstDone = await bursty.waitForAll(
      burst.map((r) => r.body.id),
      (j) => j.status === 'completed',
      60_000,
    );
    const at = await submittedAtMs([late.body.id, ...burstDone.map((j) => j.id)]);
    const before = burstDone.filter((j) => at.get(j.id)! < at.get(lateDone.id)!).length;
    // First come, first served would put the whole burst first (30 at one create at a time).
    expect(before).toBeLessThan(10);
  });
});

describe('token estimate', () => {
  it('matches the input tokens the provider reports, for text, item lists, files and images', async () => {
    const estimator = await tenant('estimates');
    const pdf = `data:application/pdf;base64,${Buffer.alloc(120_000, 3).toString('base64')}`;
    const bodies = [
      jobBody({ instructions: 'Be brief.', input: 'How far is the moon?' }),
      jobBody({
        input: [
          { role: 'developer', content: 'Answer in French.' },
          { role: 'user', content: [{ type: 'input_text', text: 'Hello there' }] },
        ],
      }),
      jobBody({
        input: [
          {
            role: 'user',
            content: [
              { type: 'input_text', text: 'Compare these.' },
              { type: 'input_file', filename: 'a.pdf', file_data: pdf },
              { type: 'input_image', image_url: 'https://example.com/a.png', detail: 'low' },
              { type: 'input_image', image_url: 'https://example.com/b.png' },
            ],
          },
        ],
      }),
    ];
    for (const body of bodies) {
      const created = await estimator.api('POST', '/v1/jobs', body);
      expect(created.status).toBe(202);
      const done = await estimator.waitForJob(created.body.id, (j) => j.status === 'completed');
      expect(created.body.estimated_input_tokens).toBe(done.usage.input_tokens);
    }
  });
});
