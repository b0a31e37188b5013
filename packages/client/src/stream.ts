/**
 * A job's Server-Sent Events (GET /v1/jobs/{id}/stream) as an async iterator that survives dropped
 * connections. Invariant: every event is yielded once and in order. The cursor is the id of the
 * last event yielded; a reconnect sends it as `Last-Event-ID`, and the server answers exactly the
 * events after it (then the live tail), so nothing is lost or repeated across connections. The
 * iteration ends after the job's terminal lifecycle event (`job.completed`, …), or when the server
 * answers 204 (nothing after the cursor, ever). Parsing is eventsource-parser's (the WHATWG rules);
 * only fetch, ReadableStream and TextDecoder are used, so it runs in browsers as in Node.
 */
import { createParser } from 'eventsource-parser';
import { TERMINAL_STATUSES } from './api-types.ts';
import { LonghaulError, apiErrorFrom, connectionErrorFrom } from './errors.ts';
import { sleep } from './sleep.ts';

export interface StreamEvent {
  /** The event id: the provider's `sequence_number`, or `s.k` for Longhaul's lifecycle events in between. */
  id: string;
  /** `job.queued`, `job.in_progress`, … `job.completed`, or a provider event (`response.output_text.delta`, …). */
  type: string;
  /** The event's JSON (`{type, job}` for lifecycle events; OpenAI's event for provider events). */
  data: unknown;
}

export interface StreamOptions {
  /** Start after this event id (as `Last-Event-ID`); default: from the stream's first event. */
  after?: string;
  signal?: AbortSignal;
  /** Reconnections in a row without receiving an event before giving up (default 5). */
  maxReconnects?: number;
  /** The first pause before a reconnection, doubled each time up to 5 s (default 250 ms). */
  reconnectDelayMs?: number;
}

/** Opens one connection: the job's stream after `cursor`. */
export type OpenStream = (cursor: string | undefined, signal: AbortSignal | undefined) => Promise<Response>;

const TERMINAL_EVENTS = new Set(TERMINAL_STATUSES.map((s) => `job.${s}`));

/** The job's terminal lifecycle event: nothing follows it. */
export function isTerminalEvent(event: StreamEvent): boolean {
  return TERMINAL_EVENTS.has(event.type);
}

function parseData(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** The events of one open connection, until it ends or breaks (a break is thrown). */
async function* eventsOf(body: ReadableStream<Uint8Array>): AsyncGenerator<StreamEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parsed: StreamEvent[] = [];
  // The stream's events all carry ids; a message without one is not one of them.
  const parser = createParser({ onEvent: (m) => m.id !== undefined && parsed.push({ id: m.id, type: m.event ?? 'message', data: parseData(m.data) }) });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser.feed(decoder.decode(value, { stream: true }));
      while (parsed.length > 0) yield parsed.shift()!;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** A failure worth another connection: a network break, or the server failing (5xx). */
function isRetryable(err: unknown): boolean {
  if (!(err instanceof LonghaulError)) return !(err instanceof Error && err.name === 'AbortError');
  return err.status === undefined || err.status >= 500;
}

export async function* followStream(open: OpenStream, options: StreamOptions = {}): AsyncGenerator<StreamEvent> {
  const maxReconnects = options.maxReconnects ?? 5;
  const firstDelay = options.reconnectDelayMs ?? 250;
  let cursor = options.after;
  let failures = 0;
  for (;;) {
    try {
      const response = await open(cursor, options.signal).catch((err: unknown) => {
        throw connectionErrorFrom(err);
      });
      if (response.status === 204) return;
      if (!response.ok || !response.body) {
        const text = await response.text().catch(() => '');
        throw apiErrorFrom(response, parseData(text));
      }
      for await (const event of eventsOf(response.body)) {
        failures = 0;
        cursor = event.id;
        yield event;
        if (isTerminalEvent(event)) return;
      }
      // Closed before the terminal event (a proxy, a restarting API process): resume.
    } catch (err) {
      options.signal?.throwIfAborted();
      if (!isRetryable(err)) throw err;
      if (failures >= maxReconnects) throw connectionErrorFrom(err);
    }
    failures += 1;
    if (failures > maxReconnects) throw new LonghaulError('The job stream kept closing before the job finished.', { code: 'stream_interrupted' });
    await sleep(Math.min(firstDelay * 2 ** (failures - 1), 5_000), options.signal);
  }
}
