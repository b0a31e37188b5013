import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ webhooks: true, worker: { completionMode: 'webhook', poll: { safetyIntervalMs: 60_000 } } });
});
afterAll(async () => { await stack?.stop(); });
it('debug webhook mode', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 200; i += 25) {
    const res = await Promise.all(Array.from({ length: 25 }, (_, k) => stack.api('POST', '/v1/jobs', jobBody({ input: `webhook story ${i + k}` }, 2000))));
    for (const r of res) ids.push(r.body.id);
  }
  try {
    await stack.waitForAll(ids, isTerminalJob, 30_000);
  } catch (err) {
    const { rows } = await stack.db.pool.query("select id, status, response_id, submit_attempts, polls, next_check_at, updated_at from jobs where id = any($1) and status not in ('completed')", [ids]);
    console.log('STUCK', JSON.stringify(rows));
    for (const j of rows) {
      const inbox = await stack.db.pool.query('select id, webhook_id, event_type, status, job_id, note, received_at, processed_at from webhook_inbox where response_id = $1 or job_id = $2', [j.response_id, j.id]);
      console.log('INBOX', JSON.stringify(inbox.rows));
      const ev = await stack.db.pool.query('select from_status, to_status, source, at, details from job_events where job_id = $1 order by id', [j.id]);
      console.log('EVENTS', JSON.stringify(ev.rows));
      const st = await stack.queues.get('webhook').getJobCounts();
      console.log('WEBHOOK QUEUE', JSON.stringify(st));
      const stats = await stack.simApi('GET', '/sim/stats');
      console.log('SIM', JSON.stringify(stats.by_response?.[j.response_id]), JSON.stringify(stats.webhooks ?? Object.keys(stats)));
    }
    throw err;
  }
});
