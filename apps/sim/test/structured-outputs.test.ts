import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { pollUntilTerminal, startSim, streamEventErrors, type TestSim } from './helpers.ts';

// ajv is @longhaul/specs's dependency (hoisted to the root node_modules); specs exports no generic schema validator.
const ajv = new Ajv2020({ strict: false, allErrors: true });

let sim: TestSim;

beforeEach(async () => {
  sim = await startSim({ time_scale: 0.001 });
});
afterEach(async () => {
  await sim.close();
});

const PLAN = {
  type: 'object',
  properties: {
    goal: { type: 'string' },
    steps: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          title: { type: 'string' },
          priority: { type: 'string', enum: ['low', 'medium', 'high'] },
          minutes: { type: 'integer', minimum: 5, maximum: 120 },
          parallel: { type: 'boolean' },
          owner: { $ref: '#/$defs/person' },
          tags: { type: 'array', items: { type: 'string', maxLength: 12 }, minItems: 1, maxItems: 2 },
        },
        required: ['title', 'priority', 'minutes', 'parallel', 'owner', 'tags'],
        additionalProperties: false,
      },
    },
    confidence: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    risk: { anyOf: [{ type: 'null' }, { type: 'string', minLength: 20 }] },
  },
  required: ['goal', 'steps', 'confidence', 'risk'],
  additionalProperties: false,
  $defs: {
    person: { type: 'object', properties: { name: { type: 'string' }, email: { type: 'string', format: 'email' } }, required: ['name', 'email'], additionalProperties: false },
  },
} as const;

const FORMAT = { type: 'json_schema', name: 'plan', schema: PLAN, strict: true } as const;
const PROMPT = 'Plan the migration of the billing database to 17 without downtime.';

function valid(schema: object, text: string): unknown {
  const value = JSON.parse(text);
  const validate = ajv.compile(schema);
  expect(validate(value), JSON.stringify(validate.errors)).toBe(true);
  return value;
}

