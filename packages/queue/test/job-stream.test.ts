/**
 * The per-job event log against real Redis: a tool-call loop's turns each in their own range of
 * ids (one cursor across turns, duplicates of a turn still refused, a turn cleared alone), and its
 * bounds: each stream is capped (approximately:
 * Redis trims whole stream nodes, so up to one node's worth more is kept) and keeps its newest
 * entries. A job run end to end through the simulator produces at most about a hundred events,
 * never near the default cap, so the cap is checked here; retention is checked end to end in
 * test/promises-jobs.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createJobStreams, fromEventId, jobStreamKey, toEventId } from '../src/index.ts';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefix = `lhtest_js_${randomBytes(5).toString('hex')}`;

afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

/** Entries per stream node: the granularity of approximate trimming (Redis's default is 100). */
async function nodeSize(): Promise<number> {
  const reply = (await redis.config('GET', 'stream-node-max-entries').catch(() => [])) as string[];
  return Number(reply[1] ?? 100) || 100;
}

describe('job event streams', () => {
  it('keep about 20 000 events per job by default, the newest ones', async () => {
    const streams = createJobStreams(redis, { prefix });
    const jobId = `job_cap_${randomBytes(4).toString('hex')}`;
    const total = 25_000;
    for (let from = 0; from < total; from += 1_000) {
      await Promise.all(Array.from({ length: 1_000 }, (_, i) => streams.appendProviderEvent(jobId, from + i, 'response.output_text.delta', '{}')));
    }
    const node = await nodeSize();
    const length = await redis.xlen(jobStreamKey(prefix, jobId));
    expect(length).toBeGreaterThanOrEqual(20_000);
    expect(length).toBeLessThanOrEqual(20_000 + node);
    await streams.appendLifecycleEvent(jobId, 'job.completed', '{}');
    expect(await redis.xlen(jobStreamKey(prefix, jobId))).toBeLessThanOrEqual(20_000 + node);
    // The oldest were dropped; the newest, the final event included, are all there.
    const [oldest] = await streams.readAfter(jobId, '0-0', 1);
    expect(Number(oldest!.eventId)).toBeGreaterThan(0);
    expect(await streams.lastProviderSequence(jobId)).toBe(total - 1);
    expect((await streams.last(jobId))!.type).toBe('job.completed');
  });

  it('cap provider and lifecycle events alike at the configured length', async () => {
    const streams = createJobStreams(redis, { prefix, maxLength: 50 });
    const jobId = `job_small_${randomBytes(4).toString('hex')}`;
    const node = await nodeSize();
    for (let i = 0; i < 3 * node; i++) await streams.appendProviderEvent(jobId, i, 'response.output_text.delta', '{}');
    expect(await redis.xlen(jobStreamKey(prefix, jobId))).toBeLessThanOrEqual(50 + node);
    for (let i = 0; i < 3 * node; i++) await streams.appendLifecycleEvent(jobId, 'job.in_progress', '{}');
    expect(await redis.xlen(jobStreamKey(prefix, jobId))).toBeLessThanOrEqual(50 + node);
  });
});

