/**
 * Standard Webhooks verification (https://www.standardwebhooks.com), as OpenAI signs its
 * project webhooks. Works on the raw bytes of the body; the expected signature is compared in
 * constant time against every space-separated `v1,` signature of the header, for every
 * configured secret (rotation: old and new both verify). The clock is injected, so the time
 * tolerance (300 s both ways by default) is testable with fixed vectors.
 *
 * The HMAC is node:crypto's (HMAC-SHA256 of `<id>.<timestamp>.<body>` under the base64-decoded
 * secret, as the spec defines it), with each secret's key decoded once: the `standardwebhooks`
 * library hashes in JavaScript and decodes the secret on every call, ~33 µs of CPU per signature
 * against ~6 µs here, paid on every callback delivery and every OpenAI webhook received. The
 * library stays the reference: the tests check this module against the spec's vectors and
 * against the library's own `sign`, and the callback tests verify what Longhaul sends with it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const DEFAULT_TOLERANCE_SECONDS = 300;

export type VerifyFailure = 'missing_headers' | 'invalid_timestamp' | 'timestamp_too_old' | 'timestamp_too_new' | 'no_matching_signature' | 'no_secret';

export type VerifyResult = { ok: true; webhookId: string; timestamp: number } | { ok: false; reason: VerifyFailure };

export interface VerifyInput {
  payload: Buffer | string;
  /** Header lookup (case-insensitive), e.g. `(name) => req.get(name)`. */
  header: (name: string) => string | undefined;
  /** One or more `whsec_…` secrets. */
  secrets: readonly string[];
  now: Date;
  toleranceSeconds?: number;
}

/** Split a setting that may hold several secrets (comma or whitespace separated). */
export function parseSecrets(value: string | undefined): string[] {
  return (value ?? '').split(/[\s,]+/).filter((s) => s.length > 0 && s !== 'whsec_');
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Decoded keys by secret (a process holds a handful: its tenants' endpoints and OpenAI's). */
const keys = new Map<string, Buffer>();

/** A secret's HMAC key: the base64 after `whsec_` (the prefix is optional, as in the library). Throws on a secret that is not base64. */
function hmacKey(secret: string): Buffer {
  let key = keys.get(secret);
  if (key) return key;
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  if (!BASE64.test(encoded)) throw new Error('webhook secret is not base64');
  key = Buffer.from(encoded, 'base64');
  if (keys.size >= 10_000) keys.clear();
  keys.set(secret, key);
  return key;
}

/** The `v1` signature (base64, without the `v1,` prefix) of a payload. */
function signature(secret: string, webhookId: string, timestampSeconds: number, payload: string): string {
  return createHmac('sha256', hmacKey(secret)).update(`${webhookId}.${timestampSeconds}.${payload}`).digest('base64');
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function verifyWebhook(input: VerifyInput): VerifyResult {
  const id = input.header('webhook-id');
  const ts = input.header('webhook-timestamp');
  const signatures = input.header('webhook-signature');
  if (!id || !ts || !signatures) return { ok: false, reason: 'missing_headers' };
  if (!/^\d{1,12}$/.test(ts)) return { ok: false, reason: 'invalid_timestamp' };
  const timestamp = Number(ts);
  const nowSeconds = Math.floor(input.now.getTime() / 1000);
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (nowSeconds - timestamp > tolerance) return { ok: false, reason: 'timestamp_too_old' };
  if (timestamp - nowSeconds > tolerance) return { ok: false, reason: 'timestamp_too_new' };
  if (input.secrets.length === 0) return { ok: false, reason: 'no_secret' };

  const offered = signatures
    .split(' ')
    .map((s) => s.split(','))
    .filter(([version, sig]) => version === 'v1' && sig)
    .map(([, sig]) => sig!);
  const payload = typeof input.payload === 'string' ? input.payload : input.payload.toString('utf8');
  for (const secret of input.secrets) {
    let expected: string;
    try {
      expected = signature(secret, id, timestamp, payload);
    } catch {
      continue; // an unusable secret (bad base64) never verifies anything
    }
    if (offered.some((sig) => constantTimeEqual(sig, expected))) return { ok: true, webhookId: id, timestamp };
  }
  return { ok: false, reason: 'no_matching_signature' };
}

/** Sign a payload: the three headers a Standard Webhooks sender puts on the request. */
export function signWebhook(input: { secrets: readonly string[]; webhookId: string; payload: string; now: Date }): Record<string, string> {
  const timestamp = Math.floor(input.now.getTime() / 1000);
  const signatures = input.secrets.map((secret) => `v1,${signature(secret, input.webhookId, timestamp, input.payload)}`);
  return {
    'webhook-id': input.webhookId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatures.join(' '),
  };
}

/** A new Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}
