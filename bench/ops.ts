/**
 * Diagnostic scenario (`--only ops`, not part of the default run): the CPU cost of each
 * operation one job goes through, measured in this process one operation type at a time
 * (10 in flight, after a warm-up), with the server side's CPU (Postgres backends or the
 * simulator) alongside. Summing the rows a job uses gives a cost model to hold against the
 * worker's and API's measured CPU per job, and shows which layer (drizzle vs. raw pg, the OpenAI
 * SDK vs. the provider's own HTTP path vs. a plain request, pino child loggers, BullMQ adds) is
 * worth optimizing.
 */
import { request, Agent } from 'node:http';
import OpenAI from 'openai';
import pg from 'pg';
import type { JobStatus } from '@longhaul/core';
import { Redis } from 'ioredis';
import { changeJobState, createDb, createJob, createTenant, findTenantByApiKey, getJob, scheduleNextCheck } from '@longhaul/db';
import { createTestDatabase } from '@longhaul/db/testing';
import { createProvider } from '@longhaul/provider';
import { createQueues, parsePayload } from '@longhaul/queue';
import { createLogger, jobLogFields } from '@longhaul/runtime';
import { spawnApp, type Child } from './children.ts';
import { callbackOps } from './ops-callbacks.ts';
import { runPool } from './pool.ts';
import { deletePrefix, servicesFromEnv, trackCleanup, uniquePrefix } from './stack.ts';
import { procCpuMs } from './usage.ts';

const IN_FLIGHT = 10;

export interface OpCost {
  name: string;
  /** CPU of this process per operation, µs. */
  clientUs: number;
  /** CPU of the server side (Postgres backends or the simulator) per operation, µs. */
  serverUs: number;
  /** Wall time per operation at IN_FLIGHT concurrency, µs. */
  wallUs: number;
}

async function measure(name: string, iterations: number, serverPids: () => Promise<number[]>, op: (i: number) => Promise<unknown> | unknown): Promise<OpCost> {
  await runPool(Math.max(50, iterations / 5), IN_FLIGHT, async (i) => void (await op(i)));
  const pids = await serverPids();
  const serverBefore = pids.map((p) => procCpuMs(p) ?? 0);
  const cpuBefore = process.cpuUsage();
  const t0 = performance.now();
  await runPool(iterations, IN_FLIGHT, async (i) => void (await op(i)));
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpuBefore);
  const serverMs = pids.reduce((sum, p, k) => sum + ((procCpuMs(p) ?? 0) - serverBefore[k]!), 0);
  return { name, clientUs: (cpu.user + cpu.system) / iterations, serverUs: (serverMs * 1000) / iterations, wallUs: (wall * 1000) / iterations };
}

