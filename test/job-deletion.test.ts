/**
 * DELETE /v1/jobs/{id} (issue 20): a finished job's content is erased (input, output, reasoning
 * summary, metadata, callback bodies) and its stored response deleted at the provider, leaving the
 * tombstone (status, usage, cost, timestamps). A running job is a 409, another tenant's a 404.
 * DELETE /v1/responses/{id} takes the same path. The erase commits first: a provider delete that
 * fails is retried by the sweeper with backoff until it succeeds (a 404 counts as deleted), and
 * given up on after its bound, with a log line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '@longhaul/db';
import { type Stack, FAST_WORKER_CONFIG, isTerminalJob, jobBody, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';

const MARKER = 'heron-basalt-5520';

let stack: Stack;
let receiver: Receiver;
const lines: Array<Record<string, any>> = [];
const noSweeps = { ...FAST_WORKER_CONFIG.sweep, intervalMs: 3_600_000 };

beforeAll(async () => {
  receiver = await startReceiver();
  stack = await startStack({
    worker: { sweep: noSweeps },
    logLevel: 'info',
    logDestination: {
      write: (chunk: string) =>
        void lines.push(
          ...chunk
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l)),
        ),
    },
  });
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
});

/** The simulator's log of DELETE /v1/responses/{id}: the status of each. */
async function simDeletes(responseId: string): Promise<Array<number | null>> {
  const log = await stack.simApi('GET', '/sim/request-log');
  return log.data.filter((r: any) => r.method === 'DELETE' && r.path === `/v1/responses/${responseId}`).map((r: any) => r.status);
}

async function atProvider(responseId: string): Promise<number> {
  return (await fetch(`${stack.simUrl}/v1/responses/${responseId}`, { headers: { authorization: 'Bearer sk-test' } })).status;
}

async function row(jobId: string): Promise<{ erased_reason: string | null; provider_deleted_at: Date | null; request: any }> {
  return (await stack.db.pool.query('select erased_reason, provider_deleted_at, request from jobs where id = $1', [jobId])).rows[0];
}

async function finishedJob(extra: Record<string, unknown> = {}): Promise<any> {
  const created = await stack.api(
    'POST',
    '/v1/jobs',
    jobBody({
      input: `Plan the ${MARKER} bridge.`,
      instructions: `Speak as ${MARKER}.`,
      reasoning: { effort: 'high', summary: 'auto' },
      metadata: { sim_duration_ms: '20', note: MARKER },
      ...extra,
    }),
  );
  expect(created.status).toBe(202);
  return stack.waitForJob(created.body.id, isTerminalJob);
}

