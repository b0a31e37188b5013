/**
 * Every `/v1` request the simulator received, in arrival order, with its arrival time on the
 * simulator's clock and the status it was answered with (`GET /sim/request-log`). Tests and the
 * chaos suite measure a client from here (how many requests one create cost, how fast creates
 * came) instead of trusting the client's own record of what it sent.
 *
 * Bounded: beyond about `MAX_LOGGED_ARRIVALS` the oldest entries are dropped (`dropped` counts them),
 * so a long-running dev simulator does not grow without bound.
 */
import type { RequestHandler } from 'express';
import { JOB_ID_METADATA_KEY } from '@longhaul/core';
import type { Clock } from './scheduler.ts';

const MAX_LOGGED_ARRIVALS = 100_000;

export interface LoggedArrival {
  /** 1, 2, 3 … in arrival order (keeps counting past dropped entries). */
  seq: number;
  /** When the request arrived (ms since the epoch, simulator clock), before any injected latency. */
  at_ms: number;
  method: string;
  /** The path without its query, e.g. `/v1/responses/resp_…`. */
  path: string;
  /** The status answered; null while the answer is still being written (an open stream, injected latency). */
  status: number | null;
  /** The Longhaul job named by a create's `metadata.longhaul_job_id`, else null. */
  job_id: string | null;
}

export class RequestLog {
  #entries: LoggedArrival[] = [];
  #seq = 0;
  #dropped = 0;

  /** Express middleware for the `/v1` router; mount it after the JSON body parser. */
  middleware(clock: Clock): RequestHandler {
    return (req, res, next) => {
      const metadata = (req.body as { metadata?: Record<string, unknown> } | undefined)?.metadata;
      const jobId = metadata && typeof metadata[JOB_ID_METADATA_KEY] === 'string' ? (metadata[JOB_ID_METADATA_KEY] as string) : null;
      const entry: LoggedArrival = {
        seq: ++this.#seq,
        at_ms: clock(),
        method: req.method,
        path: req.originalUrl.split('?')[0] ?? req.originalUrl,
        status: null,
        job_id: jobId,
      };
      this.#entries.push(entry);
      // Trimmed a tenth at a time, so the cap costs nothing per request.
      if (this.#entries.length > MAX_LOGGED_ARRIVALS * 1.1) {
        const excess = this.#entries.length - MAX_LOGGED_ARRIVALS;
        this.#entries.splice(0, excess);
        this.#dropped += excess;
      }
      res.on('finish', () => {
        entry.status = res.statusCode;
      });
      next();
    };
  }

  list(): { object: 'list'; data: LoggedArrival[]; dropped: number } {
    return { object: 'list', data: [...this.#entries], dropped: this.#dropped };
  }

  clear(): void {
    this.#entries = [];
    this.#seq = 0;
    this.#dropped = 0;
  }
}
