/**
 * The API's stream hub at shutdown, against the machine's Redis: a job stream whose route reaches
 * the hub after the hub closed (it was still setting up when SIGTERM arrived) is ended at once,
 * like the streams the close itself ended, instead of holding the process until its deadline.
 */
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { createStreamHub } from '@longhaul/api';
import { createQueues } from '@longhaul/queue';
import { createLogger } from '@longhaul/runtime';
import { testRedisUrl } from './env.ts';

it('ends a watcher that arrives after the hub closed', async () => {
  const queues = createQueues({ redisUrl: testRedisUrl(), prefix: `lhtest_hub_${randomBytes(4).toString('hex')}`, role: 'producer' });
  try {
    // The producer connection does not queue commands before it is connected.
    if (queues.connection.status !== 'ready') await new Promise((resolve) => queues.connection.once('ready', resolve));
    const hub = createStreamHub({ queues, logger: createLogger({ service: 'test', level: 'silent' }) });
    let early = 0;
    let late = 0;
    const watcher = (onEnd: () => void) => ({ jobId: 'job_abcdefghijkl', lastEntryId: '0-0', send: () => {}, heartbeat: () => {}, end: onEnd });
    const watching = hub.watch(watcher(() => early++));
    await watching;
    await hub.close();
    expect(early).toBe(1);
    await hub.watch(watcher(() => late++));
    expect(late).toBe(1);
    // Only the early watcher is on record (its route unwatches it when its response ends); the late one never joined.
    expect(hub.watcherCount()).toBe(1);
  } finally {
    await queues.close();
  }
});
