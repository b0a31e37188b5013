/**
 * Settles applied OpenAI webhooks in batches (batch-writer.ts): one statement per
 * `flushIntervalMs` (or per `batchSize` rows) instead of one per webhook.
 *
 * Design note: settling is bookkeeping, not job state: the job's reconcile is already committed
 * when a row is handed here. A crash loses the rows of the last interval; they stay `received`, and
 * the sweeper hands them to the worker again, which finds their job finished and settles them
 * (`job already <status>`) without asking the provider. A failing flush is logged and its rows
 * are left to the sweeper the same way.
 */
import { type AppliedInboxRow, type DbHandle, settleAppliedRows } from '@longhaul/db';
import type { Logger } from '@longhaul/runtime';
import { createBatchWriter } from './batch-writer.ts';

export interface InboxSettlerOptions {
  db: DbHandle;
  logger: Logger;
  /** Default 100 ms. */
  flushIntervalMs?: number;
  /** Flush early once this many rows wait. Default 200. */
  batchSize?: number;
}

export interface InboxSettler {
  applied(row: AppliedInboxRow): void;
  /** Write what waits now. */
  flush(): Promise<void>;
  /** Flush; idempotent. */
  close(): Promise<void>;
}

export function createInboxSettler(options: InboxSettlerOptions): InboxSettler {
  const writer = createBatchWriter<AppliedInboxRow>({
    write: (rows) => settleAppliedRows(options.db.db, rows),
    onError: (err, rows) => options.logger.warn({ err, rows: rows.length, code: 'webhook_settle_deferred' }, 'could not settle applied webhooks; the sweeper will settle them'),
    flushIntervalMs: options.flushIntervalMs ?? 100,
    batchSize: options.batchSize ?? 200,
  });
  return { applied: writer.add, flush: writer.flush, close: writer.close };
}
