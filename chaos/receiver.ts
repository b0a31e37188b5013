/**
 * The callback receiver: a real HTTP server on loopback standing in for a tenant's systems. It
 * records every request it reads (path, `webhook-id`, body, arrival time) and what it answered,
 * so scenarios measure delivery from the receiving end rather than from Longhaul's own records.
 *
 * It can go down (connections refused) and come back on the same port, as a customer's endpoint
 * does during an outage; fail (read and record each request, then answer an error status with an
 * optional Retry-After, or drop the connection unanswered) as a broken service behind a live load
 * balancer does; or hang (record requests and never answer them) to keep deliveries in flight.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface ReceivedCallback {
  path: string;
  webhookId: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** When the request had been read (ms since the epoch). */
  at: number;
  /** The status answered; null while held (hanging) or when the connection was dropped unanswered. */
  status: number | null;
  /** The Retry-After (seconds) sent with the answer, if any. */
  retryAfterS: number | null;
}

/** How a failing receiver answers: an error status (with Retry-After seconds), or no answer at all. */
export type Failure = { status: number; retryAfterS?: number } | 'drop';

export interface CallbackReceiver {
  /** e.g. `http://127.0.0.1:41234`; append a path per endpoint (`/a`, `/job`). */
  url: string;
  received: ReceivedCallback[];
  isUp(): boolean;
  /** While hanging, requests are recorded but not answered (until `answer()` or the client gives up). */
  hang(): void;
  /** Every request from now on is recorded and failed this way (until `answer()`). */
  fail(failure: Failure): void;
  /** Answer 204 again, including the requests held while hanging. */
  answer(): void;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

type Mode = { kind: 'answer' } | { kind: 'hang' } | { kind: 'fail'; failure: Failure };

export async function startReceiver(port = 0): Promise<CallbackReceiver> {
  const received: ReceivedCallback[] = [];
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let boundPort = port;
  let mode: Mode = { kind: 'answer' };
  const held = new Map<ServerResponse, ReceivedCallback>();

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const entry: ReceivedCallback = {
            path: req.url ?? '/',
            webhookId: String(req.headers['webhook-id'] ?? ''),
            headers: req.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            at: Date.now(),
            status: null,
            retryAfterS: null,
          };
          received.push(entry);
          if (mode.kind === 'answer') {
            entry.status = 204;
            res.writeHead(204).end();
          } else if (mode.kind === 'hang') {
            held.set(res, entry);
            res.once('close', () => held.delete(res));
          } else if (mode.failure === 'drop') {
            req.socket.destroy();
          } else {
            const { status, retryAfterS } = mode.failure;
            entry.status = status;
            entry.retryAfterS = retryAfterS ?? null;
            res.writeHead(status, retryAfterS === undefined ? {} : { 'retry-after': String(retryAfterS) }).end();
          }
        });
      });
      s.on('connection', (socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
      });
      s.once('error', reject);
      s.listen(boundPort, '127.0.0.1', () => {
        s.off('error', reject);
        boundPort = (s.address() as { port: number }).port;
        server = s;
        resolve();
      });
    });

  const stop = () =>
    new Promise<void>((resolve) => {
      const s = server;
      server = null;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      if (!s) return resolve();
      s.close(() => resolve());
    });

  await listen();
  return {
    url: `http://127.0.0.1:${boundPort}`,
    received,
    isUp: () => server !== null,
    hang: () => {
      mode = { kind: 'hang' };
    },
    fail: (failure) => {
      mode = { kind: 'fail', failure };
    },
    answer: () => {
      mode = { kind: 'answer' };
      for (const [res, entry] of held) {
        if (res.destroyed) continue;
        entry.status = 204;
        res.writeHead(204).end();
      }
      held.clear();
    },
    down: stop,
    up: async () => {
      if (!server) await listen();
    },
    close: stop,
  };
}
