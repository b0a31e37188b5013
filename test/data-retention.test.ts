/**
 * Data retention (issue 20): the sweeper erases the content of jobs past their tenant's retention
 * (`retention_days`, else the worker's RETENTION_DAYS) and nothing else: not young jobs, not
 * active ones, not a tenant that keeps everything. The tombstone keeps status, model, usage, cost,
 * timestamps and the state transitions (without details); callback events, deliveries and attempts
 * and the response-cache entry go.
 *
 * A tenant's offboarding erase (`requestTenantErasure`, the CLI's `tenant erase`) works through
 * every job in batches from worker processes; one is killed in the middle, another completes it
 * with exact counts, and nothing was done twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, findTenantByApiKey, getTenantLimits, listTenantErasures, recordAdminAction, TENANT_ERASED_REASON } from '@longhaul/db';
import { type Stack, FAST_WORKER_CONFIG, jobBody, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';
import { spawnApp } from './app-process.ts';
import { exited, spawnWorker } from './worker-process.ts';

const MARKER = 'zebra-quartz-7731';

type Api = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;

function asTenant(stack: Stack, apiKey: string): Api {
  return (method, path, body) => stack.api(method, path, body, { authorization: `Bearer ${apiKey}` });
}

async function count(stack: Stack, query: string, params: unknown[]): Promise<number> {
  const { rows } = await stack.db.pool.query<{ n: number }>(`select count(*)::int as n from (${query}) q`, params);
  return rows[0]!.n;
}

/** Callback rows of a job: events, deliveries, attempts. */
async function callbackRows(stack: Stack, jobId: string): Promise<{ events: number; deliveries: number; attempts: number }> {
  return {
    events: await count(stack, 'select 1 from callback_events where job_id = $1', [jobId]),
    deliveries: await count(stack, 'select 1 from callback_deliveries where job_id = $1', [jobId]),
    attempts: await count(stack, 'select 1 from callback_attempts a join callback_deliveries d on d.id = a.delivery_id where d.job_id = $1', [jobId]),
  };
}

/** Wait until every job (of any tenant) has finished. */
async function finished(stack: Stack, ids: string[], timeoutMs = 30_000): Promise<void> {
  await expect.poll(() => count(stack, 'select 1 from jobs where id = any($1) and finished_at is not null', [ids]), { timeout: timeoutMs, interval: 100 }).toBe(ids.length);
}

