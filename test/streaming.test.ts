/**
 * stream: true jobs end to end: the worker follows the provider's event stream into the job's
 * log, and SSE clients that drop and reconnect anywhere reassemble exactly the final text.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { type SseEvent, readSse } from './sse.ts';
import { exited, spawnWorker } from './worker-process.ts';

/** Provider events only (lifecycle events have ids like "3.1"). */
const providerEvents = (events: SseEvent[]) => events.filter((e) => e.id !== null && !e.id.includes('.'));
const text = (events: SseEvent[]) =>
  providerEvents(events)
    .filter((e) => e.event === 'response.output_text.delta')
    .map((e) => JSON.parse(e.data).delta as string)
    .join('');

/** Watch a job's stream, dropping the connection after a random number of events each time. */
async function watchWithDrops(stack: Stack, jobId: string, random: () => number): Promise<{ events: SseEvent[]; reconnects: number; log: string[] }> {
  const all: SseEvent[] = [];
  const log: string[] = [];
  let reconnects = 0;
  for (;;) {
    const lastId = all.at(-1)?.id;
    const maxEvents = 1 + Math.floor(random() * 25);
    const { events, closedByServer } = await readSse(`${stack.apiUrl}/v1/jobs/${jobId}/stream`, {
      headers: { authorization: `Bearer ${stack.apiKey}`, ...(lastId ? { 'last-event-id': lastId } : {}) },
      maxEvents,
    });
    all.push(...events);
    log.push(`after ${lastId}: ${events.map((e) => e.id).join(',')}`);
    if (closedByServer) return { events: all, reconnects, log };
    reconnects += 1;
  }
}

function assertContiguous(events: SseEvent[], context = ''): void {
  const seqs = providerEvents(events).map((e) => Number(e.id));
  expect(seqs, context).toEqual(seqs.map((_, i) => i));
  for (const e of providerEvents(events)) expect(JSON.parse(e.data).sequence_number).toBe(Number(e.id));
}

describe('streamed jobs', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ sim: { time_scale: 0.01 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('reassembles output_text exactly across random reconnects for 50 streamed jobs', async () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const jobs = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        stack
          .api('POST', '/v1/jobs', jobBody({ input: `streamed story ${i}`, stream: true, reasoning: { effort: 'medium', summary: 'auto' } }, 60_000 + i * 1_000))
          .then((r) => r.body),
      ),
    );
    expect(jobs.every((j) => j.stream === true)).toBe(true);
    const watched = await Promise.all(jobs.map((j) => watchWithDrops(stack, j.id, random)));
    const done = await stack.waitForAll(
      jobs.map((j) => j.id),
      isTerminalJob,
    );
    let reconnects = 0;
    for (const [i, job] of done.entries()) {
      const { events } = watched[i]!;
      reconnects += watched[i]!.reconnects;
      expect(job.status).toBe('completed');
      assertContiguous(events, watched[i]!.log.join('\n'));
      expect(text(events)).toBe(job.output_text);
      expect(events.at(-1)!.event).toBe('job.completed');
      expect(providerEvents(events).at(-1)!.event).toBe('response.completed');
      expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    }
    expect(reconnects).toBeGreaterThan(100);
  });

  it('replays a finished streamed job from the first event for a late client', async () => {
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({ stream: true }, 5_000));
    await stack.waitForJob(job.id, isTerminalJob);
    const { events } = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: { authorization: `Bearer ${stack.apiKey}` } });
    assertContiguous(events);
    expect(providerEvents(events)[0]!.event).toBe('response.created');
    expect(text(events)).toBe((await stack.api('GET', `/v1/jobs/${job.id}`)).body.output_text);
  });
});

describe('streamed jobs when the provider cuts streams or will not resume', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ sim: { time_scale: 0.01, stream_cut_rate: 0.5 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('resumes cut provider streams with no gap and no duplicate', async () => {
    const jobs = await Promise.all(Array.from({ length: 10 }, (_, i) => stack.api('POST', '/v1/jobs', jobBody({ input: `cut ${i}`, stream: true }, 50_000)).then((r) => r.body)));
    const streams = await Promise.all(jobs.map((j) => readSse(`${stack.apiUrl}/v1/jobs/${j.id}/stream`, { headers: { authorization: `Bearer ${stack.apiKey}` } })));
    const stats = await stack.simApi('GET', '/sim/stats');
    expect(stats.streams.cut).toBeGreaterThan(0);
    for (const [i, job] of (
      await stack.waitForAll(
        jobs.map((j) => j.id),
        isTerminalJob,
      )
    ).entries()) {
      assertContiguous(streams[i]!.events);
      expect(
        text(streams[i]!.events).length,
        JSON.stringify(
          providerEvents(streams[i]!.events)
            .map((e) => `${e.event}:${e.id}`)
            .slice(-8),
        ),
      ).toBe(job.output_text.length);
      expect(text(streams[i]!.events)).toBe(job.output_text);
    }
  });

  it('ends with the final state when the provider refuses to resume (too old)', async () => {
    await stack.simApi('POST', '/sim/config', { stream_cut_rate: 0, stream_cut_after_events: 4, stream_resume_window_ms: 1 });
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({ stream: true }, 30_000));
    const { events, closedByServer } = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: { authorization: `Bearer ${stack.apiKey}` } });
    expect(closedByServer).toBe(true);
    const final = await stack.waitForJob(job.id, isTerminalJob);
    expect(final.status).toBe('completed');
    const provider = providerEvents(events);
    expect(provider.at(-1)!.event).toBe('response.completed');
    expect(JSON.parse(provider.at(-1)!.data).response.status).toBe('completed');
    assertContiguous(events);
    expect(events.at(-1)!.event).toBe('job.completed');
    expect((await stack.simApi('GET', '/sim/stats')).streams.expired).toBeGreaterThan(0);
    await stack.simApi('POST', '/sim/config', { stream_cut_after_events: null, stream_resume_window_ms: 300_000 });
  });
});

