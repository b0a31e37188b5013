/**
 * What a job waiting at the provider holds in Redis (issue 13): no event stream while nobody
 * watches it (a Redis Stream costs ~4.7 KB even with one small entry), only its delayed poll, at
 * most 2 KB. A watcher who joins opens the stream: the job's current state first, then every
 * later change, kept for the next watcher and for resumption.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { readSse } from './sse.ts';

const WAITING_BUDGET_BYTES = 2_048;

let stack: Stack;
beforeAll(async () => {
  // Polls ten minutes apart: once submitted, a job waits with one delayed poll and nothing else.
  stack = await startStack({ worker: { poll: { initialMs: 600_000, factor: 2, maxMs: 600_000 } } });
});
afterAll(async () => {
  await stack?.stop();
});

const auth = () => ({ authorization: `Bearer ${stack.apiKey}` });
const streamKey = (jobId: string) => `${stack.prefix}:jobstream:${jobId}`;

/** A job of an hour at the provider (36 s real), once submitted. */
async function waitingJob(): Promise<string> {
  const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 3_600_000));
  await stack.waitForJob(job.id, (j) => j.status === 'queued' || j.status === 'in_progress');
  return job.id;
}

/** Every key of the run's prefix that names the job, with its size (MEMORY USAGE, exact). */
async function keysOf(jobId: string): Promise<Record<string, number>> {
  const sizes: Record<string, number> = {};
  let cursor = '0';
  do {
    const [next, keys] = await stack.redis.scan(cursor, 'MATCH', `${stack.prefix}:*${jobId}*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) sizes[key.slice(stack.prefix.length + 1)] = Number(await stack.redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
  } while (cursor !== '0');
  return sizes;
}

describe('a job waiting at the provider', () => {
  it('has no event stream while nobody watches it, and holds at most 2 KB of Redis', async () => {
    const jobId = await waitingJob();
    // The job is queued in Postgres a moment before BullMQ removes its finished submit work item
    // (and that item's lock): what it holds at rest is measured once that is gone.
    let keys = await keysOf(jobId);
    for (const until = Date.now() + 5_000; Object.keys(keys).some((k) => k.startsWith('submit:')) && Date.now() < until; keys = await keysOf(jobId)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await stack.redis.exists(streamKey(jobId))).toBe(0);
    expect(Object.keys(keys)).toEqual([`poll:${jobId}`]);
    expect(
      Object.values(keys).reduce((a, b) => a + b, 0),
      JSON.stringify(keys),
    ).toBeLessThanOrEqual(WAITING_BUDGET_BYTES);
    await stack.api('POST', `/v1/jobs/${jobId}/cancel`);
  });

  it('gives a watcher who joins its current state, then every later change, kept for the next watcher', async () => {
    const jobId = await waitingJob();
    const { status } = (await stack.api('GET', `/v1/jobs/${jobId}`)).body;
    let opened!: () => void;
    const watcherOpen = new Promise<void>((resolve) => (opened = resolve));
    const watching = readSse(`${stack.apiUrl}/v1/jobs/${jobId}/stream`, { headers: auth(), onComment: () => opened() });
    await watcherOpen;
    expect(await stack.redis.exists(streamKey(jobId))).toBe(1);
    // A change made while someone watches is stored (the API's cancel, then the worker's answer).
    expect((await stack.api('POST', `/v1/jobs/${jobId}/cancel`)).status).toBe(200);
    const live = await watching;
    expect(live.closedByServer).toBe(true);
    expect(live.events.map((e) => e.event)).toEqual([`job.${status}`, 'job.cancelling', 'job.cancelled']);
    expect(live.events.map((e) => e.id)).toEqual(['-1.1', '-1.2', '-1.3']);
    expect(JSON.parse(live.events[0]!.data).job).toMatchObject({ id: jobId, status });

    // The next watcher replays the same events from Redis; a cursor resumes after its event.
    const replay = await readSse(`${stack.apiUrl}/v1/jobs/${jobId}/stream`, { headers: auth() });
    expect(replay.events).toEqual(live.events);
    const resumed = await readSse(`${stack.apiUrl}/v1/jobs/${jobId}/stream`, { headers: { ...auth(), 'last-event-id': '-1.1' } });
    expect(resumed.events).toEqual(live.events.slice(1));
    const past = await readSse(`${stack.apiUrl}/v1/jobs/${jobId}/stream`, { headers: { ...auth(), 'last-event-id': '-1.3' } });
    expect(past.status).toBe(204);
  });

  it('that finished unwatched leaves no stream: its final event comes from Postgres as -1.1, and nothing after it', async () => {
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
    // Polled ten minutes apart: this one finishes by its cancel.
    await stack.waitForJob(job.id, (j) => j.status !== 'pending');
    await stack.api('POST', `/v1/jobs/${job.id}/cancel`);
    const done = await stack.waitForJob(job.id, isTerminalJob);
    expect(await stack.redis.exists(streamKey(job.id))).toBe(0);
    const { events, closedByServer } = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: auth() });
    expect(closedByServer).toBe(true);
    expect(events.map((e) => [e.id, e.event])).toEqual([['-1.1', `job.${done.status}`]]);
    expect(await stack.redis.exists(streamKey(job.id))).toBe(0);
    const past = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: { ...auth(), 'last-event-id': '-1.1' } });
    expect(past.status).toBe(204);
  });
});