describe('retention', () => {
  let stack: Stack;
  let receiver: Receiver;
  const noSweeps = { ...FAST_WORKER_CONFIG.sweep, intervalMs: 3_600_000 };
  beforeAll(async () => {
    receiver = await startReceiver();
    stack = await startStack({ worker: { sweep: noSweeps } });
  });
  afterAll(async () => {
    await stack?.stop();
    await receiver?.close();
  });

  it('erases exactly the jobs past their tenant retention, in batches, keeping the tombstone', async () => {
    const tenants = {
      short: await createTenant(stack.db.db, 'seven days'),
      byDefault: await createTenant(stack.db.db, 'deployment default'),
      keeps: await createTenant(stack.db.db, 'keeps everything'),
    };
    // Set by the operator CLI (`npm run tenant:limits -- <tenant> --retention-days N`).
    const limits = (tenantId: string, ...args: string[]) => {
      const run = spawnApp('cli', { DATABASE_URL: stack.database.url }, ['tenant', 'limits', tenantId, ...args]);
      return run.exited().then((exit) => ({ exit, last: run.tail().trim().split('\n').at(-1)! }));
    };
    const seven = await limits(tenants.short.tenantId, '--retention-days', '7');
    expect(seven.exit.code, seven.last).toBe(0);
    expect(JSON.parse(seven.last)).toMatchObject({ tenant_id: tenants.short.tenantId, retention_days: 7 });
    expect((await limits(tenants.keeps.tenantId, '--retention-days', '0')).exit.code).toBe(0);
    const bad = await limits(tenants.keeps.tenantId, '--retention-days', 'forever');
    expect(bad.exit.code).toBe(1);
    expect(bad.last).toContain("--retention-days expects a whole number of days from 0 (keep) to 36500, or 'default', got 'forever'");
    expect(await getTenantLimits(stack.db.db, tenants.short.tenantId)).toMatchObject({ retentionDays: 7 });
    expect(await getTenantLimits(stack.db.db, tenants.keeps.tenantId)).toMatchObject({ retentionDays: 0 });
    expect(await getTenantLimits(stack.db.db, tenants.byDefault.tenantId)).toMatchObject({ retentionDays: null });

    const submit = async (tenant: { apiKey: string }, extra: Record<string, unknown> = {}, durationMs = 20) => {
      const res = await asTenant(stack, tenant.apiKey)(
        'POST',
        '/v1/jobs',
        jobBody({ input: `Plan ${MARKER} ${Math.random()}`, metadata: { sim_duration_ms: String(durationMs), note: MARKER }, ...extra }),
      );
      expect(res.status).toBe(202);
      return res.body.id as string;
    };
    const withCallback = { callback_url: receiver.url };
    // [job, age in days]; the retention cut-offs are 7 (short), 30 (byDefault) and none (keeps).
    const old = {
      s1: await submit(tenants.short, withCallback),
      s2: await submit(tenants.short, { cache: { ttl_seconds: 3600 } }),
      s3: await submit(tenants.short),
      d1: await submit(tenants.byDefault, withCallback),
      d2: await submit(tenants.byDefault),
    };
    const young = {
      s4: await submit(tenants.short, withCallback),
      d3: await submit(tenants.byDefault, withCallback),
      k1: await submit(tenants.keeps),
    };
    const ages: Record<string, number> = { s1: 10, s2: 8, s3: 100, d1: 40, d2: 31, s4: 3, d3: 10, k1: 400 };
    const all = { ...old, ...young };
    await finished(stack, Object.values(all));
    // Every callback delivered (a delivery and an attempt each), then the jobs aged.
    for (const id of [old.s1, old.d1, young.s4, young.d3]) {
      await expect.poll(async () => (await callbackRows(stack, id)).attempts, { timeout: 10_000 }).toBeGreaterThan(0);
    }
    for (const [name, id] of Object.entries(all)) {
      await stack.db.pool.query(`update jobs set finished_at = finished_at - make_interval(days => $2) where id = $1`, [id, ages[name]]);
    }
    // An active job created long ago.
    const active = await submit(tenants.short, {}, 3_600_000);
    await expect.poll(async () => (await stack.db.pool.query('select status from jobs where id = $1', [active])).rows[0].status, { timeout: 10_000 }).toBe('in_progress');
    await stack.db.pool.query(`update jobs set created_at = now() - interval '100 days' where id = $1`, [active]);
    expect(await count(stack, 'select 1 from response_cache where source_job_id = $1', [old.s2])).toBe(1);

    const keyOf = async (id: string) => {
      const [row] = (await stack.db.pool.query('select tenant_id from jobs where id = $1', [id])).rows;
      return Object.values(tenants).find((t) => t.tenantId === row.tenant_id)!.apiKey;
    };
    const before = new Map<string, { job: any; events: any[] }>();
    for (const id of Object.values(all)) {
      const api = asTenant(stack, await keyOf(id));
      before.set(id, { job: (await api('GET', `/v1/jobs/${id}`)).body, events: (await api('GET', `/v1/jobs/${id}/events`)).body.data });
    }

    // RETENTION_DAYS unset (0): nothing changes for anyone without a retention of their own.
    const keeper = stack.startWorker({ sweep: { ...noSweeps, retention: { defaultDays: 0 } } });
    const kept = await keeper.sweep();
    await keeper.close();
    expect(kept.retentionErased).toBe(3); // s1, s2, s3: the short tenant's own 7 days
    const sweeper = stack.startWorker({ sweep: { ...noSweeps, retention: { defaultDays: 30, batchSize: 1, pauseFactor: 0 } } });
    const report = await sweeper.sweep();
    expect(report.retentionErased).toBe(2); // d1, d2, one per batch
    expect((await sweeper.sweep()).retentionErased).toBe(0);
    await sweeper.close();

    for (const id of Object.values(old)) {
      const api = asTenant(stack, await keyOf(id));
      const { job: was, events: eventsWere } = before.get(id)!;
      const job = (await api('GET', `/v1/jobs/${id}`)).body;
      expect(job).toMatchObject({
        status: 'completed',
        model: was.model,
        usage: was.usage,
        cost_usd: was.cost_usd,
        created_at: was.created_at,
        finished_at: was.finished_at,
        output_text: null,
        output: null,
        reasoning_summary: null,
        metadata: {},
      });
      expect(job.erased_at).toEqual(expect.any(Number));
      const events = (await api('GET', `/v1/jobs/${id}/events`)).body.data;
      expect(events.map((e: any) => [e.from, e.to, e.source])).toEqual(eventsWere.map((e: any) => [e.from, e.to, e.source]));
      expect(events.map((e: any) => e.to)).toEqual(expect.arrayContaining(['pending', 'completed']));
      for (const e of events) expect(e.details).toEqual({});
      expect(await callbackRows(stack, id)).toEqual({ events: 0, deliveries: 0, attempts: 0 });
      const [row] = (await stack.db.pool.query('select request, erased_reason, provider_deleted_at from jobs where id = $1', [id])).rows;
      expect(row).toMatchObject({ erased_reason: 'retention', provider_deleted_at: null });
      expect(JSON.stringify(row.request)).not.toContain(MARKER);
      expect(Object.keys(row.request).sort()).toEqual(['model', 'reasoning']);
    }
    expect(await count(stack, 'select 1 from response_cache where source_job_id = $1', [old.s2])).toBe(0);
    // Retention does not call the provider: the responses are still there until its own retention.
    const responseId = before.get(old.s1)!.job.response_id;
    expect((await fetch(`${stack.simUrl}/v1/responses/${responseId}`, { headers: { authorization: 'Bearer sk-test' } })).status).toBe(200);

    // Untouched: young jobs, the tenant keeping everything, the active job.
    for (const id of [...Object.values(young), active]) {
      const [row] = (await stack.db.pool.query('select erased_at, metadata, request from jobs where id = $1', [id])).rows;
      expect(row.erased_at).toBeNull();
      expect(row.metadata.note).toBe(MARKER);
      expect(JSON.stringify(row.request.input)).toContain(MARKER);
    }
    for (const id of [young.s4, young.d3]) expect((await callbackRows(stack, id)).attempts).toBeGreaterThan(0);
    for (const id of Object.values(young)) {
      const api = asTenant(stack, await keyOf(id));
      expect((await api('GET', `/v1/jobs/${id}`)).body.output_text).toEqual(before.get(id)!.job.output_text);
      expect((await api('GET', `/v1/jobs/${id}/events`)).body.data).toEqual(before.get(id)!.events);
    }
    const [activeRow] = (await stack.db.pool.query('select status from jobs where id = $1', [active])).rows;
    expect(['queued', 'in_progress']).toContain(activeRow.status);
  });

  it('keeps the admin audit log for ADMIN_AUDIT_RETENTION_DAYS (365 by default), then deletes it', async () => {
    const record = (daysAgo: number) =>
      recordAdminAction(stack.db.db, { at: new Date(Date.now() - daysAgo * 86_400_000), actor: 'alice', action: 'queue.clean', target: `days-${daysAgo}`, address: '127.0.0.1' });
    for (const days of [400, 366, 200, 10]) await record(days);
    const targets = async () => (await stack.db.pool.query<{ target: string }>("select target from admin_actions where actor = 'alice' order by at")).rows.map((r) => r.target);
    const sweeper = stack.startWorker({ sweep: { ...noSweeps } });
    expect(await sweeper.sweep()).toMatchObject({ adminActionsDeleted: 2 });
    await sweeper.close();
    expect(await targets()).toEqual(['days-200', 'days-10']);
    const shorter = stack.startWorker({ sweep: { ...noSweeps, retention: { adminAuditDays: 30 } } });
    expect(await shorter.sweep()).toMatchObject({ adminActionsDeleted: 1 });
    await shorter.close();
    const keeps = stack.startWorker({ sweep: { ...noSweeps, retention: { adminAuditDays: 0 } } });
    await stack.db.pool.query("update admin_actions set at = now() - interval '3000 days' where actor = 'alice'");
    expect(await keeps.sweep()).toMatchObject({ adminActionsDeleted: 0 });
    await keeps.close();
    expect(await targets()).toEqual(['days-10']);
  });
});

