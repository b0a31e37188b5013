/**
 * Throttling of admin credential guesses (the login form's token, `Authorization: Bearer`, HTTP
 * Basic), counted in Redis so every API instance shares the counts.
 *
 * Invariant: per window, at most `perAddress` wrong credentials from one client address, and at
 * most `global` from all addresses together, get an answer that tells them apart from the right
 * one. The credential is compared in constant time, but what the comparison found is only acted
 * on once Redis has decided:
 * - a wrong credential is one atomic increment (rate-limiter-flexible's `consume`, one Lua
 *   script): only increments 1..limit are answered 401, every later one 429, so parallel guesses
 *   cannot all slip past a count that was read before it was written;
 * - the right credential is accepted only while neither count has reached its limit (else the
 *   same 429 a wrong one gets: a locked address learns nothing), and then clears its address's
 *   count. It takes no point, so a script's or a browser's parallel requests with good
 *   credentials never lock themselves out.
 * A wrong guess from an address already over its limit does not count toward the global cap,
 * so one address cannot use it up alone. IPv6 clients are counted per /64 (one subscriber's whole
 * prefix); which address a request comes from follows `trust proxy` (TRUST_PROXY).
 *
 * Redis down or slow: no credential is accepted or refused (503, `admin_auth_unavailable`), i.e.
 * fail closed. The bound above must hold whatever state Redis is in; admin sessions live in
 * Redis, so the UI cannot work without it anyway, and most of it (bull-board) shows Redis.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { RedisClient } from '@longhaul/queue';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';

export interface CredentialThrottleOptions {
  redis: RedisClient;
  /** Redis key prefix (the deployment's queue prefix). */
  prefix: string;
  /** Wrong credentials allowed per client address per window. */
  perAddress: number;
  /** Wrong credentials allowed from all addresses together per window; 0: no such cap. */
  global: number;
  windowSeconds: number;
  /** Give up on Redis after this long (the attempt is then `unavailable`). Default 5 000 ms. */
  redisTimeoutMs?: number;
}

export type CredentialVerdict =
  | { outcome: 'accepted' }
  /** `exhausted`: this failure used the last one allowed; attempts are throttled from now on (log it once). */
  | { outcome: 'refused'; exhausted?: { scope: 'address' | 'global'; retryAfterSeconds: number } }
  | { outcome: 'throttled'; scope: 'address' | 'global'; retryAfterSeconds: number }
  | { outcome: 'unavailable'; error: unknown };

export interface CredentialThrottle {
  /** Decide about one presented credential; `matches` is its constant-time comparison. */
  attempt(clientAddress: string | undefined, matches: () => boolean): Promise<CredentialVerdict>;
}

const GLOBAL_KEY = 'all';

/** The key a client is counted under: its IPv4 address, or its IPv6 /64. */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const ip = address.replace(/%.*$/, ''); // an IPv6 zone id
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
  if (mapped && isIPv4(mapped)) return mapped;
  if (isIPv4(ip)) return ip;
  if (isIPv6(ip)) return `${ipv6Groups(ip).slice(0, 4).join(':')}::/64`;
  return ip.slice(0, 64); // not an address (a trusted proxy's header said so): counted as given
}

/** The eight groups of an IPv6 address (valid per `isIPv6`), without leading zeros. */
function ipv6Groups(ip: string): string[] {
  let text = ip.toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((g) => Number.parseInt(g, 16).toString(16));
}

const reached = (res: RateLimiterRes | null, limit: number) => res !== null && res.consumedPoints >= limit;
const seconds = (res: RateLimiterRes) => Math.max(1, Math.ceil(res.msBeforeNext / 1000));

export function createCredentialThrottle(options: CredentialThrottleOptions): CredentialThrottle {
  // Generous: failing closed on a timeout refuses a right credential too, and under a burst the
  // time also counts the wait in this process's event loop. A Redis that is down (not connected)
  // is refused at once (rejectIfRedisNotReady), whatever this says.
  const redisTimeoutMs = options.redisTimeoutMs ?? 5_000;
  const limiter = (name: string, points: number) =>
    new RateLimiterRedis({ storeClient: options.redis, keyPrefix: `${options.prefix}:${name}`, points, duration: options.windowSeconds, rejectIfRedisNotReady: true });
  const perAddress = limiter('admin-auth-failures', options.perAddress);
  const global = options.global > 0 ? limiter('admin-auth-failures-global', options.global) : null;

  async function withTimeout<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer the admin credential check within ${redisTimeoutMs} ms`)), redisTimeoutMs);
    });
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One atomic increment; the limiter's refusal is a result, any other rejection an error. */
  async function consume(rl: RateLimiterRedis, key: string): Promise<{ ok: boolean; res: RateLimiterRes }> {
    try {
      return { ok: true, res: await withTimeout(rl.consume(key, 1)) };
    } catch (refusal) {
      if (refusal instanceof RateLimiterRes) return { ok: false, res: refusal };
      throw refusal;
    }
  }

  return {
    async attempt(clientAddress, matches) {
      const key = clientKey(clientAddress);
      const right = matches();
      try {
        // Both credentials take the same path while a limit holds (the same reads, the same 429),
        // so a locked-out guesser cannot tell a right one by its answer or by its timing.
        const [current, all] = await withTimeout(Promise.all([perAddress.get(key), global ? global.get(GLOBAL_KEY) : null]));
        if (reached(current, options.perAddress)) return { outcome: 'throttled', scope: 'address', retryAfterSeconds: seconds(current!) };
        if (reached(all, options.global)) return { outcome: 'throttled', scope: 'global', retryAfterSeconds: seconds(all!) };
        if (right) {
          if (current) await withTimeout(perAddress.delete(key));
          return { outcome: 'accepted' };
        }
        // Parallel guesses may all have read a count below the limit: the atomic increment decides.
        const mine = await consume(perAddress, key);
        if (!mine.ok) return { outcome: 'throttled', scope: 'address', retryAfterSeconds: seconds(mine.res) };
        if (global) {
          const everyone = await consume(global, GLOBAL_KEY);
          if (!everyone.ok) return { outcome: 'throttled', scope: 'global', retryAfterSeconds: seconds(everyone.res) };
          if (everyone.res.consumedPoints === options.global) return { outcome: 'refused', exhausted: { scope: 'global', retryAfterSeconds: seconds(everyone.res) } };
        }
        if (mine.res.consumedPoints === options.perAddress) return { outcome: 'refused', exhausted: { scope: 'address', retryAfterSeconds: seconds(mine.res) } };
        return { outcome: 'refused' };
      } catch (error) {
        return { outcome: 'unavailable', error };
      }
    },
  };
}
