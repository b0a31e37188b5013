/**
 * Reusable prompts through the API: templates with immutable versions, rollback, rendering into
 * jobs (text and file variables), A/B traffic splits, the automatic prompt_cache_key and the
 * cache hits it buys, usage per prompt version and the worker's per-prompt token counters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '@longhaul/db';
import { createLogger } from '@longhaul/runtime';
import { type OpsServer, startOpsServer, workerReadinessChecks } from '@longhaul/worker/http';
import { type Stack, isTerminalJob, startStack } from './harness.ts';
import { scrape, total } from './prometheus.ts';

let stack: Stack;
let ops: OpsServer;

beforeAll(async () => {
  stack = await startStack();
  ops = await startOpsServer({
    host: '127.0.0.1',
    port: 0,
    metrics: stack.workerMetrics,
    checks: workerReadinessChecks({ db: stack.db, queues: stack.queues }),
    logger: createLogger({ service: 'test', level: 'silent' }),
  });
});
afterAll(async () => {
  await ops?.close();
  await stack?.stop();
});

const FAST = { sim_duration_ms: '100' };

async function createPrompt(template: Record<string, unknown>, name = 'support'): Promise<string> {
  const res = await stack.api('POST', '/v1/prompts', { name, template });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function submit(body: Record<string, unknown>): Promise<any> {
  const res = await stack.api('POST', '/v1/jobs', { metadata: FAST, ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

/** What Longhaul stored (and sends) as the Responses create body, and the prompt columns. */
async function stored(jobId: string): Promise<{ request: Record<string, any>; prompt_id: string | null; prompt_version: number | null }> {
  const { rows } = await stack.db.pool.query('select request, prompt_id, prompt_version from jobs where id = $1', [jobId]);
  return rows[0];
}

const supportTemplate = {
  model: 'o3',
  reasoning: { effort: 'low' },
  max_output_tokens: 50000,
  instructions: 'You are a support agent for {{company}}. Answer briefly.',
  input: [{ role: 'user', content: [{ type: 'input_text', text: 'Question: {{question}}' }] }],
};

