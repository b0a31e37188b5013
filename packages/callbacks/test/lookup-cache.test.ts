/**
 * The connect-time SSRF hook's DNS cache: a host's checked answer serves new connections for a
 * while, and it is always an answer the policy admitted, so what is dialled is what was checked
 * even when the name's DNS answer changes afterwards (rebinding). The resolver is a scripted
 * stand-in for DNS (no resolver on loopback can be made to rebind on cue).
 */
import type { LookupAddress } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { SsrfBlockedError, createAddressPolicy, guardedLookup } from '../src/index.ts';

const PUBLIC = '93.184.216.34';
const LOOPBACK = '127.0.0.1';

/** A resolver answering `answers` in turn (the last one from then on), counting its calls. */
function scripted(...answers: string[][]) {
  const calls: { hostname: string; family: number | undefined }[] = [];
  const resolve = (hostname: string, options: { family?: number | string }, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => {
    const answer = answers[Math.min(calls.length, answers.length - 1)]!;
    calls.push({ hostname, family: typeof options.family === 'number' ? options.family : undefined });
    queueMicrotask(() =>
      callback(
        null,
        answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
      ),
    );
  };
  return { resolve, calls };
}

function lookupOnce(lookup: ReturnType<typeof guardedLookup>, hostname: string, options: { all?: boolean; family?: number } = {}) {
  return new Promise<{ err: Error | null; address: string | LookupAddress[] }>((resolve) => lookup(hostname, options, (err, address) => resolve({ err, address })));
}

describe('guardedLookup cache', () => {
  const policy = createAddressPolicy();

  it('serves the checked answer until its TTL, then checks the new answer (a rebinding is refused, never dialled)', async () => {
    const dns = scripted([PUBLIC], [LOOPBACK]);
    let now = 0;
    const lookup = guardedLookup(policy, { cacheTtlMs: 30_000, resolve: dns.resolve, now: () => now });

    expect(await lookupOnce(lookup, 'hooks.example.com')).toEqual({ err: null, address: PUBLIC });
    now = 29_999;
    // The name now points at loopback, but the cached answer is the checked public address.
    expect(await lookupOnce(lookup, 'hooks.example.com', { all: true })).toEqual({ err: null, address: [{ address: PUBLIC, family: 4 }] });
    expect(dns.calls).toHaveLength(1);

    now = 30_000;
    const rebound = await lookupOnce(lookup, 'hooks.example.com');
    expect(rebound.err).toBeInstanceOf(SsrfBlockedError);
    expect(rebound.err?.message).toMatch(/resolves to 127\.0\.0\.1/);
    expect(dns.calls).toHaveLength(2);
  });

  it('keeps no refused answer: the next connection resolves again', async () => {
    const dns = scripted([LOOPBACK], [PUBLIC]);
    const lookup = guardedLookup(policy, { cacheTtlMs: 30_000, resolve: dns.resolve, now: () => 0 });
    expect((await lookupOnce(lookup, 'flaky.example.com')).err).toBeInstanceOf(SsrfBlockedError);
    expect(await lookupOnce(lookup, 'flaky.example.com')).toEqual({ err: null, address: PUBLIC });
    expect(dns.calls).toHaveLength(2);
  });

  it('refuses a mixed answer whole, and does not keep it', async () => {
    const dns = scripted([PUBLIC, LOOPBACK]);
    const lookup = guardedLookup(policy, { cacheTtlMs: 30_000, resolve: dns.resolve, now: () => 0 });
    for (let i = 0; i < 2; i++) expect((await lookupOnce(lookup, 'mixed.example.com', { all: true })).err).toBeInstanceOf(SsrfBlockedError);
    expect(dns.calls).toHaveLength(2);
  });

  it('keeps answers per host and per address family', async () => {
    const dns = scripted([PUBLIC]);
    const lookup = guardedLookup(policy, { cacheTtlMs: 30_000, resolve: dns.resolve, now: () => 0 });
    await lookupOnce(lookup, 'a.example.com');
    await lookupOnce(lookup, 'A.example.com');
    await lookupOnce(lookup, 'a.example.com', { family: 4 });
    await lookupOnce(lookup, 'b.example.com');
    expect(dns.calls.map((c) => `${c.hostname} ${c.family ?? 0}`)).toEqual(['a.example.com 0', 'a.example.com 4', 'b.example.com 0']);
  });

  it('resolves on every connection without a TTL (the default)', async () => {
    const dns = scripted([PUBLIC]);
    const lookup = guardedLookup(policy, { resolve: dns.resolve });
    await lookupOnce(lookup, 'a.example.com');
    await lookupOnce(lookup, 'a.example.com');
    expect(dns.calls).toHaveLength(2);
  });
});
