/**
 * The Redis settings every app reads (REDIS_URL, REDIS_CLUSTER, REDIS_CLUSTER_NODES, QUEUE_PREFIX),
 * checked the same way by the API and the worker: a schema for the node list and the rules that
 * relate the settings to each other (a cluster needs a hash-tagged prefix and database 0; nodes
 * without REDIS_CLUSTER are a mistake).
 */
import { z } from 'zod';
import { clusterPrefixProblem, namesNonZeroDatabase, parseClusterNode } from './redis.ts';

/** REDIS_CLUSTER_NODES: comma-separated `host:port` seed nodes of the cluster besides REDIS_URL's. */
export const clusterNodesSchema = z.string().transform((value, ctx) => {
  const entries = value.split(',').map((e) => e.trim());
  const bad = entries.findIndex((e) => parseClusterNode(e) === null);
  if (bad >= 0) {
    ctx.addIssue({ code: 'custom', message: `entry ${bad + 1} is not host:port` });
    return z.NEVER;
  }
  return entries;
});

export interface RedisSettings {
  REDIS_URL: string;
  REDIS_CLUSTER: boolean;
  REDIS_CLUSTER_NODES?: string[] | undefined;
  QUEUE_PREFIX?: string | undefined;
}

/** What is wrong with the Redis settings taken together, as `{ variable, message }`; empty when nothing. */
export function redisSettingsProblems(e: RedisSettings): { variable: keyof RedisSettings; message: string }[] {
  if (!e.REDIS_CLUSTER) return e.REDIS_CLUSTER_NODES ? [{ variable: 'REDIS_CLUSTER_NODES', message: 'names nodes of a Redis Cluster: set REDIS_CLUSTER=true too' }] : [];
  const problems: { variable: keyof RedisSettings; message: string }[] = [];
  const prefixProblem = e.QUEUE_PREFIX === undefined ? null : clusterPrefixProblem(e.QUEUE_PREFIX);
  if (prefixProblem) problems.push({ variable: 'QUEUE_PREFIX', message: prefixProblem });
  if (namesNonZeroDatabase(e.REDIS_URL)) problems.push({ variable: 'REDIS_URL', message: 'a Redis Cluster has only database 0: name none' });
  return problems;
}