describe("a tool-call loop's turns in one event log", () => {
  const streams = createJobStreams(redis, { prefix });
  const ids = async (jobId: string) => (await streams.readAfter(jobId, '0-0')).map((e) => `${e.eventId} ${e.type}`);
  const T2 = 1_000_000_000;

  it('gives each turn its own range: ids grow across turns, turn 1 keeps the ids of a job without turns', async () => {
    const jobId = `job_turns_${randomBytes(4).toString('hex')}`;
    for (const [s, type] of ['response.created', 'response.function_call_arguments.delta', 'response.completed'].entries())
      expect(await streams.appendProviderEvent(jobId, s, type, '{}', 1)).toBe(true);
    await streams.appendLifecycleEvent(jobId, 'job.requires_action', '{}');
    await streams.appendLifecycleEvent(jobId, 'job.pending', '{}');
    // Turn 2's response numbers its events from 0 again.
    expect(await streams.appendProviderEvent(jobId, 0, 'response.created', '{}', 2)).toBe(true);
    await streams.appendLifecycleEvent(jobId, 'job.queued', '{}');
    expect(await streams.appendProviderEvent(jobId, 1, 'response.completed', '{}', 2)).toBe(true);
    await streams.appendLifecycleEvent(jobId, 'job.completed', '{}');
    expect(await ids(jobId)).toEqual([
      '0 response.created',
      '1 response.function_call_arguments.delta',
      '2 response.completed',
      '2.1 job.requires_action',
      '2.2 job.pending',
      `${T2} response.created`,
      `${T2}.1 job.queued`,
      `${T2 + 1} response.completed`,
      `${T2 + 1}.1 job.completed`,
    ]);
    // Each turn's newest sequence number and provider event, whatever follows it.
    expect(await streams.lastProviderSequence(jobId, 1)).toBe(2);
    expect(await streams.lastProviderSequence(jobId, 2)).toBe(1);
    expect(await streams.lastProviderSequence(jobId, 3)).toBeNull();
    expect(await streams.lastProviderSequence(jobId)).toBe(2);
    expect((await streams.lastProviderEvent(jobId, 1))?.type).toBe('response.completed');
    expect((await streams.lastProviderEvent(jobId, 2))?.eventId).toBe(String(T2 + 1));
    // A re-append of an event of the same turn is a duplicate; so is a late event of an earlier turn.
    expect(await streams.appendProviderEvent(jobId, 1, 'response.completed', '{}', 2)).toBe(false);
    expect(await streams.appendProviderEvent(jobId, 3, 'response.output_text.delta', '{}', 1)).toBe(false);
    // A cursor from turn 1 resumes with everything after it, across the turn.
    const after = await streams.readAfter(jobId, fromEventId('2.1')!);
    expect(after.map((e) => e.eventId)).toEqual(['2.2', `${T2}`, `${T2}.1`, `${T2 + 1}`, `${T2 + 1}.1`]);
    for (const e of await streams.readAfter(jobId, '0-0')) expect(fromEventId(e.eventId)).toBe(e.entryId);
    expect(toEventId(`${T2 + 1}-0`)).toBe(String(T2));
  });

  it('refuses a sequence number or a turn outside the ranges', async () => {
    const jobId = `job_range_${randomBytes(4).toString('hex')}`;
    await expect(streams.appendProviderEvent(jobId, T2, 'x', '{}', 1)).rejects.toThrow(RangeError);
    await expect(streams.appendProviderEvent(jobId, 0, 'x', '{}', 0)).rejects.toThrow(RangeError);
    await expect(streams.appendProviderEvent(jobId, -1, 'x', '{}', 1)).rejects.toThrow(RangeError);
    expect(await redis.exists(jobStreamKey(prefix, jobId))).toBe(0);
  });

  it('clears one turn (a response never committed) and keeps the earlier ones; that turn is stored again', async () => {
    const jobId = `job_clear_${randomBytes(4).toString('hex')}`;
    await streams.appendProviderEvent(jobId, 0, 'response.created', '{}', 1);
    await streams.appendProviderEvent(jobId, 1, 'response.completed', '{}', 1);
    await streams.appendLifecycleEvent(jobId, 'job.requires_action', '{}');
    await streams.appendLifecycleEvent(jobId, 'job.pending', '{}');
    // A first attempt at turn 2 whose response was never committed.
    await streams.appendProviderEvent(jobId, 0, 'response.created', '{"attempt":1}', 2);
    await streams.appendProviderEvent(jobId, 1, 'response.in_progress', '{"attempt":1}', 2);
    expect(await streams.clearTurn(jobId, 2)).toBe(2);
    expect(await streams.lastProviderSequence(jobId, 2)).toBeNull();
    expect(await streams.appendProviderEvent(jobId, 0, 'response.created', '{"attempt":2}', 2)).toBe(true);
    expect(await ids(jobId)).toEqual(['0 response.created', '1 response.completed', '1.1 job.requires_action', '1.2 job.pending', `${T2} response.created`]);
    expect((await streams.last(jobId))?.data).toBe('{"attempt":2}');
    // Nothing stored for a turn: nothing goes.
    expect(await streams.clearTurn(jobId, 3)).toBe(0);
    // Turn 1 cleared (a job without turns) goes whole, lifecycle events before its first provider event too: as `clear`.
    const single = `job_single_${randomBytes(4).toString('hex')}`;
    await streams.appendLifecycleEvent(single, 'job.queued', '{}');
    await streams.appendProviderEvent(single, 0, 'response.created', '{}');
    expect(await streams.clearTurn(single, 1)).toBe(2);
    expect(await redis.exists(jobStreamKey(prefix, single))).toBe(0);
    expect(await streams.appendProviderEvent(single, 0, 'response.created', '{}')).toBe(true);
  });
});
