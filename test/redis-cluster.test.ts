/**
 * Longhaul on a real Redis Cluster (three masters on loopback, started by the test): the whole
 * pipeline in hybrid mode (jobs over HTTP through API, worker, simulator and its signed OpenAI
 * webhooks; streamed jobs' events; a callback;
 * per-tenant admission and the request rate limit; the admin UI's login and bull-board API), and
 * a worker process SIGKILLed under load while another takes over: every job completes, none is
 * lost, and no job gets more than the documented one extra provider create.
 *
 * How we know it ran on the cluster: the clients are cluster clients, every key of a deployment
 * sits in the one slot of its hash-tagged prefix (CLUSTER KEYSLOT), on one master, and the other
 * masters hold none of them; a prefix without a hash tag is refused at start-up.
 */
import type { ChildProcess } from 'node:child_process';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, setTenantLimits } from '@longhaul/db';
import { createQueues } from '@longhaul/queue';
import { spawnApp } from './app-process.ts';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { startPrivateRedis } from './private-redis.ts';
import { startReceiver } from './receiver.ts';
import { type LocalRedisCluster, startRedisCluster } from './redis-cluster.ts';
import { readSse } from './sse.ts';
import { exited, spawnWorker } from './worker-process.ts';

const ADMIN_TOKEN = 'cluster-admin-token-0123456789';
const SUBMIT_CONCURRENCY = 4;

let cluster: LocalRedisCluster;