describe('prompt templates and versions', () => {
  it('creates a prompt, adds immutable versions, lists them, and rolls back', async () => {
    const created = await stack.api('POST', '/v1/prompts', { name: 'support', description: 'Tier 1', note: 'first', template: supportTemplate });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ object: 'prompt', name: 'support', description: 'Tier 1', current_version: 1, latest_version: 1, traffic: null });
    expect(created.body.id).toMatch(/^prm_[0-9A-Za-z]{24}$/);
    const id = created.body.id;
    expect(created.headers.get('location')).toBe(`/v1/prompts/${id}`);

    const v1 = await stack.api('GET', `/v1/prompts/${id}/versions/1`);
    expect(v1.status).toBe(200);
    expect(v1.body).toMatchObject({ object: 'prompt.version', prompt_id: id, version: 1, note: 'first', variables: ['company', 'question'], template: supportTemplate });
    expect(v1.body.static_prefix_tokens).toBe(Math.floor('You are a support agent for '.length / 4));

    const v2 = await stack.api('POST', `/v1/prompts/${id}/versions`, {
      note: 'friendlier',
      template: { ...supportTemplate, instructions: 'Be warm. You help {{company}} customers.' },
    });
    expect(v2.status).toBe(201);
    expect(v2.body).toMatchObject({ object: 'prompt.version', version: 2, note: 'friendlier' });
    expect((await stack.api('GET', `/v1/prompts/${id}`)).body).toMatchObject({ current_version: 2, latest_version: 2 });
    // Version 1 is unchanged.
    expect((await stack.api('GET', `/v1/prompts/${id}/versions/1`)).body).toEqual(v1.body);

    const list = await stack.api('GET', `/v1/prompts/${id}/versions`);
    expect(list.body).toMatchObject({ object: 'list', has_more: false });
    expect(list.body.data.map((v: any) => v.version)).toEqual([2, 1]);
    const page1 = await stack.api('GET', `/v1/prompts/${id}/versions?limit=1`);
    expect(page1.body.data.map((v: any) => v.version)).toEqual([2]);
    expect(page1.body.has_more).toBe(true);
    const page2 = await stack.api('GET', `/v1/prompts/${id}/versions?limit=1&after=2`);
    expect(page2.body.data.map((v: any) => v.version)).toEqual([1]);
    expect(page2.body.has_more).toBe(false);

    const prompts = await stack.api('GET', '/v1/prompts?limit=100');
    expect(prompts.body.object).toBe('list');
    expect(prompts.body.data.find((p: any) => p.id === id)).toMatchObject({ object: 'prompt', current_version: 2 });

    // A job without a version runs the current one (2); roll back to 1 and it runs 1.
    const onV2 = await submit({ prompt: { id, variables: { company: 'Acme', question: 'Hi?' } } });
    expect(onV2.prompt).toEqual({ id, version: 2 });
    expect((await stored(onV2.id)).request.instructions).toBe('Be warm. You help Acme customers.');
    const rolledBack = await stack.api('POST', `/v1/prompts/${id}`, { current_version: 1, name: 'support (stable)' });
    expect(rolledBack.status).toBe(200);
    expect(rolledBack.body).toMatchObject({ current_version: 1, latest_version: 2, name: 'support (stable)' });
    const onV1 = await submit({ prompt: { id, variables: { company: 'Acme', question: 'Hi?' } } });
    expect(onV1.prompt).toEqual({ id, version: 1 });
    expect((await stored(onV1.id)).request.instructions).toBe('You are a support agent for Acme. Answer briefly.');

    const missing = await stack.api('POST', `/v1/prompts/${id}`, { current_version: 3 });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({ param: 'current_version', code: 'prompt_version_not_found' });
    await stack.waitForAll([onV1.id, onV2.id], (j) => j.status === 'completed');
  });

  it('validates templates strictly, with the job body’s own shapes', async () => {
    const cases: [unknown, string][] = [
      [{ name: 'x', template: { instructions: 'Hi', temperature: 0.2 } }, 'template.temperature'],
      [{ name: 'x', template: { model: 'o3' } }, 'template.instructions'],
      [{ name: 'x', template: { input: [{ role: 'user', content: [{ type: 'input_txt', text: 'a' }] }] } }, 'template.input'],
      [{ name: 'x', template: { instructions: 'Hi', reasoning: { effort: 'extreme' } } }, 'template.reasoning.effort'],
      [{ template: { instructions: 'Hi' } }, 'name'],
      [{ name: 'x', template: { instructions: 'Hi' }, colour: 'red' }, 'colour'],
    ];
    for (const [body, param] of cases) {
      const res = await stack.api('POST', '/v1/prompts', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.type).toBe('invalid_request_error');
      expect(res.body.error.param, JSON.stringify(res.body)).toContain(param);
    }
  });

  it('keeps prompts to their tenant: another tenant gets 404 everywhere', async () => {
    const id = await createPrompt(supportTemplate);
    const other = await createTenant(stack.db.db, 'other tenant');
    const as = { authorization: `Bearer ${other.apiKey}` };
    for (const [method, path, body] of [
      ['GET', `/v1/prompts/${id}`],
      ['POST', `/v1/prompts/${id}`, { current_version: 1 }],
      ['GET', `/v1/prompts/${id}/versions`],
      ['GET', `/v1/prompts/${id}/versions/1`],
      ['POST', `/v1/prompts/${id}/versions`, { template: { instructions: 'mine now' } }],
    ] as [string, string, unknown?][]) {
      const res = await stack.api(method, path, body, as);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe('prompt_not_found');
    }
    expect((await stack.api('GET', '/v1/prompts', undefined, as)).body.data).toEqual([]);
    const job = await stack.api('POST', '/v1/jobs', { prompt: { id, variables: { company: 'A', question: 'B' } } }, as);
    expect(job.status).toBe(404);
    expect(job.body.error).toMatchObject({ code: 'prompt_not_found', param: 'prompt.id' });
    // The owner still sees version 1 only.
    expect((await stack.api('GET', `/v1/prompts/${id}`)).body.latest_version).toBe(1);
  });
});

