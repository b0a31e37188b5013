/** A real HTTP callback receiver on loopback for tests: records every request and connection. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

type Answer = number | 'hang' | { status: number; headers: Record<string, string> };

export interface Receiver {
  url: string;
  received: Received[];
  connections: number;
  /** Decide the answer per request: an HTTP status, or 'hang' to never answer; a promise holds the request open until it settles. */
  respond: (req: Received) => Answer | Promise<Answer>;
  close(): Promise<void>;
}

export async function startReceiver(respond: Receiver['respond'] = () => 200): Promise<Receiver> {
  const hanging = new Set<http.ServerResponse>();
  const receiver = { received: [] as Received[], connections: 0, respond } as Receiver;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      receiver.received.push(entry);
      const reply = (answer: Answer) => {
        if (answer === 'hang') {
          hanging.add(res);
          return;
        }
        const { status, headers } = typeof answer === 'number' ? { status: answer, headers: {} } : answer;
        res.writeHead(status, { 'content-type': 'text/plain', ...headers }).end('ok');
      };
      const answer = receiver.respond(entry);
      if (answer instanceof Promise) {
        hanging.add(res);
        void answer.then((a) => {
          hanging.delete(res);
          if (!res.destroyed) reply(a);
        });
      } else reply(answer);
    });
  });
  server.on('connection', () => {
    receiver.connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  receiver.close = () =>
    new Promise<void>((resolve) => {
      for (const res of hanging) res.destroy();
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return receiver;
}
