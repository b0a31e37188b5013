import OpenAI from 'openai';
import { afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { createSimServer } from '../src/server.ts';
import { responseSchemaErrors, sleep, startSim, streamEventErrors, type TestSim } from './helpers.ts';
import { readSse } from './sse.ts';
import { refedTimeouts } from './timers.ts';

let sim: TestSim;
let baselineTimers: number;

beforeAll(() => {
  baselineTimers = refedTimeouts();
  responseSchemaErrors({});
});
beforeEach(async () => {
  sim = await startSim({ time_scale: 1, default_duration_ms: 200 });
});
afterEach(async () => {
  await sim.close();
  expect(refedTimeouts()).toBeLessThanOrEqual(baselineTimers);
});

const BG = { model: 'gpt-5', input: 'Write a long plan.', background: true, stream: true } as const;
const TERMINAL_EVENTS = new Set(['response.completed', 'response.failed', 'response.incomplete']);

interface Collected {
  events: any[];
  /** What the iteration threw (a cut connection), or null when the stream ended. */
  error: unknown;
}

/** Drains a stream, checking every event against its ResponseStreamEvent variant as it arrives. */
async function collect(stream: AsyncIterable<any>, onEvent?: (event: any) => Promise<void> | void): Promise<Collected> {
  const events: any[] = [];
  try {
    for await (const event of stream) {
      expect(streamEventErrors(event), JSON.stringify(event).slice(0, 300)).toBeNull();
      expect(event).not.toHaveProperty('error');
      events.push(event);
      await onEvent?.(event);
    }
  } catch (error) {
    return { events, error };
  }
  return { events, error: null };
}

const sequence = (events: any[]): number[] => events.map((event) => event.sequence_number);
const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);
const deltas = (events: any[]): string =>
  events
    .filter((event) => event.type === 'response.output_text.delta')
    .map((event) => event.delta)
    .join('');

/** Follows a stream through cuts by resuming after the last event seen, until it ends. */
async function followToEnd(first: AsyncIterable<any>): Promise<{ events: any[]; cuts: number }> {
  const all: any[] = [];
  let stream = first;
  let cuts = 0;
  for (;;) {
    const { events, error } = await collect(stream);
    all.push(...events);
    if (error === null) return { events: all, cuts };
    cuts++;
    const id = all[0].response.id as string;
    stream = await sim.client.responses.retrieve(id, { stream: true, starting_after: all.at(-1).sequence_number });
  }
}