describe('tenant erase (offboarding)', () => {
  let stack: Stack;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
    stack = await startStack({ startWorker: false });
  });
  afterAll(async () => {
    await stack?.stop();
    await receiver?.close();
  });

  /** The operator CLI's `tenant <args>`: its one JSON line. */
  const cli = async (args: string[], env: Record<string, string> = {}) => {
    const run = spawnApp('cli', { DATABASE_URL: stack.database.url, ...env }, ['tenant', ...args]);
    expect(await run.exited(), run.tail()).toEqual({ code: 0, signal: null });
    return JSON.parse(run.tail().trim().split('\n').at(-1)!);
  };

  it('works through every job in batches, survives a worker killed in the middle, and does nothing twice', async () => {
    const tenant = await createTenant(stack.db.db, 'leaving');
    const api = asTenant(stack, tenant.apiKey);
    const stays = asTenant(stack, stack.apiKey);
    const batchEnv = { RETENTION_BATCH_SIZE: '2', PROVIDER_DELETE_RETRY_MS: '500' };
    const first = spawnWorker(stack, stack.redisUrl, batchEnv);
    try {
      for (let i = 0; i < 2; i++) expect((await api('POST', '/v1/webhook-endpoints', { url: receiver.url })).status).toBe(201);
      const fileIds: string[] = [];
      for (let i = 0; i < 2; i++) {
        const form = new FormData();
        form.append('purpose', 'user_data');
        form.append('file', new Blob([new Uint8Array(Buffer.from(`%PDF-1.4 ${MARKER} ${i}`))], { type: 'application/pdf' }), 'notes.pdf');
        const up = await fetch(`${stack.apiUrl}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${tenant.apiKey}` }, body: form });
        expect(up.status).toBe(200);
        fileIds.push(((await up.json()) as { id: string }).id);
      }
      const conversation = await api('POST', '/v1/conversations', { metadata: { topic: MARKER } });
      expect(conversation.status, JSON.stringify(conversation.body)).toBe(200);
      const submit = async (a: Api, durationMs: number) =>
        (await a('POST', '/v1/jobs', jobBody({ input: `Plan ${MARKER}`, metadata: { sim_duration_ms: String(durationMs) } }))).body.id as string;
      const done: string[] = [];
      for (let i = 0; i < 150; i++) done.push(await submit(api, 20));
      const active: string[] = [];
      for (let i = 0; i < 5; i++) active.push(await submit(api, 3_600_000));
      const others = [await submit(stays, 20), await submit(stays, 3_600_000)];
      await finished(stack, [...done, others[0]!]);
      await expect.poll(() => count(stack, "select 1 from jobs where id = any($1) and status = 'in_progress'", [[...active, others[1]]]), { timeout: 15_000 }).toBe(6);
      const responses = (await stack.db.pool.query<{ response_id: string }>('select response_id from jobs where tenant_id = $1', [tenant.tenantId])).rows.map((r) => r.response_id);
      expect(responses.filter(Boolean)).toHaveLength(155);

      // Started by the operator CLI; asking again answers the erasure under way.
      const requested = await cli(['erase', tenant.tenantId], { LONGHAUL_OPERATOR: 'ops@example.com' });
      expect(requested).toMatchObject({ object: 'tenant_erasure', tenant_id: tenant.tenantId, status: 'running', requested_by: 'ops@example.com', created: true });
      expect(await cli(['erase', tenant.tenantId])).toMatchObject({ id: requested.id, created: false });
      const unknown = spawnApp('cli', { DATABASE_URL: stack.database.url }, ['tenant', 'erase', 'ten_nosuchtenant00']);
      expect((await unknown.exited()).code).toBe(1);
      expect(unknown.tail()).toContain('no tenant ten_nosuchtenant00');

      // Killed once the walk is well under way.
      await expect.poll(async () => (await listTenantErasures(stack.db.db, tenant.tenantId))[0]!.counts.jobsErased, { timeout: 20_000, interval: 10 }).toBeGreaterThanOrEqual(30);
      first.kill('SIGKILL');
      await exited(first);
      const [atCrash] = await listTenantErasures(stack.db.db, tenant.tenantId);
      expect(atCrash!.status).toBe('running');
      expect(atCrash!.counts.jobsErased).toBeLessThan(155);
      const revokedAt = (await stack.db.pool.query('select revoked_at from api_keys where tenant_id = $1', [tenant.tenantId])).rows[0].revoked_at;
      expect(revokedAt).toBeInstanceOf(Date);
    } finally {
      if (first.exitCode === null && first.signalCode === null) first.kill('SIGKILL');
      await exited(first);
    }

    const second = spawnWorker(stack, stack.redisUrl, batchEnv);
    try {
      await expect.poll(async () => (await listTenantErasures(stack.db.db, tenant.tenantId))[0]!.status, { timeout: 30_000, interval: 100 }).toBe('completed');
    } finally {
      second.kill('SIGTERM');
      await exited(second);
    }
    const [erasure] = await listTenantErasures(stack.db.db, tenant.tenantId);
    const reported = await cli(['erase', tenant.tenantId, '--status']);
    expect(reported.data).toHaveLength(1);
    expect(reported.data[0]).toMatchObject({ id: erasure!.id, status: 'completed', counts: erasure!.counts, finished_at: erasure!.finishedAt!.toISOString() });
    expect(erasure!.counts).toEqual({
      jobsCancelled: 5,
      jobsErased: 155,
      providerDeletes: 155,
      providerDeleteFailures: 0,
      filesDeleted: 2,
      conversationsDeleted: 1,
      keysRevoked: 1,
      endpointsDisabled: 2,
    });
    expect(erasure!.finishedAt).toBeInstanceOf(Date);

    // Every job a tombstone whose response is gone; each deleted at the provider once (a call the
    // crash cut short may be repeated: the provider answers 404 to it), each active one cancelled once.
    const jobs = (
      await stack.db.pool.query('select id, status, response_id, erased_reason, provider_deleted_at, metadata, request from jobs where tenant_id = $1', [tenant.tenantId])
    ).rows;
    expect(jobs).toHaveLength(155);
    const log = (await stack.simApi('GET', '/sim/request-log')).data as Array<{ method: string; path: string; status: number }>;
    for (const job of jobs) {
      expect(job).toMatchObject({ erased_reason: 'tenant', metadata: {} });
      expect(job.provider_deleted_at).toBeInstanceOf(Date);
      expect(JSON.stringify(job.request)).not.toContain(MARKER);
      const deletes = log.filter((r) => r.method === 'DELETE' && r.path === `/v1/responses/${job.response_id}`).map((r) => r.status);
      expect(deletes.filter((s) => s === 200)).toHaveLength(1);
      expect(deletes.filter((s) => s !== 200 && s !== 404)).toEqual([]);
    }
    expect(jobs.filter((j) => j.status === 'cancelled')).toHaveLength(5);
    const cancels = await stack.db.pool.query<{ job_id: string; n: number }>(
      "select job_id, count(*)::int as n from job_events where tenant_id = $1 and to_status = 'cancelling' group by job_id",
      [tenant.tenantId],
    );
    expect(cancels.rows).toHaveLength(5);
    for (const r of cancels.rows) expect(r.n).toBe(1);
    expect((await stack.db.pool.query('select revoked_at from api_keys where tenant_id = $1', [tenant.tenantId])).rows[0].revoked_at).toBeInstanceOf(Date);
    const endpoints = (await stack.db.pool.query('select enabled, disabled_reason from webhook_endpoints where tenant_id = $1', [tenant.tenantId])).rows;
    expect(endpoints).toEqual([
      { enabled: false, disabled_reason: TENANT_ERASED_REASON },
      { enabled: false, disabled_reason: TENANT_ERASED_REASON },
    ]);
    const fileRows = (await stack.db.pool.query('select id, deleted_at from files where tenant_id = $1', [tenant.tenantId])).rows;
    expect(fileRows.every((f) => f.deleted_at instanceof Date)).toBe(true);
    for (const f of fileRows) expect((await fetch(`${stack.simUrl}/v1/files/${f.id}`, { headers: { authorization: 'Bearer sk-test' } })).status).toBe(404);
    expect((await stack.simApi('GET', '/sim/stats')).files.deleted).toBe(2);
    const [conv] = (await stack.db.pool.query('select id, deleted_at, metadata from conversations where tenant_id = $1', [tenant.tenantId])).rows;
    expect(conv).toMatchObject({ deleted_at: expect.any(Date), metadata: {} });
    expect((await fetch(`${stack.simUrl}/v1/conversations/${conv.id}`, { headers: { authorization: 'Bearer sk-test' } })).status).toBe(404);

    // The tenant's key is refused (by every API process once its key cache lets go); the other tenant is untouched.
    expect(await findTenantByApiKey(stack.db.db, tenant.apiKey)).toBeNull();
    const [theirs] = (await stack.db.pool.query('select count(*)::int as erased from jobs where tenant_id = $1 and erased_at is not null', [stack.tenantId])).rows;
    expect(theirs.erased).toBe(0);
    expect((await stays('GET', '/v1/jobs')).body.data).toHaveLength(2);
  });
});
