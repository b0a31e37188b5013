import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { lastUserText, parseQuestion } from '../src/arithmetic.ts';
import { generate } from '../src/generation.ts';
import { pollUntilTerminal, startSim, type TestSim } from './helpers.ts';

let sim: TestSim;

beforeAll(async () => {
  sim = await startSim({ time_scale: 0.001 });
});
afterAll(async () => {
  await sim.close();
});

/** 200 distinct questions with their right answers (the dataset of an evaluation). */
const DATASET = Array.from({ length: 200 }, (_, i) => {
  const a = 3 + ((i * 37) % 97);
  const b = 2 + ((i * 11) % 23);
  return i % 2 === 0 ? { question: `What is ${a} + ${b}?`, answer: String(a + b) } : { question: `Compute ${a} * ${b}`, answer: String(a * b) };
});

async function ask(input: OpenAI.Responses.ResponseCreateParamsNonStreaming['input'], extra: Partial<OpenAI.Responses.ResponseCreateParamsNonStreaming> = {}) {
  return sim.client.responses.create({ model: 'gpt-5', input, ...extra });
}

async function accuracyAt(effort: 'low' | 'high', instructions: string): Promise<number> {
  let right = 0;
  for (const item of DATASET) {
    const response = await ask(item.question, { instructions, reasoning: { effort } });
    if (response.output_text === item.answer) right++;
  }
  return right / DATASET.length;
}

describe('parseQuestion', () => {
  test.each([
    ['What is 2 + 3?', 5n],
    ['what is -4 - -6?', 2n],
    ['WHAT IS 7x6?', 42n],
    ['What is 7 X 6', 42n],
    ['What is 7 × -6?', -42n],
    ['Compute 12 * 12', 144n],
    ['Calculate 144 / -12.', -12n],
    ['What is 0 / 5?', 0n],
    ['You are a calculator. Answer with the number only. What is 10 - 25?', -15n],
    ['Some context.\nMore context!\n  Calculate 3 + 4  \n\n', 7n],
    ['What is 123456789012345678901234567890 * 10?', 1234567890123456789012345678900n],
  ])('%j is a question answered %s', (text, result) => {
    expect(parseQuestion(text)?.result).toBe(result);
  });

  test.each([
    'What is 7 / 2?',
    'What is 1 / 0?',
    'What is 2 + 2? Explain your answer.',
    'What is 2 + 2?\nThen write a poem.',
    'What is 2 ^ 3?',
    'What is 2.5 + 1?',
    'What is two plus three?',
    'So what is 2 + 3?',
    'Plan a trip to Lisbon.',
    '',
  ])('%j is not a question', (text) => {
    expect(parseQuestion(text)).toBeNull();
  });

  test('the last user message is the one asked, its input_text parts joined', () => {
    expect(lastUserText('What is 1 + 1?')).toBe('What is 1 + 1?');
    expect(lastUserText(null)).toBeNull();
    const input = [
      { role: 'user', content: 'What is 1 + 1?' },
      { role: 'assistant', content: '2' },
      {
        type: 'message',
        role: 'user',
        content: [
          { type: 'input_text', text: 'Be brief.' },
          { type: 'input_image', image_url: 'x' },
          { type: 'input_text', text: 'What is 2 + 2?' },
        ],
      },
      { role: 'developer', content: 'Answer in numbers.' },
    ];
    expect(lastUserText(input)).toBe('Be brief.\nWhat is 2 + 2?');
    expect(parseQuestion(lastUserText(input) ?? '')?.result).toBe(4n);
  });
});

