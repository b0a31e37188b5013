/**
 * What the README's "Graceful shutdown" promises, with the real API and worker processes and a
 * client that speaks HTTP/1.1 on a raw socket (so the test, not a client library, decides when a
 * connection closes and what is pipelined on it):
 *
 * - the API on SIGTERM stops accepting connections, finishes the requests in flight, answers what
 *   still arrives on an open keep-alive connection with `Connection: close`, ends live job streams
 *   and exits 0 by itself;
 * - a second signal (past the 1 s in which a repeat counts as the same one) exits at once;
 * - a worker on SIGTERM stops taking work, lets in-flight work finish, and what does not finish
 *   within SHUTDOWN_TIMEOUT_MS is picked up by another worker.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../chaos/servers.ts';
import { type AppProcess, answering, killAll, spawnApp, until } from './app-process.ts';
import { createTenant } from '@longhaul/db';
import { type Stack, jobBody, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';
import { workerTestEnv } from './worker-process.ts';

let stack: Stack;
const apps: AppProcess[] = [];
beforeAll(async () => {
  stack = await startStack({ startWorker: false });
});
afterAll(async () => {
  await killAll(apps);
  await stack?.stop();
});

/** The API as a real process on its own ports, sharing the stack's database, Redis prefix and simulator. */
async function startApi(env: Record<string, string> = {}) {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const app = spawnApp('api', {
    DATABASE_URL: stack.database.url,
    REDIS_URL: stack.redisUrl,
    QUEUE_PREFIX: stack.prefix,
    OPENAI_BASE_URL: `${stack.simUrl}/v1`,
    LONGHAUL_MIGRATE_ON_START: 'false',
    HOST: '127.0.0.1',
    PORT: String(port),
    API_METRICS_PORT: String(metricsPort),
    API_RPM_LIMIT: '0',
    ...env,
  });
  apps.push(app);
  await answering(`http://127.0.0.1:${port}/healthz`, app);
  return { app, port, url: `http://127.0.0.1:${port}` };
}

function startWorker(env: Record<string, string> = {}): AppProcess {
  const app = spawnApp('worker', { ...workerTestEnv(stack), ...env });
  apps.push(app);
  return app;
}

const shuttingDown = (line: Record<string, any>) => line.msg === 'shutting down';

// ---- a raw HTTP/1.1 client -------------------------------------------------------------------

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * One TCP connection, read as a sequence of HTTP responses (interim 1xx ones included, bodies by
 * Content-Length or chunked). `ended` resolves when the server closes the connection.
 */
