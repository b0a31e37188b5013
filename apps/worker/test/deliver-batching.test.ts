/**
 * The deliver processor's coalescing of concurrent statements (`batched`): the calls made in one
 * turn of the event loop become one call, each caller gets its own result, and a failure reaches
 * every caller of that batch (each work item then fails and is retried, as with its own statement).
 */
import { describe, expect, it } from 'vitest';
import { batched } from '../src/processors/deliver-callback.ts';

describe('batched', () => {
  it('runs the calls of one turn together and answers each caller its own result', async () => {
    const runs: number[][] = [];
    const double = batched(async (inputs: number[]) => {
      runs.push(inputs);
      // Answered out of the order they were asked in, as a statement's rows are.
      const answers = new Map([...inputs].reverse().map((n) => [n, n * 2]));
      return inputs.map((n) => answers.get(n)!);
    });
    expect(await Promise.all([1, 2, 3].map((n) => double(n)))).toEqual([2, 4, 6]);
    expect(await double(4)).toBe(8);
    expect(runs).toEqual([[1, 2, 3], [4]]);
  });

  it('splits a turn larger than the batch limit', async () => {
    const runs: number[][] = [];
    const echo = batched(async (inputs: number[]) => {
      runs.push(inputs);
      return inputs;
    }, 2);
    expect(await Promise.all([1, 2, 3, 4, 5].map((n) => echo(n)))).toEqual([1, 2, 3, 4, 5]);
    expect(runs).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('fails every caller of a failed batch, and only those', async () => {
    let calls = 0;
    const flaky = batched(async (inputs: string[]) => {
      calls += 1;
      if (calls === 1) throw new Error('Postgres is down');
      return inputs.map((s) => s.toUpperCase());
    });
    const first = await Promise.allSettled([flaky('a'), flaky('b')]);
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await flaky('c')).toBe('C');
  });
});
