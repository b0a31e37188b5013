/**
 * What the worker does with every provider request (the provider adapter's `onRequest` hook):
 * count it in the metrics and, when enabled, log it for the job's admin timeline.
 *
 * Design note: the timeline rows are buffered and written in one multi-row insert per
 * `flushIntervalMs` (or per `batchSize` rows; batch-writer.ts), not one transaction per request,
 * so the log costs the pipeline almost nothing (see the README's bench figures). The price is that a crash loses
 * the last interval's rows: acceptable for an observability log; job state never depends on it.
 * A failing flush is logged and its rows dropped; the buffer never holds more than `maxBuffered`.
 */
import { type DbHandle, type NewProviderCall, recordProviderCalls } from '@longhaul/db';
import type { Metrics } from '@longhaul/metrics';
import type { ProviderRequestEvent } from '@longhaul/provider';
import type { Logger } from '@longhaul/runtime';
import { createBatchWriter } from './batch-writer.ts';

export interface ProviderObserverOptions {
  db: DbHandle;
  metrics: Metrics;
  logger: Logger;
  /** Keep a per-job log of provider calls in Postgres (`provider_calls`). Default true. */
  recordCalls?: boolean;
  /** Default 1 000 ms. */
  flushIntervalMs?: number;
  /** Flush early once this many rows wait. Default 500. */
  batchSize?: number;
  /** Rows beyond this (Postgres down) are dropped, oldest first. Default 20 000. */
  maxBuffered?: number;
}

export interface ProviderObserver {
  onRequest(event: ProviderRequestEvent): void;
  /** Write what is buffered now. */
  flush(): Promise<void>;
  /** Stop the timer and flush. Idempotent. */
  close(): Promise<void>;
}

export function createProviderObserver(options: ProviderObserverOptions): ProviderObserver {
  const { db, metrics, logger } = options;
  const record = options.recordCalls ?? true;
  const writer = createBatchWriter<NewProviderCall>({
    write: (rows) => recordProviderCalls(db.db, rows),
    onError: (err, rows) => logger.warn({ err, rows: rows.length, code: 'provider_calls_dropped' }, 'could not record provider calls'),
    flushIntervalMs: options.flushIntervalMs ?? 1_000,
    batchSize: options.batchSize ?? 500,
    maxBuffered: options.maxBuffered ?? 20_000,
  });

  return {
    onRequest(event) {
      metrics.providerRequest({ endpoint: event.operation, status: event.status, durationMs: event.durationMs });
      if (!record || !event.jobId) return;
      writer.add({
        jobId: event.jobId,
        operation: event.operation,
        statusCode: typeof event.status === 'number' ? event.status : null,
        error: typeof event.status === 'number' ? null : event.status,
        latencyMs: Math.round(event.durationMs),
        requestId: event.requestId,
        responseId: event.responseId,
        at: event.at,
      });
    },
    flush: writer.flush,
    close: writer.close,
  };
}
