import type { RedisClient } from './redis.ts';

/**
 * Resolves when Redis answers PING on `connection`. A connection that is not `ready`
 * (reconnecting, closed) fails at once instead of queueing the command until Redis returns.
 */
export async function pingRedis(connection: RedisClient): Promise<void> {
  if (connection.status !== 'ready') throw new Error(`connection is ${connection.status}`);
  await connection.ping();
}