describe('jobs from prompts', () => {
  it('renders text variables, lets the job override defaults, and appends the job’s own input', async () => {
    const id = await createPrompt(supportTemplate);
    const job = await submit({ prompt: { id, version: '1', variables: { company: 'Acme', question: 'Where is my parcel?' } } });
    expect(job.model).toBe('o3');
    expect(job.prompt).toEqual({ id, version: 1 });
    const { request, prompt_id, prompt_version } = await stored(job.id);
    expect({ prompt_id, prompt_version }).toEqual({ prompt_id: id, prompt_version: 1 });
    expect(request.prompt).toBeUndefined();
    expect(request).toMatchObject({
      model: 'o3',
      reasoning: { effort: 'low' },
      max_output_tokens: 50000,
      instructions: 'You are a support agent for Acme. Answer briefly.',
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'Question: Where is my parcel?' }] }],
      prompt_cache_key: `${id}:v1`,
    });

    const overridden = await submit({
      model: 'gpt-5-mini',
      reasoning: { effort: 'high' },
      input: 'Also: my order number is 42.',
      prompt: { id, version: 1, variables: { company: 'Acme', question: 'Refund?' } },
    });
    expect(overridden.model).toBe('gpt-5-mini');
    const o = (await stored(overridden.id)).request;
    expect(o).toMatchObject({ model: 'gpt-5-mini', reasoning: { effort: 'high' }, max_output_tokens: 50000 });
    expect(o.input).toEqual([
      { role: 'user', content: [{ type: 'input_text', text: 'Question: Refund?' }] },
      { role: 'user', content: 'Also: my order number is 42.' },
    ]);
    const done = await stack.waitForAll([job.id, overridden.id], isTerminalJob);
    expect(done.map((j) => j.status)).toEqual(['completed', 'completed']);
    // What the provider received is the rendered request, with Longhaul's job id in metadata.
    const received = await stack.simApi('GET', `/sim/requests/${done[0].response_id}`);
    expect(received).toMatchObject({ ...request, metadata: { ...FAST, longhaul_job_id: job.id } });
    expect(received.prompt).toBeUndefined();
  });

  it('puts a file or image variable in place of a part whose whole text is its placeholder', async () => {
    const id = await createPrompt({
      model: 'o3',
      instructions: 'Summarise the attached document about {{topic}}.',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'The document:' },
            { type: 'input_text', text: '{{reference_pdf}}' },
            { type: 'input_text', text: '{{ chart }}' },
          ],
        },
      ],
    });
    const pdf = { type: 'input_file', file_url: 'https://example.com/draconomicon.pdf' };
    const chart = { type: 'input_image', image_url: 'https://example.com/chart.png', detail: 'low' };
    const job = await submit({ prompt: { id, variables: { topic: 'Dragons', reference_pdf: pdf, chart } } });
    const { request } = await stored(job.id);
    expect(request.instructions).toBe('Summarise the attached document about Dragons.');
    expect(request.input).toEqual([{ role: 'user', content: [{ type: 'input_text', text: 'The document:' }, pdf, chart] }]);
    expect((await stack.waitForJob(job.id, isTerminalJob)).status).toBe('completed');

    // A file cannot go inside text.
    const inText = await stack.api('POST', '/v1/jobs', { prompt: { id, variables: { topic: pdf, reference_pdf: pdf, chart } } });
    expect(inText.status).toBe(400);
    expect(inText.body.error).toMatchObject({ code: 'invalid_prompt_variable', param: 'prompt.variables.topic' });
  });

  it('refuses missing and unknown variables (400 naming them), unknown prompts and versions (404)', async () => {
    const id = await createPrompt(supportTemplate);
    const missing = await stack.api('POST', '/v1/jobs', { prompt: { id, variables: { company: 'Acme' } } });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({ type: 'invalid_request_error', code: 'missing_prompt_variable', param: 'prompt.variables.question' });
    expect(missing.body.error.message).toContain('question');

    const extra = await stack.api('POST', '/v1/jobs', { prompt: { id, variables: { company: 'Acme', question: 'Q', mood: 'sunny' } } });
    expect(extra.status).toBe(400);
    expect(extra.body.error).toMatchObject({ code: 'unknown_prompt_variable', param: 'prompt.variables.mood' });
    expect(extra.body.error.message).toContain('mood');

    const unknown = await stack.api('POST', '/v1/jobs', { prompt: { id: 'prm_doesnotexist000000000000', variables: {} } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ type: 'not_found_error', code: 'prompt_not_found', param: 'prompt.id' });
    const notAPrompt = await stack.api('POST', '/v1/jobs', { model: 'o3', prompt: { id: 'whatever' } });
    expect(notAPrompt.status).toBe(404);

    const badVersion = await stack.api('POST', '/v1/jobs', { prompt: { id, version: 7, variables: { company: 'Acme', question: 'Q' } } });
    expect(badVersion.status).toBe(404);
    expect(badVersion.body.error).toMatchObject({ code: 'prompt_version_not_found', param: 'prompt.version' });
    expect((await stack.api('GET', `/v1/prompts/${id}/versions/7`)).status).toBe(404);
    expect((await stack.api('GET', `/v1/prompts/${id}/versions/one`)).status).toBe(404);

    // No model anywhere: the template sets none and neither does the job.
    const noModel = await createPrompt({ instructions: 'Static' });
    const res = await stack.api('POST', '/v1/jobs', { prompt: { id: noModel } });
    expect(res.status).toBe(400);
    expect(res.body.error.param).toBe('model');
  });

  it('passes an OpenAI hosted prompt (pmpt_…) through unchanged', async () => {
    await stack.simApi('POST', '/sim/prompts', { id: 'pmpt_abc123', version: '2', model: 'o3', instructions: 'Help {{customer_name}} with the {{product}}.' });
    const prompt = { id: 'pmpt_abc123', version: '2', variables: { customer_name: 'Jane Doe', product: '40oz juice box' } };
    const job = await submit({ model: 'o3', prompt });
    expect(job.prompt).toEqual({ id: 'pmpt_abc123', version: '2' });
    const s = await stored(job.id);
    expect(s.request.prompt).toEqual(prompt);
    expect(s.request.prompt_cache_key).toBeUndefined();
    expect({ prompt_id: s.prompt_id, prompt_version: s.prompt_version }).toEqual({ prompt_id: null, prompt_version: null });
    const done = await stack.waitForJob(job.id, isTerminalJob);
    expect(done.status).toBe('completed');
    expect((await stack.simApi('GET', `/sim/requests/${done.response_id}`)).prompt).toEqual(prompt);
    // OpenAI takes the version as a string: a number is sent as one.
    const numeric = await submit({ model: 'o3', prompt: { ...prompt, version: 2 } });
    expect((await stored(numeric.id)).request.prompt).toEqual(prompt);
    expect((await stack.waitForJob(numeric.id, isTerminalJob)).status).toBe('completed');
  });
});

