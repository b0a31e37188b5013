/**
 * A `stream: true` job whose tools run as a loop (issue 15): its SSE stream carries every turn's
 * provider events in order, `response.function_call_arguments.delta/done` included, with one
 * cursor that grows across turns; `job.requires_action` at a turn's end keeps the stream open
 * until the tenant answers and the next turn streams on; a client that reconnects with a cursor
 * from an earlier turn resumes right after it, and a watcher that comes late gets the whole log.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, isTerminalJob, startStack } from './harness.ts';
import { type SseEvent, readSse } from './sse.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ sim: { time_scale: 0.01 } });
});
afterAll(async () => {
  await stack?.stop();
});

const weather = {
  type: 'function',
  name: 'get_weather',
  parameters: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } }, required: ['city', 'unit'] },
  strict: false,
};

/** An SSE id as a number: provider events `n`, lifecycle events `n.k` (after provider event n). */
const order = (id: string) => {
  const [a, b = '0'] = id.split('.');
  return [Number(a), Number(b)] as const;
};
const increasing = (events: SseEvent[]) =>
  events.every((e, i) => {
    if (i === 0) return true;
    const [a, b] = order(events[i - 1]!.id!);
    const [c, d] = order(e.id!);
    return c > a || (c === a && d > b);
  });
const types = (events: SseEvent[]) => events.map((e) => e.event);
const auth = () => ({ authorization: `Bearer ${stack.apiKey}` });

