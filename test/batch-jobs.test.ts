/**
 * Batch jobs (issue 17) end to end, through plain HTTP against the simulator's Batch API:
 * `processing: "batch"` jobs of one tenant and model go out as one batch (a JSONL file, one
 * line per job, `custom_id` the job id), are followed by the simulator's signed `batch.*`
 * webhooks, and end with their lines: output, usage, cost at batch prices and what it saved; a
 * failed line fails its job; an expired batch keeps what finished and sends the rest again; a
 * job cancelled while its batch runs ignores its line, and cancelling every job of a batch
 * cancels it at the provider; bad combinations are 400s naming `processing`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_PRICES, estimateJobCostUsd } from '@longhaul/core';
import { FAST_BATCHING, type Stack, isTerminalJob, startStack } from './harness.ts';

let stack: Stack;
beforeAll(async () => {
  // A batch takes 10 simulated minutes: 60 ms at this scale. Batches go out 300 ms after their
  // first job (or at 50 jobs); polls are 10 s apart, so a batch's end is learnt from its webhook.
  stack = await startStack({
    sim: { time_scale: 0.0001, batch_duration_ms: 600_000 },
    webhooks: true,
    worker: {
      batching: FAST_BATCHING,
    },
  });
});
afterAll(async () => {
  await stack?.stop();
});

async function submit(body: Record<string, unknown>): Promise<any> {
  const res = await stack.api('POST', '/v1/jobs', { model: 'gpt-4.1', input: 'Summarise the quarterly report.', processing: 'batch', ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

/** Poll `probe` every 50 ms until it holds (true), or give up after 10 s (false). */
async function until(probe: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** The simulator's own view of a batch, as OpenAI's API answers it. */
async function providerBatch(id: string): Promise<any> {
  return (await fetch(`${stack.simUrl}/v1/batches/${id}`, { headers: { authorization: 'Bearer sk-test' } })).json();
}

const batchCalls = async () => {
  const log = ((await stack.simApi('GET', '/sim/request-log')) as { data: { method: string; path: string }[] }).data;
  return log.filter((r) => r.path.startsWith('/v1/batches') || r.path.startsWith('/v1/files'));
};

describe('batch jobs', () => {
  it('sends a tenant’s batch jobs as one batch and reconciles every job from its line, at batch prices', async () => {
    const before = (await batchCalls()).length;
    const jobs = await Promise.all(Array.from({ length: 12 }, (_, i) => submit({ input: `Question ${i}: what is ${i} squared?`, metadata: { n: String(i) } })));
    expect(jobs[0]).toMatchObject({ status: 'pending', processing: 'batch', batch: null });
    const done = await Promise.all(jobs.map((j) => stack.waitForJob(j.id, isTerminalJob, 30_000)));
    for (const job of done) {
      expect(job.status, JSON.stringify(job)).toBe('completed');
      expect(job.output_text.length).toBeGreaterThan(0);
      expect(job.usage.total_tokens).toBeGreaterThan(0);
      expect(job.batch).toMatchObject({ id: expect.stringMatching(/^lhb_/), status: 'completed', provider_batch_id: expect.stringMatching(/^batch_/) });
      // Half the standard price, and the other half saved.
      const standard = estimateJobCostUsd(DEFAULT_MODEL_PRICES, 'gpt-4.1', job.usage)!;
      expect(job.cost_usd).toBeCloseTo(standard / 2, 9);
      expect(job.saved_usd).toBeCloseTo(standard / 2, 9);
    }
    // One batch for all twelve: one upload, one create, and the lines named by job id.
    expect(new Set(done.map((j) => j.batch.id)).size).toBe(1);
    const calls = (await batchCalls()).slice(before);
    expect(calls.filter((c) => c.method === 'POST' && c.path === '/v1/files')).toHaveLength(1);
    expect(calls.filter((c) => c.method === 'POST' && c.path === '/v1/batches')).toHaveLength(1);
    const batch = await providerBatch(done[0].batch.provider_batch_id);
    expect(batch).toMatchObject({ status: 'completed', request_counts: { total: 12, completed: 12, failed: 0 }, endpoint: '/v1/responses' });
    const input = (await (await fetch(`${stack.simUrl}/v1/files/${batch.input_file_id}/content`, { headers: { authorization: 'Bearer sk-test' } })).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(input.map((l) => l.custom_id).sort()).toEqual(jobs.map((j) => j.id).sort());
    expect(input[0]).toMatchObject({ method: 'POST', url: '/v1/responses', body: { model: 'gpt-4.1' } });
    expect(input[0].body.background).toBeUndefined();
    // The usage report adds up what batch prices saved: these twelve jobs' savings at least.
    const usage = await stack.api('GET', '/v1/usage');
    expect(usage.status).toBe(200);
    const saved = done.reduce((n, j) => n + j.saved_usd, 0);
    expect(saved).toBeGreaterThan(0);
    expect(usage.body.total.saved_usd).toBeGreaterThanOrEqual(Math.floor(saved * 1e6) / 1e6);
  });

  it('fails the job whose line failed, and only it', async () => {
    const good = await submit({});
    const bad = await submit({ metadata: { sim_outcome: 'failed' } });
    const [g, b] = await Promise.all([stack.waitForJob(good.id, isTerminalJob, 30_000), stack.waitForJob(bad.id, isTerminalJob, 30_000)]);
    expect(g.status).toBe('completed');
    expect(b).toMatchObject({ status: 'failed', error: { code: expect.any(String) } });
    expect(b.batch.id).toBe(g.batch.id);
  });

  it('a job cancelled while its batch runs ignores its line; cancelling every job of a batch cancels the batch', async () => {
    // A long batch (at this scale, 100 simulated hours would expire: 10 hours is 3.6 s).
    await stack.simApi('POST', '/sim/config', { batch_duration_ms: 36_000_000 });
    try {
      const a = await submit({});
      const b = await submit({});
      const inBatch = await stack.waitForJob(a.id, (j) => j.batch?.provider_batch_id, 30_000);
      const cancelled = await stack.api('POST', `/v1/jobs/${a.id}/cancel`);
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.status).toBe('cancelled');
      // One job left: the batch runs on.
      expect((await providerBatch(inBatch.batch.provider_batch_id)).status).not.toMatch(/cancel/);
      expect((await stack.api('POST', `/v1/jobs/${b.id}/cancel`)).status).toBe(200);
      const until = Date.now() + 20_000;
      let status = '';
      while (Date.now() < until) {
        status = (await providerBatch(inBatch.batch.provider_batch_id)).status;
        if (status === 'cancelling' || status === 'cancelled') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(status).toMatch(/^cancell(ing|ed)$/);
      const [ja, jb] = [await stack.api('GET', `/v1/jobs/${a.id}`), await stack.api('GET', `/v1/jobs/${b.id}`)];
      expect([ja.body.status, jb.body.status]).toEqual(['cancelled', 'cancelled']);
    } finally {
      await stack.simApi('POST', '/sim/config', { batch_duration_ms: 600_000 });
    }
  });

  it('an expired batch keeps what finished and sends the rest again in a new batch', async () => {
    // The next batch expires half-way through its run (its plan is fixed when it is created):
    // a long one, so that what follows it is created after the simulator is told to stop expiring.
    await stack.simApi('POST', '/sim/config', { batch_expire_rate: 1, batch_duration_ms: 6_000_000 });
    let restored = false;
    const restore = async () => {
      if (!restored) await stack.simApi('POST', '/sim/config', { batch_expire_rate: 0, batch_duration_ms: 600_000 });
      restored = true;
    };
    try {
      const jobs = await Promise.all(Array.from({ length: 6 }, (_, i) => submit({ input: `Expiring ${i}` })));
      await stack.waitForJob(jobs[0].id, (j) => j.batch?.provider_batch_id, 30_000);
      await restore();
      const done = await Promise.all(jobs.map((j) => stack.waitForJob(j.id, isTerminalJob, 30_000)));
      expect(
        done.map((j) => j.status),
        JSON.stringify(done.map((j) => ({ status: j.status, error: j.error, batch: j.batch }))),
      ).toEqual(jobs.map(() => 'completed'));
      const expired = done.filter((j) => j.batch.status === 'expired');
      const again = done.filter((j) => j.batch.status === 'completed');
      // Some lines finished before the expiry and were kept; the rest ran in a later batch.
      expect(expired.length, JSON.stringify(done.map((j) => j.batch))).toBeGreaterThan(0);
      expect(again.length).toBeGreaterThan(0);
      expect(new Set(again.map((j) => j.batch.id)).has(expired[0].batch.id)).toBe(false);
      // Each job ended once (one terminal event), whichever batch answered it.
      for (const job of done) {
        const events = (await stack.api('GET', `/v1/jobs/${job.id}/events`)).body.data as { to: string; source: string }[];
        expect(events.filter((e) => e.to === 'completed')).toEqual([expect.objectContaining({ source: 'batch' })]);
      }
    } finally {
      await restore();
    }
  });

  it('refuses what a batch cannot run, naming processing', async () => {
    const tool = { type: 'function', name: 'f', parameters: { type: 'object', properties: {} } };
    for (const extra of [{ stream: true }, { tools: [tool] }, { fallbacks: [{ model: 'gpt-5' }] }, { processing: 'later' }]) {
      const res = await stack.api('POST', '/v1/jobs', { model: 'gpt-4.1', input: 'x', processing: 'batch', ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.body.error.param).toBe('processing');
    }
  });
});

describe('batch jobs with BATCH_EXPIRED_POLICY=fail', () => {
  let failing: Stack;
  beforeAll(async () => {
    failing = await startStack({
      // Every batch expires half-way through its run.
      sim: { time_scale: 0.0001, batch_duration_ms: 6_000_000, batch_expire_rate: 1 },
      webhooks: true,
      worker: {
        batching: { ...FAST_BATCHING, limits: { ...FAST_BATCHING.limits, maxWaitMs: 200 }, expiredPolicy: 'fail', deleteFiles: true },
      },
    });
  });
  afterAll(async () => {
    await failing?.stop();
  });

  it('keeps what finished and fails the rest with batch_expired', async () => {
    const jobs = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const res = await failing.api('POST', '/v1/jobs', { model: 'gpt-4.1', input: `Expiring ${i}`, processing: 'batch' });
        expect(res.status).toBe(202);
        return res.body;
      }),
    );
    const done = await Promise.all(jobs.map((j) => failing.waitForJob(j.id, isTerminalJob, 30_000)));
    const completed = done.filter((j) => j.status === 'completed');
    const failed = done.filter((j) => j.status === 'failed');
    expect(completed.length, JSON.stringify(done.map((j) => [j.status, j.error]))).toBeGreaterThan(0);
    expect(completed.length + failed.length).toBe(done.length);
    expect(failed.length).toBeGreaterThan(0);
    for (const job of failed) expect(job.error.code).toBe('batch_expired');
    // One batch: nothing was sent again.
    expect(new Set(done.map((j) => j.batch.id)).size).toBe(1);
    expect(done[0].batch.status).toBe('expired');
    // Reconciled, its files are deleted at the provider (BATCH_DELETE_FILES, on by default).
    const batch = (await failing.api('GET', `/v1/batches/${done[0].batch.id}`)).body;
    await until(async () => {
      const b = (await failing.api('GET', `/v1/batches/${done[0].batch.id}`)).body;
      return b.reconciled_at !== null;
    });
    for (const fileId of [batch.input_file_id, batch.output_file_id, batch.error_file_id]) {
      expect(fileId).toEqual(expect.any(String));
      const gone = await until(async () => (await fetch(`${failing.simUrl}/v1/files/${fileId}`, { headers: { authorization: 'Bearer sk-test' } })).status === 404);
      expect(gone, fileId).toBe(true);
    }
  });
});