describe('arithmetic answers', () => {
  test('sim_accuracy 1 always answers right, with just the number; its output tokens count that text', async () => {
    for (const item of DATASET.slice(0, 20)) {
      const response = await ask(item.question, { metadata: { sim_accuracy: '1' }, reasoning: { effort: 'none' } });
      expect(response.status).toBe('completed');
      expect(response.output_text).toBe(item.answer);
      const usage = response.usage as OpenAI.Responses.ResponseUsage;
      expect(usage.output_tokens - usage.output_tokens_details.reasoning_tokens).toBe(Math.ceil(item.answer.length / 4));
    }
  });

  test('sim_accuracy 0 always answers wrong, a nearby integer', async () => {
    for (const item of DATASET.slice(0, 20)) {
      const response = await ask(item.question, { metadata: { sim_accuracy: '0' }, reasoning: { effort: 'max' } });
      expect(response.output_text).toMatch(/^-?\d+$/);
      const offset = Number(response.output_text) - Number(item.answer);
      expect(offset).not.toBe(0);
      expect(Math.abs(offset)).toBeLessThanOrEqual(9);
    }
  });

  test('the same request gets the same answer, and reasoning tokens stay what the effort spends', async () => {
    const input = [{ role: 'user' as const, content: [{ type: 'input_text' as const, text: 'What is 17 * 23?' }] }];
    const first = await ask(input, { instructions: 'You are careful.', metadata: { sim_accuracy: '0.5' }, reasoning: { effort: 'high' } });
    const second = await ask(input, { instructions: 'You are careful.', metadata: { sim_accuracy: '0.5' }, reasoning: { effort: 'high' } });
    expect(second.output_text).toBe(first.output_text);
    expect(first.output_text).toMatch(/^-?\d+$/);
    expect(second.usage?.output_tokens_details.reasoning_tokens).toBe(first.usage?.output_tokens_details.reasoning_tokens);
    expect(first.usage?.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
  });

  test('accuracy over a dataset follows the effort: low is near 0.6, high near 0.9', async () => {
    const instructions = 'Answer with the number only.';
    const low = await accuracyAt('low', instructions);
    const high = await accuracyAt('high', instructions);
    expect(low).toBeGreaterThanOrEqual(0.45);
    expect(low).toBeLessThanOrEqual(0.75);
    expect(high).toBeGreaterThanOrEqual(0.8);
    expect(high).toBeGreaterThan(low);
  });

  test('no effort given answers at the default (medium, 0.75)', async () => {
    let right = 0;
    for (const item of DATASET) {
      const response = await ask(item.question);
      if (response.output_text === item.answer) right++;
    }
    expect(right / DATASET.length).toBeGreaterThanOrEqual(0.6);
    expect(right / DATASET.length).toBeLessThanOrEqual(0.9);
  });

  test('background mode: the retrieved answer is the synchronous one', async () => {
    const request = { instructions: 'Think.', reasoning: { effort: 'low' as const }, metadata: { sim_duration_ms: '5000' } };
    for (const item of DATASET.slice(0, 5)) {
      const sync = await ask(item.question, request);
      const created = await ask(item.question, { ...request, background: true });
      expect(created.status).toBe('queued');
      await pollUntilTerminal(sim, created.id);
      const retrieved = await sim.client.responses.retrieve(created.id);
      expect(retrieved.status).toBe('completed');
      expect(retrieved.output_text).toBe(sync.output_text);
      expect(retrieved.output_text).toMatch(/^-?\d+$/);
    }
  });

  test('other input is answered as before', async () => {
    for (const input of ['Plan a trip to Lisbon.', 'What is 7 / 2?', 'What is 2 + 2? Explain the history of addition.']) {
      const response = await ask(input, { metadata: { sim_accuracy: '1' } });
      expect(response.output_text).toBe(generate(input, 'medium', false).text);
    }
  });

  test('refusal, short and structured outputs win over arithmetic', async () => {
    const refused = await ask('What is 2 + 2?', { metadata: { sim_outcome: 'refusal', sim_accuracy: '1' } });
    expect(refused.output_text).toBe('');
    const short = await ask('What is 2 + 2?', { metadata: { sim_outcome: 'short', sim_accuracy: '1' } });
    expect(short.output_text).toBe('Ok.');
    const structured = await ask('What is 2 + 2?', {
      metadata: { sim_accuracy: '1' },
      text: {
        format: { type: 'json_schema', name: 'sum', schema: { type: 'object', properties: { value: { type: 'string' } }, required: ['value'], additionalProperties: false } },
      },
    });
    expect(JSON.parse(structured.output_text)).toEqual({ value: expect.any(String) });
  });

  test('tool turns keep their behaviour: a call and no message, then an answer quoting the results', async () => {
    const tools: OpenAI.Responses.Tool[] = [
      { type: 'function', name: 'add', strict: true, parameters: { type: 'object', properties: { a: { type: 'integer' } }, required: ['a'], additionalProperties: false } },
    ];
    const calling = await ask('What is 2 + 2?', { tools, metadata: { sim_accuracy: '1' } });
    expect(calling.output.map((item) => item.type)).toContain('function_call');
    expect(calling.output_text).toBe('');
    const call = calling.output.find((item) => item.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall;
    const answering = await ask([{ type: 'function_call_output', call_id: call.call_id, output: '4' }], {
      tools,
      previous_response_id: calling.id,
      metadata: { sim_accuracy: '1' },
    });
    expect(answering.output_text).toMatch(/^Tool results: /);
    expect(answering.output_text).not.toBe('4');
  });

  test.each(['-0.1', '1.5', 'high', '', ' ', 'NaN', 'Infinity'])('sim_accuracy %j is a 400 naming metadata.sim_accuracy', async (value) => {
    const { status, json } = await sim.api('/responses', { body: { model: 'gpt-5', input: 'What is 1 + 1?', metadata: { sim_accuracy: value } } });
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ type: 'invalid_request_error', param: 'metadata.sim_accuracy', code: 'invalid_value' });
    await expect(ask('What is 1 + 1?', { metadata: { sim_accuracy: value } })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });
});
