import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { specSchemaErrors } from '@longhaul/specs/validation';
import OpenAI from 'openai';

export { specSchemaErrors, streamEventErrors, streamEventVariants } from '@longhaul/specs/validation';
import { createSimServer, type SimOptions, type SimServer } from '../src/server.ts';

/** Validates against components.schemas.Response of the OpenAPI 3.1 subset in `@longhaul/specs`. */
export function responseSchemaErrors(body: unknown): string | null {
  return specSchemaErrors('Response', body);
}

export interface TestSim {
  url: string;
  server: SimServer;
  client: OpenAI;
  /** Raw JSON call with a bearer key, for schema validation and headers. */
  api(path: string, init?: { method?: string; body?: unknown; auth?: string | null }): Promise<{ status: number; headers: Headers; json: any }>;
  sim(path: string, body?: unknown): Promise<any>;
  close(): Promise<void>;
}

export async function startSim(options: SimOptions = {}): Promise<TestSim> {
  const server = createSimServer(options);
  const listening = await server.listen(0, '127.0.0.1');
  const url = listening.url;
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${url}/v1`, maxRetries: 0 });
  return {
    url,
    server,
    client,
    async api(path, init = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      const auth = init.auth === undefined ? 'Bearer sk-test' : init.auth;
      if (auth !== null) headers['authorization'] = auth;
      const res = await fetch(`${url}/v1${path}`, {
        method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
      return { status: res.status, headers: res.headers, json: await res.json() };
    },
    async sim(path, body) {
      const res = await fetch(`${url}/sim${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return res.json();
    },
    close: () => listening.close(),
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'incomplete']);

/** Polls the raw endpoint until terminal, validating every state seen against the spec. */
export async function pollUntilTerminal(sim: TestSim, id: string, intervalMs = 10): Promise<any[]> {
  const seen: any[] = [];
  for (let i = 0; i < 2000; i++) {
    const { status, json } = await sim.api(`/responses/${id}`);
    if (status !== 200) throw new Error(`retrieve answered ${status}: ${JSON.stringify(json)}`);
    const errors = responseSchemaErrors(json);
    if (errors !== null) throw new Error(`invalid Response (${json.status}): ${errors}`);
    seen.push(json);
    if (TERMINAL.has(json.status)) return seen;
    await sleep(intervalMs);
  }
  throw new Error(`response ${id} never reached a terminal state`);
}

export interface ReceivedWebhook {
  body: string;
  headers: IncomingHttpHeaders;
  status: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** Decides the HTTP status for each delivery (default 200). */
  respondWith: (delivery: { body: string; headers: IncomingHttpHeaders }) => number;
  waitFor(predicate: (received: ReceivedWebhook[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<WebhookReceiver> {
  const receiver: WebhookReceiver = {
    url: '',
    received: [],
    respondWith: () => 200,
    async waitFor(predicate, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(receiver.received)) {
        if (Date.now() > deadline) throw new Error(`timed out; received ${receiver.received.length} webhooks`);
        await sleep(5);
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const status = receiver.respondWith({ body, headers: req.headers });
      receiver.received.push({ body, headers: req.headers, status });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return receiver;
}

/** A prompt of exactly `tokens` tokens (4 chars each) that is deterministic per seed. */
export function promptOfTokens(tokens: number, seed: string): string {
  const unit = `${seed}-`.padEnd(8, 'x');
  return unit.repeat(Math.ceil((tokens * 4) / unit.length)).slice(0, tokens * 4);
}