describe('text.format json_schema', () => {
  test('the output text is JSON valid against the schema, meaningful and deterministic', async () => {
    const first = await sim.client.responses.create({ model: 'gpt-4.1', input: PROMPT, text: { format: FORMAT } });
    const plan = valid(PLAN, first.output_text) as any;
    expect(plan.steps).toHaveLength(3);
    expect(plan.steps[1].title).toBe('step 2 title of: Plan the migration of the billing database to');
    expect(plan.steps.map((step: any) => step.priority)).toEqual(['low', 'medium', 'high']);
    expect(plan.steps.map((step: any) => step.minutes)).toEqual([5, 6, 7]);

    const list = { type: 'object', properties: { steps: { type: 'array', items: { type: 'string' } } }, required: ['steps'], additionalProperties: false };
    const listed = await sim.client.responses.create({ model: 'o3', input: PROMPT, text: { format: { type: 'json_schema', name: 'list', schema: list, strict: true } } });
    expect(valid(list, listed.output_text)).toEqual({ steps: [1, 2, 3].map((n) => `step ${n} of: Plan the migration of the billing database to`) });
    expect(plan.goal).toContain('Plan the migration');
    const again = await sim.client.responses.create({ model: 'gpt-4.1', input: PROMPT, text: { format: FORMAT } });
    expect(again.output_text).toBe(first.output_text);
    expect(first.usage?.output_tokens).toBeGreaterThan(0);
  });

  test('background, with messages as input: a later step sees the earlier output', async () => {
    const created = await sim.client.responses.create({
      model: 'o3',
      background: true,
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'Execute: step 1 of: Plan the migration' }] }],
      text: {
        format: { type: 'json_schema', name: 'result', schema: { type: 'object', properties: { result: { type: 'string' } }, required: ['result'], additionalProperties: false } },
      },
    });
    const done = (await pollUntilTerminal(sim, created.id)).at(-1);
    expect(done.status).toBe('completed');
    expect(JSON.parse(done.output_text)).toEqual({ result: 'result of: Execute: step 1 of: Plan the migration' });
  });

  test.each([1, 7, 50])('metadata.sim_array_items=%i sets array lengths (within minItems/maxItems)', async (n) => {
    const response = await sim.client.responses.create({ model: 'gpt-4.1', input: PROMPT, text: { format: FORMAT }, metadata: { sim_array_items: String(n) } });
    const plan = valid(PLAN, response.output_text) as any;
    expect(plan.steps).toHaveLength(n);
    for (const step of plan.steps) expect(step.tags.length).toBe(Math.min(2, n));
  });

  test('top-level arrays, uniqueItems over enums, integers with multipleOf, const, allOf', async () => {
    const schema = {
      type: 'object',
      properties: {
        picks: { type: 'array', items: { enum: ['a', 'b'] }, uniqueItems: true },
        even: { type: 'integer', multipleOf: 2, minimum: 3 },
        kind: { const: 'report' },
        merged: {
          allOf: [
            { type: 'object', properties: { x: { type: 'string' } }, required: ['x'] },
            { properties: { y: { type: 'number' } }, required: ['y'] },
          ],
        },
      },
      required: ['picks', 'even', 'kind', 'merged'],
    };
    const response = await sim.client.responses.create({ model: 'gpt-5', input: 'Go.', text: { format: { type: 'json_schema', name: 'misc', schema } } });
    const value = valid(schema, response.output_text) as any;
    expect(value.picks).toEqual(['a', 'b']);
    expect(value.kind).toBe('report');
  });

  test('after a tool turn the answer is still bare JSON (no tool-results preamble)', async () => {
    const schema = { type: 'object', properties: { summary: { type: 'string' } }, required: ['summary'], additionalProperties: false };
    const tools = [{ type: 'function' as const, name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] }, strict: false }];
    const text = { format: { type: 'json_schema' as const, name: 'out', schema } };
    const first = await sim.client.responses.create({ model: 'gpt-5', input: 'Look it up.', tools, text });
    const call = first.output.find((item) => item.type === 'function_call');
    expect(call).toBeDefined();
    expect(first.output_text).toBe('');
    const second = await sim.client.responses.create({
      model: 'gpt-5',
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: (call as { call_id: string }).call_id, output: 'found it' }],
      tools,
      text,
    });
    expect(valid(schema, second.output_text)).toEqual({ summary: expect.stringMatching(/^summary of:/) });
  });

  test('json_object gets a JSON object', async () => {
    const response = await sim.client.responses.create({ model: 'gpt-4.1', input: 'Answer in JSON.', text: { format: { type: 'json_object' } } });
    const value = JSON.parse(response.output_text);
    expect(typeof value).toBe('object');
    expect(Array.isArray(value)).toBe(false);
  });

  test('streamed deltas and output_text.done carry the same JSON text', async () => {
    const stream = await sim.client.responses.create({ model: 'gpt-5', input: PROMPT, text: { format: FORMAT }, stream: true, background: true });
    const events: any[] = [];
    for await (const event of stream) events.push(event);
    for (const event of events) expect(streamEventErrors(event)).toBeNull();
    const deltas = events.filter((event) => event.type === 'response.output_text.delta').map((event) => event.delta);
    const done = events.find((event) => event.type === 'response.output_text.done');
    expect(deltas.join('')).toBe(done.text);
    valid(PLAN, done.text);
    const completed = events.at(-1);
    expect(completed.type).toBe('response.completed');
    expect(completed.response.output_text ?? completed.response.output.at(-1).content[0].text).toBe(done.text);
    const retrieved = await sim.client.responses.retrieve(completed.response.id);
    expect(retrieved.output_text).toBe(done.text);
  });

  test('a refusal or short outcome wins over the format', async () => {
    const refused = await sim.client.responses.create({ model: 'gpt-5', input: PROMPT, text: { format: FORMAT }, metadata: { sim_outcome: 'refusal' } });
    expect(refused.output_text).toBe('');
    const short = await sim.client.responses.create({ model: 'gpt-5', input: PROMPT, text: { format: FORMAT }, metadata: { sim_outcome: 'short' } });
    expect(short.output_text.length).toBeLessThan(10);
  });
});
