import { QUEUE_KEYS, queueCatalog } from './catalog.ts';
import type { Queues } from './queues.ts';

/** Work-item states reported as queue depth. */
export const DEPTH_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed'] as const;

/**
 * Work items per queue and state, read from Redis (for the queue-depth gauges). Fails at once
 * when Redis is not connected rather than waiting for it.
 */
export async function queueDepths(queues: Queues): Promise<{ queue: string; state: string; count: number }[]> {
  if (queues.connection.status !== 'ready') throw new Error(`redis connection is ${queues.connection.status}`);
  const perQueue = await Promise.all(
    QUEUE_KEYS.map(async (key) => {
      const counts = await queues.get(key).getJobCounts(...DEPTH_STATES);
      return DEPTH_STATES.map((state) => ({ queue: queueCatalog[key].name, state, count: counts[state] ?? 0 }));
    }),
  );
  return perQueue.flat();
}
