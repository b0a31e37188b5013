/**
 * Several provider keys, rotated without a restart (issue 20), with the API and two workers as
 * real processes following one OPENAI_API_KEYS_FILE, against a simulator that accepts three keys,
 * each its own project (a response is not found with another project's key, as at OpenAI):
 * - a rotation under load: 110 jobs, the file rewritten to [k1 retired, k2] half-way; every job
 *   completes, each response is reached only with the key that created it, the jobs still running
 *   on k1 finish on k1, everything created after the reload is k2's, and a conversation made with
 *   k1 is still read, and continued, with k1;
 * - a bad file is reported with a code and the keys loaded before stay in use;
 * - a key the provider rejects (401) is taken out of rotation (log line, metric) and the creates
 *   move to the next key; with no key left a job fails with `no_provider_key` and the API answers
 *   503 `no_provider_key`; SIGHUP gives the keys another chance;
 * - a key id removed from the file: its running job fails with `provider_key_missing`, its
 *   conversation answers 503 `provider_key_missing`.
 * No key ever appears in a log line, in Postgres, or in the simulator's stats.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../chaos/servers.ts';
import { type AppProcess, answering, killAll, spawnApp, until } from './app-process.ts';
import { type Stack, startStack } from './harness.ts';
import { scrape, total } from './prometheus.ts';
import { workerTestEnv } from './worker-process.ts';

const K1 = 'sk-longhaul-rotation-key-one-1111';
const K2 = 'sk-longhaul-rotation-key-two-2222';
const K3 = 'sk-longhaul-rotation-key-three-3333';
/** How the simulator names them in its stats (masked, as OpenAI's error messages show a key). */
const LABEL = { [K1]: 'sk-lon…1111', [K2]: 'sk-lon…2222', [K3]: 'sk-lon…3333' };
const byLabel = { k1: LABEL[K1], k2: LABEL[K2], k3: LABEL[K3] };

interface Process {
  app: AppProcess;
  metricsUrl: string;
  name: string;
}

