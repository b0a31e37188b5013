import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createFairQueue, fairQueueKey, type FairQueue } from '../src/index.ts';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefixes: string[] = [];

function queue(options: { windowMs?: number; order?: 'fair' | 'fifo' } = {}): FairQueue {
  const prefix = `lhtest_fq_${randomBytes(5).toString('hex')}`;
  prefixes.push(prefix);
  return createFairQueue(redis, { prefix, ...options });
}

afterAll(async () => {
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${fairQueueKey(prefix)}*`);
    if (keys.length) await redis.del(...keys);
  }
  redis.disconnect();
});

async function drain(q: FairQueue, turns: number): Promise<string[]> {
  const taken: string[] = [];
  for (let i = 0; i < turns; i++) {
    const turn = await q.take(`turn_${i}_${randomBytes(3).toString('hex')}`);
    if (turn.kind !== 'job') break;
    taken.push(turn.jobId);
  }
  return taken;
}

describe('fair queue', () => {
  it('takes tenants round-robin; a tenant arriving late goes next', async () => {
    const q = queue();
    for (let i = 0; i < 5; i++) await q.push({ jobId: `a${i}`, tenantId: 'A', tokens: 1, tokenLimit: 0 });
    expect(await drain(q, 2)).toEqual(['a0', 'a1']);
    await q.push({ jobId: 'b0', tenantId: 'B', tokens: 1, tokenLimit: 0 });
    await q.push({ jobId: 'b1', tenantId: 'B', tokens: 1, tokenLimit: 0 });
    expect(await drain(q, 10)).toEqual(['b0', 'a2', 'b1', 'a3', 'a4']);
    expect((await q.take('t_end')).kind).toBe('empty');
  });

  it("takes the low lane only when no normal job is admissible, its own tenant's either", async () => {
    const q = queue();
    for (let i = 0; i < 3; i++) await q.push({ jobId: `e${i}`, tenantId: 'A', tokens: 1, tokenLimit: 0, lane: 'low' });
    await q.push({ jobId: 'a0', tenantId: 'A', tokens: 1, tokenLimit: 0 });
    await q.push({ jobId: 'b0', tenantId: 'B', tokens: 1, tokenLimit: 0 });
    expect(await drain(q, 2)).toEqual(['a0', 'b0']);
    expect(await drain(q, 1)).toEqual(['e0']);
    // A production job arriving while the eval drains goes first.
    await q.push({ jobId: 'a1', tenantId: 'A', tokens: 1, tokenLimit: 0 });
    expect(await drain(q, 10)).toEqual(['a1', 'e1', 'e2']);
    expect(await q.waitingByTenant()).toEqual({});
  });

  it("the low lane is charged to its tenant's budget; an over-budget tenant's low lane does not hold back others", async () => {
    const q = queue({ windowMs: 60_000 });
    await q.push({ jobId: 'e0', tenantId: 'A', tokens: 90, tokenLimit: 100, lane: 'low' });
    await q.push({ jobId: 'e1', tenantId: 'A', tokens: 90, tokenLimit: 100, lane: 'low' });
    await q.push({ jobId: 'e2', tenantId: 'B', tokens: 1, tokenLimit: 0, lane: 'low' });
    expect(await drain(q, 1)).toEqual(['e0']);
    await q.push({ jobId: 'a0', tenantId: 'A', tokens: 20, tokenLimit: 100 });
    // A's bucket holds 10 tokens: its production job waits for the refill, B's eval job is admissible.
    const turn = await q.take('t_b');
    expect(turn).toMatchObject({ kind: 'job', jobId: 'e2' });
    const wait = await q.take('t_wait');
    expect(wait).toMatchObject({ kind: 'wait', tenantId: 'A' });
  });

  it('fifo order serves the oldest job first', async () => {
    const q = queue({ order: 'fifo' });
    for (let i = 0; i < 3; i++) await q.push({ jobId: `a${i}`, tenantId: 'A', tokens: 1, tokenLimit: 0 });
    await q.push({ jobId: 'b0', tenantId: 'B', tokens: 1, tokenLimit: 0 });
    expect(await drain(q, 10)).toEqual(['a0', 'a1', 'a2', 'b0']);
  });

  it('push is idempotent while a job waits or is taken', async () => {
    const q = queue();
    expect(await q.push({ jobId: 'j1', tenantId: 'A', tokens: 1, tokenLimit: 0 })).toBe(true);
    expect(await q.push({ jobId: 'j1', tenantId: 'A', tokens: 1, tokenLimit: 0 })).toBe(false);
    expect(await q.locate('j1')).toEqual({ state: 'waiting' });
    const turn = await q.take('turn1');
    expect(turn).toMatchObject({ kind: 'job', jobId: 'j1', resumed: false });
    expect(await q.locate('j1')).toEqual({ state: 'taken', turnId: 'turn1' });
    expect(await q.push({ jobId: 'j1', tenantId: 'A', tokens: 1, tokenLimit: 0 })).toBe(false);
    // A retried turn gets its job back.
    expect(await q.take('turn1')).toMatchObject({ kind: 'job', jobId: 'j1', resumed: true });
    await q.release('turn1');
    expect(await q.locate('j1')).toEqual({ state: 'absent' });
    expect(await q.push({ jobId: 'j1', tenantId: 'A', tokens: 1, tokenLimit: 0 })).toBe(true);
  });

  it('holds a tenant over its token budget without holding back another tenant', async () => {
    const q = queue({ windowMs: 60_000 });
    for (let i = 0; i < 3; i++) await q.push({ jobId: `a${i}`, tenantId: 'A', tokens: 40, tokenLimit: 100 });
    await q.push({ jobId: 'b0', tenantId: 'B', tokens: 40, tokenLimit: 0 });
    expect(await drain(q, 10)).toEqual(['a0', 'b0', 'a1']);
    const turn = await q.take('blocked');
    expect(turn.kind).toBe('wait');
    // 20 tokens left, 40 needed: 20 tokens at 100 per 60 s is 12 s.
    if (turn.kind === 'wait') expect(turn.waitMs).toBeGreaterThan(11_000);
    if (turn.kind === 'wait') expect(turn.waitMs).toBeLessThanOrEqual(12_000);
    expect(await q.waitingByTenant()).toEqual({ A: 1 });
  });

  it('refills the bucket over the window; a job bigger than the budget runs on a full bucket', async () => {
    const q = queue({ windowMs: 300 });
    await q.push({ jobId: 'big', tenantId: 'A', tokens: 500, tokenLimit: 100 });
    await q.push({ jobId: 'next', tenantId: 'A', tokens: 10, tokenLimit: 100 });
    expect(await drain(q, 1)).toEqual(['big']);
    // 400 tokens of debt plus 10: about 1.2 s at 100 per 300 ms.
    const turn = await q.take('waiting');
    expect(turn.kind).toBe('wait');
    if (turn.kind === 'wait') expect(turn.waitMs).toBeGreaterThan(1_000);
    if (turn.kind === 'wait') await new Promise((r) => setTimeout(r, turn.waitMs + 20));
    expect(await drain(q, 1)).toEqual(['next']);
  });

  it('a refund gives the tokens back', async () => {
    const q = queue({ windowMs: 60_000 });
    await q.push({ jobId: 'a0', tenantId: 'A', tokens: 100, tokenLimit: 100 });
    await q.push({ jobId: 'a1', tenantId: 'A', tokens: 100, tokenLimit: 100 });
    const first = await q.take('t0');
    expect(first).toMatchObject({ kind: 'job', jobId: 'a0', tokens: 100 });
    expect((await q.take('t1')).kind).toBe('wait');
    await q.release('t0', { tenantId: 'A', tokens: 100 });
    expect(await q.take('t1')).toMatchObject({ kind: 'job', jobId: 'a1' });
  });

  it('forgets a binding only for the turn that holds it', async () => {
    const q = queue();
    await q.push({ jobId: 'j', tenantId: 'A', tokens: 1, tokenLimit: 0 });
    await q.take('t');
    expect(await q.forgetTaken('j', 'other')).toBe(false);
    expect(await q.forgetTaken('j', 't')).toBe(true);
    expect(await q.locate('j')).toEqual({ state: 'absent' });
    expect((await q.take('t')).kind).toBe('empty');
  });
});
