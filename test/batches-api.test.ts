/**
 * /v1/batches (issue 17) over plain HTTP against the simulator's Batch API: a tenant's batches
 * newest first with keyset pages (`limit`, `after`), one batch with its facts and its jobs counted
 * by status, its events oldest first; another tenant's batch is a 404 as an unknown one is, a
 * malformed id or limit a 400 naming it; the jobs read scope covers batches.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '@longhaul/db';
import { FAST_BATCHING, type Stack, isTerminalJob, startStack } from './harness.ts';

let stack: Stack;
let other: { tenantId: string; apiKey: string };
/** This tenant's three batches, oldest first (the first has a failed line), and the other tenant's one. */
const batchIds: string[] = [];
let otherBatchId: string;
let firstJobs: any[];

const as = (key: string, method: string, path: string) => stack.api(method, path, undefined, { authorization: `Bearer ${key}` });

/** Submit batch jobs together, wait for them all to end, and return them (they went out as one batch). */
async function runBatch(inputs: Array<Record<string, unknown>>, apiKey = stack.apiKey): Promise<any[]> {
  const submitted = await Promise.all(
    inputs.map(async (extra) => {
      const res = await stack.api(
        'POST',
        '/v1/jobs',
        { model: 'gpt-4.1', input: 'Summarise the quarterly report.', processing: 'batch', ...extra },
        { authorization: `Bearer ${apiKey}` },
      );
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      return res.body;
    }),
  );
  const done: any[] = [];
  for (const job of submitted) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const got = (await as(apiKey, 'GET', `/v1/jobs/${job.id}`)).body;
      if (isTerminalJob(got) && got.batch?.status) {
        done.push(got);
        break;
      }
      if (Date.now() > deadline) throw new Error(`job ${job.id} still ${got.status}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  expect(new Set(done.map((j) => j.batch.id)).size).toBe(1);
  return done;
}

beforeAll(async () => {
  // As batch-jobs.test.ts: a batch takes 10 simulated minutes (60 ms here), goes out 300 ms after
  // its first job, and its end is learnt from its webhook.
  stack = await startStack({
    sim: { time_scale: 0.0001, batch_duration_ms: 600_000 },
    webhooks: true,
    worker: {
      batching: FAST_BATCHING,
    },
  });
  other = await createTenant(stack.db.db, 'other tenant');
  firstJobs = await runBatch([{ input: 'one' }, { input: 'two' }, { input: 'three', metadata: { sim_outcome: 'failed' } }]);
  batchIds.push(firstJobs[0].batch.id);
  batchIds.push((await runBatch([{ input: 'four' }, { input: 'five' }]))[0].batch.id);
  batchIds.push((await runBatch([{ input: 'six' }]))[0].batch.id);
  otherBatchId = (await runBatch([{ input: 'theirs' }], other.apiKey))[0].batch.id;
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

describe('GET /v1/batches/{id}', () => {
  it('shows the batch: its provider ids and files, counts, jobs by status, and times in unix seconds', async () => {
    const res = await stack.api('GET', `/v1/batches/${batchIds[0]}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const b = res.body;
    expect(b).toMatchObject({
      id: batchIds[0],
      object: 'batch',
      status: 'completed',
      model: 'gpt-4.1',
      provider_batch_id: firstJobs[0].batch.provider_batch_id,
      input_file_id: expect.stringMatching(/^file-/),
      output_file_id: expect.stringMatching(/^file-/),
      job_count: 3,
      request_counts: { total: 3, completed: 2, failed: 1 },
      jobs: { completed: 2, failed: 1 },
      error: null,
      create_attempts: 1,
    });
    expect(b.bytes).toBeGreaterThan(0);
    expect(Object.keys(b).sort()).toEqual(
      [
        'id',
        'object',
        'status',
        'model',
        'provider_batch_id',
        'input_file_id',
        'output_file_id',
        'error_file_id',
        'job_count',
        'bytes',
        'request_counts',
        'jobs',
        'error',
        'create_attempts',
        'created_at',
        'submitted_at',
        'finished_at',
        'reconciled_at',
      ].sort(),
    );
    const now = Date.now() / 1000;
    for (const k of ['created_at', 'submitted_at', 'finished_at', 'reconciled_at']) {
      expect(Number.isInteger(b[k]), k).toBe(true);
      expect(b[k]).toBeGreaterThan(now - 600);
      expect(b[k]).toBeLessThanOrEqual(now + 1);
    }
    expect(b.created_at).toBeLessThanOrEqual(b.submitted_at);
    expect(b.submitted_at).toBeLessThanOrEqual(b.finished_at);
    expect(b.finished_at).toBeLessThanOrEqual(b.reconciled_at);
    // The one-job batch: one completed job.
    expect((await stack.api('GET', `/v1/batches/${batchIds[2]}`)).body).toMatchObject({
      job_count: 1,
      jobs: { completed: 1 },
      request_counts: { total: 1, completed: 1, failed: 0 },
    });
  });

  it('is a 404 for another tenant’s batch and for an unknown one, a 400 for a malformed id', async () => {
    for (const path of [`/v1/batches/${otherBatchId}`, `/v1/batches/${otherBatchId}/events`, '/v1/batches/lhb_000000000000000000000000']) {
      const res = await stack.api('GET', path);
      expect(res.status, path).toBe(404);
      expect(res.body.error).toMatchObject({ type: 'not_found_error', code: 'batch_not_found', param: 'id' });
    }
    // The other tenant sees its own.
    expect((await as(other.apiKey, 'GET', `/v1/batches/${otherBatchId}`)).body).toMatchObject({ id: otherBatchId, status: 'completed' });
    // The provider's id is not ours; nor is a job's.
    for (const bad of [firstJobs[0].batch.provider_batch_id, firstJobs[0].id, 'lhb_<script>']) {
      const res = await stack.api('GET', `/v1/batches/${encodeURIComponent(bad)}`);
      expect(res.status, bad).toBe(400);
      expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_id', param: 'id' });
    }
  });
});

