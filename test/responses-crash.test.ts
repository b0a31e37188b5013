/**
 * A worker process is SIGKILLed while OpenAI SDK clients wait on Longhaul's /v1/responses: a
 * synchronous create held open, and a background stream being read. A new worker takes over and
 * both clients get their result on the connections they already had: the API holds them, and
 * the jobs live in Postgres and Redis, not in the dead worker. How we know: the synchronous create
 * resolves `completed` with the job's output, and the stream reads every sequence number from 0
 * to its `response.completed` without a gap.
 */
import type { ChildProcess } from 'node:child_process';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from './harness.ts';
import { type PrivateRedis, startPrivateRedis } from './private-redis.ts';
import { exited, spawnWorker } from './worker-process.ts';

describe('a worker SIGKILL under open OpenAI-compatible requests', () => {
  let redis: PrivateRedis;
  let stack: Stack;
  let client: OpenAI;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    redis = await startPrivateRedis();
    // Time scale 0.01: a response of 200 simulated seconds runs 2 s, long enough to kill a worker under it.
    stack = await startStack({ startWorker: false, redisUrl: redis.url, sim: { time_scale: 0.01 } });
    client = new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.apiUrl}/v1`, maxRetries: 0, timeout: 60_000 });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    await stack?.stop();
    await redis?.stop();
  });

  it('answers the synchronous create and finishes the stream after the worker dies', async () => {
    const first = spawnWorker(stack, redis.url);
    children.push(first);

    const sync = client.responses.create({ model: 'o3', input: 'Write a very long novel about otters in space.', metadata: { sim_duration_ms: '200000' } });
    const stream = await client.responses.create({
      model: 'o3',
      input: 'Write a very long novel about otters in space.',
      background: true,
      stream: true,
      metadata: { sim_duration_ms: '200000' },
    });
    const sequence: number[] = [];
    const types: string[] = [];
    const reading = (async () => {
      for await (const event of stream) {
        sequence.push(event.sequence_number);
        types.push(event.type);
      }
    })();

    // Both jobs are at the provider, in the first worker's hands: kill it.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const { rows } = await stack.db.pool.query<{ n: number }>("select count(*)::int as n from jobs where status in ('queued', 'in_progress')");
      if (rows[0]!.n >= 2 && types.includes('response.in_progress')) break;
      if (Date.now() > deadline) throw new Error('the jobs never reached the provider');
      await new Promise((r) => setTimeout(r, 20));
    }
    first.kill('SIGKILL');
    await exited(first);
    const second = spawnWorker(stack, redis.url);
    children.push(second);

    const response = await sync;
    expect(response.status).toBe('completed');
    expect(response.output_text.length).toBeGreaterThan(0);
    const job = await stack.api('GET', `/v1/jobs/${response.metadata?.longhaul_job_id}`);
    expect(job.body.output_text).toBe(response.output_text);

    await reading;
    expect(types.at(-1)).toBe('response.completed');
    expect(sequence).toEqual(sequence.map((_, i) => i));
  }, 60_000);
});
