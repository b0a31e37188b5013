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
    ];
    for (const url of urls) {
      const result = await sendCallback({ url, body: '{}', headers: {}, policy, timeoutMs: 2000 });
      expect(result.outcome, url).toBe('blocked');
    }
    expect(connections).toBe(0);
  });
});