describe('streaming a background response', () => {
  test('the SDK iterates it: contiguous sequence numbers from 0, every event valid, deltas spell the final output_text', async () => {
    const stream = await sim.client.responses.create({ ...BG, reasoning: { summary: 'auto' }, metadata: { sim_duration_ms: '150' } });
    const { events, error } = await collect(stream);
    expect(error).toBeNull();
    expect(sequence(events)).toEqual(range(0, events.length));
    expect(events.slice(0, 3).map((event) => event.type)).toEqual(['response.created', 'response.queued', 'response.in_progress']);
    expect(events[0].response).toMatchObject({ status: 'queued', background: true, output: [] });
    expect(events.at(-1).type).toBe('response.completed');
    expect(events.some((event) => event.type === 'response.reasoning_summary_text.delta')).toBe(true);

    const id = events[0].response.id as string;
    const retrieved = await sim.api(`/responses/${id}`);
    expect(retrieved.json.status).toBe('completed');
    expect(deltas(events)).toBe(retrieved.json.output_text);
    expect(events.at(-1).response).toEqual(retrieved.json);

    const plain = await collect(await sim.client.responses.create({ ...BG, metadata: { sim_duration_ms: '20' } }));
    expect(plain.events.some((event) => event.type.startsWith('response.reasoning_summary'))).toBe(false);
  });

  test('wire format: text/event-stream, `event:` names the type, deltas spread over the run, no [DONE]', async () => {
    const result = await readSse(`${sim.url}/v1/responses`, { ...BG, metadata: { sim_duration_ms: '400' } });
    expect(result.status).toBe(200);
    expect(result.contentType).toMatch(/^text\/event-stream/);
    expect(result.error).toBeNull();
    expect(result.raw).not.toContain('[DONE]');
    const parsed = result.frames.map((frame) => ({ ...frame, json: JSON.parse(frame.data) }));
    for (const frame of parsed) expect(frame.event).toBe(frame.json.type);
    expect(parsed.every((frame) => frame.event !== 'error')).toBe(true);
    const textDeltas = parsed.filter((frame) => frame.event === 'response.output_text.delta');
    expect(textDeltas.length).toBeGreaterThan(10);
    expect(textDeltas.at(-1)!.receivedAfterMs - textDeltas[0]!.receivedAfterMs).toBeGreaterThan(60);
  });

  test('events arrive live: the first event and the first text delta reach the client while the response still runs', async () => {
    let id = '';
    let atCreated: Promise<string> | undefined;
    let atFirstDelta: Promise<string> | undefined;
    // A stream held back until the end would only be read once the response is completed.
    const status = () => sim.api(`/responses/${id}`).then((r) => r.json.status as string);
    const { error } = await collect(await sim.client.responses.create({ ...BG, metadata: { sim_duration_ms: '400' } }), (event) => {
      if (event.type === 'response.created') {
        id = event.response.id;
        atCreated = status();
      }
      if (event.type === 'response.output_text.delta') atFirstDelta ??= status();
    });
    expect(error).toBeNull();
    expect(['queued', 'in_progress']).toContain(await atCreated);
    expect(await atFirstDelta).toBe('in_progress');
  });

  test('the SDK helper responses.stream() creates and accumulates the final response', async () => {
    const stream = sim.client.responses.stream({ model: 'gpt-5', input: 'helper', background: true, metadata: { sim_duration_ms: '50' } });
    const { events, error } = await collect(stream);
    expect(error).toBeNull();
    const final = await stream.finalResponse();
    expect(final.status).toBe('completed');
    expect(final.output_text).toBe(deltas(events));
  });
});