async function answer(jobId: string, turn: number): Promise<void> {
  const job = await stack.waitForJob(jobId, (j: any) => (j.status === 'requires_action' && j.turn === turn) || isTerminalJob(j));
  expect(job.status).toBe('requires_action');
  const outputs = job.required_action.tool_calls.map((c: any) => ({ call_id: c.call_id, output: `turn ${turn}: 12 degrees` }));
  const res = await stack.api('POST', `/v1/jobs/${jobId}/tool_outputs`, { tool_outputs: outputs });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

describe('streamed tool-call loop', () => {
  it('streams every turn on one cursor, stays open while waiting for answers, resumes from an earlier turn', async () => {
    const created = await stack.api('POST', '/v1/jobs', {
      model: 'o3',
      input: 'What should I wear in Oslo and Bergen?',
      tools: [weather],
      stream: true,
      metadata: { sim_tool_turns: '2', sim_duration_ms: '300' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const id = created.body.id as string;

    // One watcher from the start, answering each turn while its connection stays open.
    const answered: number[] = [];
    const live = await readSse(`${stack.apiUrl}/v1/jobs/${id}/stream`, {
      headers: auth(),
      timeoutMs: 60_000,
      onEvent: (e) => {
        if (e.event !== 'job.requires_action') return;
        const turn = JSON.parse(e.data).job.turn;
        answered.push(turn);
        void answer(id, turn);
      },
    });
    expect(live.status).toBe(200);
    expect(live.closedByServer).toBe(true);
    expect(answered).toEqual([1, 2]);
    const events = live.events;
    expect(increasing(events), events.map((e) => e.id).join(',')).toBe(true);
    expect(types(events).at(-1)).toBe('job.completed');

    // Three turns, each a response of its own, in order; the first two end with a function call.
    const createdEvents = events.filter((e) => e.event === 'response.created');
    expect(createdEvents).toHaveLength(3);
    const responseIds = createdEvents.map((e) => JSON.parse(e.data).response.id);
    expect(new Set(responseIds).size).toBe(3);
    const waits = events.filter((e) => e.event === 'job.requires_action');
    expect(waits).toHaveLength(2);
    for (const [turn, wait] of waits.entries()) {
      const before = events.slice(0, events.indexOf(wait));
      // The turn's last provider event comes before the wait, its function call streamed in full.
      const completedTurns = before.filter((e) => e.event === 'response.completed');
      expect(completedTurns).toHaveLength(turn + 1);
      expect(JSON.parse(completedTurns.at(-1)!.data).response.id).toBe(responseIds[turn]);
      const done = before.filter((e) => e.event === 'response.function_call_arguments.done');
      expect(done).toHaveLength(turn + 1);
      const args = JSON.parse(JSON.parse(done.at(-1)!.data).arguments);
      expect(args).toMatchObject({ city: expect.any(String), unit: 'celsius' });
      // The deltas of that call add up to its arguments.
      const itemId = JSON.parse(done.at(-1)!.data).item_id;
      const deltas = before
        .filter((e) => e.event === 'response.function_call_arguments.delta' && JSON.parse(e.data).item_id === itemId)
        .map((e) => JSON.parse(e.data).delta)
        .join('');
      expect(deltas).toBe(JSON.parse(done.at(-1)!.data).arguments);
    }
    // The answered turn goes back to pending on the log before the next turn's events.
    const pendings = events.filter((e) => e.event === 'job.pending');
    expect(pendings.length).toBeGreaterThanOrEqual(2);
    // Each turn's provider events carry that response's own sequence numbers, from 0.
    const seqsOfTurn3 = events
      .slice(events.indexOf(createdEvents[2]!))
      .filter((e) => e.event.startsWith('response.'))
      .map((e) => JSON.parse(e.data).sequence_number);
    expect(seqsOfTurn3[0]).toBe(0);

    const job = await stack.waitForJob(id, isTerminalJob);
    expect(job).toMatchObject({ status: 'completed', turn: 3 });
    expect(job.turns.map((t: any) => t.response_id)).toEqual(responseIds);
    const finalText = events
      .slice(events.indexOf(createdEvents[2]!))
      .filter((e) => e.event === 'response.output_text.delta')
      .map((e) => JSON.parse(e.data).delta)
      .join('');
    expect(finalText).toBe(job.output_text);

    // Resume with a cursor from turn 1: exactly what came after it, nothing twice.
    const cut = events.findIndex((e) => e.event === 'response.function_call_arguments.done');
    const resumed = await readSse(`${stack.apiUrl}/v1/jobs/${id}/stream`, { headers: { ...auth(), 'last-event-id': events[cut]!.id! } });
    expect(resumed.closedByServer).toBe(true);
    expect(resumed.events.map((e) => e.id)).toEqual(events.slice(cut + 1).map((e) => e.id));
    expect(resumed.events.map((e) => e.data)).toEqual(events.slice(cut + 1).map((e) => e.data));

    // A late watcher gets the whole log, as the live one saw it.
    const late = await readSse(`${stack.apiUrl}/v1/jobs/${id}/stream`, { headers: auth() });
    expect(late.events.map((e) => e.id)).toEqual(events.map((e) => e.id));
    // Past the end: nothing more, ever.
    const past = await readSse(`${stack.apiUrl}/v1/jobs/${id}/stream`, { headers: { ...auth(), 'last-event-id': events.at(-1)!.id! } });
    expect(past.status).toBe(204);
  });

  it('streams the turns a tool executor answers, one watcher from start to end', async () => {
    const calls: number[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const { turn, tool_calls } = JSON.parse(body);
        calls.push(turn);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ tool_outputs: tool_calls.map((c: any) => ({ call_id: c.call_id, output: `sunny (turn ${turn})` })) }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tools`;
      const res = await stack.api('POST', '/v1/jobs', {
        model: 'o3',
        input: 'Weather in Oslo, then Bergen, then Tromsø?',
        tools: [weather],
        stream: true,
        tool_executor: { url },
        metadata: { sim_tool_turns: '3', sim_duration_ms: '200' },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(202);
      const { events, closedByServer } = await readSse(`${stack.apiUrl}/v1/jobs/${res.body.id}/stream`, { headers: auth(), timeoutMs: 30_000 });
      expect(closedByServer).toBe(true);
      expect(calls).toEqual([1, 2, 3]);
      expect(increasing(events)).toBe(true);
      expect(events.filter((e) => e.event === 'response.created')).toHaveLength(4);
      expect(events.filter((e) => e.event === 'response.function_call_arguments.done')).toHaveLength(3);
      expect(types(events).at(-1)).toBe('job.completed');
      const job = await stack.waitForJob(res.body.id, isTerminalJob);
      expect(job.turns.every((t: any, i: number) => i === 3 || t.answered_by === 'tool_executor')).toBe(true);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('keeps several streamed loops apart, answered in any order', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await stack.api('POST', '/v1/jobs', {
        model: 'o3',
        input: `Trip ${i}`,
        tools: [weather],
        stream: true,
        metadata: { sim_tool_turns: String(1 + (i % 3)), sim_duration_ms: '100' },
      });
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
    // Answer every waiting turn until all are done, without watching.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const jobs = await Promise.all(ids.map(async (id) => (await stack.api('GET', `/v1/jobs/${id}`)).body));
      if (jobs.every(isTerminalJob)) break;
      expect(Date.now()).toBeLessThan(deadline);
      await Promise.all(jobs.filter((j) => j.status === 'requires_action').map((j) => answer(j.id, j.turn)));
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const [i, id] of ids.entries()) {
      const { events } = await readSse(`${stack.apiUrl}/v1/jobs/${id}/stream`, { headers: auth() });
      expect(increasing(events)).toBe(true);
      expect(events.filter((e) => e.event === 'response.created')).toHaveLength(2 + (i % 3));
      expect(events.filter((e) => e.event === 'job.requires_action')).toHaveLength(1 + (i % 3));
      expect(types(events).at(-1)).toBe('job.completed');
    }
  });
});
