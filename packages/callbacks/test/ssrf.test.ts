import { createServer, type Server } from 'node:net';
import { readSpecJson } from '@longhaul/specs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCallbackUrl, checkCallbackUrlResolved, createAddressPolicy, parseCidrs, sendCallback } from '../src/index.ts';

const cases = readSpecJson<{
  blocked_ips: string[];
  allowed_ips: string[];
  blocked_urls: string[];
}>('ssrf-cases.json');
const policy = createAddressPolicy();

describe('address policy', () => {
  it.each(cases.blocked_ips)('refuses %s', (ip) => {
    expect(policy.isAllowed(ip)).toBe(false);
  });
  it.each(cases.allowed_ips)('allows %s', (ip) => {
    expect(policy.isAllowed(ip)).toBe(true);
  });
  // Addresses that carry an IPv4 address. The vendored corpus covers IPv4-mapped, NAT64 and 6to4;
  // these add the IPv4-translated form (::ffff:0:0:0/96, which the corpus lacks), the local-use
  // NAT64 prefix and Teredo, each carrying a refused and a public IPv4.
  it.each([
    '::ffff:0:127.0.0.1', // IPv4-translated (SIIT) loopback
    '::ffff:0:7f00:1',
    '0:0:0:0:ffff:0:a00:1', // ... of 10.0.0.1
    '::ffff:0:a9fe:a9fe', // ... of 169.254.169.254
    '::ffff:0:808:808', // ... of 8.8.8.8: reached through a translator, refused whatever it carries
    '64:ff9b::a9fe:a9fe', // NAT64 of 169.254.169.254
    '64:ff9b:1::7f00:1', // local-use NAT64
    '64:ff9b:1::808:808',
    '2002:7f00:1::1', // 6to4 of 127.0.0.1
    '2002:808:808::1', // 6to4 of 8.8.8.8
    '2001:0:4136:e378:8000:63bf:80ff:fffe', // Teredo (client 127.0.0.1)
    '2001:0:808:808:8000:63bf:f7f7:f7f7', // Teredo, server and client 8.8.8.8
  ])('refuses %s (an address that carries an IPv4 address)', (ip) => {
    expect(policy.isAllowed(ip)).toBe(false);
  });

  it('judges an IPv4-mapped address as the IPv4 address it is, allow-list included', () => {
    const dev = createAddressPolicy(parseCidrs('127.0.0.0/8'));
    expect(dev.isAllowed('::ffff:127.0.0.1')).toBe(true);
    expect(dev.isAllowed('::ffff:10.0.0.1')).toBe(false);
    expect(policy.isAllowed('::ffff:8.8.8.8')).toBe(true);
  });

  it('does not let an allowed IPv4 range admit its translated, NAT64, 6to4 or Teredo forms', () => {
    // 127.0.0.0/8 means this host's loopback; the other forms reach a translator or relay instead.
    const dev = createAddressPolicy(parseCidrs('127.0.0.0/8, 10.0.0.0/8'));
    for (const ip of ['::ffff:0:127.0.0.1', '64:ff9b::7f00:1', '64:ff9b::a00:1', '2002:7f00:1::1', '2001:0:4136:e378:8000:63bf:80ff:fffe']) {
      expect(dev.isAllowed(ip), ip).toBe(false);
    }
  });

  it('admits an allow-listed NAT64, 6to4 or Teredo range only for the IPv4 addresses it may reach', () => {
    // An IPv6-only deployment behind NAT64 allows 64:ff9b::/96 for public destinations; that must
    // not open 64:ff9b::7f00:1 (loopback) or 64:ff9b::a9fe:a9fe (cloud metadata) to tenants.
    const nat64 = createAddressPolicy(parseCidrs('64:ff9b::/96, 64:ff9b:1::/48, 2002::/16, 2001::/32, ::ffff:0:0:0/96'));
    expect(nat64.isAllowed('64:ff9b::808:808')).toBe(true);
    expect(nat64.isAllowed('64:ff9b:1::808:808')).toBe(true);
    expect(nat64.isAllowed('2002:808:808::1')).toBe(true);
    expect(nat64.isAllowed('::ffff:0:808:808')).toBe(true);
    expect(nat64.isAllowed('2001:0:808:808:8000:63bf:f7f7:f7f7')).toBe(true);
    for (const ip of ['64:ff9b::7f00:1', '64:ff9b::a9fe:a9fe', '64:ff9b::a00:1', '64:ff9b:1::7f00:1', '2002:c0a8:1::1', '::ffff:0:7f00:1']) {
      expect(nat64.isAllowed(ip), ip).toBe(false);
    }
    // Teredo: both the server (bits 32-63) and the client (the last 32 bits, inverted) must be allowed.
    expect(nat64.isAllowed('2001:0:a00:1:8000:63bf:f7f7:f7f7'), 'server 10.0.0.1').toBe(false);
    expect(nat64.isAllowed('2001:0:808:808:8000:63bf:80ff:fffe'), 'client 127.0.0.1').toBe(false);
    // With the embedded range allowed as well, the allow-list is the operator's choice.
    const lab = createAddressPolicy(parseCidrs('64:ff9b::/96, 10.0.0.0/8'));
    expect(lab.isAllowed('64:ff9b::a00:1')).toBe(true);
    expect(lab.isAllowed('64:ff9b::7f00:1')).toBe(false);
  });

  it('admits an explicit allow-list only', () => {
    const dev = createAddressPolicy(parseCidrs('127.0.0.0/8, ::1/128'));
    expect(dev.isAllowed('127.0.0.1')).toBe(true);
    expect(dev.isAllowed('::1')).toBe(true);
    expect(dev.isAllowed('10.0.0.1')).toBe(false);
    expect(() => parseCidrs('300.0.0.0/8')).toThrow();
  });
});

describe('callback URLs', () => {
  it.each(cases.blocked_urls)('refuses %s', async (url) => {
    const parsed = checkCallbackUrl(url, policy);
    const resolved = await checkCallbackUrlResolved(url, policy);
    // Parse-time refuses literals and schemes; names (localhost) are refused once resolved.
    expect(parsed.ok && resolved.ok).toBe(false);
  });
  it.each(['http://[::ffff:0:127.0.0.1]/', 'http://[::ffff:0:7f00:1]:8080/hook', 'http://[64:ff9b::169.254.169.254]/latest/meta-data/', 'http://[2002:7f00:1::]/'])(
    'refuses %s at parse time',
    (url) => {
      expect(checkCallbackUrl(url, policy)).toMatchObject({ ok: false, reason: expect.stringMatching(/not a public address/) });
    },
  );
});

describe('delivery to blocked addresses', () => {
  let server: Server;
  let port: number;
  let connections = 0;
  beforeAll(async () => {
    server = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('never opens a connection to a refused address, literal or resolved', async () => {
    const urls = [
      `http://127.0.0.1:${port}/`,
      `http://localhost:${port}/`, // resolved by the lookup hook (the DNS-rebinding path)
      `http://2130706433:${port}/`,
      `http://0x7f000001:${port}/`,
      `http://127.1:${port}/`,
      `http://[::ffff:127.0.0.1]:${port}/`,
      `http://[::ffff:0:127.0.0.1]:${port}/`,
    ];
    for (const url of urls) {
      const result = await sendCallback({ url, body: '{}', headers: {}, policy, timeoutMs: 2000 });
      expect(result.outcome, url).toBe('blocked');
    }
    expect(connections).toBe(0);
  });
});