describe('provider keys: rotation without a restart and without losing a job', () => {
  let stack: Stack;
  let dir: string;
  let keysFile: string;
  let api: Process & { url: string };
  let workers: Process[];
  const apps: AppProcess[] = [];

  const writeKeys = (keys: unknown) => {
    // As a secret mount or an editor replaces a file: written aside, renamed over it.
    writeFileSync(`${keysFile}.next`, typeof keys === 'string' ? keys : JSON.stringify(keys));
    renameSync(`${keysFile}.next`, keysFile);
  };
  const everyone = () => [api, ...workers];
  /** Wait until every process has loaded exactly these keys (id and state) for `reason`; when the last did (its log line's time). */
  const loadedEverywhere = async (reason: string, keys: Array<{ id: string; state: string }>): Promise<number> => {
    let last = 0;
    for (const p of everyone()) {
      const line = await p.app.waitForLog(
        `provider keys ${JSON.stringify(keys)} (${reason})`,
        (l) => l.code === 'provider_keys_loaded' && l.reason === reason && JSON.stringify(l.keys) === JSON.stringify(keys),
        20_000,
      );
      last = Math.max(last, Date.parse(line.time));
    }
    return last;
  };

  const call = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(api.url + p, {
      method,
      headers: { authorization: `Bearer ${stack.apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const submit = async (durationMs: number, extra: Record<string, unknown> = {}) => {
    const res = await call('POST', '/v1/jobs', { model: 'o3', input: 'Summarise the key rotation runbook.', metadata: { sim_duration_ms: String(durationMs) }, ...extra });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    return res.body.id as string;
  };
  const job = async (id: string) => (await call('GET', `/v1/jobs/${id}`)).body;
  const settled = async (ids: string[], timeoutMs = 60_000) => {
    const done = new Map<string, any>();
    await until(
      `${ids.length} jobs to finish`,
      async () => {
        for (const id of ids) {
          if (done.has(id)) continue;
          const j = await job(id);
          if (['completed', 'failed', 'cancelled', 'incomplete', 'expired'].includes(j.status)) done.set(id, j);
        }
        return done.size === ids.length;
      },
      timeoutMs,
      200,
    );
    return ids.map((id) => done.get(id));
  };
  /** The simulator's record of which keys created and used a response. */
  const keysOf = async (responseId: string) => (await stack.simApi('GET', `/sim/keys/objects/${responseId}`)) as { created_with: string; used_with: string[] };
  const byKey = async () => (await stack.simApi('GET', '/sim/stats')).by_key as Record<string, { creates: number; retrieves: number; rejected: number }>;

  beforeAll(async () => {
    stack = await startStack({ startWorker: false });
    await stack.simApi('POST', '/sim/keys', { keys: [K1, K2, K3] });
    dir = mkdtempSync(path.join(tmpdir(), 'longhaul-provider-keys-'));
    keysFile = path.join(dir, 'openai-keys.json');
    writeKeys([{ id: 'k1', key: K1 }]);
    const common = {
      DATABASE_URL: stack.database.url,
      REDIS_URL: stack.redisUrl,
      QUEUE_PREFIX: stack.prefix,
      OPENAI_BASE_URL: `${stack.simUrl}/v1`,
      OPENAI_API_KEYS_FILE: keysFile,
      LONGHAUL_MIGRATE_ON_START: 'false',
      METRICS_HOST: '127.0.0.1',
      METRICS_TOKEN: '',
    };
    const [port, apiMetricsPort] = [await freePort(), await freePort()];
    const apiApp = spawnApp('api', { ...common, HOST: '127.0.0.1', PORT: String(port), API_METRICS_PORT: String(apiMetricsPort) });
    apps.push(apiApp);
    api = { app: apiApp, name: 'api', url: `http://127.0.0.1:${port}`, metricsUrl: `http://127.0.0.1:${apiMetricsPort}` };
    workers = [];
    for (const name of ['worker 1', 'worker 2']) {
      const metricsPort = await freePort();
      // The test workers' usual settings (poll mode, short locks, polls and sweeps), on the keys file.
      const app = spawnApp('worker', { ...workerTestEnv(stack), ...common, RETRY_BASE_MS: '100', METRICS_PORT: String(metricsPort) });
      apps.push(app);
      workers.push({ app, name, metricsUrl: `http://127.0.0.1:${metricsPort}` });
    }
    await answering(`${api.url}/healthz`, api.app, 60_000);
    for (const w of workers) await answering(`${w.metricsUrl}/readyz`, w.app, 60_000);
  }, 120_000);

  afterAll(async () => {
    await killAll(apps);
    await stack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  /** Started on k1 and never finishing: the key-id-removed case reaches it at the end. */
  let longJob: string;
  let k1Conversation: string;

  it('a rotation under load loses no job: old responses finish on the old key, new ones use the new key', async () => {
    await loadedEverywhere('start', [{ id: 'k1', state: 'active' }]);
    const conversation = await call('POST', '/v1/conversations', { metadata: { topic: 'rotation' } });
    expect(conversation.status).toBe(200);
    k1Conversation = conversation.body.id;
    expect((await keysOf(k1Conversation)).created_with).toBe(byLabel.k1);
    longJob = await submit(100_000_000);

    // 100 jobs of about 3 s each at ~25 per second; the file is rotated after the 50th.
    const before: string[] = [];
    const during: string[] = [];
    let rotatedAt = 0;
    for (let i = 0; i < 100; i++) {
      (rotatedAt === 0 ? before : during).push(await submit(300_000));
      if (i === 49) {
        writeKeys([
          { id: 'k1', key: K1, retired: true },
          { id: 'k2', key: K2 },
        ]);
        rotatedAt = Date.now();
      }
      await new Promise((r) => setTimeout(r, 40));
    }
    const rotated = [
      { id: 'k1', state: 'retired' },
      { id: 'k2', state: 'active' },
    ];
    const reloadedAt = await loadedEverywhere('file_changed', rotated);
    // A create that took k1 just before its process reloaded may still be on its way.
    await new Promise((r) => setTimeout(r, 300));
    const atReload = await byKey();
    // After every process has the new keys: creates are k2's; the k1 conversation goes on with k1.
    const after: string[] = [];
    for (let i = 0; i < 10; i++) after.push(await submit(20_000));
    const continued = await submit(20_000, { conversation: k1Conversation });

    const all = [...before, ...during, ...after, continued];
    const finished = await settled(all);
    expect(
      finished.filter((j) => j.status !== 'completed').map((j) => ({ id: j.id, status: j.status, error: j.error })),
      'jobs lost or failed',
    ).toEqual([]);

    const owners = new Map<string, { created_with: string; used_with: string[] }>();
    for (const j of finished) owners.set(j.id, await keysOf(j.response_id));
    // Every response was reached only with the key that created it.
    expect([...owners.values()].filter((o) => o.used_with.length !== 1 || o.used_with[0] !== o.created_with)).toEqual([]);
    const createdWith = (ids: string[]) => ids.map((id) => owners.get(id)!.created_with);
    expect(new Set(createdWith(after))).toEqual(new Set([byLabel.k2]));
    expect(owners.get(continued)!.created_with).toBe(byLabel.k1);
    expect(createdWith(before).filter((k) => k === byLabel.k1).length, 'jobs created before the rotation').toBeGreaterThan(0);
    expect(createdWith(during).filter((k) => k === byLabel.k2).length, 'jobs created after it').toBeGreaterThan(0);

    // Jobs created on k1 that were still running at the reload finished, retrieved with k1.
    const terminalAt = (await stack.simApi('GET', '/sim/stats')).terminal_at_ms as Record<string, number>;
    const k1StillRunning = finished.filter((j) => owners.get(j.id)!.created_with === byLabel.k1 && terminalAt[j.response_id]! > reloadedAt);
    expect(k1StillRunning.length, 'k1 jobs still running when the keys rotated').toBeGreaterThan(0);
    const atEnd = await byKey();
    // The retired key created nothing more once reloaded, but the conversation's continuation.
    expect(atEnd[byLabel.k1]!.creates - atReload[byLabel.k1]!.creates).toBe(1);
    expect(atEnd[byLabel.k1]!.retrieves).toBeGreaterThan(atReload[byLabel.k1]!.retrieves);

    // Each job records its key's id, never the key.
    const { rows } = await stack.db.pool.query<{ id: string; provider_key_id: string | null }>('select id, provider_key_id from jobs where id = any($1)', [all]);
    const labelOfId = { k1: byLabel.k1, k2: byLabel.k2 } as Record<string, string>;
    expect(rows.filter((r) => labelOfId[r.provider_key_id ?? ''] !== owners.get(r.id)!.created_with)).toEqual([]);
    // The old conversation is still read with k1; a new one is made with k2.
    expect((await call('GET', `/v1/conversations/${k1Conversation}`)).status).toBe(200);
    const second = await call('POST', '/v1/conversations', {});
    expect((await keysOf(second.body.id)).created_with).toBe(byLabel.k2);
    // Deleting a job made on the retired key deletes its response with that key (with k2 the
    // provider would answer 404, which counts as gone, and the response would stay).
    const oldJob = finished.find((j) => owners.get(j.id)!.created_with === byLabel.k1)!;
    const deleted = await call('DELETE', `/v1/jobs/${oldJob.id}`);
    expect(deleted.status, JSON.stringify(deleted.body)).toBe(200);
    const deletes = ((await stack.simApi('GET', '/sim/request-log')).data as Array<{ method: string; path: string; status: number }>).filter(
      (r) => r.method === 'DELETE' && r.path === `/v1/responses/${oldJob.response_id}`,
    );
    expect(deletes.map((r) => r.status)).toEqual([200]);
    expect((await stack.db.pool.query('select provider_deleted_at from jobs where id = $1', [oldJob.id])).rows[0].provider_deleted_at).toBeInstanceOf(Date);
    // A process asked for k2 (a response another one created) before its own check saw the new file reads it then.
    const notYetKnown = everyone().filter((p) => p.app.logs.some((l) => l.code === 'provider_keys_loaded' && l.noticed_by === 'key_lookup')).length;
    console.info(
      `[provider-keys] rotation after job 50 of 100 (+10 after the reload): reload seen everywhere ${reloadedAt - rotatedAt} ms after the rewrite; ${k1StillRunning.length} k1 jobs finished after it; ${notYetKnown} processes read the new file on meeting k2 before their check did; 0 lost`,
    );
  }, 120_000);

  it('keeps the keys it has when the file turns bad, logging it with a code', async () => {
    writeKeys('[{"id": "k9", "key": "sk-longhaul-bad-file-9999"');
    for (const p of everyone()) await p.app.waitForLog('provider_keys_file_invalid', (l) => l.code === 'provider_keys_file_invalid' && l.level === 'error', 20_000);
    const ids = [await submit(20_000), await submit(20_000)];
    const finished = await settled(ids);
    expect(finished.map((j) => j.status)).toEqual(['completed', 'completed']);
    for (const j of finished) expect((await keysOf(j.response_id)).created_with).toBe(byLabel.k2);
  }, 60_000);

  it('takes a key the provider rejects out of rotation (log line, metric) and creates with the next one', async () => {
    writeKeys([
      { id: 'k1', key: K1, retired: true },
      { id: 'k2', key: K2 },
      { id: 'k3', key: K3 },
    ]);
    await loadedEverywhere('file_changed', [
      { id: 'k1', state: 'retired' },
      { id: 'k2', state: 'active' },
      { id: 'k3', state: 'active' },
    ]);
    await stack.simApi('POST', `/sim/keys/${K2}/revoke`);

    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await submit(20_000));
    const conversations = [await call('POST', '/v1/conversations', {}), await call('POST', '/v1/conversations', {})];
    expect(conversations.map((c) => c.status)).toEqual([200, 200]);
    const finished = await settled(ids);
    expect(finished.filter((j) => j.status !== 'completed')).toEqual([]);
    for (const j of finished) expect((await keysOf(j.response_id)).created_with).toBe(byLabel.k3);
    for (const c of conversations) expect((await keysOf(c.body.id)).created_with).toBe(byLabel.k3);
    expect((await byKey())[byLabel.k2]!.rejected).toBeGreaterThan(0);

    // Each process that met the 401 logged it once, with the key's id, and counted it.
    const rejecting = everyone().filter((p) => p.app.logs.some((l) => l.code === 'provider_key_rejected'));
    expect(rejecting.length).toBeGreaterThan(0);
    for (const p of rejecting) {
      const lines = p.app.logs.filter((l) => l.code === 'provider_key_rejected');
      expect(lines, p.name).toMatchObject([{ level: 'error', key_id: 'k2', active: 1 }]);
      const samples = await scrape(p.metricsUrl);
      expect(total(samples, 'longhaul_provider_key_rejected_total', { key_id: 'k2' }), p.name).toBe(1);
      expect(total(samples, 'longhaul_provider_keys', { state: 'active' }), p.name).toBe(1);
      expect(total(samples, 'longhaul_provider_keys', { state: 'rejected' }), p.name).toBe(1);
    }
  }, 60_000);

  it('fails a job with no_provider_key when no key is left, and SIGHUP gives the keys another chance', async () => {
    await stack.simApi('POST', `/sim/keys/${K3}/revoke`);
    const failed = (await settled([await submit(20_000)]))[0];
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'no_provider_key' } });
    const refused = await call('POST', '/v1/conversations', {});
    expect(refused).toMatchObject({ status: 503, body: { error: { type: 'service_unavailable_error', code: 'no_provider_key' } } });
    // The keys are fixed at the provider; SIGHUP tells every process so.
    await stack.simApi('POST', '/sim/keys', { keys: [K1, K2, K3] });
    for (const p of everyone()) p.app.child.kill('SIGHUP');
    await loadedEverywhere('sighup', [
      { id: 'k1', state: 'retired' },
      { id: 'k2', state: 'active' },
      { id: 'k3', state: 'active' },
    ]);
    expect((await settled([await submit(20_000)]))[0].status).toBe('completed');
  }, 60_000);

  it('fails a running job whose key id was removed from the file with provider_key_missing', async () => {
    expect(['queued', 'in_progress']).toContain((await job(longJob)).status);
    writeKeys([
      { id: 'k2', key: K2 },
      { id: 'k3', key: K3 },
    ]);
    await loadedEverywhere('file_changed', [
      { id: 'k2', state: 'active' },
      { id: 'k3', state: 'active' },
    ]);
    const failed = (await settled([longJob]))[0];
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'provider_key_missing' } });
    expect(failed.error.message).toMatch(/'k1'/);
    const missing = await call('GET', `/v1/conversations/${k1Conversation}`);
    expect(missing).toMatchObject({ status: 503, body: { error: { code: 'provider_key_missing' } } });
    for (const p of everyone()) expect(p.app.alive(), p.name).toBe(true);
  }, 60_000);

  it('never writes a key into a log line, Postgres or the simulator’s stats', async () => {
    for (const p of everyone()) {
      const text = JSON.stringify(p.app.logs) + p.app.tail();
      for (const key of [K1, K2, K3, 'sk-longhaul-bad-file-9999']) expect(text.includes(key), `${p.name} logged a key`).toBe(false);
    }
    const { rows } = await stack.db.pool.query<{ n: number }>(
      "select (select count(*) from jobs where provider_key_id like 'sk-%' or request::text like '%sk-longhaul%')::int + (select count(*) from conversations where provider_key_id like 'sk-%')::int as n",
    );
    expect(rows[0]!.n).toBe(0);
    expect(JSON.stringify(await stack.simApi('GET', '/sim/stats'))).not.toContain(K1);
  });
});
