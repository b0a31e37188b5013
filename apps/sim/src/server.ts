/**
 * Factory for the OpenAI Responses API simulator. Tests start it on port 0 in-process;
 * src/index.ts wires the environment, a real logger and signal handling.
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import { pino, type Logger } from 'pino';
import { ApiKeys, keysRouter } from './api-keys.ts';
import type { SimOptions } from './config.ts';
import { Delays } from './faults.ts';
import { errorHandler, notFound, requestId, simRouter, v1Router } from './routes.ts';
import type { Clock } from './scheduler.ts';
import { Simulator } from './simulator.ts';
import { loadRequestValidator } from './spec-validation.ts';

export type { SimOptions } from './config.ts';
export { Simulator } from './simulator.ts';

export interface SimServerDeps {
  /** Milliseconds since the epoch. Default `Date.now`. */
  clock?: Clock;
  /** Default: a silent logger. */
  logger?: Logger;
  /**
   * OpenAI's OpenAPI document request bodies are validated against. Default: `responses-subset.json`
   * of `@longhaul/specs`; a path that is given must exist; null turns validation off.
   */
  specPath?: string | null;
  /** API keys accepted (`key` or `project:key`, api-keys.ts); default none: any key is. `POST /sim/keys` replaces them. */
  apiKeys?: readonly string[];
}

export interface ListeningSim {
  /** e.g. `http://127.0.0.1:54321` (the OpenAI base URL is `${url}/v1`). */
  url: string;
  port: number;
  /** Stops accepting requests, stops every timer and webhook in flight. Idempotent. */
  close(): Promise<void>;
}

export interface SimServer {
  app: Express;
  simulator: Simulator;
  listen(port?: number, host?: string): Promise<ListeningSim>;
  /** Stops timers and webhook sends; also called by the `close` of `listen`. Idempotent. */
  close(): Promise<void>;
}

const BODY_LIMIT = '50mb';

export function createSimServer(options: SimOptions = {}, deps: SimServerDeps = {}): SimServer {
  const logger = deps.logger ?? pino({ level: 'silent' });
  const validator = deps.specPath === null ? null : loadRequestValidator(deps.specPath);
  const simulator = new Simulator(options, { clock: deps.clock ?? Date.now, logger, validator });
  const delays = new Delays();
  const apiKeys = new ApiKeys(deps.apiKeys);

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestId());
  app.use(express.json({ limit: BODY_LIMIT }));
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  app.use(
    '/v1',
    simulator.requests.middleware(() => simulator.now()),
    apiKeys.middleware(simulator),
    v1Router(simulator, delays),
  );
  app.use('/sim/keys', keysRouter(apiKeys));
  // A reset also returns to the starting keys; the simulator's own reset follows.
  app.post('/sim/reset', (_req, _res, next) => {
    apiKeys.reset();
    next();
  });
  app.use('/sim', simRouter(simulator));
  app.use(notFound);
  app.use(errorHandler(logger));

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      delays.cancelAll();
      await simulator.close();
    })();
    return closing;
  };

  const listen = async (port = 0, host = '127.0.0.1'): Promise<ListeningSim> => {
    const server: Server = app.listen(port, host);
    await once(server, 'listening');
    const address = server.address() as AddressInfo;
    const displayHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    let serverClosing: Promise<void> | null = null;
    return {
      url: `http://${displayHost}:${address.port}`,
      port: address.port,
      close: () => {
        serverClosing ??= (async () => {
          const closed = new Promise<void>((resolve, reject) => {
            server.close((error) => (error ? reject(error) : resolve()));
          });
          await close();
          server.closeIdleConnections();
          await closed;
        })();
        return serverClosing;
      },
    };
  };

  return { app, simulator, listen, close };
}
