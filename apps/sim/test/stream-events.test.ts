import { pino } from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import { cancelResponse, type SimResponse } from '../src/responses.ts';
import { Simulator } from '../src/simulator.ts';
import { eventLog, eventPayload, textDeltas } from '../src/stream-events.ts';
import { streamEventErrors, streamEventVariants } from './helpers.ts';

const NOW = 1_750_000_000_000;
const sims: Simulator[] = [];

afterEach(async () => {
  await Promise.all(sims.splice(0).map((sim) => sim.close()));
});

function streamed(body: Record<string, unknown>): SimResponse {
  const sim = new Simulator({ time_scale: 1 }, { clock: () => NOW, logger: pino({ level: 'silent' }) });
  sims.push(sim);
  const created = sim.create({ model: 'gpt-5', input: 'Plan the migration.', stream: true, ...body });
  if (created.kind !== 'stream') throw new Error('expected a streamed response');
  return created.response;
}

function payloads(response: SimResponse): Record<string, any>[] {
  return eventLog(response).map((event, i) => eventPayload(event, i));
}

const TOOL = {
  type: 'function',
  name: 'lookup',
  strict: true,
  parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'], additionalProperties: false },
};
const MCP = { type: 'mcp', server_label: 'docs', server_url: 'https://mcp.example.com/mcp' };

const CASES: [string, Record<string, unknown>][] = [
  ['background, summary', { background: true, reasoning: { effort: 'high', summary: 'detailed' } }],
  ['background, no summary', { background: true, metadata: { sim_duration_ms: '1000' } }],
  ['background, effort none', { background: true, reasoning: { effort: 'none', summary: 'auto' } }],
  ['incomplete (max_output_tokens)', { background: true, reasoning: { effort: 'minimal' }, max_output_tokens: 60 }],
  ['incomplete (no text left)', { background: true, reasoning: { effort: 'low', summary: 'auto' }, max_output_tokens: 16 }],
  ['failed', { background: true, metadata: { sim_outcome: 'failed' } }],
  ['synchronous', { reasoning: { summary: 'concise' } }],
  ['function calls', { background: true, tools: [TOOL, { ...TOOL, name: 'other' }], metadata: { sim_parallel_calls: '3' } }],
  ['function call, no reasoning', { model: 'gpt-4o', tools: [TOOL] }],
  ['function call cut off (incomplete)', { background: true, reasoning: { effort: 'low' }, tools: [TOOL], max_output_tokens: 16 }],
  ['MCP approval request', { tools: [MCP] }],
  ['MCP call without approval', { background: true, tools: [{ ...MCP, require_approval: 'never' }] }],
];

describe('textDeltas', () => {
  test('concatenate to exactly the text, a few words each', () => {
    for (const text of ['', ' ', 'one', 'Two words.', '  lead and trail  ', '**Head**\n\nBody one two three four five six seven.']) {
      const deltas = textDeltas(text);
      expect(deltas.join('')).toBe(text);
      for (const delta of deltas) expect(delta.trim().split(/\s+/).length).toBeLessThanOrEqual(3);
    }
    expect(textDeltas('a b c d e f g')).toEqual(['a b c ', 'd e f ', 'g']);
  });
});