export async function runOps(iterations: number, log: (line: string) => void): Promise<OpCost[]> {
  const { databaseBaseUrl, redisUrl } = servicesFromEnv();
  const database = await createTestDatabase(databaseBaseUrl);
  const prefix = uniquePrefix('ops');
  const handle = createDb({ connectionString: database.url, max: IN_FLIGHT, applicationName: 'bench-ops' });
  const raw = new pg.Pool({ connectionString: database.url, max: IN_FLIGHT, application_name: 'bench-ops-raw' });
  const queues = createQueues({ redisUrl, prefix, role: 'worker' });
  const logger = createLogger({ service: 'bench', level: 'warn' });
  let sim: Child | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await sim?.stop();
      await queues.close();
      const redis = new Redis(redisUrl);
      await deletePrefix(redis, prefix).catch(() => 0);
      redis.disconnect();
      await raw.end();
      await handle.close();
      await database.drop();
    })());
  const untrack = trackCleanup(cleanup);
  try {
    sim = spawnApp('sim', { SIM_PORT: '0', SIM_LOG_LEVEL: 'info' });
    const simUrl = (JSON.parse(await sim.waitForLine((l) => l.includes('"simulator listening"'), 30_000)) as { url: string }).url;
    const provider = createProvider({ apiKey: 'sk-bench', baseURL: `${simUrl}/v1`, timeoutMs: 10_000 });
    // The SDK path create and retrieve took before the provider's own HTTP path (http.ts), priced beside it.
    const sdk = new OpenAI({ apiKey: 'sk-bench', baseURL: `${simUrl}/v1`, timeout: 10_000 });
    const { tenantId, apiKey } = await createTenant(handle.db, 'bench');
    const newJob = () =>
      createJob(
        handle.db,
        { tenantId, model: 'o3', request: { model: 'o3', input: 'x' }, metadata: { sim_duration_ms: '0' }, callbackUrl: null, deadlineAt: new Date(Date.now() + 3_600_000) },
        new Date(),
      ).then((r) => r.job);
    // One row per lane, so row locks do not serialize the lanes.
    const jobs = await Promise.all(Array.from({ length: IN_FLIGHT }, newJob));
    const created = await provider.createResponse({ model: 'o3', input: 'x', metadata: { sim_duration_ms: '0' } });
    const responseId = created.response.id;

    const pgPids = async () =>
      (await raw.query<{ pid: number }>("select pid from pg_stat_activity where datname = current_database() and application_name like 'bench-ops%'")).rows.map((r) => r.pid);
    const simPids = async () => [sim!.pid];
    const none = async () => [];
    const job = (i: number) => jobs[i % IN_FLIGHT]!;
    const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
    const plainGet = () =>
      new Promise<void>((resolve, reject) => {
        request(`${simUrl}/v1/responses/${responseId}`, { agent, headers: { authorization: 'Bearer sk-bench' } }, (res) => {
          res.resume();
          res.on('end', resolve);
        })
          .on('error', reject)
          .end();
      });
    let addSeq = 0;
    // The fix to price: the same read as a drizzle prepared statement (SQL built once, named on the server).
    const getJobPrepared = handle.db.query.jobs.findFirst({ where: (t, { eq, sql }) => eq(t.id, sql.placeholder('id')) }).prepare('bench_get_job');

    const plan: [string, () => Promise<number[]>, (i: number) => Promise<unknown> | unknown][] = [
      ['db: getJob (drizzle select *)', pgPids, (i) => getJob(handle.db, job(i).id)],
      ['db: same read, drizzle .prepare()d', pgPids, (i) => getJobPrepared.execute({ id: job(i).id })],
      ['db: same select, raw pg', pgPids, (i) => raw.query('select * from jobs where id = $1', [job(i).id])],
      ['db: same select, raw pg prepared', pgPids, (i) => raw.query({ name: 'get_job', text: 'select * from jobs where id = $1', values: [job(i).id] })],
      ['db: findTenantByApiKey (API auth)', pgPids, () => findTenantByApiKey(handle.db, apiKey)],
      ['db: scheduleNextCheck (drizzle update)', pgPids, (i) => scheduleNextCheck(handle.db, job(i).id, new Date(), { poll: true })],
      [
        'db: changeJobState tx + event (5 round trips)',
        pgPids,
        (i) => changeJobState(handle.db, job(i).id, { source: 'poll', now: new Date() }, (j) => ({ ok: true, status: j.status as JobStatus, changed: true, fields: {} })),
      ],
      ['db: createJob tx (API, 4 round trips)', pgPids, () => newJob()],
      ['provider: createResponse', simPids, () => provider.createResponse({ model: 'o3', input: 'x', metadata: { sim_duration_ms: '0' } })],
      [
        'provider: same create, openai SDK',
        simPids,
        () => sdk.responses.create({ model: 'o3', input: 'x', metadata: { sim_duration_ms: '0' }, background: true, store: true }, { maxRetries: 0 }).withResponse(),
      ],
      ['provider: retrieveResponse', simPids, () => provider.retrieveResponse(responseId)],
      ['provider: same retrieve, openai SDK', simPids, () => sdk.responses.retrieve(responseId).withResponse()],
      [
        'http: same GET, global fetch',
        simPids,
        () => fetch(`${simUrl}/v1/responses/${responseId}`, { headers: { authorization: 'Bearer sk-bench' } }).then((r) => r.arrayBuffer()),
      ],
      ['http: same GET, node:http keep-alive', simPids, () => plainGet()],
      ['redis: queues.add poll, delayed (BullMQ)', none, (i) => queues.add('poll', { jobId: job(i).id, attempt: 0 }, { delayMs: 600_000, jobId: `bench${addSeq++}` })],
      ['log: logger.child(jobLogFields(job))', none, (i) => logger.child(jobLogFields(job(i)))],
      ['queue: parsePayload (zod)', none, (i) => parsePayload('poll', { jobId: job(i).id, attempt: 1 })],
    ];
    const callbacks = await callbackOps({ handle, raw, queues, tenantId, newJob, lanes: IN_FLIGHT, pgPids });
    plan.push(...callbacks.plan);
    const results: OpCost[] = [];
    for (const [name, pids, op] of plan) {
      const cost = await measure(name, iterations, pids, op);
      results.push(cost);
      log(`  ${name}: ${cost.clientUs.toFixed(0)} µs CPU here, ${cost.serverUs.toFixed(0)} µs server`);
    }
    agent.destroy();
    await callbacks.close();
    return results;
  } finally {
    await cleanup();
    untrack();
  }
}
