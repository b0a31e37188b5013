import type OpenAI from 'openai';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { minimalArguments } from '../src/tool-arguments.ts';
import { pollUntilTerminal, responseSchemaErrors, startReceiver, startSim, streamEventErrors, type TestSim } from './helpers.ts';
import { refedTimeouts } from './timers.ts';

type Tool = OpenAI.Responses.Tool;
type Input = OpenAI.Responses.ResponseInputItem;

let sim: TestSim;
let baselineTimers: number;

beforeAll(() => {
  baselineTimers = refedTimeouts();
  responseSchemaErrors({});
});
beforeEach(async () => {
  sim = await startSim({ time_scale: 1, default_duration_ms: 100 });
});
afterEach(async () => {
  await sim.close();
  expect(refedTimeouts()).toBeLessThanOrEqual(baselineTimers);
});

const weather: Tool = {
  type: 'function',
  name: 'get_weather',
  description: 'Current weather for a place.',
  strict: false,
  parameters: {
    type: 'object',
    properties: {
      city: { type: 'string', minLength: 8 },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      days: { type: 'integer', minimum: 1, maximum: 7 },
      when: { type: 'string', format: 'date' },
      detailed: { type: ['boolean', 'null'] },
      tags: { type: 'array', items: { type: 'string', maxLength: 3 }, minItems: 2 },
      location: { $ref: '#/$defs/point' },
      note: { type: 'string' },
    },
    required: ['city', 'unit', 'days', 'when', 'detailed', 'tags', 'location'],
    additionalProperties: false,
    $defs: { point: { type: 'object', properties: { lat: { type: 'number', exclusiveMinimum: 0 }, lon: { type: 'number' } }, required: ['lat', 'lon'] } },
  },
};
const WEATHER_ARGUMENTS = { city: 'samplexx', unit: 'celsius', days: 1, when: '1970-01-01', detailed: false, tags: ['sam', 'sam'], location: { lat: 1, lon: 0 } };
const search: Tool = {
  type: 'function',
  name: 'search_docs',
  strict: true,
  parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'], additionalProperties: false },
};
const docsMcp = (requireApproval: 'always' | 'never' | null = 'always'): Tool => ({
  type: 'mcp',
  server_label: 'docs',
  server_url: 'https://mcp.example.com/mcp',
  allowed_tools: ['ask_question'],
  require_approval: requireApproval,
});

const base = { model: 'gpt-5', input: 'What should I wear in Oslo today?' } as const;

function expectValidResponse(body: unknown): void {
  expect(responseSchemaErrors(body)).toBeNull();
}

async function raw(body: Record<string, unknown>) {
  return sim.api('/responses', { body });
}

function outputsFor(response: OpenAI.Responses.Response, output: (call: OpenAI.Responses.ResponseFunctionToolCall) => string): Input[] {
  return response.output
    .filter((item): item is OpenAI.Responses.ResponseFunctionToolCall => item.type === 'function_call')
    .map((call) => ({ type: 'function_call_output', call_id: call.call_id, output: output(call) }));
}

