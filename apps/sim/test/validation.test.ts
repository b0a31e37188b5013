import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createSimServer } from '../src/server.ts';
import { startSim, type TestSim } from './helpers.ts';

let sim: TestSim;

beforeEach(async () => {
  sim = await startSim({ time_scale: 0.01 });
});
afterEach(async () => {
  await sim.close();
});

async function rejected(body: unknown): Promise<{ status: number; error: any }> {
  const res = await sim.api('/responses', { body });
  return { status: res.status, error: res.json.error };
}

describe('request bodies are validated against the OpenAPI spec', () => {
  test('input: 5 is a 400 invalid_type naming input', async () => {
    const { status, error } = await rejected({ model: 'gpt-5', input: 5 });
    expect(status).toBe(400);
    expect(error).toMatchObject({ type: 'invalid_request_error', param: 'input', code: 'invalid_type' });
    expect(error.message).toBe("Invalid type for 'input': expected one of a string or an array, but got an integer instead.");
  });

  test("reasoning.effort 'extreme' is a 400 invalid_value listing the supported efforts", async () => {
    const { status, error } = await rejected({ model: 'gpt-5', input: 'x', reasoning: { effort: 'extreme' } });
    expect(status).toBe(400);
    expect(error).toMatchObject({ param: 'reasoning.effort', code: 'invalid_value' });
    expect(error.message).toContain("Invalid value: 'extreme'. Supported values are: 'none', 'minimal', 'low'");
  });

  test("an effort the model does not take is a 400 unsupported_value (o-series: no 'minimal' or 'none')", async () => {
    for (const effort of ['minimal', 'none']) {
      const { status, error } = await rejected({ model: 'o3', input: 'x', reasoning: { effort } });
      expect(status).toBe(400);
      expect(error).toMatchObject({ param: 'reasoning.effort', code: 'unsupported_value' });
    }
    expect((await sim.api('/responses', { body: { model: 'o3', input: 'x', reasoning: { effort: 'high' } } })).status).toBe(200);
    expect((await sim.api('/responses', { body: { model: 'gpt-5', input: 'x', reasoning: { effort: 'minimal' } } })).status).toBe(200);
  });

  test('errors deep inside input items name the exact path', async () => {
    const badText = await rejected({ model: 'o3', input: [{ role: 'user', content: [{ type: 'input_text', text: 5 }] }] });
    expect(badText).toMatchObject({ status: 400, error: { param: 'input[0].content[0].text', code: 'invalid_type' } });

    const noDetail = await rejected({ model: 'o3', input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'https://example.com/a.png' }] }] });
    expect(noDetail).toMatchObject({ status: 400, error: { param: 'input[0].content[0].detail', code: 'missing_required_parameter' } });

    const badType = await rejected({ model: 'o3', input: [{ role: 'user', content: [{ type: 'input_pdf', text: 'x' }] }] });
    expect(badType).toMatchObject({ status: 400, error: { param: 'input[0].content[0].type', code: 'invalid_value' } });
    expect(badType.error.message).toContain("'input_file'");

    const badInclude = await rejected({ model: 'o3', input: 'x', include: ['everything'] });
    expect(badInclude).toMatchObject({ status: 400, error: { param: 'include[0]', code: 'invalid_value' } });
  });

  test('a refused body creates nothing and is counted; the SDK sees a BadRequestError with the param', async () => {
    const error = await sim.client.responses.create({ model: 'gpt-5', input: 'x', temperature: 7 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('temperature');
    const stats = await sim.sim('/stats');
    expect(stats.creates).toBe(0);
    expect(stats.invalid_requests).toBe(1);
  });

  test('conversation and file bodies are validated too', async () => {
    const items = await sim.api('/conversations', { body: { items: 'hello' } });
    expect(items.status).toBe(400);
    expect(items.json.error.param).toBe('items');
    const conversation = await sim.client.conversations.create({});
    const update = await sim.api(`/conversations/${conversation.id}`, { body: {} });
    expect(update.status).toBe(400);
    expect(update.json.error).toMatchObject({ param: 'metadata', code: 'missing_required_parameter' });

    const form = new FormData();
    form.set('purpose', 'everything');
    form.set('file', new Blob(['abc']), 'a.txt');
    const upload = await fetch(`${sim.url}/v1/files`, { method: 'POST', headers: { authorization: 'Bearer sk-test' }, body: form });
    expect(upload.status).toBe(400);
    expect((await upload.json()).error).toMatchObject({ param: 'purpose', code: 'invalid_value' });
    const noFile = new FormData();
    noFile.set('purpose', 'user_data');
    const missing = await fetch(`${sim.url}/v1/files`, { method: 'POST', headers: { authorization: 'Bearer sk-test' }, body: noFile });
    expect(missing.status).toBe(400);
    expect((await missing.json()).error).toMatchObject({ param: 'file', code: 'missing_required_parameter' });
  });

  test('every request shape Longhaul sends is accepted', async () => {
    await sim.sim('/prompts', { id: 'pmpt_shapes', instructions: 'Answer about {{topic}}.' });
    const file = await sim.client.files.create({ file: await OpenAI.toFile(Buffer.from('%PDF-1.4 shapes'), 'a.pdf'), purpose: 'user_data' });
    const conversation = await sim.client.conversations.create({ items: [{ role: 'user', content: 'Earlier question' }], metadata: { tenant: 't' } });
    const base = { background: true, store: true, metadata: { sim_duration_ms: '10', longhaul_job_id: 'job_shapes' } };
    const first = await sim.api('/responses', { body: { ...base, model: 'o3', input: 'Write a long novel about otters in space.', reasoning: { effort: 'high' } } });
    expect(first.status).toBe(200);
    const bodies: Record<string, unknown>[] = [
      { model: 'gpt-5', input: 'x', reasoning: { effort: 'minimal', summary: 'auto' }, max_output_tokens: 5000, prompt_cache_key: 'tenant-1' },
      { model: 'o3', input: 'and then?', previous_response_id: first.json.id },
      { model: 'o3', input: 'next', conversation: conversation.id },
      { model: 'o3', input: 'next', conversation: { id: conversation.id } },
      { model: 'o3', prompt: { id: 'pmpt_shapes', version: null, variables: { topic: 'otters' } } },
      { prompt: { id: 'pmpt_shapes', variables: { topic: { type: 'input_text', text: 'otters' } } }, model: 'o3' },
      {
        model: 'o3',
        instructions: 'Be brief.',
        input: [
          { role: 'developer', content: 'Use metric units.' },
          {
            type: 'message',
            role: 'user',
            content: [
              { type: 'input_text', text: 'Summarise these.' },
              { type: 'input_file', file_id: file.id },
              { type: 'input_file', filename: 'b.pdf', file_data: `data:application/pdf;base64,${Buffer.from('%PDF').toString('base64')}` },
              { type: 'input_file', file_url: 'https://example.com/c.pdf' },
              { type: 'input_image', image_url: 'https://example.com/d.png', detail: 'auto' },
              { type: 'input_image', file_id: file.id, detail: 'low' },
            ],
          },
          { role: 'assistant', content: 'Earlier answer' },
          // An assistant message with output_text parts is the spec's output message: id, status, annotations, logprobs.
          { type: 'message', id: 'msg_1', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Earlier answer', annotations: [], logprobs: [] }] },
          // A tool output follows its call (OpenAI answers an output without one with a 400).
          { type: 'function_call', call_id: 'call_1', name: 'lookup', arguments: '{}' },
          { type: 'function_call_output', call_id: 'call_1', output: '{"ok":true}' },
        ],
        text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object', properties: { a: { type: 'string' } } }, strict: true } },
        tools: [{ type: 'function', name: 'lookup', parameters: { type: 'object', properties: {} }, strict: false }],
        service_tier: 'flex',
        safety_identifier: 'user-1',
      },
      { model: 'o3', input: 'stream me', stream: true },
    ];
    for (const body of bodies) {
      const res = await fetch(`${sim.url}/v1/responses`, {
        method: 'POST',
        headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json' },
        body: JSON.stringify({ ...base, ...body }),
      });
      const text = await res.text();
      expect(res.status, `${JSON.stringify(body).slice(0, 120)} -> ${text.slice(0, 400)}`).toBe(200);
    }
    expect((await sim.sim('/stats')).invalid_requests).toBe(0);
  });
});

describe('the spec path', () => {
  test('a configured path that does not exist fails at start-up; null turns spec validation off', async () => {
    expect(() => createSimServer({}, { specPath: '/nonexistent/responses-subset.json' })).toThrow(/nonexistent/);
    const server = createSimServer({}, { specPath: null });
    const listening = await server.listen(0);
    try {
      const res = await fetch(`${listening.url}/v1/responses`, {
        method: 'POST',
        headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'o3', input: 'x', include: ['everything'] }),
      });
      expect(res.status).toBe(200);
      expect(server.simulator.stats.invalid_requests).toBe(0);
    } finally {
      await listening.close();
    }
  });
});
