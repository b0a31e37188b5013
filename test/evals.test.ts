/**
 * Evaluations (issue 18) end to end through plain HTTP against the simulator: a prompt with two
 * versions (reasoning effort low and high; the simulator answers arithmetic right more often at
 * high effort, deterministically) runs over a dataset of arithmetic items with exact, numeric
 * and model graders; the summary shows per-version scores, pass rates with intervals, costs and
 * latencies, and the comparison finds version 2 significantly better. A re-run with the same
 * inputs gives the same results; cancelling stops an eval and cancels its running jobs; bad input
 * is a 4xx naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from './harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ sim: { time_scale: 0.002 } });
});
afterAll(async () => {
  await stack?.stop();
});

const template = (effort: 'low' | 'high') => ({ model: 'gpt-5', reasoning: { effort }, instructions: 'Answer with the number only.', input: '{{question}}' });

async function arithmeticPrompt(): Promise<string> {
  const created = await stack.api('POST', '/v1/prompts', { name: 'arithmetic', template: template('low') });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const v2 = await stack.api('POST', `/v1/prompts/${created.body.id}/versions`, { template: template('high'), note: 'think harder' });
  expect(v2.status).toBe(201);
  return created.body.id;
}

async function arithmeticDataset(n: number): Promise<string> {
  const items = Array.from({ length: n }, (_, i) => {
    const a = 17 + i * 7;
    const b = 3 + ((i * 13) % 50);
    return { variables: { question: `What is ${a} + ${b}?` }, expected: String(a + b), metadata: { kind: 'sum' } };
  });
  const res = await stack.api('POST', '/v1/datasets', { name: 'sums', items });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function waitForEval(id: string, statuses = ['completed', 'cancelled', 'failed'], timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await stack.api('GET', `/v1/evals/${id}`);
    expect(res.status).toBe(200);
    if (statuses.includes(res.body.status)) return res.body;
    if (Date.now() > deadline) throw new Error(`eval ${id} still ${res.body.status}: ${JSON.stringify(res.body.results)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('evals', () => {
  let promptId: string;
  let datasetId: string;
  beforeAll(async () => {
    promptId = await arithmeticPrompt();
    datasetId = await arithmeticDataset(80);
  });

  it('runs every item against every version, grades them, and finds the better version', async () => {
    const res = await stack.api('POST', '/v1/evals', {
      prompt_id: promptId,
      versions: [1, 2],
      dataset_id: datasetId,
      graders: [{ type: 'exact' }, { type: 'numeric', tolerance: 0 }],
      concurrency: 16,
      metadata: { purpose: 'test' },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.headers.get('location')).toBe(`/v1/evals/${res.body.id}`);
    expect(res.body).toMatchObject({ object: 'eval', status: 'running', versions: [1, 2], dataset_version: 1, repeats: 1, results: { total: 160 } });

    const done = await waitForEval(res.body.id);
    expect(done.status).toBe('completed');
    expect(done.results).toMatchObject({ total: 160, done: 160, error: 0, pending: 0, running: 0 });
    const [v1, v2] = done.summary.versions;
    expect(v1).toMatchObject({ version: 1, results: 80, finished: 80, errors: 0 });
    // The simulator's accuracy: 0.6 at low effort, 0.9 at high.
    expect(v1.pass_rate.rate).toBeGreaterThan(0.4);
    expect(v1.pass_rate.rate).toBeLessThan(0.8);
    expect(v2.pass_rate.rate).toBeGreaterThan(0.8);
    expect(v2.pass_rate.low).toBeLessThan(v2.pass_rate.rate);
    expect(v2.pass_rate.high).toBeGreaterThanOrEqual(v2.pass_rate.rate);
    expect(v1.graders.map((g: any) => g.type)).toEqual(['exact', 'numeric']);
    expect(v1.graders[0].mean_score).toBeCloseTo(v1.pass_rate.rate, 5);
    expect(v1.cost_usd.total).toBeGreaterThan(0);
    // High effort reasons more: it costs more per item.
    expect(v2.cost_usd.mean).toBeGreaterThan(v1.cost_usd.mean);
    expect(v1.latency_ms.p50).toBeGreaterThan(0);
    expect(v1.latency_ms.p95).toBeGreaterThanOrEqual(v1.latency_ms.p50);
    expect(v1.tokens.input).toBeGreaterThan(0);
    expect(v1.score_histogram.reduce((s: number, n: number) => s + n, 0)).toBe(80);
    const [comparison] = done.summary.comparisons;
    expect(comparison).toMatchObject({ baseline_version: 1, version: 2, items: 80, significant: true, winner: 2 });
    expect(comparison.wins).toBeGreaterThan(comparison.losses);
    expect(comparison.p_value).toBeLessThan(0.05);
    expect(comparison.interval.low).toBeGreaterThan(0);

    // Item by item: the output, its grades, tokens, cost and latency, and the job that answered it.
    const results = await stack.api('GET', `/v1/evals/${res.body.id}/results?item=0`);
    expect(results.status).toBe(200);
    expect(results.body.data).toHaveLength(2);
    for (const r of results.body.data) {
      expect(r).toMatchObject({ object: 'eval.result', item_index: 0, status: 'done' });
      expect(r.output_text).toMatch(/^-?\d+$/);
      expect(r.grades).toHaveLength(2);
      expect(r.usage.input_tokens).toBeGreaterThan(0);
      expect(r.cost_usd).toBeGreaterThan(0);
      expect(r.latency_ms).toBeGreaterThan(0);
      const job = await stack.api('GET', `/v1/jobs/${r.job_id}`);
      expect(job.body).toMatchObject({ status: 'completed', output_text: r.output_text, prompt: { id: promptId, version: r.version } });
      expect(job.body.metadata).toMatchObject({ eval_id: res.body.id, eval_item: '0' });
    }
    const page = await stack.api('GET', `/v1/evals/${res.body.id}/results?version=2&limit=10&offset=70`);
    expect(page.body.data.map((r: any) => r.item_index)).toEqual([70, 71, 72, 73, 74, 75, 76, 77, 78, 79]);
    expect(page.body.has_more).toBe(false);

    // A re-run has the same inputs, and (the simulator being deterministic) the same scores.
    const rerun = await stack.api('POST', `/v1/evals/${res.body.id}/rerun`);
    expect(rerun.status, JSON.stringify(rerun.body)).toBe(201);
    expect(rerun.body).toMatchObject({ rerun_of: res.body.id, versions: [1, 2], dataset_id: datasetId, graders: done.graders, concurrency: 16 });
    const again = await waitForEval(rerun.body.id);
    expect(again.summary.versions.map((v: any) => v.pass_rate.rate)).toEqual(done.summary.versions.map((v: any) => v.pass_rate.rate));

    const list = await stack.api('GET', '/v1/evals?limit=1');
    expect(list.body.data.map((e: any) => e.id)).toEqual([rerun.body.id]);
    expect(list.body.has_more).toBe(true);
  });

  it('grades with a model grader as a job of its own, its cost counted', async () => {
    const small = await arithmeticDataset(4);
    const res = await stack.api('POST', '/v1/evals', {
      prompt_id: promptId,
      versions: [2],
      dataset_id: small,
      graders: [{ type: 'model', model: 'gpt-5-mini', rubric: 'Score 1 when the answer equals the expected number, else 0.' }],
      repeats: 2,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const done = await waitForEval(res.body.id);
    expect(done.results).toMatchObject({ total: 8, done: 8 });
    const results = (await stack.api('GET', `/v1/evals/${res.body.id}/results`)).body.data;
    for (const r of results) {
      expect(r.grader_job_ids).toHaveLength(1);
      expect(r.grades[0].score).toBeGreaterThanOrEqual(0);
      expect(r.grades[0].score).toBeLessThanOrEqual(1);
      expect(r.grader_cost_usd).toBeGreaterThan(0);
      expect(r.cost_usd).toBeGreaterThan(r.grader_cost_usd);
      const grader = await stack.api('GET', `/v1/jobs/${r.grader_job_ids[0]}`);
      expect(grader.body).toMatchObject({ status: 'completed', model: 'gpt-5-mini' });
      expect(grader.body.metadata).toMatchObject({ eval_id: res.body.id, eval_grader: 'model' });
    }
    expect(new Set(results.map((r: any) => r.repeat))).toEqual(new Set([0, 1]));
  });

  it('cancel stops an eval: no more results start and its running jobs are cancelled', async () => {
    const slow = await stack.api('POST', '/v1/prompts', { name: 'slow', template: { ...template('high'), model: 'o3' } });
    const res = await stack.api('POST', '/v1/evals', { prompt_id: slow.body.id, versions: [1], dataset_id: datasetId, graders: [{ type: 'exact' }], concurrency: 2 });
    expect(res.status).toBe(201);
    const deadline = Date.now() + 10_000;
    while ((await stack.api('GET', `/v1/evals/${res.body.id}`)).body.results.running < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const cancelled = await stack.api('POST', `/v1/evals/${res.body.id}/cancel`);
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    const again = await stack.api('POST', `/v1/evals/${res.body.id}/cancel`);
    expect(again.status).toBe(200);
    // Its jobs still running are cancelled by the worker's next tick.
    const running = (await stack.api('GET', `/v1/evals/${res.body.id}/results?limit=5`)).body.data.filter((r: any) => r.job_id);
    expect(running.length).toBeGreaterThan(0);
    await stack.waitForAll(
      running.map((r: any) => r.job_id),
      (job) => ['cancelled', 'completed'].includes(job.status),
      20_000,
    );
    const final = (await stack.api('GET', `/v1/evals/${res.body.id}`)).body;
    expect(final.status).toBe('cancelled');
    expect(final.results.pending).toBeGreaterThan(70);
  });

  it("refuses bad input with a 4xx naming the field, and hides other tenants' evals", async () => {
    const base = { prompt_id: promptId, versions: [1, 2], dataset_id: datasetId, graders: [{ type: 'exact' }] };
    const cases: [Record<string, unknown>, number, string, string][] = [
      [{ ...base, versions: [1, 3] }, 400, 'versions[1]', 'prompt_version_not_found'],
      [{ ...base, versions: [2, 2] }, 400, 'versions[1]', 'invalid_value'],
      [{ ...base, graders: [{ type: 'regex', pattern: '(' }] }, 400, 'graders[0].pattern', 'invalid_grader'],
      [{ ...base, graders: [{ type: 'telepathy' }] }, 400, 'graders[0].type', 'invalid_grader'],
      [{ ...base, graders: [] }, 400, 'graders', 'invalid_value'],
      [{ ...base, repeats: 11 }, 400, 'repeats', 'invalid_value'],
      [{ ...base, prompt_id: 'prm_doesnotexist1' }, 404, 'prompt_id', 'prompt_not_found'],
      [{ ...base, dataset_id: 'ds_doesnotexist1' }, 404, 'dataset_id', 'dataset_not_found'],
      [{ ...base, dataset_version: 9 }, 404, 'dataset_version', 'dataset_version_not_found'],
      [{ ...base, surprise: true }, 400, 'surprise', 'unknown_parameter'],
    ];
    for (const [body, status, param, code] of cases) {
      const res = await stack.api('POST', '/v1/evals', body);
      expect({ status: res.status, param: res.body.error?.param, code: res.body.error?.code }, JSON.stringify(res.body)).toEqual({ status, param, code });
    }
    expect((await stack.api('GET', '/v1/evals/eval_doesnotexist1')).status).toBe(404);
    expect((await stack.api('GET', '/v1/evals/not-an-id')).status).toBe(400);
    expect((await stack.api('GET', '/v1/evals?limit=0')).status).toBe(400);
  });
});
