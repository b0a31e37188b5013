/**
 * The per-job event log's bounds, against real Redis: each stream is capped (approximately:
 * Redis trims whole stream nodes, so up to one node's worth more is kept) and keeps its newest
 * entries. A job run end to end through the simulator produces at most about a hundred events,
 * never near the default cap, so the cap is checked here; retention is checked end to end in
 * test/promises-jobs.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createJobStreams, jobStreamKey } from '../src/index.ts';

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
