/**
 * Where metrics are served, with the real API and worker processes: the API's tenant-facing port
 * serves no /metrics unless METRICS_TOKEN is configured (and then only with it); each process has
 * a metrics listener of its own, on loopback unless METRICS_HOST says otherwise, that honours
 * METRICS_TOKEN too. The metrics name models and tenants, so no tenant may read them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../chaos/servers.ts';
import { type Stack, startStack } from './harness.ts';
import { parseMetrics } from './prometheus.ts';
import { exited, spawnWorker } from './worker-process.ts';

const TOKEN = 'metrics_token_0123456789abcdef';
const PROMETHEUS = /^text\/plain; version=0\.0\.4/;

let stack: Stack;
const children: ChildProcess[] = [];
beforeAll(async () => {
  stack = await startStack({ startWorker: false });
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  await Promise.all(children.map(exited));
  await stack?.stop();
});

/** The API as a real process (apps/api/src/index.ts) on its own ports; METRICS_HOST left unset unless given. */
async function startApi(env: Record<string, string> = {}) {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ['--conditions=@longhaul/source', '--import', 'tsx', 'apps/api/src/index.ts'], {
    cwd: new URL('..', import.meta.url).pathname,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      DATABASE_URL: stack.database.url,
      REDIS_URL: stack.redisUrl,
      QUEUE_PREFIX: stack.prefix,
      OPENAI_BASE_URL: `${stack.simUrl}/v1`,
      LONGHAUL_MIGRATE_ON_START: 'false',
      HOST: '127.0.0.1',
      PORT: String(port),
      API_METRICS_PORT: String(metricsPort),
      METRICS_HOST: '',
      METRICS_TOKEN: '',
      LOG_LEVEL: 'silent',
      ...env,
    },
  });
  children.push(child);
  const api = { url: `http://127.0.0.1:${port}`, metricsUrl: `http://127.0.0.1:${metricsPort}`, metricsPort };
  // The API opens its metrics listener before its main port: once this answers, both do.
  await answering(`${api.url}/healthz`, child);
  return api;
}

async function startWorker(env: Record<string, string> = {}) {
  const metricsPort = await freePort();
  const child = spawnWorker(stack, stack.redisUrl, { METRICS_PORT: String(metricsPort), METRICS_HOST: '', METRICS_TOKEN: '', ...env });
  children.push(child);
  const worker = { metricsUrl: `http://127.0.0.1:${metricsPort}`, metricsPort };
  await answering(`${worker.metricsUrl}/healthz`, child);
  return worker;
}

async function answering(url: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the process exited (${child.exitCode}) before ${url} answered`);
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The local addresses listening on `port` (Linux: /proc/net/tcp and tcp6), e.g. ['127.0.0.1']. */
function listeningAddresses(port: number): string[] {
  const found: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state !== '0A' || !local) continue; // 0A: LISTEN
      const [hex, portHex] = local.split(':');
      if (Number.parseInt(portHex!, 16) !== port) continue;
      // /proc prints each 32-bit word of the address in host (little-endian) byte order.
      const words = hex!.match(/.{8}/g)!.map((w) => w.match(/../g)!.reverse().join(''));
      found.push(
        hex!.length === 8
          ? words[0]!
              .match(/../g)!
              .map((b) => Number.parseInt(b, 16))
              .join('.')
          : words.join(':'),
      );
    }
  }
  return found;
}

const get = (url: string, token?: string) => fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
const onLinux = existsSync('/proc/net/tcp');

describe('the API', () => {
  let api: Awaited<ReturnType<typeof startApi>>;
  let guarded: Awaited<ReturnType<typeof startApi>>;
  beforeAll(async () => {
    [api, guarded] = await Promise.all([startApi(), startApi({ METRICS_TOKEN: TOKEN })]);
  });

  it('does not serve /metrics on its tenant-facing port when no METRICS_TOKEN is configured', async () => {
    const res = await get(`${api.url}/metrics`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toMatchObject({ error: { type: 'not_found_error', code: 'not_found' } });
    // Not even to someone who guesses a token.
    expect((await get(`${api.url}/metrics`, TOKEN)).status).toBe(404);
  });

  it('serves Prometheus text on its metrics listener, with /healthz and /readyz, and nothing else', async () => {
    const res = await get(`${api.metricsUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(PROMETHEUS);
    expect(parseMetrics(await res.text()).some((s) => s.name === 'longhaul_http_requests_total' || s.name === 'process_cpu_seconds_total')).toBe(true);
    expect(await (await get(`${api.metricsUrl}/healthz`)).json()).toEqual({ status: 'ok' });
    expect((await get(`${api.metricsUrl}/readyz`)).status).toBe(200);
    const other = await get(`${api.metricsUrl}/v1/jobs`);
    expect(other.status).toBe(404);
    expect(await other.json()).toMatchObject({ error: { type: 'not_found_error', code: 'not_found' } });
  });

  it.runIf(onLinux)('binds its metrics listener to 127.0.0.1 when METRICS_HOST is unset', () => {
    expect(listeningAddresses(api.metricsPort)).toEqual(['127.0.0.1']);
  });

  it('serves /metrics on its tenant-facing port only with METRICS_TOKEN when one is configured', async () => {
    const anonymous = await get(`${guarded.url}/metrics`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await anonymous.json()).toMatchObject({ error: { type: 'authentication_error', code: 'invalid_metrics_token' } });
    expect((await get(`${guarded.url}/metrics`, `${TOKEN}x`)).status).toBe(401);
    const scraped = await get(`${guarded.url}/metrics`, TOKEN);
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get('content-type')).toMatch(PROMETHEUS);
  });

  it('asks for METRICS_TOKEN on its metrics listener too, and leaves the probes open', async () => {
    expect((await get(`${guarded.metricsUrl}/metrics`)).status).toBe(401);
    expect((await get(`${guarded.metricsUrl}/metrics`, 'wrong-token-0123456789')).status).toBe(401);
    expect((await get(`${guarded.metricsUrl}/metrics`, TOKEN)).status).toBe(200);
    expect((await get(`${guarded.metricsUrl}/healthz`)).status).toBe(200);
    expect((await get(`${guarded.metricsUrl}/readyz`)).status).toBe(200);
  });
});

describe('the worker', () => {
  let worker: Awaited<ReturnType<typeof startWorker>>;
  let guarded: Awaited<ReturnType<typeof startWorker>>;
  beforeAll(async () => {
    [worker, guarded] = await Promise.all([startWorker(), startWorker({ METRICS_TOKEN: TOKEN })]);
  });

  it.runIf(onLinux)('binds its metrics listener to 127.0.0.1 when METRICS_HOST is unset', () => {
    expect(listeningAddresses(worker.metricsPort)).toEqual(['127.0.0.1']);
  });

  it('serves /metrics without a token when none is configured', async () => {
    const res = await get(`${worker.metricsUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(PROMETHEUS);
  });

  it('asks for METRICS_TOKEN when one is configured, and leaves the probes open', async () => {
    const anonymous = await get(`${guarded.metricsUrl}/metrics`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await anonymous.text()).includes('longhaul_')).toBe(false);
    expect((await get(`${guarded.metricsUrl}/metrics`, `${TOKEN}x`)).status).toBe(401);
    expect((await get(`${guarded.metricsUrl}/metrics`, TOKEN)).status).toBe(200);
    expect((await get(`${guarded.metricsUrl}/healthz`)).status).toBe(200);
    expect((await get(`${guarded.metricsUrl}/readyz`)).status).toBe(200);
  });
});
