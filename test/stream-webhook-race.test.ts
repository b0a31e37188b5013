/**
 * A `stream: true` job finished by its webhook (hybrid mode, the simulator sending signed
 * webhooks) while the worker is still storing the job's provider stream: whatever arrives first,
 * a watcher of `GET /v1/jobs/{id}/stream` sees every provider event of the response, in order,
 * then the final `job.<status>`. Short responses, many at once, to make the webhook win often.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { type SseEvent, readSse } from './sse.ts';

/** Provider events only (lifecycle events have ids like "3.1"). */
const providerEvents = (events: SseEvent[]) => events.filter((e) => e.id !== null && !e.id.includes('.'));
const text = (events: SseEvent[]) =>
  providerEvents(events)
    .filter((e) => e.event === 'response.output_text.delta')
    .map((e) => JSON.parse(e.data).delta as string)
    .join('');

/** The response's events as the simulator itself holds them (a resume from the start replays them all). */
async function providerLog(stack: Stack, responseId: string): Promise<SseEvent[]> {
  const { events, closedByServer } = await readSse(`${stack.simUrl}/v1/responses/${responseId}?stream=true`, { headers: { authorization: 'Bearer sk-test' } });
  expect(closedByServer).toBe(true);
  return events;
}

/** What a watcher must have seen: the simulator's events one for one, in order, then the terminal lifecycle event last. */
function expectWholeStream(seen: SseEvent[], simulated: SseEvent[], job: any, label: string): void {
  const provider = providerEvents(seen);
  const context = `${label} ${job.id}: ${seen.map((e) => `${e.id}:${e.event}`).join(' ')}`;
  expect(
    provider.map((e) => `${e.id}:${e.event}`),
    context,
  ).toEqual(simulated.map((e) => `${JSON.parse(e.data).sequence_number}:${e.event}`));
  for (const [i, e] of provider.entries()) expect(JSON.parse(e.data), context).toEqual(JSON.parse(simulated[i]!.data));
  expect(text(seen), context).toBe(job.output_text);
  expect(seen.at(-1)!.event, context).toBe(`job.${job.status}`);
  expect(provider.at(-1)!.event, context).toBe(`response.${job.status}`);
  // Nothing but the end after the provider's terminal event, and exactly one terminal lifecycle event.
  expect(seen.filter((e) => e.event === `job.${job.status}`).length, context).toBe(1);
}

describe('streamed jobs finished by a webhook while their stream is being stored', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ webhooks: true, sim: { time_scale: 1 }, worker: { completionMode: 'hybrid' } });
    await stack.simApi('POST', '/sim/config', { webhook_delay_ms: 0 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('gives every watcher every provider event, in order, then the final job event (60 jobs of 30 ms)', async () => {
    const jobs = await Promise.all(Array.from({ length: 60 }, (_, i) => stack.api('POST', '/v1/jobs', jobBody({ input: `race ${i}`, stream: true }, 30)).then((r) => r.body)));
    expect(jobs.every((j) => j.stream === true)).toBe(true);
    const live = await Promise.all(jobs.map((j) => readSse(`${stack.apiUrl}/v1/jobs/${j.id}/stream`, { headers: { authorization: `Bearer ${stack.apiKey}` } })));
    const done = await stack.waitForAll(
      jobs.map((j) => j.id),
      isTerminalJob,
    );
    // The webhooks did finish jobs (the race this guards needs them).
    const { rows } = await stack.db.pool.query<{ n: number }>("select count(*)::int n from job_events where job_id = any($1) and source = 'webhook'", [jobs.map((j) => j.id)]);
    expect(rows[0]!.n).toBeGreaterThan(0);
    for (const [i, job] of done.entries()) {
      expect(job.status).toBe('completed');
      expect(live[i]!.closedByServer).toBe(true);
      const simulated = await providerLog(stack, job.response_id);
      expectWholeStream(live[i]!.events, simulated, job, 'live');
      // A late watcher replays the stored log: the same events, the same end.
      const replay = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: { authorization: `Bearer ${stack.apiKey}` } });
      expectWholeStream(replay.events, simulated, job, 'replay');
    }
  });
});
