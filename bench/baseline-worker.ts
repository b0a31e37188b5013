/**
 * The baseline's consumer: a bare BullMQ Worker with a no-op processor, in its own process like
 * Longhaul's worker. Prints "ready" once connected; drains and exits on SIGTERM.
 */
import { Worker, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';

const redisUrl = process.env.BASELINE_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = process.env.BASELINE_PREFIX ?? 'lhbench_base';
const queueName = process.env.BASELINE_QUEUE ?? 'noop';
const concurrency = Number(process.env.BASELINE_CONCURRENCY ?? '50');

const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
const worker = new Worker(queueName, async () => {}, { connection: connection as ConnectionOptions, prefix, concurrency });
worker.on('error', (err) => console.error('baseline worker error', err));
await worker.waitUntilReady();
console.log('ready');

let closing = false;
process.on('SIGTERM', () => {
  if (closing) return;
  closing = true;
  void worker.close().finally(() => {
    connection.disconnect();
    process.exit(0);
  });
});