beforeAll(async () => {
  cluster = await startRedisCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

async function until<T>(what: string, check: () => Promise<T | null | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null && value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every key of `prefix`, per master (SCAN on each master: on a cluster one node's SCAN sees only its own keys). */
async function keysPerMaster(prefix: string): Promise<string[][]> {
  return Promise.all(
    cluster.masters.map(async (m) => {
      const found: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await m.scan(cursor, 'MATCH', `${prefix.replace(/[{}[\]*?]/g, '\\$&')}:*`, 'COUNT', 1000);
        cursor = next;
        found.push(...keys);
      } while (cursor !== '0');
      return found;
    }),
  );
}

/** Jobs per terminal-event count: one terminal transition per job is what "not duplicated" means in Postgres. */
async function terminalTransitions(stack: Stack, ids: string[]): Promise<number[]> {
  const { rows } = await stack.db.pool.query<{ n: number }>(
    "select count(e.id)::int n from unnest($1::text[]) j(id) left join job_events e on e.job_id = j.id and e.to_status in ('completed','failed','cancelled','incomplete','expired') group by j.id",
    [ids],
  );
  return rows.map((r) => r.n);
}

describe('the whole pipeline on a 3-master Redis Cluster', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      redisUrl: cluster.url,
      redisCluster: true,
      sim: { time_scale: 0.01 },
      api: { admin: { token: ADMIN_TOKEN } },
      // Hybrid mode with the simulator's signed webhooks: the receiver, the webhook queue and polls all run.
      webhooks: true,
      worker: { completionMode: 'hybrid', admission: { windowMs: 2_000 } },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('runs on cluster clients with a hash-tagged prefix', () => {
    expect(stack.prefix).toMatch(/^\{lhtest_[0-9a-f]+\}$/);
    expect((stack.queues.connection as { isCluster?: boolean }).isCluster).toBe(true);
  });

  it('completes jobs submitted over HTTP', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await stack.api('POST', '/v1/jobs', jobBody({ input: `cluster story ${i}` }, (i % 5) * 2_000));
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
    const done = await stack.waitForAll(ids, isTerminalJob, 60_000);
    expect(done.map((j) => j.status)).toEqual(ids.map(() => 'completed'));
    expect(done.every((j) => typeof j.output_text === 'string' && j.output_text.length > 0)).toBe(true);
  });

  it("streams jobs' events over SSE, ending with job.completed, to watchers joining one after another", async () => {
    const jobs = await Promise.all([0, 1, 2].map(async () => (await stack.api('POST', '/v1/jobs', jobBody({ stream: true }, 3_000))).body));
    // Each watcher joins while the hub is already blocked reading the others' streams.
    const watched: ReturnType<typeof readSse>[] = [];
    for (const job of jobs) {
      let first: () => void = () => {};
      const started = new Promise<void>((resolve) => (first = resolve));
      watched.push(readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: { authorization: `Bearer ${stack.apiKey}` }, onEvent: () => first() }));
      await started;
    }
    for (const [i, { events, status }] of (await Promise.all(watched)).entries()) {
      expect(status).toBe(200);
      const provider = events.filter((e) => e.id !== null && !e.id.includes('.'));
      expect(provider.length).toBeGreaterThan(1);
      expect(provider.map((e) => Number(e.id))).toEqual(provider.map((_, n) => n));
      expect(events.at(-1)!.event).toBe('job.completed');
      const final = await stack.waitForJob(jobs[i].id, isTerminalJob);
      // What was streamed is the start of the final text, with no gap or duplicate. (A webhook that
      // finishes the job before its stream is followed to the end ends the stream early, on a
      // single Redis too: not this file's concern.)
      const deltas = provider.filter((e) => e.event === 'response.output_text.delta').map((e) => JSON.parse(e.data).delta as string);
      expect(final.output_text.startsWith(deltas.join(''))).toBe(true);
    }
  });

  it('delivers a signed callback', async () => {
    const receiver = await startReceiver();
    try {
      const { body: endpoint } = await stack.api('POST', '/v1/webhook-endpoints', { url: receiver.url, event_types: ['job.completed'] });
      const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
      await stack.waitForJob(job.id, isTerminalJob);
      const received = await until('the callback', async () => receiver.received[0]);
      const event = new Webhook(endpoint.secret).verify(received.body, received.headers as Record<string, string>) as any;
      expect(event).toMatchObject({ type: 'job.completed', data: { id: job.id, status: 'completed' } });
      await stack.api('DELETE', `/v1/webhook-endpoints/${endpoint.id}`);
    } finally {
      await receiver.close();
    }
  });

  it("admits a tenant's jobs within its token budget, without holding another tenant back", async () => {
    // 100 tokens per job against 150 per 2 s: the fourth job cannot be submitted before ~3 s.
    const small = await createTenant(stack.db.db, 'small budget');
    await setTenantLimits(stack.db.db, small.tenantId, { tpmLimit: 150 });
    const auth = { authorization: `Bearer ${small.apiKey}` };
    const body = jobBody({ input: 'x'.repeat(400) }, 0);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await stack.api('POST', '/v1/jobs', body, auth);
      expect(res.body.estimated_input_tokens).toBe(100);
      ids.push(res.body.id);
    }
    const other = await stack.api('POST', '/v1/jobs', body);
    await stack.waitForJob(other.body.id, (j) => j.status === 'completed');
    expect((await stack.api('GET', `/v1/jobs/${ids[3]}`, undefined, auth)).body.status).toBe('pending');
    for (const id of ids) await until(`${id} completed`, async () => ((await stack.api('GET', `/v1/jobs/${id}`, undefined, auth)).body.status === 'completed' ? true : null));
    const { rows } = await stack.db.pool.query<{ ms: number }>('select extract(epoch from max(submitted_at) - min(submitted_at)) * 1000 as ms from jobs where id = any($1)', [ids]);
    expect(Number(rows[0]!.ms)).toBeGreaterThanOrEqual(2_500);
  });

  it("refuses a tenant's requests over its per-minute limit", async () => {
    const limited = await createTenant(stack.db.db, 'limited');
    await setTenantLimits(stack.db.db, limited.tenantId, { rpmLimit: 2 });
    const auth = { authorization: `Bearer ${limited.apiKey}` };
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await stack.api('GET', '/v1/jobs', undefined, auth)).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it("logs in to the admin UI and lists every queue through bull-board's API", async () => {
    const wrong = await fetch(`${stack.apiUrl}/admin/queues/api/queues`, { headers: { authorization: 'Bearer wrong-token-0123456789' } });
    expect(wrong.status).toBe(401);
    const login = await fetch(`${stack.apiUrl}/admin/login`, {
      method: 'POST',
      headers: { origin: stack.apiUrl },
      body: new URLSearchParams({ token: ADMIN_TOKEN, next: '/admin/queues/' }),
      redirect: 'manual',
    });
    expect(login.status).toBe(303);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const res = await fetch(`${stack.apiUrl}/admin/queues/api/queues`, { headers: { cookie } });
    expect(res.status).toBe(200);
    const { queues } = (await res.json()) as { queues: { name: string }[] };
    expect(queues.map((q) => q.name).sort()).toEqual(['cancel', 'deliver', 'poll', 'runs', 'stream', 'submit', 'tools', 'webhook']);
  });

  it("keeps every key of the deployment in its prefix's one slot, on one master", async () => {
    const tag = stack.prefix.slice(1, -1);
    const slot = Number(await cluster.masters[0]!.cluster('KEYSLOT', tag));
    const perMaster = await keysPerMaster(stack.prefix);
    const all = perMaster.flat();
    // BullMQ's queues, the webhook health, the fair queue, job streams, rate-limit counters, admin
    // sessions and throttle counts, the stream hub's wake key.
    for (const kind of [
      ':submit:',
      ':poll:',
      ':webhook:',
      ':webhook-health',
      ':fairq:',
      ':jobstream:',
      ':rpm:',
      ':admin-session:',
      ':admin-auth-failures-global:',
      ':stream-hub:',
    ]) {
      expect(
        all.some((k) => k.includes(kind)),
        kind,
      ).toBe(true);
    }
    const owner = await cluster.masterForSlot(slot);
    expect(perMaster[cluster.masters.indexOf(owner)]!.length).toBe(all.length);
    expect(perMaster.filter((keys) => keys.length > 0)).toHaveLength(1);
    const slots = new Set(await Promise.all(all.slice(0, 50).map(async (k) => Number(await owner.cluster('KEYSLOT', k)))));
    expect([...slots]).toEqual([slot]);
  });
});