describe('DELETE /v1/jobs/{id}', () => {
  it('erases a finished job and deletes its stored response at the provider, answering the tombstone', async () => {
    const job = await finishedJob({ callback_url: receiver.url });
    expect(job).toMatchObject({ status: 'completed', metadata: { note: MARKER } });
    expect(job.output_text).toEqual(expect.any(String));
    expect(job.reasoning_summary).not.toBeNull();
    await expect.poll(() => receiver.received.some((r) => r.body.includes(job.id)), { timeout: 10_000 }).toBe(true);
    expect(await atProvider(job.response_id)).toBe(200);

    const deleted = await stack.api('DELETE', `/v1/jobs/${job.id}`);
    expect(deleted.status).toBe(200);
    const tombstone = {
      id: job.id,
      object: 'job',
      status: 'completed',
      model: job.model,
      usage: job.usage,
      cost_usd: job.cost_usd,
      created_at: job.created_at,
      finished_at: job.finished_at,
      response_id: job.response_id,
      output_text: null,
      output: null,
      reasoning_summary: null,
      metadata: {},
    };
    expect(deleted.body).toMatchObject({ ...tombstone, deleted: true });
    expect(deleted.body.erased_at).toEqual(expect.any(Number));
    const read = await stack.api('GET', `/v1/jobs/${job.id}`);
    expect(read.body).toMatchObject(tombstone);
    expect(read.body.erased_at).toBe(deleted.body.erased_at);
    expect(JSON.stringify(read.body)).not.toContain(MARKER);
    const events = await stack.api('GET', `/v1/jobs/${job.id}/events`);
    expect(events.body.data.map((e: any) => e.to)).toContain('completed');
    expect(JSON.stringify(events.body)).not.toContain(MARKER);

    // The provider's copy is gone, and the row says so.
    expect(await atProvider(job.response_id)).toBe(404);
    expect(await simDeletes(job.response_id)).toEqual([200]);
    const erased = await row(job.id);
    expect(erased.erased_reason).toBe('request');
    expect(erased.provider_deleted_at).toBeInstanceOf(Date);
    expect(JSON.stringify(erased.request)).not.toContain(MARKER);
    const callbacks = await stack.db.pool.query("select payload::text as payload from callback_events where job_id = $1 and payload::text like '%' || $2 || '%'", [job.id, MARKER]);
    expect(callbacks.rows).toEqual([]);

    // Deleting again answers the tombstone, without another provider call; the response is gone from /v1/responses.
    const again = await stack.api('DELETE', `/v1/jobs/${job.id}`);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ ...tombstone, deleted: true });
    expect(await simDeletes(job.response_id)).toEqual([200]);
    expect((await stack.api('GET', `/v1/responses/${job.response_id}`)).status).toBe(404);
  });

  it('refuses a running job (409, cancel first) and does not know another tenant’s (404)', async () => {
    const running = await stack.api('POST', '/v1/jobs', jobBody({}, 3_600_000));
    await stack.waitForJob(running.body.id, (j) => j.status === 'in_progress');
    const refused = await stack.api('DELETE', `/v1/jobs/${running.body.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ type: 'conflict_error', code: 'job_not_finished' });
    expect(refused.body.error.message).toContain('cancel');
    expect((await row(running.body.id)).erased_reason).toBeNull();
    await stack.api('POST', `/v1/jobs/${running.body.id}/cancel`);
    const cancelled = await stack.waitForJob(running.body.id, isTerminalJob);
    expect(cancelled.status).toBe('cancelled');
    expect((await stack.api('DELETE', `/v1/jobs/${running.body.id}`)).body).toMatchObject({ id: running.body.id, status: 'cancelled', deleted: true });

    const other = await createTenant(stack.db.db, 'other');
    const theirs = await stack.api('POST', '/v1/jobs', jobBody({}, 20), { authorization: `Bearer ${other.apiKey}` });
    const notMine = await stack.api('DELETE', `/v1/jobs/${theirs.body.id}`);
    expect(notMine.status).toBe(404);
    expect((await row(theirs.body.id)).erased_reason).toBeNull();
    expect((await stack.api('DELETE', '/v1/jobs/job_doesnotexist0000')).status).toBe(404);
    expect((await stack.api('DELETE', '/v1/jobs/not-a-job-id')).status).toBe(400);
  });

  it('is the path DELETE /v1/responses/{id} takes too', async () => {
    const job = await finishedJob();
    const deleted = await stack.api('DELETE', `/v1/responses/${job.response_id}`);
    expect(deleted.body).toEqual({ id: `resp_lh_${job.id.slice('job_'.length)}`, object: 'response.deleted', deleted: true });
    expect(await atProvider(job.response_id)).toBe(404);
    const erased = await row(job.id);
    expect(erased.erased_reason).toBe('request');
    expect(erased.provider_deleted_at).toBeInstanceOf(Date);
  });

  it('retries a provider delete that failed, with backoff, until it succeeds; a 404 counts as deleted', async () => {
    const job = await finishedJob();
    await stack.simApi('POST', '/sim/config', { error_rate: 1, fault_endpoints: ['delete'] });
    try {
      // The erase stands although the provider failed: the tenant's answer is the tombstone.
      const deleted = await stack.api('DELETE', `/v1/jobs/${job.id}`);
      expect(deleted.status).toBe(200);
      expect(deleted.body).toMatchObject({ id: job.id, deleted: true, output_text: null });
      expect(await simDeletes(job.response_id)).toEqual([500]);
      expect(await atProvider(job.response_id)).toBe(200);
      expect((await row(job.id)).provider_deleted_at).toBeNull();
      expect(lines.some((l) => l.code === 'provider_delete_failed' && l.job_id === job.id)).toBe(true);

      const sweeper = stack.startWorker({ sweep: { ...noSweeps, retention: { providerDeletes: { baseMs: 300, maxMs: 600, giveUpAfterMs: 60_000 } } } });
      // Not due yet: the first retry comes baseMs after the erase.
      expect((await sweeper.sweep()).providerDeletesRetried).toBe(0);
      await new Promise((r) => setTimeout(r, 350));
      expect(await sweeper.sweep()).toMatchObject({ providerDeletesRetried: 1, providerDeletesConfirmed: 0 });
      expect((await sweeper.sweep()).providerDeletesRetried).toBe(0); // the next one waits longer
      await stack.simApi('POST', '/sim/config', { error_rate: 0 });
      await new Promise((r) => setTimeout(r, 650));
      expect(await sweeper.sweep()).toMatchObject({ providerDeletesRetried: 1, providerDeletesConfirmed: 1 });
      expect(await simDeletes(job.response_id)).toEqual([500, 500, 200]);
      expect(await atProvider(job.response_id)).toBe(404);
      expect((await row(job.id)).provider_deleted_at).toBeInstanceOf(Date);
      await new Promise((r) => setTimeout(r, 650));
      expect((await sweeper.sweep()).providerDeletesRetried).toBe(0);
      await sweeper.close();

      // Gone at the provider already (deleted there, or past its retention): deleted.
      const gone = await finishedJob();
      expect((await fetch(`${stack.simUrl}/v1/responses/${gone.response_id}`, { method: 'DELETE', headers: { authorization: 'Bearer sk-test' } })).status).toBe(200);
      expect((await stack.api('DELETE', `/v1/jobs/${gone.id}`)).status).toBe(200);
      expect(await simDeletes(gone.response_id)).toEqual([200, 404]);
      expect((await row(gone.id)).provider_deleted_at).toBeInstanceOf(Date);
    } finally {
      await stack.simApi('POST', '/sim/config', { error_rate: 0 });
    }
  });

  it('gives up after its bound, with a log line naming the job', async () => {
    const job = await finishedJob();
    await stack.simApi('POST', '/sim/config', { error_rate: 1, fault_endpoints: ['delete'] });
    try {
      expect((await stack.api('DELETE', `/v1/jobs/${job.id}`)).status).toBe(200);
      const sweeper = stack.startWorker({ sweep: { ...noSweeps, retention: { providerDeletes: { baseMs: 100, maxMs: 100, giveUpAfterMs: 450 } } } });
      let retried = 0;
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 120));
        retried += (await sweeper.sweep()).providerDeletesRetried;
      }
      await sweeper.close();
      // Attempts at about 0 (the API's), 100, 200, 300 and 400 ms after the erase; none after 450 ms.
      expect(retried).toBeGreaterThanOrEqual(2);
      expect(retried).toBeLessThanOrEqual(4);
      expect((await simDeletes(job.response_id)).length).toBe(retried + 1);
      expect(lines.filter((l) => l.code === 'provider_delete_abandoned' && l.job_id === job.id)).toHaveLength(1);
      expect((await row(job.id)).provider_deleted_at).toBeNull();
    } finally {
      await stack.simApi('POST', '/sim/config', { error_rate: 0 });
    }
  });
});
