/**
 * Redis connections: one factory for a single Redis server or a Redis Cluster, and the key-prefix
 * rule a cluster imposes.
 *
 * Design note: on a cluster, every Lua script and MULTI must touch keys of one hash slot, and
 * BullMQ's scripts (like the fair queue's) build keys from the queue prefix. So the whole prefix
 * is made one slot with a hash tag (`{longhaul}`): every key Longhaul writes starts with it, and
 * Redis hashes only the tag. One deployment (one prefix) is therefore one slot on one master;
 * more throughput than one master gives comes from more prefixes (deployments), as with BullMQ
 * itself. A prefix without a tag is refused on a cluster rather than failing later with CROSSSLOT.
 */
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

/** A connection to a single Redis server or to a Redis Cluster (the commands Longhaul uses are the same). */
export type RedisClient = Redis | Cluster;

export interface RedisClusterOptions {
  /**
   * More seed nodes (`host:port`) besides the one `redisUrl` names, tried when it does not answer.
   * The client discovers the rest of the cluster from any one of them. Default none.
   */
  nodes?: string[];
}

export interface RedisConnectionOptions {
  /**
   * `redis://[user:password@]host:port` (or `rediss://` for TLS). With `cluster`, one seed node of
   * the cluster; its credentials and TLS apply to every node.
   */
  redisUrl: string;
  /** Connect to a Redis Cluster (seeded by `redisUrl` and `cluster.nodes`). Default: a single server. */
  cluster?: RedisClusterOptions;
  /**
   * Producers (the API) fail fast when Redis is down (the job is already in Postgres and the
   * sweeper dispatches it later); workers wait for Redis to come back.
   */
  role: 'producer' | 'worker';
}

/** The key prefix used when none is configured: hash-tagged on a cluster (one slot), plain on a single server (existing deployments keep their keys). */
export function defaultQueuePrefix(cluster: boolean): string {
  return cluster ? '{longhaul}' : 'longhaul';
}

/**
 * Whether every key starting with `prefix` hashes to the same cluster slot: the prefix holds a
 * hash tag, i.e. its first `{` is followed, within the prefix, by at least one character and a `}`.
 */
export function isHashTagged(prefix: string): boolean {
  return /^[^{]*\{[^}]+\}/.test(prefix);
}

/** Why `prefix` cannot be used on a cluster, or null when it can (the reason does not repeat the prefix). */
export function clusterPrefixProblem(prefix: string): string | null {
  if (isHashTagged(prefix)) return null;
  return 'on a Redis Cluster the prefix must contain a hash tag, e.g. {longhaul}: the cluster hashes only the part in braces, so every key of a queue and of each Lua script lands in one slot';
}

/** The error a caller gets for a prefix that cannot be used on a cluster. */
export class ClusterPrefixError extends Error {
  readonly code = 'cluster_prefix_not_hash_tagged';
  constructor(prefix: string) {
    super(`Redis key prefix "${prefix}": ${clusterPrefixProblem(prefix)}`);
    this.name = 'ClusterPrefixError';
  }
}

/** `host:port` (`[v6]:port` for IPv6) → a cluster seed node, or null when it is not one. */
export function parseClusterNode(entry: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s,:[\]]+)):(\d{1,5})$/.exec(entry.trim());
  if (!m || Number(m[3]) > 65535 || Number(m[3]) === 0) return null;
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}

/** Whether a `redis://` URL names a database other than 0 (a cluster has only database 0). */
export function namesNonZeroDatabase(redisUrl: string): boolean {
  const path = new URL(redisUrl).pathname;
  return path.length > 1 && path !== '/0';
}

/** The per-node options a `redis://` / `rediss://` URL carries (credentials, TLS). */
function urlNodeOptions(url: URL): RedisOptions {
  const options: RedisOptions = {};
  if (url.username) options.username = decodeURIComponent(url.username);
  if (url.password) options.password = decodeURIComponent(url.password);
  if (url.protocol === 'rediss:') options.tls = { servername: url.hostname };
  return options;
}

/** An ioredis connection (single server or cluster) configured the way BullMQ needs for the given role. */
export function createRedis(options: RedisConnectionOptions, extra: RedisOptions = {}): RedisClient {
  const worker = options.role === 'worker';
  const perConnection: RedisOptions = { maxRetriesPerRequest: worker ? null : 1, connectTimeout: 5_000, ...extra };
  if (!options.cluster) {
    return new Redis(options.redisUrl, { enableOfflineQueue: worker, retryStrategy: (times) => Math.min(times * 200, 2_000), ...perConnection });
  }
  const seed = new URL(options.redisUrl);
  if (namesNonZeroDatabase(options.redisUrl)) throw new Error('a Redis Cluster has only database 0: the Redis URL must not name another');
  const nodes = [{ host: seed.hostname.replace(/^\[|\]$/g, ''), port: Number(seed.port || 6379) }];
  for (const entry of options.cluster.nodes ?? []) {
    const node = parseClusterNode(entry);
    if (!node) throw new Error(`Redis Cluster seed node "${entry}" is not host:port`);
    nodes.push(node);
  }
  const { enableOfflineQueue, lazyConnect, ...redisOptions } = perConnection;
  const clusterOptions: ClusterOptions = {
    enableOfflineQueue: enableOfflineQueue ?? worker,
    lazyConnect,
    clusterRetryStrategy: (times) => Math.min(times * 200, 2_000),
    redisOptions: { ...urlNodeOptions(seed), ...redisOptions },
  };
  return new Cluster(nodes, clusterOptions);
}

/**
 * A cluster client's "Failed to refresh slots cache." does not say why; this names the last seed
 * node's own error (connection refused, "This instance has cluster support disabled", ...). Any
 * other error is returned as it is.
 */
export function explainRedisError(err: Error): Error {
  const last = (err as { lastNodeError?: unknown }).lastNodeError;
  if (err.name !== 'ClusterAllFailedError' || !(last instanceof Error)) return err;
  return new Error(`Redis Cluster: no seed node answered with the slot map (${last.message})`, { cause: err });
}

/**
 * A second connection like `connection` that waits for Redis instead of failing fast (workers,
 * blocking reads): `maxRetriesPerRequest: null`, offline queue on.
 */
export function duplicateWaiting(connection: RedisClient): RedisClient {
  if (connection instanceof Cluster) {
    return connection.duplicate(undefined, {
      enableOfflineQueue: true,
      redisOptions: { ...connection.options.redisOptions, maxRetriesPerRequest: null },
    });
  }
  return connection.duplicate({ maxRetriesPerRequest: null, enableOfflineQueue: true });
}
