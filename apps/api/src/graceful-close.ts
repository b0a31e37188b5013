/**
 * Closing the API's HTTP server on shutdown. `server.close()` alone stops new connections and
 * closes the idle ones, but a connection busy with a request at that moment goes on: its answer
 * goes out keep-alive, and the idle connection it leaves holds `close()`, and so the process, until
 * the client hangs up or the keep-alive timeout (65 s) passes, far beyond SHUTDOWN_TIMEOUT_MS. A
 * job stream ended by the shutdown leaves the same idle connection behind.
 *
 * So, as Go's `Server.Shutdown` does, once closing has begun every response still to be written
 * says `Connection: close` (those in flight and any request still arriving on an open connection),
 * and each such connection is ended once its response has finished, whatever its headers said
 * (a job stream's headers went out before). Clients finish their request and move to another
 * instance.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export interface GracefulServer {
  /** Stop accepting connections, let the requests in flight finish, then close each connection. Idempotent. */
  close(): Promise<void>;
}

/** Track `server`'s requests from now on (call it before any is served) so `close()` can finish them. */
export function gracefulClose(server: Server): GracefulServer {
  const inFlight = new Map<ServerResponse, IncomingMessage>();
  let closing: Promise<void> | undefined;

  const closeAfter = (req: IncomingMessage, res: ServerResponse) => {
    if (!res.headersSent) res.setHeader('Connection', 'close');
    // `res.socket` is detached by the time 'finish' listeners run; the request keeps its socket.
    if (!res.writableFinished) res.once('finish', () => req.socket.end());
  };

  // Before the app's own listener, so a response the app sends at once still carries the header.
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    if (closing) return closeAfter(req, res);
    inFlight.set(res, req);
    res.once('close', () => inFlight.delete(res));
  });

  return {
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        // Node >= 19 closes the idle connections here too.
        server.close(() => resolve());
        for (const [res, req] of inFlight) closeAfter(req, res);
      })),
  };
}