describe('function tools', () => {
  test('a request with a function tool gets a function_call to it with arguments valid against its schema; the turn completes without text', async () => {
    const created = await raw({ ...base, tools: [weather, search] });
    expect(created.status).toBe(200);
    const body = created.json;
    expectValidResponse(body);
    expect(body).toMatchObject({ status: 'completed', output_text: '', tools: [weather, search] });
    expect(body.output.map((item: any) => item.type)).toEqual(['reasoning', 'function_call']);
    const call = body.output[1];
    expect(call).toEqual({
      type: 'function_call',
      id: expect.stringMatching(/^fc_/),
      call_id: expect.stringMatching(/^call_[A-Za-z0-9]{24}$/),
      name: 'get_weather',
      arguments: expect.any(String),
      status: 'completed',
    });
    expect(JSON.parse(call.arguments)).toEqual(WEATHER_ARGUMENTS);
    expect(body.usage.output_tokens).toBe(body.usage.output_tokens_details.reasoning_tokens + Math.ceil(call.arguments.length / 4));

    // The same tool always gets the same arguments; a model that does not reason has no reasoning item.
    const again = await sim.client.responses.create({ ...base, model: 'gpt-4.1', tools: [weather] });
    expect(again.output.map((item) => item.type)).toEqual(['function_call']);
    expect((again.output[0] as OpenAI.Responses.ResponseFunctionToolCall).arguments).toBe(call.arguments);
  });

  test('continuing with function_call_output and previous_response_id: the final message quotes the outputs', async () => {
    const first = await sim.client.responses.create({ ...base, tools: [weather] });
    const input = outputsFor(first, () => '{"temperature_c":4,"sky":"rain"}');
    const final = await raw({ model: 'gpt-5', previous_response_id: first.id, input, tools: [weather] });
    expect(final.status).toBe(200);
    expectValidResponse(final.json);
    expect(final.json.status).toBe('completed');
    expect(final.json.output.map((item: any) => item.type)).toEqual(['reasoning', 'message']);
    const callId = (input[0] as { call_id: string }).call_id;
    expect(final.json.output_text.startsWith(`Tool results: ${callId}={"temperature_c":4,"sky":"rain"}.\n\n`)).toBe(true);
    expect(final.json.usage.output_tokens).toBe(final.json.usage.output_tokens_details.reasoning_tokens + Math.ceil(final.json.output_text.length / 4));
  });

  test('sim_tool_turns 3: three tool turns, then the answer quoting every output of the loop', async () => {
    const metadata = { sim_tool_turns: '3' };
    let response = await sim.client.responses.create({ ...base, tools: [weather], metadata });
    const sent: string[] = [];
    for (let turn = 1; turn <= 3; turn++) {
      expect(response.output.map((item) => item.type)).toEqual(['reasoning', 'function_call']);
      expect(response.status).toBe('completed');
      const input = outputsFor(response, () => `result ${turn}`);
      sent.push(`${(input[0] as { call_id: string }).call_id}=result ${turn}`);
      response = await sim.client.responses.create({ model: 'gpt-5', previous_response_id: response.id, input, tools: [weather], metadata });
    }
    expect(response.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
    expect(response.output_text.startsWith(`Tool results: ${sent.join('; ')}.`)).toBe(true);

    // The chain goes on with another question: a new loop.
    const next = await sim.client.responses.create({ model: 'gpt-5', previous_response_id: response.id, input: 'And tomorrow?', tools: [weather], metadata });
    expect(next.output.map((item) => item.type)).toEqual(['reasoning', 'function_call']);
  });

  test('a turn cut off by max_output_tokens makes no call and does not count: the next turn calls', async () => {
    const cut = await sim.client.responses.create({ ...base, reasoning: { effort: 'low' }, tools: [weather], max_output_tokens: 16 });
    expect(cut.status).toBe('incomplete');
    expect(cut.output.map((item) => item.type)).toEqual(['reasoning']);
    const next = await sim.client.responses.create({ model: 'gpt-5', previous_response_id: cut.id, input: 'Go on.', tools: [weather] });
    expect(next.output.map((item) => item.type)).toEqual(['reasoning', 'function_call']);
  });

  test('sim_tool_turns "0" never calls; tool_choice none never calls; a bad value is a 400 naming it', async () => {
    const never = await sim.client.responses.create({ ...base, tools: [weather], metadata: { sim_tool_turns: '0' } });
    expect(never.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
    expect(never.output_text).not.toBe('');
    const plain = await sim.client.responses.create(base);
    expect(never.output_text).toBe(plain.output_text);
    const none = await sim.client.responses.create({ ...base, tools: [weather], tool_choice: 'none' });
    expect(none.output.map((item) => item.type)).toEqual(['reasoning', 'message']);

    for (const [key, value] of [
      ['sim_tool_turns', '-1'],
      ['sim_tool_turns', 'two'],
      ['sim_parallel_calls', '0'],
      ['sim_parallel_calls', '1000'],
    ] as const) {
      const bad = await raw({ ...base, tools: [weather], metadata: { [key]: value } });
      expect(bad.status).toBe(400);
      expect(bad.json.error).toMatchObject({ type: 'invalid_request_error', param: `metadata.${key}`, code: 'invalid_value' });
    }
  });

  test('sim_parallel_calls N: N calls in one turn to the first N function tools, cycling; parallel_tool_calls false makes one', async () => {
    const parallel = await sim.client.responses.create({ ...base, tools: [weather, search], metadata: { sim_parallel_calls: '3' } });
    const calls = parallel.output.filter((item) => item.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall[];
    expect(calls.map((call) => call.name)).toEqual(['get_weather', 'search_docs', 'get_weather']);
    expect(new Set(calls.map((call) => call.call_id)).size).toBe(3);
    expect(JSON.parse(calls[1]!.arguments)).toEqual({ query: 'sample' });
    expectValidResponse(await sim.api(`/responses/${parallel.id}`).then((r) => r.json));

    // Every call needs its output; the answer quotes all of them.
    const final = await sim.client.responses.create({
      model: 'gpt-5',
      previous_response_id: parallel.id,
      input: outputsFor(parallel, (call) => `out-${call.name}`),
      tools: [weather, search],
    });
    expect(final.output_text).toContain(`${calls[0]!.call_id}=out-get_weather; ${calls[1]!.call_id}=out-search_docs; ${calls[2]!.call_id}=out-get_weather.`);

    const single = await sim.client.responses.create({ ...base, tools: [weather, search], parallel_tool_calls: false, metadata: { sim_parallel_calls: '3' } });
    expect(single.output.filter((item) => item.type === 'function_call')).toHaveLength(1);

    // tool_choice naming a function calls that one.
    const named = await sim.client.responses.create({ ...base, tools: [weather, search], tool_choice: { type: 'function', name: 'search_docs' } });
    expect(named.output.filter((item) => item.type === 'function_call').map((item) => (item as OpenAI.Responses.ResponseFunctionToolCall).name)).toEqual(['search_docs']);
  });

  test('an output whose call_id the previous response never issued is a 400, as at OpenAI', async () => {
    const first = await sim.client.responses.create({ ...base, tools: [weather] });
    const [output] = outputsFor(first, () => 'ok');
    const unknown = await raw({ model: 'gpt-5', previous_response_id: first.id, input: [output, { type: 'function_call_output', call_id: 'call_notissued', output: 'x' }] });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toEqual({
      type: 'invalid_request_error',
      message: 'No tool call found for function call output with call_id call_notissued.',
      param: 'input',
      code: null,
    });

    // Without previous_response_id the call must be in the input (a history the client keeps).
    const orphan = await raw({ model: 'gpt-5', input: [output] });
    expect(orphan.status).toBe(400);
    expect(orphan.json.error.message).toBe(`No tool call found for function call output with call_id ${(output as { call_id: string }).call_id}.`);
    const call = first.output.find((item) => item.type === 'function_call') as OpenAI.Responses.ResponseFunctionToolCall;
    const manual = await sim.client.responses.create({ model: 'gpt-5', input: [{ role: 'user', content: base.input }, call, output as Input], tools: [weather] });
    expect(manual.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
    expect(manual.output_text).toContain(`${call.call_id}=ok`);

    // Outputs are checked against the spec too.
    const malformed = await raw({ model: 'gpt-5', previous_response_id: first.id, input: [{ type: 'function_call_output', call_id: call.call_id }] });
    expect(malformed.status).toBe(400);
    expect(malformed.json.error).toMatchObject({ type: 'invalid_request_error', param: expect.stringMatching(/^input\[0\]/) });
    // The SDK sees OpenAI's error.
    await expect(
      sim.client.responses.create({ model: 'gpt-5', previous_response_id: first.id, input: [{ type: 'function_call_output', call_id: 'call_x', output: 'x' }] }),
    ).rejects.toMatchObject({
      status: 400,
      param: 'input',
    });
  });

  test('continuing a turn that called tools without an output for each call is a 400', async () => {
    const first = await sim.client.responses.create({ ...base, tools: [weather, search], metadata: { sim_parallel_calls: '2' } });
    const [one, two] = outputsFor(first, () => 'ok');
    const missing = await raw({ model: 'gpt-5', previous_response_id: first.id, input: [one] });
    expect(missing.status).toBe(400);
    expect(missing.json.error).toEqual({
      type: 'invalid_request_error',
      message: `No tool output found for function call ${(two as { call_id: string }).call_id}.`,
      param: 'input',
      code: null,
    });
    const none = await raw({ model: 'gpt-5', previous_response_id: first.id, input: 'Never mind.' });
    expect(none.status).toBe(400);
    expect(none.json.error.message).toMatch(/^No tool output found for function call call_/);
    // Nothing of the failed attempts was kept: the complete answer still goes through.
    const done = await raw({ model: 'gpt-5', previous_response_id: first.id, input: [one, two] });
    expect(done.status).toBe(200);
  });

  test('a background turn completes with its calls and its response.completed webhook; a conversation loops the same way', async () => {
    const receiver = await startReceiver();
    try {
      await sim.sim('/config', { webhook_urls: [receiver.url] });
      const background = await sim.client.responses.create({ ...base, tools: [weather], background: true, metadata: { sim_duration_ms: '30' } });
      expect(background.status).toBe('queued');
      const seen = await pollUntilTerminal(sim, background.id);
      expect(seen.at(-1).status).toBe('completed');
      expect(seen.at(-1).output.map((item: any) => item.type)).toEqual(['reasoning', 'function_call']);
      for (const state of seen.slice(0, -1)) expect(state.output).toEqual([]);
      await receiver.waitFor((received) => received.length >= 1);
      expect(JSON.parse(receiver.received[0]!.body)).toMatchObject({ type: 'response.completed', data: { id: background.id } });
    } finally {
      await receiver.close();
    }

    const conversation = await sim.client.conversations.create({});
    const first = await sim.client.responses.create({ ...base, tools: [weather], conversation: conversation.id });
    const second = await sim.client.responses.create({ model: 'gpt-5', conversation: conversation.id, input: outputsFor(first, () => 'sunny'), tools: [weather] });
    expect(second.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
    expect(second.output_text).toContain('=sunny.');
    const items = await sim.client.conversations.items.list(conversation.id, { order: 'asc' });
    expect(items.data.map((item) => item.type)).toEqual(['message', 'reasoning', 'function_call', 'function_call_output', 'reasoning', 'message']);
  });
});

describe('MCP tools', () => {
  test('require_approval: an approval request first; approving it runs the call (simulated) and answers', async () => {
    const first = await raw({ ...base, tools: [docsMcp('always')] });
    expect(first.status).toBe(200);
    expectValidResponse(first.json);
    expect(first.json.output.map((item: any) => item.type)).toEqual(['mcp_list_tools', 'reasoning', 'mcp_approval_request']);
    expect(first.json.output[0]).toMatchObject({ server_label: 'docs', tools: [{ name: 'ask_question', input_schema: expect.any(Object) }] });
    const request = first.json.output[2];
    expect(request).toEqual({ type: 'mcp_approval_request', id: expect.stringMatching(/^mcpr_/), server_label: 'docs', name: 'ask_question', arguments: '{"query":"sample"}' });
    expect(first.json).toMatchObject({ status: 'completed', output_text: '' });

    const approved = await sim.client.responses.create({
      model: 'gpt-5',
      previous_response_id: first.json.id,
      input: [{ type: 'mcp_approval_response', approval_request_id: request.id, approve: true }],
      tools: [docsMcp('always')],
    });
    expectValidResponse(await sim.api(`/responses/${approved.id}`).then((r) => r.json));
    expect(approved.output.map((item) => item.type)).toEqual(['reasoning', 'mcp_call', 'message']);
    expect(approved.output[1]).toMatchObject({
      type: 'mcp_call',
      id: expect.stringMatching(/^mcp_/),
      server_label: 'docs',
      name: 'ask_question',
      arguments: request.arguments,
      approval_request_id: request.id,
      status: 'completed',
      error: null,
    });
    const output = (approved.output[1] as OpenAI.Responses.ResponseOutputItem.McpCall).output as string;
    expect(output).toMatch(/Simulated/);
    expect(approved.output_text).toContain(`MCP docs.ask_question returned: ${output}`);
  });

  test('denying the request: no call, a message saying it was denied', async () => {
    const first = await sim.client.responses.create({ ...base, tools: [docsMcp(null)] });
    const request = first.output.find((item) => item.type === 'mcp_approval_request') as OpenAI.Responses.ResponseOutputItem.McpApprovalRequest;
    expect(request).toBeDefined();
    const denied = await sim.client.responses.create({
      model: 'gpt-5',
      previous_response_id: first.id,
      input: [{ type: 'mcp_approval_response', approval_request_id: request.id, approve: false, reason: 'not today' }],
      tools: [docsMcp(null)],
    });
    expect(denied.output.map((item) => item.type)).toEqual(['reasoning', 'message']);
    expect(denied.output_text.startsWith('MCP docs.ask_question was denied (not today).')).toBe(true);

    // An answer to a request the chain never made is a 400.
    const stray = await raw({ model: 'gpt-5', previous_response_id: denied.id, input: [{ type: 'mcp_approval_response', approval_request_id: 'mcpr_unknown', approve: true }] });
    expect(stray.status).toBe(400);
    expect(stray.json.error).toMatchObject({ type: 'invalid_request_error', param: 'input', message: expect.stringContaining('mcpr_unknown') });
  });

  test("require_approval 'never': the call runs in the first turn, which answers", async () => {
    const response = await sim.client.responses.create({ ...base, tools: [docsMcp('never')] });
    expect(response.output.map((item) => item.type)).toEqual(['mcp_list_tools', 'reasoning', 'mcp_call', 'message']);
    expect(response.output[2]).toMatchObject({ approval_request_id: null, status: 'completed' });
    expect(response.output_text).toMatch(/^MCP docs\.ask_question returned: /);
  });
});

describe('streaming tool calls', () => {
  const collapse = (types: string[]): string[] => types.filter((type, i) => type !== types[i - 1]);

  test('the SDK stream: function-call events in order, arguments streamed as deltas onto an empty item, every event valid', async () => {
    const stream = await sim.client.responses.create({ ...base, tools: [weather], stream: true, metadata: { sim_duration_ms: '60' } });
    const events: any[] = [];
    for await (const event of stream) events.push(event);
    for (const event of events) expect(streamEventErrors(event), JSON.stringify(event).slice(0, 300)).toBeNull();
    expect(events.map((event) => event.sequence_number)).toEqual(events.map((_, i) => i));
    expect(collapse(events.map((event) => event.type))).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.output_item.done',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const added = events.filter((event) => event.type === 'response.output_item.added')[1];
    expect(added).toMatchObject({ output_index: 1, item: { type: 'function_call', arguments: '', status: 'in_progress', name: 'get_weather' } });
    const final = events.at(-1).response;
    const call = final.output[1];
    const deltas = events.filter((event) => event.type === 'response.function_call_arguments.delta');
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.every((event) => event.item_id === call.id && event.output_index === 1)).toBe(true);
    expect(deltas.map((event) => event.delta).join('')).toBe(call.arguments);
    expect(events.find((event) => event.type === 'response.function_call_arguments.done')).toMatchObject({ item_id: call.id, name: 'get_weather', arguments: call.arguments });
    expect(JSON.parse(call.arguments)).toEqual(WEATHER_ARGUMENTS);

    // The SDK's helper accumulates the same call.
    const helper = sim.client.responses.stream({ ...base, tools: [weather], metadata: { sim_duration_ms: '30' } });
    const accumulated = await helper.finalResponse();
    expect(accumulated.output[1]).toMatchObject({ type: 'function_call', arguments: call.arguments, status: 'completed' });
  });

  test('a background stream with function calls is retrieved again after any sequence number', async () => {
    const metadata = { sim_duration_ms: '80', sim_parallel_calls: '2' };
    const full: any[] = [];
    for await (const event of await sim.client.responses.create({ ...base, tools: [weather, search], background: true, stream: true, metadata })) full.push(event);
    expect(full.at(-1).type).toBe('response.completed');
    expect(full.filter((event) => event.type === 'response.function_call_arguments.done').map((event) => event.output_index)).toEqual([1, 2]);
    const id = full[0].response.id as string;
    const cursor = full.findIndex((event) => event.type === 'response.function_call_arguments.delta');
    const rest: any[] = [];
    for await (const event of await sim.client.responses.retrieve(id, { stream: true, starting_after: cursor })) rest.push(event);
    expect(rest).toEqual(full.slice(cursor + 1));
    expect(full.at(-1).response).toEqual((await sim.api(`/responses/${id}`)).json);
  });

  test('MCP: the tool list and the approval request stream as items; the approved call streams its events', async () => {
    const events: any[] = [];
    for await (const event of await sim.client.responses.create({ ...base, tools: [docsMcp('always')], stream: true, metadata: { sim_duration_ms: '30' } })) events.push(event);
    for (const event of events) expect(streamEventErrors(event), JSON.stringify(event).slice(0, 300)).toBeNull();
    expect(collapse(events.map((event) => event.type))).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.mcp_list_tools.in_progress',
      'response.mcp_list_tools.completed',
      'response.output_item.done',
      'response.output_item.added',
      'response.output_item.done',
      'response.output_item.added',
      'response.output_item.done',
      'response.completed',
    ]);
    const request = events.at(-1).response.output[2];
    expect(events.filter((event) => event.type === 'response.output_item.added').map((event) => event.item.type)).toEqual(['mcp_list_tools', 'reasoning', 'mcp_approval_request']);

    const approved: any[] = [];
    const input: Input[] = [{ type: 'mcp_approval_response', approval_request_id: request.id, approve: true }];
    for await (const event of await sim.client.responses.create({
      model: 'gpt-5',
      previous_response_id: events[0].response.id,
      input,
      tools: [docsMcp('always')],
      stream: true,
      metadata: { sim_duration_ms: '30' },
    }))
      approved.push(event);
    for (const event of approved) expect(streamEventErrors(event), JSON.stringify(event).slice(0, 300)).toBeNull();
    const types = collapse(approved.map((event) => event.type));
    const callStart = types.indexOf('response.mcp_call.in_progress');
    expect(types.slice(callStart - 1, callStart + 5)).toEqual([
      'response.output_item.added',
      'response.mcp_call.in_progress',
      'response.mcp_call_arguments.delta',
      'response.mcp_call_arguments.done',
      'response.mcp_call.completed',
      'response.output_item.done',
    ]);
    expect(approved.at(-1).response.output.map((item: any) => item.type)).toEqual(['reasoning', 'mcp_call', 'message']);
  });
});

describe('minimal arguments', () => {
  test.each([
    ['no parameters', null, {}],
    ['an empty object', { type: 'object', properties: {} }, {}],
    [
      'const, enum, default ignored',
      { type: 'object', properties: { a: { const: 7 }, b: { enum: ['x', 'y'] }, c: { type: 'string', default: 'd' } }, required: ['a', 'b', 'c'] },
      { a: 7, b: 'x', c: 'sample' },
    ],
    ['anyOf skips null', { type: 'object', properties: { a: { anyOf: [{ type: 'null' }, { type: 'integer', minimum: 3 }] } }, required: ['a'] }, { a: 3 }],
    [
      'allOf merges',
      {
        type: 'object',
        allOf: [
          { properties: { a: { type: 'boolean' } }, required: ['a'] },
          { properties: { b: { type: 'number', maximum: -2 } }, required: ['b'] },
        ],
      },
      { a: false, b: -2 },
    ],
    ['multipleOf', { type: 'object', properties: { n: { type: 'integer', minimum: 5, multipleOf: 4 } }, required: ['n'] }, { n: 8 }],
    [
      'formats',
      {
        type: 'object',
        properties: { t: { type: 'string', format: 'date-time' }, e: { type: 'string', format: 'email' }, u: { type: 'string', format: 'uuid' } },
        required: ['t', 'e', 'u'],
      },
      { t: '1970-01-01T00:00:00Z', e: 'user@example.com', u: '00000000-0000-4000-8000-000000000000' },
    ],
    [
      'unique enum items',
      { type: 'object', properties: { l: { type: 'array', uniqueItems: true, minItems: 2, items: { enum: ['p', 'q', 'r'] } } }, required: ['l'] },
      { l: ['p', 'q'] },
    ],
    ['optional properties left out, minProperties honoured', { type: 'object', properties: { a: { type: 'string' }, b: { type: 'string' } }, minProperties: 1 }, { a: 'sample' }],
  ])('%s', (_name, schema, expected) => {
    expect(JSON.parse(minimalArguments(schema))).toEqual(expected);
  });

  test('a schema that requires itself stops with null a few levels down', () => {
    let node = JSON.parse(minimalArguments({ type: 'object', properties: { next: { $ref: '#' } }, required: ['next'] }));
    let depth = 0;
    while (node !== null) {
      expect(Object.keys(node)).toEqual(['next']);
      node = node.next;
      depth++;
    }
    expect(depth).toBeGreaterThan(2);
    expect(depth).toBeLessThanOrEqual(16);
  });
});
