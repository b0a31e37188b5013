/**
 * Password hashes of the named admins (ADMIN_USERS): scrypt (node:crypto) with a random salt per
 * hash, written as `scrypt:<N>:<r>:<p>:<salt>:<key>` (salt and key base64url). The parameters
 * travel with each hash, so raising the default later leaves existing hashes verifiable. The
 * format has no `$` (shells and Compose files would expand it) and no `,` (the list separator).
 *
 * ADMIN_USERS is `name:hash,name:hash`. `admin` (the actor of ADMIN_TOKEN) and `anonymous` (the
 * actor with ADMIN_AUTH_DISABLED) are not user names, so the audit log's actors stay unambiguous.
 * Hashes are made with `node apps/api/dist/admin/hash-password.js [name]` (hash-password.ts).
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** 32 MiB and about 0.1 s per hash on one core of a 2020s server. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** Upper bounds a hash may ask for: a configured hash cannot make one check take a gigabyte. */
const MAX = { N: 2 ** 20, r: 32, p: 16, memoryBytes: 256 * 1024 * 1024 };
export const MIN_PASSWORD_LENGTH = 12;

export interface AdminUser {
  name: string;
  /** `scrypt:N:r:p:salt:key`. */
  passwordHash: string;
}

interface ParsedHash extends ScryptParams {
  salt: Buffer;
  key: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function parseHash(text: string): ParsedHash | string {
  const parts = text.split(':');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return 'expected scrypt:N:r:p:salt:key (made by hash-password)';
  const [N, r, p] = parts.slice(1, 4).map((v) => (/^\d{1,8}$/.test(v!) ? Number(v) : Number.NaN)) as [number, number, number];
  if (!(N >= 2 && N <= MAX.N && (N & (N - 1)) === 0)) return `N must be a power of two up to ${MAX.N}`;
  if (!(r >= 1 && r <= MAX.r)) return `r must be 1..${MAX.r}`;
  if (!(p >= 1 && p <= MAX.p)) return `p must be 1..${MAX.p}`;
  if (128 * N * r > MAX.memoryBytes) return `N and r ask for more than ${MAX.memoryBytes / 2 ** 20} MiB (128·N·r bytes)`;
  const [salt, key] = [parts[4]!, parts[5]!];
  if (!B64URL.test(salt) || !B64URL.test(key)) return 'salt and key must be base64url';
  const parsed = { N, r, p, salt: Buffer.from(salt, 'base64url'), key: Buffer.from(key, 'base64url') };
  if (parsed.salt.length < 8 || parsed.key.length < 16) return 'salt or key too short';
  return parsed;
}

function derive(password: string, salt: Buffer, params: ScryptParams, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem: what these parameters need (128·N·r bytes) with room to spare.
    scrypt(password.normalize('NFC'), salt, length, { ...params, maxmem: 256 * params.N * params.r }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, params, KEY_BYTES);
  return `scrypt:${params.N}:${params.r}:${params.p}:${salt.toString('base64url')}:${key.toString('base64url')}`;
}

/** Whether `password` is the one `hash` was made from (a malformed hash matches nothing). */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parsed = parseHash(hash);
  if (typeof parsed === 'string') return false;
  const key = await derive(password, parsed.salt, parsed, parsed.key.length);
  return timingSafeEqual(key, parsed.key);
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const RESERVED_NAMES = new Set(['admin', 'anonymous']);

/** ADMIN_USERS: `alice:scrypt:…,bob:scrypt:…`. */
export const adminUsersSchema = z.string().transform((value, ctx): AdminUser[] => {
  const users: AdminUser[] = [];
  for (const [i, raw] of value.split(',').entries()) {
    const entry = raw.trim();
    const colon = entry.indexOf(':');
    const name = colon > 0 ? entry.slice(0, colon) : '';
    const passwordHash = entry.slice(colon + 1);
    const problem = !NAME.test(name)
      ? 'expected name:hash, the name of letters, digits and . _ @ - (at most 64)'
      : RESERVED_NAMES.has(name.toLowerCase())
        ? `'${name}' is reserved (the actor of ADMIN_TOKEN is admin; with ADMIN_AUTH_DISABLED, anonymous)`
        : users.some((u) => u.name === name)
          ? `'${name}' appears twice`
          : typeof parseHash(passwordHash) === 'string'
            ? `the hash of '${name}': ${parseHash(passwordHash) as string}`
            : undefined;
    if (problem) {
      ctx.addIssue({ code: 'custom', message: `entry ${i + 1}: ${problem}` });
      return z.NEVER;
    }
    users.push({ name, passwordHash });
  }
  return users;
});
