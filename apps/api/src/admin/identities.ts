/**
 * Who an admin credential belongs to: the actor every admin action is recorded under.
 *
 * - `ADMIN_TOKEN` (Bearer, or the login form without a user name): `admin`.
 * - A named admin of ADMIN_USERS (the login form, or HTTP Basic `name:password`): the name.
 * - `ADMIN_BASIC_AUTH` (`user:password`): `basic:<user>` (a `:` never appears in a user's name).
 * - `ADMIN_AUTH_DISABLED`: `anonymous`.
 *
 * A password check costs one scrypt whether the name exists or not (an unknown name is checked
 * against a hash of nothing), so the time of an answer does not tell which names exist. HTTP
 * Basic sends the password with every request: a right `name:password` is remembered in memory
 * (as an HMAC under a key of this process, for a minute) so a browser's page load does not pay
 * for one scrypt per asset. Wrong ones are never remembered.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type AdminUser, hashPassword, verifyPassword } from './passwords.ts';

export const TOKEN_ACTOR = 'admin';
export const ANONYMOUS_ACTOR = 'anonymous';
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 1_000;

/** Constant-time string comparison (length differences still take the same path). */
export function safeEqual(a: string, b: string): boolean {
  const x = createHmac('sha256', 'longhaul-compare').update(a).digest();
  const y = createHmac('sha256', 'longhaul-compare').update(b).digest();
  return timingSafeEqual(x, y);
}

export interface AdminCredentials {
  token?: string;
  /** `user:password`. */
  basicAuth?: string;
  users?: AdminUser[];
}

export interface AdminIdentities {
  /** Whether any password login (form or Basic) is possible. */
  readonly hasUsers: boolean;
  /** The actor of a presented admin token, or undefined. Constant time. */
  checkToken(token: unknown): string | undefined;
  /** The actor of a user name and password (ADMIN_USERS, then ADMIN_BASIC_AUTH), or undefined. */
  checkPassword(name: string, password: string): Promise<string | undefined>;
  /**
   * What an actor's sessions are signed with: the token for `admin`, the user's password hash for
   * a named admin. Changing either ends that actor's sessions; an actor no longer configured has none.
   */
  sessionSecret(actor: string): string | undefined;
}

export function createAdminIdentities(config: AdminCredentials | undefined): AdminIdentities {
  const users = new Map<string, AdminUser>((config?.users ?? []).map((u) => [u.name, u]));
  const basic = config?.basicAuth ? { user: config.basicAuth.slice(0, config.basicAuth.indexOf(':')), credentials: config.basicAuth } : undefined;
  const token = config?.token;
  // A hash of nothing with the default parameters: what an unknown name is checked against.
  let decoy: Promise<string> | undefined;
  const cacheKey = randomBytes(32);
  const verified = new Map<string, { actor: string; until: number }>();

  function remembered(name: string, password: string): { key: string; actor?: string } {
    const key = createHmac('sha256', cacheKey).update(`${name}\0${password}`).digest('base64url');
    const hit = verified.get(key);
    if (hit && hit.until > Date.now()) return { key, actor: hit.actor };
    if (hit) verified.delete(key);
    return { key };
  }
  function remember(key: string, actor: string): void {
    if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
    verified.set(key, { actor, until: Date.now() + VERIFIED_TTL_MS });
  }

  return {
    hasUsers: users.size > 0,
    checkToken(given) {
      return token !== undefined && typeof given === 'string' && safeEqual(given, token) ? TOKEN_ACTOR : undefined;
    },
    async checkPassword(name, password) {
      const cached = remembered(name, password);
      if (cached.actor) return cached.actor;
      const user = users.get(name);
      let actor: string | undefined;
      if (user) {
        if (await verifyPassword(password, user.passwordHash)) actor = user.name;
      } else {
        decoy ??= hashPassword('');
        await verifyPassword(password, await decoy);
        if (basic && name === basic.user && safeEqual(`${name}:${password}`, basic.credentials)) actor = `basic:${basic.user}`;
      }
      if (actor) remember(cached.key, actor);
      return actor;
    },
    sessionSecret(actor) {
      if (actor === TOKEN_ACTOR) return token;
      return users.get(actor)?.passwordHash;
    },
  };
}