describe('A/B traffic splits', () => {
  it('splits jobs that name no version by weight; a named version always wins; null stops the split', async () => {
    const id = await createPrompt({ model: 'o3', instructions: 'Variant A. Be concise.', input: 'Tell me about {{animal}}.' });
    await stack.api('POST', `/v1/prompts/${id}/versions`, { template: { model: 'o3', instructions: 'Variant B. Be playful.', input: 'Tell me about {{animal}}.' } });

    const bad = await stack.api('POST', `/v1/prompts/${id}`, {
      traffic: [
        { version: 1, weight: 50 },
        { version: 3, weight: 50 },
      ],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe('traffic[1]');
    expect((await stack.api('POST', `/v1/prompts/${id}`, { traffic: [{ version: 1, weight: 0 }] })).status).toBe(400);

    const split = await stack.api('POST', `/v1/prompts/${id}`, {
      traffic: [
        { version: 1, weight: 50 },
        { version: 2, weight: 50 },
      ],
    });
    expect(split.status).toBe(200);
    expect(split.body.traffic).toEqual([
      { version: 1, weight: 50 },
      { version: 2, weight: 50 },
    ]);

    const jobs = await Promise.all(Array.from({ length: 40 }, (_, i) => submit({ prompt: { id, variables: { animal: `otter ${i}` } } })));
    const versions = new Map<number, number>();
    for (const job of jobs) {
      const v = job.prompt.version as number;
      versions.set(v, (versions.get(v) ?? 0) + 1);
      // Each job ran, and records, the version it was rendered from.
      const s = await stored(job.id);
      expect(s.prompt_version).toBe(v);
      expect(s.request.instructions).toBe(v === 1 ? 'Variant A. Be concise.' : 'Variant B. Be playful.');
      expect(s.request.prompt_cache_key).toBe(`${id}:v${v}`);
    }
    // P(all 40 on one side) = 2 × 0.5^40.
    expect([...versions.keys()].sort()).toEqual([1, 2]);

    const pinned = await Promise.all(Array.from({ length: 5 }, () => submit({ prompt: { id, version: 1, variables: { animal: 'seal' } } })));
    expect(pinned.map((j) => j.prompt.version)).toEqual([1, 1, 1, 1, 1]);

    const stopped = await stack.api('POST', `/v1/prompts/${id}`, { traffic: null });
    expect(stopped.body.traffic).toBeNull();
    const after = await Promise.all(Array.from({ length: 5 }, () => submit({ prompt: { id, variables: { animal: 'seal' } } })));
    expect(after.map((j) => j.prompt.version)).toEqual([2, 2, 2, 2, 2]);

    const finished = await stack.waitForAll(
      [...jobs, ...pinned, ...after].map((j) => j.id),
      isTerminalJob,
    );
    expect(finished.every((j) => j.status === 'completed')).toBe(true);
    expect(finished.slice(0, 40).map((j) => j.prompt.version)).toEqual(jobs.map((j) => j.prompt.version));
  });
});

describe('prompt caching', () => {
  const staticPart = 'You review pull requests for a payments company. Check error handling, idempotency and logging. '.repeat(60);
  let promptId: string;
  let cacheJobs: any[];

  it('gives jobs of one version a stable prompt_cache_key, and the second job reads the static prefix from the cache', async () => {
    expect(staticPart.length / 4).toBeGreaterThan(1024);
    promptId = await createPrompt({ model: 'o3', instructions: staticPart, input: [{ role: 'user', content: 'The diff:\n{{diff}}' }] }, 'reviewer');
    const v1 = await stack.api('GET', `/v1/prompts/${promptId}/versions/1`);
    expect(v1.body.static_prefix_tokens).toBeGreaterThan(1024);

    const first = await submit({ prompt: { id: promptId, variables: { diff: '- return err\n+ return wrap(err)' } } });
    const firstDone = await stack.waitForJob(first.id, isTerminalJob);
    const second = await submit({ prompt: { id: promptId, variables: { diff: '+ log.info("retrying")' } } });
    const secondDone = await stack.waitForJob(second.id, isTerminalJob);
    expect([firstDone.status, secondDone.status]).toEqual(['completed', 'completed']);

    const [a, b] = [(await stored(first.id)).request, (await stored(second.id)).request];
    expect(a.prompt_cache_key).toBe(`${promptId}:v1`);
    expect(b.prompt_cache_key).toBe(a.prompt_cache_key);
    expect(firstDone.cached_tokens).toBe(0);
    expect(secondDone.cached_tokens).toBeGreaterThanOrEqual(1024);
    expect(secondDone.cached_tokens).toBe(secondDone.usage.input_tokens_details.cached_tokens);

    // A caller's own key is kept.
    const own = await submit({ prompt_cache_key: 'my-key', prompt: { id: promptId, variables: { diff: 'x' } } });
    expect((await stored(own.id)).request.prompt_cache_key).toBe('my-key');
    cacheJobs = await stack.waitForAll([first.id, second.id, own.id], isTerminalJob);
  });

  it('reports usage per prompt version with a cache-hit ratio', async () => {
    // Everything this file submitted has finished before the sums are compared.
    const { rows } = await stack.db.pool.query<{ id: string; status: string }>('select id, status from jobs');
    const all = await stack.waitForAll(
      rows.map((r) => r.id),
      isTerminalJob,
    );
    const res = await stack.api('GET', '/v1/usage?group_by=prompt_version');
    expect(res.status).toBe(200);
    expect(res.body.group_by).toBe('prompt_version');

    const expected = new Map<string, { jobs: number; input: number; cached: number }>();
    for (const job of all) {
      const key = `${job.prompt?.id?.startsWith('prm_') ? job.prompt.id : null}|${job.prompt?.id?.startsWith('prm_') ? job.prompt.version : null}|${job.model}`;
      const e = expected.get(key) ?? { jobs: 0, input: 0, cached: 0 };
      e.jobs += 1;
      e.input += job.usage?.input_tokens ?? 0;
      e.cached += job.usage?.input_tokens_details?.cached_tokens ?? 0;
      expected.set(key, e);
    }
    expect(res.body.data).toHaveLength(expected.size);
    for (const row of res.body.data) {
      const e = expected.get(`${row.prompt_id}|${row.prompt_version}|${row.model}`);
      expect(e, JSON.stringify(row)).toBeDefined();
      expect(row).toMatchObject({ jobs: e!.jobs, input_tokens: e!.input, cached_tokens: e!.cached });
      if (e!.input === 0) expect(row.cache_hit_ratio).toBeNull();
      else expect(row.cache_hit_ratio).toBeCloseTo(e!.cached / e!.input, 12);
    }
    const reviewer = res.body.data.find((r: any) => r.prompt_id === promptId);
    expect(reviewer).toMatchObject({ prompt_version: 1, model: 'o3', jobs: 3 });
    expect(reviewer.cache_hit_ratio).toBeGreaterThan(0);
    // Jobs without a Longhaul prompt (the hosted one) have their own row.
    expect(res.body.data.some((r: any) => r.prompt_id === null)).toBe(true);

    // Other groupings carry the ratio too; no input tokens: null.
    const byModel = await stack.api('GET', '/v1/usage?group_by=model');
    for (const row of byModel.body.data) expect(row.cache_hit_ratio).toBe(row.input_tokens ? row.cached_tokens / row.input_tokens : null);
    const future = Math.floor(Date.now() / 1000) + 3600;
    const empty = await stack.api('GET', `/v1/usage?group_by=prompt_version&from=${future}&to=${future + 60}`);
    expect(empty.body).toMatchObject({ data: [], total: { input_tokens: 0, cache_hit_ratio: null } });
  });

  it('counts input and cached input tokens per model and prompt version in the worker’s metrics', async () => {
    const plain = await submit({ model: 'o3', input: 'No prompt here.' });
    await stack.waitForJob(plain.id, isTerminalJob);
    const samples = await scrape(ops.url);
    const label = `${promptId}@1`;
    const mine = cacheJobs;
    const input = mine.reduce((n, j) => n + j.usage.input_tokens, 0);
    const cached = mine.reduce((n, j) => n + j.usage.input_tokens_details.cached_tokens, 0);
    expect(cached).toBeGreaterThan(0);
    expect(total(samples, 'longhaul_prompt_input_tokens_total', { model: 'o3', prompt: label })).toBe(input);
    expect(total(samples, 'longhaul_prompt_cached_input_tokens_total', { model: 'o3', prompt: label })).toBe(cached);
    // Jobs without a Longhaul prompt are counted under prompt="none".
    expect(total(samples, 'longhaul_prompt_input_tokens_total', { prompt: 'none' })).toBeGreaterThan(0);
    // Every finished job's input tokens are in exactly one prompt series.
    expect(total(samples, 'longhaul_prompt_input_tokens_total')).toBe(total(samples, 'longhaul_tokens_total', { kind: 'input' }));
  });
});
