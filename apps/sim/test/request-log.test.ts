import { afterEach, beforeEach, expect, test } from 'vitest';
import { startSim, type TestSim } from './helpers.ts';

let sim: TestSim;

beforeEach(async () => {
  sim = await startSim({ default_duration_ms: 20 });
});
afterEach(async () => {
  await sim.close();
});

test('GET /sim/request-log lists every /v1 request in arrival order, with its answer and the job a create names', async () => {
  const before = Date.now();
  const created = await sim.client.responses.create({ model: 'gpt-5', input: 'x', background: true, metadata: { longhaul_job_id: 'job_abc123456789' } });
  await sim.sim('/config', { error_rate: 1, fault_endpoints: ['retrieve'] });
  await sim.client.responses.retrieve(created.id).catch(() => null);
  await sim.api('/responses?x=1', { auth: null });

  const log = await sim.sim('/request-log');
  expect(log.dropped).toBe(0);
  expect(log.data).toEqual([
    { seq: 1, at_ms: expect.any(Number), method: 'POST', path: '/v1/responses', status: 200, job_id: 'job_abc123456789' },
    { seq: 2, at_ms: expect.any(Number), method: 'GET', path: `/v1/responses/${created.id}`, status: 500, job_id: null },
    { seq: 3, at_ms: expect.any(Number), method: 'GET', path: '/v1/responses', status: 401, job_id: null },
  ]);
  const times = log.data.map((e: { at_ms: number }) => e.at_ms);
  expect(times[0]).toBeGreaterThanOrEqual(before);
  expect([...times].sort((a, b) => a - b)).toEqual(times);

  await sim.sim('/reset', {});
  expect((await sim.sim('/request-log')).data).toEqual([]);
});
