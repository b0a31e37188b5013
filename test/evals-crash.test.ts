/**
 * Nothing of an eval is lost on a crash: SIGKILL the worker process while an eval has results
 * pending, in flight and done; a new worker process finishes it. How we know: every result ends
 * done with a grade, each answered by exactly one job (a result's job is created in the same
 * transaction that marks it started, so a crash can neither lose nor duplicate one), and the
 * summary counts every item.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from './harness.ts';
import { exited, spawnWorker } from './worker-process.ts';

describe('eval crash safety', () => {
  let stack: Stack;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    stack = await startStack({ startWorker: false, sim: { time_scale: 0.01 } });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    await stack?.stop();
  });

  it('finishes an eval after its worker is SIGKILLed mid-run, each result answered once', async () => {
    const prompt = await stack.api('POST', '/v1/prompts', { name: 'sums', template: { model: 'gpt-5', reasoning: { effort: 'low' }, input: '{{question}}' } });
    await stack.api('POST', `/v1/prompts/${prompt.body.id}/versions`, { template: { model: 'gpt-5', reasoning: { effort: 'high' }, input: '{{question}}' } });
    const items = Array.from({ length: 40 }, (_, i) => ({ variables: { question: `What is ${i} * 7?` }, expected: String(i * 7) }));
    const dataset = await stack.api('POST', '/v1/datasets', { name: 'products', items });
    const created = await stack.api('POST', '/v1/evals', {
      prompt_id: prompt.body.id,
      versions: [1, 2],
      dataset_id: dataset.body.id,
      graders: [{ type: 'exact' }],
      concurrency: 6,
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = created.body.id;
    const env = { EVAL_TICK_MS: '100' };

    const first = spawnWorker(stack, stack.redisUrl, env);
    children.push(first);
    const deadline = Date.now() + 30_000;
    let results = created.body.results;
    while (Date.now() < deadline) {
      results = (await stack.api('GET', `/v1/evals/${id}`)).body.results;
      if (results.done >= 10 && results.running >= 1 && results.pending >= 10) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(results.done).toBeGreaterThanOrEqual(10);
    first.kill('SIGKILL');
    await exited(first);

    const second = spawnWorker(stack, stack.redisUrl, env);
    children.push(second);
    let done: any;
    const finish = Date.now() + 60_000;
    for (;;) {
      done = (await stack.api('GET', `/v1/evals/${id}`)).body;
      if (done.status !== 'running' || Date.now() > finish) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(done.status).toBe('completed');
    expect(done.results).toMatchObject({ total: 80, done: 80, error: 0 });
    expect(done.summary.versions.map((v: any) => v.finished)).toEqual([40, 40]);

    const { rows } = await stack.db.pool.query<{ jobs: number; distinct_results: number; completed: number }>(
      `select count(*)::int as jobs,
              count(distinct (metadata->>'eval_version', metadata->>'eval_item'))::int as distinct_results,
              count(*) filter (where status = 'completed')::int as completed
       from jobs where eval_id = $1`,
      [id],
    );
    expect(rows[0]).toEqual({ jobs: 80, distinct_results: 80, completed: 80 });
    const linked = await stack.db.pool.query<{ n: number }>('select count(distinct job_id)::int as n from eval_results where eval_id = $1', [id]);
    expect(linked.rows[0]!.n).toBe(80);
  });
});
