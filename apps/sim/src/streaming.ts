/**
 * Server-sent event streams of response event logs (see stream-events.ts).
 *
 * An open stream is a cursor into its response's derived log: it writes every event that is due
 * (`at <= now`), then asks the shared Scheduler to wake it at the next event's time, so thousands
 * of streams still cost one timer. Cancelling a response pokes its streams, which then write what
 * was due before the cancel and end. Nothing is kept per response; an open stream holds its log
 * (small closures) until it ends.
 *
 * Wire format: `event: <type>\ndata: <json>\n\n` per event, `sequence_number` = index in the log.
 * The stream ends (chunked terminator, no `[DONE]` sentinel, as OpenAI's Responses API) after the
 * terminal event, or after the last event before a cancel. No event is named `error` and no data
 * has a top-level `error` key: the official SDK throws on those.
 *
 * Fault injection: a cut stream is destroyed at the socket after some events (once they are
 * flushed), without the chunked terminator, so the client sees a broken connection, not an end.
 * Closing or resetting the simulator cuts every open stream the same way.
 */
import type { ServerResponse } from 'node:http';
import type { SimConfig } from './config.ts';
import { chance, type Random } from './random.ts';
import { assertNever, type SimResponse } from './responses.ts';
import type { Clock, Scheduler } from './scheduler.ts';
import type { StreamStats } from './stats.ts';
import { eventLog, eventPayload, type LoggedEvent } from './stream-events.ts';

export interface StreamHubDeps {
  clock: Clock;
  scheduler: Scheduler;
  config: () => SimConfig;
  random: () => Random;
  stats: () => StreamStats;
  /** Called when the client of a stream goes away (or the stream is cut) before its log ended. */
  onAbandoned: (response: SimResponse) => void;
}

interface OpenStream {
  response: SimResponse;
  res: ServerResponse;
  log: LoggedEvent[];
  /** Index (= sequence number) of the next event to write. */
  next: number;
  written: number;
  /** Cut the connection once this many events are written, if more remain. */
  cutAfter: number | null;
  /** Clock time of the pending scheduler wake-up, Infinity when none. */
  wakeAt: number;
  ended: boolean;
}

export class StreamHub {
  readonly #deps: StreamHubDeps;
  readonly #open = new Map<string, Set<OpenStream>>();
  #closed = false;

  constructor(deps: StreamHubDeps) {
    this.#deps = deps;
  }

  /**
   * Answers `res` with the response's event log after sequence number `startingAfter` (all of it
   * when null), then the live tail until the log ends. Writes the headers at once.
   */
  serve(res: ServerResponse, response: SimResponse, startingAfter: number | null, resumed: boolean): void {
    if (this.#closed) {
      res.destroy();
      return;
    }
    const stats = this.#deps.stats();
    stats.opened++;
    if (resumed) stats.resumed++;

    const log = eventLog(response);
    const next = startingAfter === null ? 0 : Math.max(0, Math.min(log.length, Math.floor(startingAfter) + 1));
    const stream: OpenStream = {
      response,
      res,
      log,
      next,
      written: 0,
      cutAfter: this.#cutPoint(log.length - next),
      wakeAt: Number.POSITIVE_INFINITY,
      ended: false,
    };
    res.statusCode = 200;
    res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    res.setHeader('cache-control', 'no-cache');
    res.setHeader('connection', 'keep-alive');
    res.flushHeaders();
    res.on('close', () => {
      if (stream.ended) return;
      stream.ended = true;
      this.#detach(stream);
      this.#deps.onAbandoned(response);
    });
    this.#attach(stream);
    this.#pump(stream);
  }

  /** Lets the streams of a response catch up at once (after a cancel). */
  poke(responseId: string): void {
    const streams = this.#open.get(responseId);
    if (streams === undefined) return;
    for (const stream of [...streams]) this.#pump(stream);
  }

  /** Cuts every open stream (used by /sim/reset); the hub stays usable. */
  cutAll(): void {
    for (const streams of [...this.#open.values()]) {
      for (const stream of [...streams]) this.#end(stream, 'cut');
    }
  }

  close(): void {
    this.#closed = true;
    this.cutAll();
  }

  #cutPoint(remaining: number): number | null {
    const config = this.#deps.config();
    if (config.stream_cut_after_events !== null) return config.stream_cut_after_events;
    const random = this.#deps.random();
    if (remaining < 2 || !chance(random, config.stream_cut_rate)) return null;
    // Somewhere strictly before the last event, so a chosen cut always loses something.
    return 1 + Math.floor(random() * (remaining - 1));
  }

  /** Writes every due event (as one chunk), then waits for the next one, ends, or cuts. */
  #pump(stream: OpenStream): void {
    if (stream.ended) return;
    const { log, response } = stream;
    const now = this.#deps.clock();
    const cancelledAt = response.cancelledAtMs;
    const inLog = (index: number): boolean => index < log.length && (cancelledAt === null || (log[index] as LoggedEvent).at <= cancelledAt);
    let chunk = '';
    let outcome: 'wait' | 'end' | 'cut' = 'end';
    while (inLog(stream.next)) {
      const event = log[stream.next] as LoggedEvent;
      if (event.at > now) {
        outcome = 'wait';
        break;
      }
      chunk += `event: ${event.type}\ndata: ${JSON.stringify(eventPayload(event, stream.next))}\n\n`;
      stream.next++;
      stream.written++;
      if (stream.cutAfter !== null && stream.written >= stream.cutAfter && inLog(stream.next)) {
        outcome = 'cut';
        break;
      }
    }
    switch (outcome) {
      case 'wait':
        if (chunk !== '') stream.res.write(chunk);
        this.#wakeAt(stream, (log[stream.next] as LoggedEvent).at);
        return;
      case 'end':
        this.#end(stream, 'end', chunk);
        return;
      case 'cut':
        this.#deps.stats().cut++;
        this.#deps.onAbandoned(response);
        this.#end(stream, 'cut', chunk);
        return;
      default:
        assertNever(outcome);
    }
  }

  #wakeAt(stream: OpenStream, at: number): void {
    if (stream.wakeAt <= at) return;
    stream.wakeAt = at;
    this.#deps.scheduler.schedule(at, () => {
      if (stream.wakeAt !== at) return;
      stream.wakeAt = Number.POSITIVE_INFINITY;
      this.#pump(stream);
    });
  }

  /** Ends cleanly, or (cut) destroys the socket once the last chunk is flushed. */
  #end(stream: OpenStream, how: 'end' | 'cut', chunk = ''): void {
    stream.ended = true;
    this.#detach(stream);
    if (how === 'end') stream.res.end(chunk);
    else if (chunk === '') stream.res.destroy();
    else stream.res.write(chunk, () => stream.res.destroy());
  }

  #attach(stream: OpenStream): void {
    let streams = this.#open.get(stream.response.id);
    if (streams === undefined) {
      streams = new Set();
      this.#open.set(stream.response.id, streams);
    }
    streams.add(stream);
  }

  #detach(stream: OpenStream): void {
    const streams = this.#open.get(stream.response.id);
    if (streams === undefined) return;
    streams.delete(stream);
    if (streams.size === 0) this.#open.delete(stream.response.id);
  }
}