describe('worker killed mid-stream', () => {
  let stack: Stack;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    stack = await startStack({ startWorker: false, sim: { time_scale: 0.02 } });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    await stack?.stop();
  });

  it('resumes from the last stored event: the client sees no gap and no duplicate', async () => {
    const first = spawnWorker(stack, stack.redisUrl);
    children.push(first);
    const jobs = await Promise.all(Array.from({ length: 5 }, (_, i) => stack.api('POST', '/v1/jobs', jobBody({ input: `kill ${i}`, stream: true }, 200_000)).then((r) => r.body)));
    // Kill once every watcher has received text: each job is mid-stream, some text stored, more to come.
    const flowing = new Set<string>();
    let allFlowing!: () => void;
    const textFlows = new Promise<void>((resolve) => (allFlowing = resolve));
    const watching = jobs.map((j) =>
      readSse(`${stack.apiUrl}/v1/jobs/${j.id}/stream`, {
        headers: { authorization: `Bearer ${stack.apiKey}` },
        timeoutMs: 60_000,
        onEvent: (e) => {
          if (e.event !== 'response.output_text.delta') return;
          flowing.add(j.id);
          if (flowing.size === jobs.length) allFlowing();
        },
      }),
    );
    await Promise.race([
      textFlows,
      Promise.all(watching).then(() => {
        throw new Error(`streams ended before text flowed for every job (${flowing.size} of ${jobs.length})`);
      }),
    ]);
    first.kill('SIGKILL');
    await exited(first);
    // Nobody works on the jobs now: their states are the states at the kill.
    const { rows: atKill } = await stack.db.pool.query<{ status: string }>('select status from jobs where id = any($1)', [jobs.map((j) => j.id)]);
    expect(atKill.map((r) => r.status)).toEqual(jobs.map(() => 'in_progress'));
    const resumedAtKill = (await stack.simApi('GET', '/sim/stats')).streams.resumed;
    const second = spawnWorker(stack, stack.redisUrl);
    children.push(second);
    const streams = await Promise.all(watching);
    const done = await stack.waitForAll(
      jobs.map((j) => j.id),
      isTerminalJob,
      30_000,
    );
    for (const [i, job] of done.entries()) {
      expect(job.status).toBe('completed');
      assertContiguous(streams[i]!.events);
      expect(text(streams[i]!.events)).toBe(job.output_text);
    }
    // The new worker resumed each provider stream (no new response was created).
    const stats = await stack.simApi('GET', '/sim/stats');
    expect(stats.streams.resumed - resumedAtKill).toBeGreaterThanOrEqual(jobs.length);
    expect(jobs.map((j) => stats.creates_by_job[j.id])).toEqual(jobs.map(() => 1));
    second.kill('SIGTERM');
    await exited(second);
  });
});

describe('graceful worker shutdown mid-stream', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ startWorker: false, sim: { time_scale: 0.02 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('hands the stream back at once and another worker finishes it without gap or duplicate', async () => {
    const first = stack.startWorker();
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({ stream: true }, 300_000)); // ~6 s real
    let textFlowing!: () => void;
    const flowing = new Promise<void>((resolve) => (textFlowing = resolve));
    const watching = readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, {
      headers: { authorization: `Bearer ${stack.apiKey}` },
      timeoutMs: 60_000,
      onEvent: (e) => {
        if (e.event === 'response.output_text.delta') textFlowing();
      },
    });
    await flowing;
    await first.close(30_000);
    // Handed back at once: the close returned while the response was still running at the
    // provider (it did not wait for the stream to end), and the job was left in progress.
    const { response_id: responseId } = (await stack.api('GET', `/v1/jobs/${job.id}`)).body;
    const atProvider = await fetch(`${stack.simUrl}/v1/responses/${responseId}`, { headers: { authorization: 'Bearer sk-test' } }).then((r) => r.json());
    expect(atProvider.status).toBe('in_progress');
    expect((await stack.api('GET', `/v1/jobs/${job.id}`)).body.status).toBe('in_progress');
    stack.startWorker();
    const { events } = await watching;
    const done = await stack.waitForJob(job.id, isTerminalJob, 30_000);
    expect(done.status).toBe('completed');
    assertContiguous(events);
    expect(text(events)).toBe(done.output_text);
  });
});
