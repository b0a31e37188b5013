import { randomBytes } from 'node:crypto';
import { readSpecJson } from '@longhaul/specs';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { parseSecrets, signWebhook, verifyWebhook } from '../src/index.ts';

interface Vector {
  name: string;
  secret: string;
  msg_id: string;
  timestamp: number | null;
  payload: string;
  expected_signature: string;
  valid: boolean;
}
const vectors = readSpecJson<Vector[]>('standard-webhooks-vectors.json');

const headersOf = (h: Record<string, string | undefined>) => (name: string) => h[name.toLowerCase()];

describe('verifyWebhook against the Standard Webhooks vectors', () => {
  it.each(vectors.map((v) => [v.name, v] as const))('%s', (_name, v) => {
    const now = v.timestamp === null ? new Date() : new Date(v.timestamp * 1000);
    const timestamp = String(Math.floor(now.getTime() / 1000));
    const result = verifyWebhook({
      payload: Buffer.from(v.payload),
      header: headersOf({ 'webhook-id': v.msg_id, 'webhook-timestamp': timestamp, 'webhook-signature': v.expected_signature }),
      secrets: [v.secret],
      now,
    });
    expect(result.ok).toBe(v.valid);
    if (v.valid) {
      // Signing produces exactly the vector's signature.
      expect(signWebhook({ secrets: [v.secret], webhookId: v.msg_id, payload: v.payload, now })['webhook-signature']).toBe(v.expected_signature);
    }
  });
});

describe('verifyWebhook edge cases', () => {
  const v = vectors.find((x) => x.valid && x.timestamp !== null)!;
  const at = new Date(v.timestamp! * 1000);
  const base = { 'webhook-id': v.msg_id, 'webhook-timestamp': String(v.timestamp), 'webhook-signature': v.expected_signature };
  const check = (h: Record<string, string | undefined>, opts: { now?: Date; secrets?: string[]; payload?: string } = {}) =>
    verifyWebhook({ payload: opts.payload ?? v.payload, header: headersOf(h), secrets: opts.secrets ?? [v.secret], now: opts.now ?? at });

  it('accepts ±300 s and rejects ±301 s', () => {
    expect(check(base, { now: new Date(at.getTime() + 300_000) }).ok).toBe(true);
    expect(check(base, { now: new Date(at.getTime() - 300_000) }).ok).toBe(true);
    expect(check(base, { now: new Date(at.getTime() + 301_000) })).toEqual({ ok: false, reason: 'timestamp_too_old' });
    expect(check(base, { now: new Date(at.getTime() - 301_000) })).toEqual({ ok: false, reason: 'timestamp_too_new' });
  });

  it('rejects each missing header', () => {
    for (const name of Object.keys(base)) expect(check({ ...base, [name]: undefined })).toEqual({ ok: false, reason: 'missing_headers' });
  });

  it('rejects malformed, empty and truncated signatures and timestamps', () => {
    for (const sig of [
      'v1,dawfeoifkpqwoekfpqoekf',
      'v1,',
      v.expected_signature.slice(0, -4),
      v.expected_signature.replace('v1,', ''),
      v.expected_signature.replace('v1,', 'v2,'),
    ]) {
      expect(check({ ...base, 'webhook-signature': sig }).ok).toBe(false);
    }
    for (const ts of ['161426533.0', 'invalid timestamp', '-161426533']) expect(check({ ...base, 'webhook-timestamp': ts })).toEqual({ ok: false, reason: 'invalid_timestamp' });
  });

  it('accepts a header with several signatures when one matches', () => {
    const sig = `v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= ${v.expected_signature} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=`;
    expect(check({ ...base, 'webhook-signature': sig }).ok).toBe(true);
  });

  it('verifies with any of several secrets (rotation) and refuses empty ones', () => {
    expect(check(base, { secrets: ['whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', v.secret] }).ok).toBe(true);
    expect(check(base, { secrets: ['whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'] }).ok).toBe(false);
    expect(check(base, { secrets: parseSecrets('whsec_') })).toEqual({ ok: false, reason: 'no_secret' });
    expect(check(base, { secrets: parseSecrets('') })).toEqual({ ok: false, reason: 'no_secret' });
    expect(parseSecrets(`whsec_a, whsec_b whsec_c`)).toEqual(['whsec_a', 'whsec_b', 'whsec_c']);
  });

  it('rejects a tampered body', () => {
    expect(check(base, { payload: `${v.payload} ` }).ok).toBe(false);
  });
});

describe('signWebhook against the standardwebhooks library', () => {
  it('signs as the library does, for any secret, id, time and body', () => {
    for (let i = 0; i < 200; i++) {
      const secret = `${i % 2 ? 'whsec_' : ''}${randomBytes(8 + (i % 40)).toString('base64')}`;
      const webhookId = `msg_${randomBytes(6).toString('hex')}`;
      const now = new Date(1_700_000_000_000 + i * 1_234_567);
      const payload = JSON.stringify({ i, text: 'héllo ✓ '.repeat(i % 7), nested: { n: i } });
      const expected = new Webhook(secret).sign(webhookId, now, payload);
      expect(signWebhook({ secrets: [secret], webhookId, payload, now })['webhook-signature']).toBe(expected);
      const header = (name: string) => ({ 'webhook-id': webhookId, 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': expected })[name];
      expect(verifyWebhook({ payload: Buffer.from(payload), header, secrets: [secret], now }).ok).toBe(true);
    }
  });

  it('refuses to sign with a secret that is not base64, and never verifies with one', () => {
    expect(() => signWebhook({ secrets: ['whsec_not base64!'], webhookId: 'msg_1', payload: '{}', now: new Date() })).toThrow();
    const v = vectors.find((x) => x.valid && x.timestamp !== null)!;
    const header = headersOf({ 'webhook-id': v.msg_id, 'webhook-timestamp': String(v.timestamp), 'webhook-signature': v.expected_signature });
    expect(verifyWebhook({ payload: v.payload, header, secrets: ['whsec_%%%', v.secret], now: new Date(v.timestamp! * 1000) }).ok).toBe(true);
    expect(verifyWebhook({ payload: v.payload, header, secrets: ['whsec_%%%'], now: new Date(v.timestamp! * 1000) }).ok).toBe(false);
  });
});
