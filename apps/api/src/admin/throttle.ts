/**
 * Throttling of admin credential guesses (the login form, `Authorization: Bearer`, HTTP Basic),
 * counted in Redis so every API instance shares the counts.
 *
 * Three counts of wrong credentials per window, each with its own limit:
 * - per credential: a user name tried (whatever address it comes from), or the admin token
 *   tried from one address (the token names no user; see below);
 * - per client address (IPv4, or an IPv6 /64), across every credential it tries;
 * - all addresses together.
 * Invariant: per window, at most `perCredential` wrong passwords for one user name, at most
 * `perAddress` wrong credentials from one address and at most `global` in all get an answer that
 * tells them apart from the right one. Every later attempt that the full count concerns, right or
 * wrong, is a 429 until the window passes: a guesser learns nothing more.
 *
 * Why these three. A count per address alone lets one attacker lock out everyone who shares the
 * address (behind a proxy without TRUST_PROXY, or an office's NAT), and lets an attacker with
 * many addresses guess one user's password without bound. Counting the user name tried bounds
 * guesses at one account across all addresses, and locks only that name: the other admins behind
 * the same address still log in. The address count is higher (default 50 against 10) and is only
 * reached by trying many different names from one address, which bounds a guesser who rotates
 * names. A locked count takes no more points (a 429 is not a failure), so hammering one locked
 * name never adds up to the address's lock. The admin token is one shared secret: counting it
 * across addresses would let anyone lock every script and browser out of it, so it is counted
 * per address and bounded overall by the global cap.
 *
 * Atomicity: the counts are read first (a locked count answers 429 without any comparison, so a
 * burst of guesses cannot make us run scrypt for each), then the credential is checked, then a
 * wrong one is one atomic increment per count (rate-limiter-flexible's `consume`, one Lua script
 * each): only increments 1..limit are answered 401, every later one 429, so parallel guesses
 * cannot all slip past a count that was read before it was written. The right credential is
 * accepted only while none of its counts has reached its limit, and then clears its credential's
 * count (its owner's typos must not add up to a lock); it never takes a point, so parallel
 * requests with good credentials never lock themselves out. A wrong guess stopped by one count
 * does not take points from the counts after it (credential, then address, then global), so one
 * address cannot use up the global cap alone. Which address a request comes from follows `trust
 * proxy` (TRUST_PROXY): without it X-Forwarded-For is ignored.
 *
 * Redis down or slow: no credential is accepted or refused (503, `admin_auth_unavailable`), i.e.
 * fail closed. The bound above must hold whatever state Redis is in; admin sessions live in
 * Redis, so the UI cannot work without it anyway, and most of it (bull-board) shows Redis.
 */
import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { RedisClient } from '@longhaul/queue';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';

export interface CredentialThrottleOptions {
  redis: RedisClient;
  /** Redis key prefix (the deployment's queue prefix). */
  prefix: string;
  /** Wrong passwords allowed per user name (the admin token: per address) per window. */
  perCredential: number;
  /** Wrong credentials allowed per client address per window, whatever they name. */
  perAddress: number;
  /** Wrong credentials allowed from all addresses together per window; 0: no such cap. */
  global: number;
  windowSeconds: number;
  /** Give up on Redis after this long (the attempt is then `unavailable`). Default 5 000 ms. */
  redisTimeoutMs?: number;
}

/** What a credential claims to be: a user name (form, Basic), or the admin token. */
export type CredentialClaim = { kind: 'user'; name: string } | { kind: 'token' };

export type ThrottleScope = 'credential' | 'address' | 'global';

export type CredentialVerdict =
  | { outcome: 'accepted' }
  /** `exhausted`: this failure used the last one allowed; attempts are throttled from now on (log it once). */
  | { outcome: 'refused'; exhausted?: { scope: ThrottleScope; retryAfterSeconds: number } }
  | { outcome: 'throttled'; scope: ThrottleScope; retryAfterSeconds: number }
  | { outcome: 'unavailable'; error: unknown };

export interface CredentialThrottle {
  /** Decide about one presented credential; `check` compares it (only called while no count is at its limit). */
  attempt(clientAddress: string | undefined, claim: CredentialClaim, check: () => Promise<boolean>): Promise<CredentialVerdict>;
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

/** The key a credential is counted under: a user name (hashed: any text can be tried), or the token from one client. */
function credentialKey(claim: CredentialClaim, address: string): string {
  return claim.kind === 'user' ? `user:${createHash('sha256').update(claim.name).digest('base64url')}` : `token:${address}`;
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
  const counts: { scope: ThrottleScope; limit: number; limiter: RateLimiterRedis }[] = [
    { scope: 'credential', limit: options.perCredential, limiter: limiter('admin-auth-failures-credential', options.perCredential) },
    { scope: 'address', limit: options.perAddress, limiter: limiter('admin-auth-failures', options.perAddress) },
  ];
  if (options.global > 0) counts.push({ scope: 'global', limit: options.global, limiter: limiter('admin-auth-failures-global', options.global) });

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
    async attempt(clientAddress, claim, check) {
      const address = clientKey(clientAddress);
      const keys = [credentialKey(claim, address), address, GLOBAL_KEY];
      try {
        // A locked count answers before any comparison: the same 429 for a right credential and
        // a wrong one, in the same time, and no scrypt for a guesser who is already locked out.
        const current = await withTimeout(Promise.all(counts.map((c, i) => c.limiter.get(keys[i]!))));
        for (const [i, c] of counts.entries()) {
          const res = current[i]!;
          if (reached(res, c.limit)) return { outcome: 'throttled', scope: c.scope, retryAfterSeconds: seconds(res!) };
        }
        if (await check()) {
          if (current[0]) await withTimeout(counts[0]!.limiter.delete(keys[0]!));
          return { outcome: 'accepted' };
        }
        // Parallel guesses may all have read counts below their limits: the atomic increments decide.
        let exhausted: { scope: ThrottleScope; retryAfterSeconds: number } | undefined;
        for (const [i, c] of counts.entries()) {
          const taken = await consume(c.limiter, keys[i]!);
          if (!taken.ok) return { outcome: 'throttled', scope: c.scope, retryAfterSeconds: seconds(taken.res) };
          if (!exhausted && taken.res.consumedPoints === c.limit) exhausted = { scope: c.scope, retryAfterSeconds: seconds(taken.res) };
        }
        return exhausted ? { outcome: 'refused', exhausted } : { outcome: 'refused' };
      } catch (error) {
        return { outcome: 'unavailable', error };
      }
    },
  };
}