function rawConnection(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  const responses: RawResponse[] = [];
  let buffer = Buffer.alloc(0);
  let closedByServer = false;
  let text = '';
  const wakers = new Set<() => void>();
  const wake = () => {
    for (const w of wakers) w();
  };
  const parse = () => {
    for (;;) {
      const head = buffer.indexOf('\r\n\r\n');
      if (head < 0) return;
      const [statusLine, ...lines] = buffer.subarray(0, head).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const status = Number(statusLine!.split(' ')[1]);
      let rest = buffer.subarray(head + 4);
      let body = '';
      if (status >= 100 && status < 200) {
        // Interim response: no body.
      } else if (headers['transfer-encoding'] === 'chunked') {
        const chunks: Buffer[] = [];
        for (;;) {
          const eol = rest.indexOf('\r\n');
          if (eol < 0) return;
          const size = Number.parseInt(rest.subarray(0, eol).toString(), 16);
          if (rest.length < eol + 2 + size + 2) return;
          chunks.push(rest.subarray(eol + 2, eol + 2 + size));
          rest = rest.subarray(eol + 2 + size + 2);
          if (size === 0) break;
        }
        body = Buffer.concat(chunks).toString('utf8');
      } else {
        const length = Number(headers['content-length'] ?? 0);
        if (rest.length < length) return;
        body = rest.subarray(0, length).toString('utf8');
        rest = rest.subarray(length);
      }
      responses.push({ status, headers, body });
      buffer = rest;
    }
  };
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    text += chunk.toString('utf8');
    parse();
    wake();
  });
  const ended = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closedByServer = true;
      wake();
      resolve();
    }),
  );
  socket.on('error', () => {});
  const connected = new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  return {
    connected,
    responses,
    ended,
    /** Everything received so far, as text. */
    text: () => text,
    write: (data: string) => socket.write(data),
    destroy: () => socket.destroy(),
    /** Wait until `n` responses (interim ones included) have arrived. */
    responsesArrived: (n: number, timeoutMs = 15_000) =>
      new Promise<RawResponse[]>((resolve, reject) => {
        const check = () => {
          if (responses.length >= n) done(() => resolve(responses.slice(0, n)));
          else if (closedByServer) done(() => reject(new Error(`the connection closed after ${responses.length} of ${n} responses: ${JSON.stringify(responses)}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`${responses.length} of ${n} responses within ${timeoutMs} ms: ${JSON.stringify(responses)}`))), timeoutMs);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          wakers.delete(check);
          settle();
        };
        wakers.add(check);
        check();
      }),
  };
}

const requestHead = (method: string, path: string, headers: Record<string, string | number> = {}) =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${stack.apiKey}\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;

/** Whether a new TCP connection to `port` is refused. */
const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });

// ---- the API ---------------------------------------------------------------------------------

describe('the API on SIGTERM', () => {
  it('finishes the request in flight, answering it with Connection: close, refuses new connections, and exits 0', async () => {
    const api = await startApi({ SHUTDOWN_TIMEOUT_MS: '20000' });
    // A keep-alive connection that has carried one request...
    const conn = rawConnection(api.port);
    await conn.connected;
    conn.write(requestHead('GET', '/v1/jobs?limit=1'));
    const [first] = await conn.responsesArrived(1);
    expect(first!.status).toBe(200);
    expect(first!.headers.connection).toBe('keep-alive');
    // ...and now has a second one in flight: its headers are in (the server answered
    // `100 Continue`, which Node does once it has parsed them), its body not yet.
    const body = JSON.stringify(jobBody({ input: 'in flight at SIGTERM' }));
    conn.write(requestHead('POST', '/v1/jobs', { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Expect: '100-continue' }) + body.slice(0, 10));
    const [, interim] = await conn.responsesArrived(2);
    expect(interim!.status).toBe(100);

    api.app.child.kill('SIGTERM');
    await api.app.waitForLog('"shutting down"', shuttingDown);
    // The log line is written just before the listener closes: wait for the refusal, don't race it.
    await until('new connections to be refused', () => refused(api.port), 5_000);

    // The rest of the body arrives: the request completes, and its answer tells the client not to
    // send more on this connection, which the server then closes (the client never does).
    conn.write(body.slice(10));
    const [, , accepted] = await conn.responsesArrived(3);
    expect(accepted!.status, accepted!.body).toBe(202);
    expect(accepted!.headers.connection).toBe('close');
    const job = JSON.parse(accepted!.body);
    expect(job).toMatchObject({ object: 'job', status: 'pending' });
    await conn.ended;

    // 0: shutdown completed by itself; the deadline (SHUTDOWN_TIMEOUT_MS + 2 s) would exit 1.
    expect(await api.app.exited(), api.app.tail()).toEqual({ code: 0, signal: null });
    expect(api.app.logs.some((l) => l.msg === 'shutdown complete')).toBe(true);
    // The job accepted during shutdown is in Postgres.
    expect((await stack.api('GET', `/v1/jobs/${job.id}`)).body).toMatchObject({ id: job.id, status: 'pending' });
  });

  it('ends a live job stream and closes its connection, then exits 0', async () => {
    const api = await startApi({ SHUTDOWN_TIMEOUT_MS: '20000' });
    // The job stays pending (no worker runs), so its stream stays open until the API ends it.
    const watched = await stack.api('POST', '/v1/jobs', jobBody());
    expect(watched.status).toBe(202);
    const conn = rawConnection(api.port);
    await conn.connected;
    conn.write(requestHead('GET', `/v1/jobs/${watched.body.id}/stream`, { Accept: 'text/event-stream' }));
    await until('the stream to open', () => conn.text().includes(`: stream of ${watched.body.id}`), 15_000);

    api.app.child.kill('SIGTERM');
    const [stream] = await conn.responsesArrived(1);
    expect(stream!.status).toBe(200);
    expect(stream!.headers['content-type']).toMatch(/^text\/event-stream/);
    await conn.ended;
    expect(await api.app.exited(), api.app.tail()).toEqual({ code: 0, signal: null });
  });

  it('exits at once on a second signal, even with a request in flight', async () => {
    // A deadline far away: only the second signal can end this process soon.
    const api = await startApi({ SHUTDOWN_TIMEOUT_MS: '120000' });
    const conn = rawConnection(api.port);
    await conn.connected;
    const body = JSON.stringify(jobBody({ input: 'never finished' }));
    conn.write(requestHead('POST', '/v1/jobs', { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Expect: '100-continue' }) + body.slice(0, 10));
    await conn.responsesArrived(1);

    api.app.child.kill('SIGTERM');
    const began = await api.app.waitForLog('"shutting down"', shuttingDown);
    // A repeat within 1 s of the first signal counts as the same one (one Ctrl-C often arrives
    // twice); the second signal is sent once that window has passed, measured on the process's
    // own clock (the log line's time).
    const windowEnds = new Date(began.time).getTime() + 1_100;
    await new Promise((r) => setTimeout(r, Math.max(0, windowEnds - Date.now())));
    expect(api.app.alive(), 'still draining the request in flight').toBe(true);
    const sentAt = Date.now();
    api.app.child.kill('SIGTERM');
    // Bounded so a process that ignores the signal fails here, not at the test's timeout.
    const exit = await Promise.race([api.app.exited(), new Promise((r) => setTimeout(() => r('still running 10 s later'), 10_000))]);
    const tookMs = Date.now() - sentAt;
    expect(exit).toEqual({ code: 1, signal: null });
    expect(api.app.logs.some((l) => l.msg === 'second signal: exiting now')).toBe(true);
    // "At once": the promise is itself a bound. 5 s is generous for a loaded 2-core machine and
    // far below the 122 s the process would otherwise have waited for the request.
    expect(tookMs).toBeLessThan(5_000);
    await conn.ended;
    expect(conn.responses.map((r) => r.status)).toEqual([100]);
  });
});

// ---- the worker ------------------------------------------------------------------------------

describe('a worker on SIGTERM', () => {
  let receiver: Receiver;
  let endpoint: { id: string; secret: string };
  /** A tenant of its own, so the receiver hears of this block's jobs only (the API tests left pending jobs behind). */
  let asTenant: Record<string, string>;
  const api = (method: string, path: string, body?: unknown) => stack.api(method, path, body, asTenant);
  const deliveryOf = async (jobId: string): Promise<any> => {
    const list = await api('GET', `/v1/deliveries?job_id=${jobId}`);
    const found = list.body.data.find((d: any) => d.endpoint_id === endpoint.id);
    return found ? (await api('GET', `/v1/deliveries/${found.id}`)).body : undefined;
  };
  /** Answers for the receiver's requests, in order: a promise holds a request open until it settles. */
  const answers: Array<Promise<number | 'hang'> | number | 'hang'> = [];
  beforeAll(async () => {
    const { apiKey } = await createTenant(stack.db.db, 'worker shutdown');
    asTenant = { authorization: `Bearer ${apiKey}` };
    receiver = await startReceiver((r) => answers[receiver.received.indexOf(r)] ?? 200);
    const res = await api('POST', '/v1/webhook-endpoints', { url: receiver.url, event_types: ['job.completed'] });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    endpoint = res.body;
  });
  afterAll(async () => {
    await receiver?.close();
  });

  it('lets the work in flight finish, records it, and exits 0', async () => {
    receiver.received.length = 0;
    let release!: (status: number) => void;
    answers.splice(0, answers.length, new Promise<number>((r) => (release = r)));
    const worker = startWorker({ SHUTDOWN_TIMEOUT_MS: '30000' });
    const { body: job } = await api('POST', '/v1/jobs', jobBody({ input: 'delivered during shutdown' }, 0));
    await until('the callback attempt to be in flight', () => receiver.received.length === 1, 30_000);

    worker.child.kill('SIGTERM');
    await worker.waitForLog('"shutting down"', shuttingDown);
    // The receiver answers only now, while the worker is shutting down.
    release(200);

    expect(await worker.exited(), worker.tail()).toEqual({ code: 0, signal: null });
    // The attempt's answer was recorded before the worker exited: nothing is left to redo.
    const delivery = await deliveryOf(job.id);
    expect(delivery).toMatchObject({ status: 'succeeded', attempts: 1, last_status_code: 200 });
    expect(delivery.attempt_log).toMatchObject([{ attempt: 1, status_code: 200 }]);
    expect(receiver.received).toHaveLength(1);
    expect(worker.logs.some((l) => l.code === 'shutdown_forced')).toBe(false);
  });

  it('leaves what does not finish within SHUTDOWN_TIMEOUT_MS to another worker', async () => {
    receiver.received.length = 0;
    answers.splice(0, answers.length, 'hang', 200);
    const first = startWorker({ SHUTDOWN_TIMEOUT_MS: '1000' });
    const { body: job } = await api('POST', '/v1/jobs', jobBody({ input: 'handed back' }, 0));
    await until('the callback attempt to be in flight', () => receiver.received.length === 1, 30_000);

    first.child.kill('SIGTERM');
    // It stops waiting at SHUTDOWN_TIMEOUT_MS, says so, and still exits cleanly.
    expect(await first.exited(), first.tail()).toEqual({ code: 0, signal: null });
    expect(first.logs.some((l) => l.code === 'shutdown_forced')).toBe(true);
    const delivery = await deliveryOf(job.id);
    expect(delivery.status).toBe('pending');

    const restartedAt = Date.now();
    const second = startWorker();
    await until('the delivery to succeed', async () => (await deliveryOf(job.id))?.status === 'succeeded', 30_000);
    // Sent again by the new worker, as the same event.
    expect(receiver.received).toHaveLength(2);
    expect(receiver.received[1]!.at).toBeGreaterThanOrEqual(restartedAt);
    expect(receiver.received[1]!.headers['webhook-id']).toBe(receiver.received[0]!.headers['webhook-id']);
    second.child.kill('SIGTERM');
    expect((await second.exited()).code).toBe(0);
  });
});
