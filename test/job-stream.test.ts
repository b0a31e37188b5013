/** GET /v1/jobs/{id}/stream: lifecycle events of any job, resumable, over real SSE. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '@longhaul/db';
import { type Stack, TERMINAL, isTerminalJob, jobBody, startStack } from './harness.ts';
import { readSse } from './sse.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

const auth = () => ({ authorization: `Bearer ${stack.apiKey}` });

describe('lifecycle stream of a job that does not stream from the provider', () => {
  it('carries the lifecycle events live and closes after the terminal one', async () => {
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 100_000));
    // The job's state when the stream opened: still running, or the test would only show a replay.
    let statusAtOpen: Promise<string> | undefined;
    const { events, closedByServer } = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, {
      headers: auth(),
      onComment: () => {
        statusAtOpen ??= stack.api('GET', `/v1/jobs/${job.id}`).then((r) => r.body.status);
      },
    });
    expect(closedByServer).toBe(true);
    expect(TERMINAL).not.toContain(await statusAtOpen);
    // in_progress is only seen if a poll lands while the response runs (it normally does).
    const types = events.map((e) => e.event);
    expect([
      ['job.queued', 'job.in_progress', 'job.completed'],
      ['job.queued', 'job.completed'],
    ]).toContainEqual(types);
    expect(events.map((e) => e.id)).toEqual(types.map((_, i) => `-1.${i + 1}`));
    const last = JSON.parse(events.at(-1)!.data);
    expect(last).toMatchObject({ type: 'job.completed', job: { id: job.id, status: 'completed', output_text: expect.any(String) } });
  });

  it('replays a finished job from a cursor and closes', async () => {
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
    await stack.waitForJob(job.id, isTerminalJob);
    const all = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: auth() });
    expect(all.events.at(-1)!.event).toBe('job.completed');
    const after = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: { ...auth(), 'last-event-id': all.events[0]!.id! } });
    expect(after.events.map((e) => e.id)).toEqual(all.events.slice(1).map((e) => e.id));
    const viaQuery = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream?starting_after=${all.events[0]!.id}`, { headers: auth() });
    expect(viaQuery.events.map((e) => e.id)).toEqual(after.events.map((e) => e.id));
    // Past the end: 204 No Content, which tells EventSource clients to stop reconnecting.
    const past = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: { ...auth(), 'last-event-id': all.events.at(-1)!.id! } });
    expect(past.status).toBe(204);
    expect(past.events).toEqual([]);
  });

  it("closes a finished job's stream from Postgres when its event log was lost", async () => {
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 0));
    await stack.waitForJob(job.id, isTerminalJob);
    await stack.redis.del(`${stack.prefix}:jobstream:${job.id}`);
    const { events, closedByServer } = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: auth() });
    expect(closedByServer).toBe(true);
    expect(events.map((e) => [e.id, e.event])).toEqual([['-1.1', 'job.completed']]);
    expect(JSON.parse(events[0]!.data).job.status).toBe('completed');
  });

  it('ends with the cancellation of a pending job, delivered live', async () => {
    // No fallback from Postgres while the test runs: only the live tail can carry the cancellation.
    const quiet = await startStack({ startWorker: false, api: { streamFinalCheckMs: 3_600_000 } });
    try {
      const { body: job } = await quiet.api('POST', '/v1/jobs', jobBody());
      let opened!: () => void;
      const watcherOpen = new Promise<void>((resolve) => (opened = resolve));
      // The opening comment is written as the watcher joins the hub: from then on it is fed live.
      const watching = readSse(`${quiet.apiUrl}/v1/jobs/${job.id}/stream`, { headers: { authorization: `Bearer ${quiet.apiKey}` }, timeoutMs: 15_000, onComment: () => opened() });
      await watcherOpen;
      const cancelled = await quiet.api('POST', `/v1/jobs/${job.id}/cancel`);
      expect(cancelled.body.status).toBe('cancelled');
      const { events, closedByServer } = await watching;
      expect(events.map((e) => e.event)).toEqual(['job.cancelled']);
      expect(closedByServer).toBe(true);
    } finally {
      await quiet.stop();
    }
  });

  it('sends heartbeats, serves many watchers of one job, and refuses bad cursors, bad keys and other tenants', async () => {
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({}, 250_000)); // ~2.5 s real
    let comments = 0;
    const watchers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: auth(), onComment: i === 0 ? () => (comments += 1) : undefined })),
    );
    const expected = watchers[0]!.events.map((e) => `${e.id} ${e.event}`);
    expect(expected[0]).toBe('-1.1 job.queued');
    expect(expected.at(-1)).toMatch(/ job\.completed$/);
    for (const w of watchers) expect(w.events.map((e) => `${e.id} ${e.event}`)).toEqual(expected);
    expect(comments).toBeGreaterThanOrEqual(2); // the opening comment and at least one keep-alive
    const bad = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream?starting_after=abc`, { headers: auth() });
    expect(bad.status).toBe(400);
    const bogus = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: { authorization: 'Bearer lh_sk_nope' } });
    expect(bogus.status).toBe(401);
    // Another tenant's valid key: the job does not exist for it (404, as for an unknown id), and no event leaks.
    const other = await createTenant(stack.db.db, 'another tenant');
    const refused = await readSse(`${stack.apiUrl}/v1/jobs/${job.id}/stream`, { headers: { authorization: `Bearer ${other.apiKey}` } });
    expect(refused.status).toBe(404);
    expect(refused.events).toEqual([]);
    expect(JSON.parse(refused.body!).error).toMatchObject({ type: 'not_found_error', param: 'id' });
    expect(refused.body).not.toContain('job.queued');
  });
});
