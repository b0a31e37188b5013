import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAddressPolicy, sendCallback } from '../src/index.ts';

// The receiver listens on loopback, which the allow-list admits (as CALLBACK_ALLOWED_CIDRS does in development).
const policy = createAddressPolicy(['127.0.0.0/8']);

describe('an endpoint that redirects', () => {
  let server: Server;
  let url: string;
  let location = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(Number(req.url?.slice(1)) || 302, { location }).end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  });

  it.each([301, 302, 307, 308])('is not followed, and the error does not echo its Location (%i)', async (status) => {
    location = 'http://169.254.169.254/latest/meta-data/iam/security-credentials/admin?token=s3cr3t';
    const result = await sendCallback({ url: `${url}/${status}`, body: '{}', headers: {}, policy, timeoutMs: 2000 });
    expect(result).toMatchObject({ outcome: 'redirect', statusCode: status, error: `redirect refused (status ${status})` });
    expect(JSON.stringify(result.error)).not.toContain('169.254');
    // The operator's log gets the host only (no path or query, which may carry secrets).
    expect(result.redirectHost).toBe('169.254.169.254');
  });

  it('reports a relative, odd or overlong Location by host only, bounded', async () => {
    location = '/elsewhere?x=1';
    expect((await sendCallback({ url: `${url}/302`, body: '{}', headers: {}, policy })).redirectHost).toBe(new URL(url).host);
    location = `http://${'a'.repeat(300)}.example/`;
    const long = await sendCallback({ url: `${url}/302`, body: '{}', headers: {}, policy });
    expect(long.redirectHost!.length).toBeLessThanOrEqual(100);
    location = 'http://[not an address/';
    expect((await sendCallback({ url: `${url}/302`, body: '{}', headers: {}, policy })).redirectHost).toBe('(unparsable)');
    location = '';
    expect((await sendCallback({ url: `${url}/302`, body: '{}', headers: {}, policy })).redirectHost).toBe('(none)');
  });
});