describe('a worker SIGKILLed under load on the cluster', () => {
  let stack: Stack;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    // Slow creates keep submissions in flight when the worker dies.
    stack = await startStack({ redisUrl: cluster.url, redisCluster: true, startWorker: false, sim: { time_scale: 0.01, latency_ms: 30 } });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    await stack?.stop();
  });

  it('finishes all 200 jobs with at most one extra create per submission in flight', async () => {
    const clusterEnv = { REDIS_CLUSTER: 'true', SUBMIT_CONCURRENCY: String(SUBMIT_CONCURRENCY) };
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) {
      const res = await stack.api('POST', '/v1/jobs', jobBody({ input: `load ${i}` }, (i % 4) * 5_000));
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
    const first = spawnWorker(stack, cluster.url, clusterEnv);
    children.push(first);
    const count = async (status: string) =>
      (await stack.db.pool.query<{ n: number }>('select count(*)::int n from jobs where id = any($1) and status = $2', [ids, status])).rows[0]!.n;
    await until('some jobs completed', async () => ((await count('completed')) >= 40 ? true : null), 60_000);
    first.kill('SIGKILL');
    await exited(first);
    expect(await count('completed')).toBeLessThan(200);

    children.push(spawnWorker(stack, cluster.url, clusterEnv));
    const done = await stack.waitForAll(ids, isTerminalJob, 120_000);
    expect(done.filter((j) => j.status !== 'completed')).toEqual([]);
    expect(new Set(await terminalTransitions(stack, ids))).toEqual(new Set([1]));
    const stats = await stack.simApi('GET', '/sim/stats');
    const creates = ids.map((id) => stats.creates_by_job[id] ?? 0);
    expect(Math.min(...creates)).toBe(1);
    expect(Math.max(...creates)).toBeLessThanOrEqual(2);
    expect(creates.filter((n) => n === 2).length).toBeLessThanOrEqual(SUBMIT_CONCURRENCY);
  });
});

describe('start-up on a cluster', () => {
  it('refuses a QUEUE_PREFIX without a hash tag, naming the variable', async () => {
    for (const app of ['worker', 'api'] as const) {
      const proc = spawnApp(app, {
        REDIS_URL: cluster.url,
        REDIS_CLUSTER: 'true',
        QUEUE_PREFIX: 'longhaul',
        OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
        DATABASE_URL: 'postgres://postgres@127.0.0.1:9/none',
      });
      expect(await proc.exited()).toEqual({ code: 1, signal: null });
      expect(proc.tail()).toMatch(/QUEUE_PREFIX: .*hash tag.*\{longhaul\}/);
    }
  });

  it("connects to every node of a cluster that requires a password, with REDIS_URL's credentials", async () => {
    const secured = await startRedisCluster({ password: 'cluster pass/word' });
    const queues = createQueues({ redisUrl: secured.url, cluster: {}, role: 'producer' });
    try {
      expect(queues.prefix).toBe('{longhaul}');
      // Work items of three jobs, and a key per master: every node was reached with the password.
      for (let i = 0; i < 3; i++) await queues.add('poll', { jobId: `job_${'x'.repeat(20)}${i}` });
      expect((await queues.get('poll').getJobCounts('waiting')).waiting).toBe(3);
      for (const tag of ['a', 'b', 'c']) await queues.connection.set(`{${tag}}:probe`, '1');
      expect((await Promise.all(secured.masters.map((m) => m.dbsize()))).every((n) => n > 0)).toBe(true);
    } finally {
      await queues.close();
      await secured.stop();
    }
  });

  it('says why when REDIS_URL is not a cluster node', async () => {
    const single = await startPrivateRedis();
    const worker = spawnApp('worker', {
      REDIS_URL: single.url,
      REDIS_CLUSTER: 'true',
      OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
      LONGHAUL_MIGRATE_ON_START: 'false',
      METRICS_PORT: '0',
    });
    try {
      const line = await worker.waitForLog('a redis_unavailable warning with the reason', (l) => l.code === 'redis_unavailable' && /cluster support disabled/.test(l.err?.message));
      expect(line.err.message).toBe('Redis Cluster: no seed node answered with the slot map (ERR This instance has cluster support disabled)');
    } finally {
      worker.child.kill('SIGKILL');
      await worker.exited();
      await single.stop();
    }
  });
});
