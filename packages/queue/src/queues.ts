import { Queue, type ConnectionOptions } from 'bullmq';
import { type Payload, type PayloadInput, type QueueKey, QUEUE_KEYS, queueCatalog, toolsWorkItemId } from './catalog.ts';
import { ClusterPrefixError, type RedisClient, type RedisConnectionOptions, createRedis, defaultQueuePrefix, explainRedisError, isHashTagged } from './redis.ts';

export interface QueueOptions extends RedisConnectionOptions {
  /**
   * Redis key prefix of every queue; lets several deployments (or tests) share one Redis. Default
   * "longhaul", or "{longhaul}" on a cluster, where it must contain a hash tag (ClusterPrefixError
   * otherwise): one prefix is one slot.
   */
  prefix?: string;
  /**
   * Producers give up on an `add` after this long (the work is durable in Postgres; the sweeper
   * dispatches it later). Default 1 000 ms for producers, none for workers.
   */
  addTimeoutMs?: number;
  /** Connection errors (Redis down); default: ignored. */
  onError?: (err: Error) => void;
}

export interface Queues {
  prefix: string;
  connection: RedisClient;
  get<K extends QueueKey>(key: K): Queue<Payload<K>>;
  add<K extends QueueKey>(key: K, payload: PayloadInput<K>, opts?: { delayMs?: number; jobId?: string }): Promise<void>;
  close(): Promise<void>;
}

export function createQueues(options: QueueOptions): Queues {
  const prefix = options.prefix ?? defaultQueuePrefix(options.cluster !== undefined);
  if (options.cluster && !isHashTagged(prefix)) throw new ClusterPrefixError(prefix);
  const connection = createRedis(options);
  const queues = new Map<QueueKey, Queue>();
  for (const key of QUEUE_KEYS) {
    const entry = queueCatalog[key];
    const queue = new Queue(entry.name, { connection: connection as ConnectionOptions, prefix, defaultJobOptions: entry.options });
    queue.on('error', (err) => options.onError?.(explainRedisError(err)));
    queues.set(key, queue);
  }
  connection.on('error', (err) => options.onError?.(explainRedisError(err)));
  const addTimeoutMs = options.addTimeoutMs ?? (options.role === 'producer' ? 1_000 : undefined);
  let closing: Promise<void> | undefined;
  return {
    prefix,
    connection,
    get: <K extends QueueKey>(key: K) => queues.get(key) as Queue<Payload<K>>,
    async add(key, payload, opts = {}) {
      const parsed = queueCatalog[key].payload.parse(payload);
      const jobId = opts.jobId ?? workItemId(parsed);
      const adding = queues.get(key)!.add(key, parsed, { jobId, delay: opts.delayMs });
      if (addTimeoutMs === undefined) {
        await adding;
        return;
      }
      adding.catch(() => {}); // may still land later; the work item id makes that harmless
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis did not accept the ${key} work item within ${addTimeoutMs} ms`)), addTimeoutMs);
      });
      try {
        await Promise.race([adding, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    close: () =>
      (closing ??= (async () => {
        await Promise.allSettled([...queues.values()].map((q) => q.close()));
        connection.disconnect();
      })()),
  };
}

/** Work items are keyed by what they are about, so dispatching twice never duplicates work. */
function workItemId(payload: object): string | undefined {
  if ('jobId' in payload && 'turn' in payload) return toolsWorkItemId(String(payload.jobId), Number(payload.turn));
  if ('jobId' in payload) return String(payload.jobId);
  if ('inboxId' in payload) return `inbox_${String(payload.inboxId)}`;
  if ('deliveryId' in payload) return String(payload.deliveryId);
  return undefined;
}
