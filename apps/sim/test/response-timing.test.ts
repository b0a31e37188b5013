import { afterEach, beforeEach, expect, test } from 'vitest';
import { sleep, startSim, type TestSim } from './helpers.ts';

let sim: TestSim;

beforeEach(async () => {
  sim = await startSim({ default_duration_ms: 20 });
});
afterEach(async () => {
  await sim.close();
});

test('GET /sim/responses/{id}/timing: when the create was taken, when it ends and became terminal, what it continues; not counted as a retrieve', async () => {
  const before = Date.now();
  // Long enough that a loaded machine still reads it before it ends.
  const first = await sim.client.responses.create({ model: 'gpt-5', input: 'x', background: true, metadata: { sim_duration_ms: '1000' } });
  const after = Date.now();
  const pending = await sim.sim(`/responses/${first.id}/timing`);
  expect(pending).toEqual({ id: first.id, created_at_ms: expect.any(Number), ends_at_ms: expect.any(Number), terminal_at_ms: null, previous_response_id: null });
  expect(pending.created_at_ms).toBeGreaterThanOrEqual(before);
  expect(pending.created_at_ms).toBeLessThanOrEqual(after);
  expect(pending.ends_at_ms - pending.created_at_ms).toBe(1000);

  await sleep(Math.max(0, pending.ends_at_ms - Date.now()) + 100);
  const ended = await sim.sim(`/responses/${first.id}/timing`);
  expect(ended).toMatchObject({ ends_at_ms: pending.ends_at_ms, terminal_at_ms: pending.ends_at_ms });

  const next = await sim.client.responses.create({ model: 'gpt-5', input: 'y', previous_response_id: first.id });
  const chained = await sim.sim(`/responses/${next.id}/timing`);
  expect(chained).toMatchObject({ previous_response_id: first.id, terminal_at_ms: null });
  expect(chained.created_at_ms).toBeGreaterThanOrEqual(ended.terminal_at_ms);

  const stats = await sim.sim('/stats');
  expect(stats.retrieves).toBe(0);
  expect(stats.by_response[first.id]).toEqual({ retrieves: 0, cancels: 0 });
  expect(await sim.sim('/responses/resp_unknown/timing')).toMatchObject({ error: { type: 'invalid_request_error' } });
});