describe('resuming', () => {
  test('GET ?stream=true&starting_after=N replays exactly the events after N; without a cursor, all of them', async () => {
    const full = await collect(await sim.client.responses.create({ ...BG, metadata: { sim_duration_ms: '60' } }));
    const id = full.events[0].response.id as string;
    const n = 5;
    const after = await collect(await sim.client.responses.retrieve(id, { stream: true, starting_after: n }));
    expect(after.error).toBeNull();
    expect(after.events).toEqual(full.events.slice(n + 1));
    expect((await collect(await sim.client.responses.retrieve(id, { stream: true }))).events).toEqual(full.events);
    const last = full.events.length - 1;
    expect((await collect(await sim.client.responses.retrieve(id, { stream: true, starting_after: last }))).events).toEqual([]);

    // The SDK's helper asks for the whole stream and drops events <= N itself.
    const helper = sim.client.responses.stream({ response_id: id, starting_after: n });
    const viaHelper = await collect(helper);
    expect(viaHelper.events).toEqual(full.events.slice(n + 1));
    expect((await helper.finalResponse()).output_text).toBe(deltas(full.events));

    const bad = await sim.api(`/responses/${id}?stream=true&starting_after=abc`);
    expect(bad.status).toBe(400);
    expect(bad.json.error.param).toBe('starting_after');
  });

  test('a client that drops the stream picks up the live tail with no gap or duplicate', async () => {
    const first: any[] = [];
    const stream = await sim.client.responses.create({ ...BG, metadata: { sim_duration_ms: '300' } });
    for await (const event of stream) {
      first.push(event);
      if (event.type === 'response.output_item.added') break;
    }
    const id = first[0].response.id as string;
    expect((await sim.api(`/responses/${id}`)).json.status).toBe('in_progress');
    const rest = await collect(await sim.client.responses.retrieve(id, { stream: true, starting_after: first.at(-1).sequence_number }));
    const all = [...first, ...rest.events];
    expect(sequence(all)).toEqual(range(0, all.length));
    expect(all.at(-1).type).toBe('response.completed');
    expect(deltas(all)).toBe((await sim.client.responses.retrieve(id)).output_text);
  });

  test('streams cut after N events resume with no gap or duplicate; stats count them', async () => {
    await sim.sim('/config', { stream_cut_after_events: 7 });
    const { events, cuts } = await followToEnd(await sim.client.responses.create({ ...BG, metadata: { sim_duration_ms: '60' } }));
    expect(sequence(events)).toEqual(range(0, events.length));
    expect(events.at(-1).type).toBe('response.completed');
    expect(cuts).toBeGreaterThan(2);
    expect(deltas(events)).toBe((await sim.client.responses.retrieve(events[0].response.id)).output_text);
    expect((await sim.sim('/stats')).streams).toEqual({ opened: cuts + 1, resumed: cuts, cut: cuts, expired: 0 });
  });

  test('stream_cut_rate cuts at a random event; the raw connection breaks off instead of ending', async () => {
    await sim.sim('/config', { stream_cut_rate: 1, seed: 3 });
    const raw = await readSse(`${sim.url}/v1/responses`, { ...BG, metadata: { sim_duration_ms: '40' } });
    expect(raw.error).not.toBeNull();
    const seen = raw.frames.map((frame) => JSON.parse(frame.data));
    expect(seen.length).toBeGreaterThan(0);
    expect(TERMINAL_EVENTS.has(seen.at(-1).type)).toBe(false);

    const id = seen[0].response.id as string;
    const rest = await followToEnd(await sim.client.responses.retrieve(id, { stream: true, starting_after: seen.at(-1).sequence_number }));
    const all = [...seen, ...rest.events];
    expect(sequence(all)).toEqual(range(0, all.length));
    expect(all.at(-1).type).toBe('response.completed');
  });

  test('resuming after stream_resume_window_ms (real ms) is a 400 stream_expired', async () => {
    // 5 simulated seconds take 50 real ms; the window is not scaled.
    await sim.sim('/config', { stream_resume_window_ms: 100, time_scale: 0.01 });
    const stream = await sim.client.responses.create({ ...BG, metadata: { sim_duration_ms: '5000' } });
    let id = '';
    for await (const event of stream) {
      if (event.type === 'response.created') id = event.response.id;
      break;
    }
    expect((await collect(await sim.client.responses.retrieve(id, { stream: true, starting_after: 0 }))).events[0].sequence_number).toBe(1);
    await sleep(120);
    const error = await sim.client.responses.retrieve(id, { stream: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe('stream_expired');
    expect((error as Error).message).toContain('can no longer be streamed');
    expect((await sim.api(`/responses/${id}`)).json.status).toBe('completed');
    expect((await sim.sim('/stats')).streams.expired).toBe(1);
  });

  test('only background responses created with stream=true can be streamed', async () => {
    const notStreamed = await sim.client.responses.create({ model: 'gpt-5', input: 'x', background: true });
    const refused = await sim.api(`/responses/${notStreamed.id}?stream=true`);
    expect(refused.status).toBe(400);
    expect(refused.json.error).toMatchObject({ type: 'invalid_request_error', code: 'response_not_streamable' });
    expect(refused.json.error.message).toContain('created it with stream=true');
    await expect(sim.client.responses.retrieve(notStreamed.id, { stream: true })).rejects.toBeInstanceOf(OpenAI.BadRequestError);

    const sync = await collect(await sim.client.responses.create({ model: 'gpt-5', input: 'x', stream: true, metadata: { sim_duration_ms: '10' } }));
    expect((await sim.api(`/responses/${sync.events[0].response.id}?stream=true`)).status).toBe(400);
    expect((await sim.api('/responses/resp_missing?stream=true')).status).toBe(404);
    // starting_after without stream=true is an ordinary retrieve.
    expect((await sim.api(`/responses/${notStreamed.id}?starting_after=3`)).json.id).toBe(notStreamed.id);
  });
});

describe('how streams end', () => {
  test('cancel mid-stream ends the stream at once, without a terminal event; the replay ends the same way', async () => {
    // The simulator's clock only moves when the test moves it, and it stands still from the cancel
    // on: no further event can fall due, so only the cancel itself can end the stream.
    let now = Date.now();
    const frozen = createSimServer({ time_scale: 1 }, { clock: () => now });
    const listening = await frozen.listen(0, '127.0.0.1');
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${listening.url}/v1`, maxRetries: 0 });
    try {
      let id = '';
      let cancelled = false;
      const live = await collect(await client.responses.create({ ...BG, metadata: { sim_duration_ms: '2000' } }), async (event) => {
        if (event.type === 'response.created') {
          id = event.response.id;
          // Three quarters into the 2 s run (the text has begun), in no real time at all.
          now += 1_500;
          frozen.simulator.scheduler.runDue();
        }
        if (event.type === 'response.output_text.delta' && !cancelled) {
          cancelled = true;
          await client.responses.cancel(id);
        }
      });
      expect(cancelled).toBe(true);
      expect(live.error).toBeNull();
      expect(TERMINAL_EVENTS.has(live.events.at(-1).type)).toBe(false);
      expect(sequence(live.events)).toEqual(range(0, live.events.length));
      expect((await client.responses.retrieve(id)).status).toBe('cancelled');
      const replay = await collect(await client.responses.retrieve(id, { stream: true }));
      expect(replay).toEqual(live);
    } finally {
      await listening.close();
    }
  });

  test('failed and incomplete responses end with response.failed / response.incomplete, which the SDK accepts', async () => {
    const failed = await collect(await sim.client.responses.create({ ...BG, metadata: { sim_duration_ms: '30', sim_outcome: 'failed' } }));
    expect(failed.error).toBeNull();
    expect(failed.events.at(-1)).toMatchObject({ type: 'response.failed', response: { status: 'failed', error: { code: 'server_error' } } });

    const incomplete = await collect(await sim.client.responses.create({ ...BG, reasoning: { effort: 'minimal' }, max_output_tokens: 60, metadata: { sim_duration_ms: '30' } }));
    const last = incomplete.events.at(-1);
    expect(last).toMatchObject({ type: 'response.incomplete', response: { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } } });
    expect(deltas(incomplete.events)).toBe(last.response.output_text);
    expect(last.response.output_text.length).toBeGreaterThan(0);
  });

  test('a synchronous stream starts in progress and lasts the run; hanging up cancels it', async () => {
    const sync = await collect(await sim.client.responses.create({ model: 'gpt-5', input: 'sync', stream: true, metadata: { sim_duration_ms: '40' } }));
    expect(sync.events.map((event) => event.type).slice(0, 2)).toEqual(['response.created', 'response.in_progress']);
    expect(sync.events[0].response).toMatchObject({ status: 'in_progress', background: false });
    expect(sync.events.at(-1).type).toBe('response.completed');
    expect((await sim.client.responses.retrieve(sync.events[0].response.id)).status).toBe('completed');

    let id = '';
    const stream = await sim.client.responses.create({ model: 'gpt-5', input: 'sync', stream: true, metadata: { sim_duration_ms: '5000' } });
    for await (const event of stream) {
      if (event.type === 'response.created') id = event.response.id;
      if (event.type === 'response.in_progress') break;
    }
    let status = '';
    for (let i = 0; i < 100 && status !== 'cancelled'; i++) {
      await sleep(5);
      status = (await sim.client.responses.retrieve(id)).status ?? '';
    }
    expect(status).toBe('cancelled');
  });

  test('closing the simulator cuts open streams and leaves no timer behind', async () => {
    const stream = await sim.client.responses.create({ ...BG, metadata: { sim_duration_ms: '60000' } });
    const done = collect(stream, async (event) => {
      if (event.type === 'response.queued') await sim.close();
    });
    const { events, error } = await done;
    expect(events.map((event) => event.type)).toEqual(['response.created', 'response.queued']);
    expect(error).not.toBeNull();
  });
});
