/**
 * The callback receiver: a real HTTP server on loopback standing in for a tenant's systems. It
 * records every request (path, `webhook-id`, body, time) and can go down (connections refused)
 * and come back on the same port, as a customer's endpoint does during an outage, or hang
 * (accept requests and never answer them) to keep deliveries in flight.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface ReceivedCallback {
  path: string;
  webhookId: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface CallbackReceiver {
  /** e.g. `http://127.0.0.1:41234`; append a path per endpoint (`/a`, `/job`). */
  url: string;
  received: ReceivedCallback[];
  isUp(): boolean;
  /** While hanging, requests are recorded but not answered (until `answer()` or the client gives up). */
  hang(): void;
  /** Answer again, including the requests held while hanging. */
  answer(): void;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(port = 0): Promise<CallbackReceiver> {
  const received: ReceivedCallback[] = [];
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let boundPort = port;
  let hanging = false;
  const held = new Set<ServerResponse>();

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const s = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          received.push({
            path: req.url ?? '/',
            webhookId: String(req.headers['webhook-id'] ?? ''),
            headers: req.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            at: Date.now(),
          });
          if (!hanging) return void res.writeHead(204).end();
          held.add(res);
          res.once('close', () => held.delete(res));
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
      hanging = true;
    },
    answer: () => {
      hanging = false;
      for (const res of held) res.writeHead(204).end();
      held.clear();
    },
    down: stop,
    up: async () => {
      if (!server) await listen();
    },
    close: stop,
  };
}
