/**
 * Admin sessions: what the login form hands out, kept server-side in Redis so logging out ends
 * them everywhere, on every API instance. Each belongs to one actor (identities.ts).
 *
 * The cookie is `<id>.<mac>`: 32 random bytes, and an HMAC-SHA256 of the actor and the id keyed
 * with the actor's credential (the admin token, or the named admin's password hash). Redis holds,
 * under a SHA-256 of the id, the actor and the login time, with the session's lifetime as its TTL
 * (absolute, not sliding). A session is valid while both hold: its key exists (logout deletes
 * it) and the MAC matches the actor's current credential (so changing ADMIN_TOKEN ends every
 * token session, changing or removing a user ends theirs). A copy of Redis is not enough to make
 * a cookie, nor is write access to it without the token or the user's hash.
 *
 * A cookie of any other shape is no session: it is never decoded, so no value can make it throw.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { Request, Response } from 'express';
import type { RedisClient } from '@longhaul/queue';

export const SESSION_COOKIE = 'longhaul_admin';
const COOKIE_PATH = '/admin';
const SESSION_SHAPE = /^([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/;

export interface AdminSessions {
  /** A new session of `actor`; returns the cookie value. */
  create(actor: string, now: Date): Promise<string>;
  /** The actor of a live session, or undefined. Rejects when Redis does not answer. */
  verify(value: string): Promise<string | undefined>;
  /** End the session (nothing happens for a value that is none); returns whose it was. */
  revoke(value: string): Promise<string | undefined>;
}

export function createAdminSessions(options: { redis: RedisClient; prefix: string; ttlMs: number; secretOf: (actor: string) => string | undefined }): AdminSessions {
  const mac = (secret: string, actor: string, id: string) => createHmac('sha256', secret).update(`longhaul-admin-session:${actor}:${id}`).digest('base64url');
  const key = (id: string) => `${options.prefix}:admin-session:${createHash('sha256').update(id).digest('hex')}`;
  /** The session's id and actor, if the cookie value is a live session carrying its actor's current MAC. */
  async function live(value: string): Promise<{ id: string; actor: string } | undefined> {
    const [, id, given] = SESSION_SHAPE.exec(value) ?? [];
    if (!id || !given) return undefined;
    const stored = await options.redis.get(key(id));
    let actor: unknown;
    try {
      actor = stored === null ? undefined : (JSON.parse(stored) as { actor?: unknown }).actor;
    } catch {
      return undefined;
    }
    const secret = typeof actor === 'string' ? options.secretOf(actor) : undefined;
    if (secret === undefined) return undefined;
    return timingSafeEqual(Buffer.from(given), Buffer.from(mac(secret, actor as string, id))) ? { id, actor: actor as string } : undefined;
  }
  return {
    async create(actor, now) {
      const secret = options.secretOf(actor);
      if (secret === undefined) throw new Error(`no credential to sign a session of ${actor}`);
      const id = randomBytes(32).toString('base64url');
      await options.redis.set(key(id), JSON.stringify({ actor, created_at: now.toISOString() }), 'PX', options.ttlMs);
      return `${id}.${mac(secret, actor, id)}`;
    },
    async verify(value) {
      return (await live(value))?.actor;
    },
    async revoke(value) {
      const session = await live(value);
      if (session) await options.redis.del(key(session.id));
      return session?.actor;
    },
  };
}

/** The session cookie's raw value, if the request has one (not decoded: a session is plain base64url). */
export function sessionCookie(req: Request): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * `Secure` on the session cookie: always (`true`), never (`false`), or `auto`: unless the browser
 * talks plain HTTP to this machine (the request is not over TLS, its Host is a loopback name or
 * address and its Origin, when sent, is plain HTTP too). So `npm start` works on
 * http://127.0.0.1:3000 while behind TLS termination (the browser's Origin is https, or it reached
 * us by a real name) the cookie is never sent in clear.
 */
export type CookieSecureSetting = boolean | 'auto';

function isLoopbackHost(host: string): boolean {
  const name = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIPv4(name)) return name.startsWith('127.');
  return isIPv6(name) && (name === '::1' || name === '::ffff:127.0.0.1' || /^::ffff:127\./.test(name));
}

export function cookieIsSecure(req: Request, setting: CookieSecureSetting): boolean {
  if (setting !== 'auto') return setting;
  if (req.secure) return true;
  const origin = req.headers.origin;
  if (origin && !origin.startsWith('http://')) return true;
  if (origin && !isLoopbackHost(URL.canParse(origin) ? new URL(origin).hostname : '')) return true;
  return !isLoopbackHost(req.hostname ?? '');
}

export function setSessionCookie(res: Response, req: Request, value: string, options: { ttlMs: number; secure: CookieSecureSetting }): void {
  res.cookie(SESSION_COOKIE, value, { httpOnly: true, sameSite: 'strict', path: COOKIE_PATH, secure: cookieIsSecure(req, options.secure), maxAge: options.ttlMs });
}

export function clearSessionCookie(res: Response, req: Request, secure: CookieSecureSetting): void {
  res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', path: COOKIE_PATH, secure: cookieIsSecure(req, secure) });
}