describe('eventLog', () => {
  test.each(CASES)("%s: every event has its variant's required fields and validates against the spec", (_name, body) => {
    const response = streamed(body);
    const events = payloads(response);
    for (const event of events) {
      expect(streamEventErrors(event), JSON.stringify(event).slice(0, 300)).toBeNull();
      expect(event.type).not.toBe('error');
      expect(event).not.toHaveProperty('error');
    }
    expect(events.map((event) => event.sequence_number)).toEqual(events.map((_, i) => i));
  });

  test.each(CASES)('%s: times are non-decreasing from creation to the end; one terminal event, last', (_name, body) => {
    const response = streamed(body);
    const log = eventLog(response);
    expect(log[0]?.at).toBe(response.createdAtMs);
    expect(log.at(-1)?.at).toBe(response.endsAtMs);
    for (let i = 1; i < log.length; i++) expect(log[i]!.at).toBeGreaterThanOrEqual(log[i - 1]!.at);
    const terminal = log.filter((event) => /^response\.(completed|failed|incomplete)$/.test(event.type));
    expect(terminal).toHaveLength(1);
    expect(log.at(-1)?.type).toBe(terminal[0]?.type);
  });

  test('a completed background response: the documented order, deltas spell the final text', () => {
    const response = streamed({ background: true, reasoning: { effort: 'medium', summary: 'auto' } });
    const events = payloads(response);
    const types = events.map((event) => event.type);
    const collapsed = types.filter((type, i) => type !== types[i - 1]);
    expect(collapsed).toEqual([
      'response.created',
      'response.queued',
      'response.in_progress',
      'response.output_item.added',
      'response.reasoning_summary_part.added',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.done',
      'response.reasoning_summary_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events[0]!.response.status).toBe('queued');
    expect(events[2]!.response.status).toBe('in_progress');
    const final = events.at(-1)!.response;
    expect(final.status).toBe('completed');
    const text = events
      .filter((e) => e.type === 'response.output_text.delta')
      .map((e) => e.delta)
      .join('');
    expect(text).toBe(final.output_text);
    const summary = events
      .filter((e) => e.type === 'response.reasoning_summary_text.delta')
      .map((e) => e.delta)
      .join('');
    expect(summary).toBe(final.output[0].summary[0].text);
    expect(types.filter((type) => type === 'response.output_text.delta').length).toBeGreaterThan(10);
  });

  test('reasoning summary events only when a summary was requested', () => {
    const without = payloads(streamed({ background: true })).map((event) => event.type);
    expect(without.some((type) => type.startsWith('response.reasoning_summary'))).toBe(false);
    const withSummary = payloads(streamed({ background: true, reasoning: { summary: 'auto' } })).map((event) => event.type);
    expect(withSummary.some((type) => type.startsWith('response.reasoning_summary'))).toBe(true);
  });

  test('a synchronous stream has no queued event and starts in progress', () => {
    const events = payloads(streamed({}));
    expect(events.map((event) => event.type).slice(0, 2)).toEqual(['response.created', 'response.in_progress']);
    expect(events[0]!.response.status).toBe('in_progress');
  });

  test('failed: no output events, ends with response.failed carrying response.error', () => {
    const events = payloads(streamed({ background: true, metadata: { sim_outcome: 'failed' } }));
    expect(events.map((event) => event.type)).toEqual(['response.created', 'response.queued', 'response.in_progress', 'response.failed']);
    expect(events.at(-1)!.response.error).toMatchObject({ code: 'server_error' });
  });

  test('a cancelled response keeps the prefix due before the cancel and has no terminal event', () => {
    const response = streamed({ background: true, metadata: { sim_duration_ms: '10000' } });
    const full = eventLog(response);
    const cancelAt = (response.startsAtMs + response.endsAtMs) / 2;
    expect(cancelResponse(response, cancelAt)).toEqual({ ok: true });
    const cut = eventLog(response);
    expect(cut.length).toBeGreaterThan(3);
    expect(cut.length).toBeLessThan(full.length);
    expect(cut.every((event, i) => event.type === full[i]!.type && event.at === full[i]!.at && event.at <= cancelAt)).toBe(true);
    expect(full[cut.length]!.at).toBeGreaterThan(cancelAt);
    // Events before the cancel still show the response as it was then.
    expect(eventPayload(cut[2]!, 2)).toMatchObject({ type: 'response.in_progress', response: { status: 'in_progress' } });
  });

  test('the log is the same every time it is derived', () => {
    const response = streamed({ background: true, reasoning: { summary: 'auto' } });
    expect(JSON.stringify(payloads(response))).toBe(JSON.stringify(payloads(response)));
  });

  test('every emitted type is a ResponseStreamEvent variant', () => {
    const variants = streamEventVariants();
    expect(variants.size).toBe(58);
    expect(variants.has('response.cancelled')).toBe(false);
  });
});
