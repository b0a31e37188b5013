/**
 * The callback receiver of the callbacks scenario: a node:http server in the benchmark process
 * that answers every POST 200 as soon as its body has arrived and records what came. Parsing is
 * left for later (`parseArrivals`) so the receiver itself stays cheap under load.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Arrival {
  /** Wall clock (ms since the epoch) when the whole body had arrived. */
  atMs: number;
  path: string;
  webhookId: string;
  body: Buffer;
}

export interface Receiver {
  url: string;
  arrivals: Arrival[];
  /** Connections accepted so far (keep-alive reuse shows as far fewer than arrivals). */
  connections(): number;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const arrivals: Arrival[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      arrivals.push({ atMs: Date.now(), path: req.url ?? '', webhookId: String(req.headers['webhook-id'] ?? ''), body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-length': '0' }).end();
    });
  });
  // Longer than the sender's keep-alive would ever idle: no connection churn during a run.
  server.keepAliveTimeout = 60_000;
  let connections = 0;
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    arrivals,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface ParsedArrival {
  atMs: number;
  path: string;
  webhookId: string;
  type: string;
  jobId: string;
}

/** The event type and job id of each arrival (Longhaul's `{id, type, data: {id, ...}}` body). */
export function parseArrivals(arrivals: readonly Arrival[]): ParsedArrival[] {
  return arrivals.map((a) => {
    const event = JSON.parse(a.body.toString('utf8')) as { type?: string; data?: { id?: string } };
    return { atMs: a.atMs, path: a.path, webhookId: a.webhookId, type: event.type ?? '', jobId: event.data?.id ?? '' };
  });
}