describe('GET /v1/batches/{id}/events', () => {
  it('lists its changes oldest first, from its collection to its end', async () => {
    const res = await stack.api('GET', `/v1/batches/${batchIds[0]}/events`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const events = res.body.data as { from: string | null; to: string; at: number; details: Record<string, unknown> }[];
    expect(res.body.object).toBe('list');
    expect(events[0]).toEqual({ from: null, to: 'building', at: expect.any(Number), details: { jobs: 3, bytes: expect.any(Number) } });
    expect(events.at(-1)).toMatchObject({ to: 'completed' });
    // Each change starts where the one before it ended, in time order.
    for (let i = 1; i < events.length; i++) {
      expect(events[i]!.from).toBe(events[i - 1]!.to);
      expect(events[i]!.at).toBeGreaterThanOrEqual(events[i - 1]!.at);
    }
    expect(events.map((e) => e.to)).toContain('uploaded');
    for (const e of events) expect(Object.keys(e).sort()).toEqual(['at', 'details', 'from', 'to']);
  });
});

describe('GET /v1/batches', () => {
  it('lists the tenant’s batches newest first, with keyset pages', async () => {
    const all = await stack.api('GET', '/v1/batches');
    expect(all.status, JSON.stringify(all.body)).toBe(200);
    expect(all.body.object).toBe('list');
    expect(all.body.data.map((b: any) => b.id)).toEqual([...batchIds].reverse());
    expect(all.body.has_more).toBe(false);
    expect(all.body.data[2]).toMatchObject({ id: batchIds[0], object: 'batch', jobs: { completed: 2, failed: 1 } });

    const first = await stack.api('GET', '/v1/batches?limit=2');
    expect(first.body.data.map((b: any) => b.id)).toEqual([batchIds[2], batchIds[1]]);
    expect(first.body.has_more).toBe(true);
    const second = await stack.api('GET', `/v1/batches?limit=2&after=${batchIds[1]}`);
    expect(second.body.data.map((b: any) => b.id)).toEqual([batchIds[0]]);
    expect(second.body.has_more).toBe(false);
    expect((await stack.api('GET', `/v1/batches?after=${batchIds[0]}`)).body).toEqual({ object: 'list', data: [], has_more: false });

    // The other tenant sees only its own; this tenant's cursor starts nothing for it, nor its for this one.
    expect((await as(other.apiKey, 'GET', '/v1/batches')).body.data.map((b: any) => b.id)).toEqual([otherBatchId]);
    expect((await as(other.apiKey, 'GET', `/v1/batches?after=${batchIds[2]}`)).body.data).toEqual([]);
    expect((await stack.api('GET', `/v1/batches?after=${otherBatchId}`)).body.data).toEqual([]);
  });

  it('refuses a bad limit or cursor with a 400 naming it', async () => {
    for (const [query, param] of [
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=ten', 'limit'],
      ['after=batch_123', 'after'],
      ['after=lhb_%00', 'after'],
      ['before=lhb_000000000000000000000000', 'before'],
    ] as const) {
      const res = await stack.api('GET', `/v1/batches?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.error, query).toMatchObject({ type: 'invalid_request_error', param });
    }
  });

  it('needs the jobs read scope', async () => {
    const reader = await stack.api('POST', '/v1/api-keys', { name: 'jobs reader', scopes: ['jobs:read'] });
    expect(reader.status, JSON.stringify(reader.body)).toBe(201);
    expect((await as(reader.body.key, 'GET', '/v1/batches')).status).toBe(200);
    expect((await as(reader.body.key, 'GET', `/v1/batches/${batchIds[0]}/events`)).status).toBe(200);
    const prompts = await stack.api('POST', '/v1/api-keys', { name: 'prompts reader', scopes: ['prompts:read'] });
    const refused = await as(prompts.body.key, 'GET', '/v1/batches');
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ type: 'permission_error', code: 'insufficient_scope' });
    expect(refused.body.error.message).toContain("'jobs:read'");
  });
});
