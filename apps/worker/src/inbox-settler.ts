/**
 * Settles applied OpenAI webhooks in batches: one statement per `flushIntervalMs` (or per
 * `batchSize` rows) instead of one per webhook.
 *
 * Design note: settling is bookkeeping, not job state: the job's reconcile is already committed
 * when a row is handed here. A crash loses the rows of the last interval; they stay `received`, and
 * the sweeper hands them to the worker again, which finds their job finished and settles them
 * (`job already <status>`) without asking the provider. A failing flush is logged and its rows
 * are left to the sweeper the same way.
 */
import { type AppliedInboxRow, type DbHandle, settleAppliedRows } from '@longhaul/db';
import type { Logger } from '@longhaul/runtime';

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
  /** Stop the timer and flush. Idempotent. */
  close(): Promise<void>;
}

export function createInboxSettler(options: InboxSettlerOptions): InboxSettler {
  const { db, logger } = options;
  const batchSize = options.batchSize ?? 200;
  let buffer: AppliedInboxRow[] = [];
  let flushing: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  const flush = (): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    if (buffer.length === 0) return flushing;
    const rows = buffer;
    buffer = [];
    flushing = flushing.then(() =>
      settleAppliedRows(db.db, rows).catch((err: unknown) =>
        logger.warn({ err, rows: rows.length, code: 'webhook_settle_deferred' }, 'could not settle applied webhooks; the sweeper will settle them'),
      ),
    );
    return flushing;
  };

  let closing: Promise<void> | undefined;
  return {
    applied(row) {
      buffer.push(row);
      if (buffer.length >= batchSize) void flush();
      else timer ??= setTimeout(() => void flush(), options.flushIntervalMs ?? 100);
    },
    flush,
    close: () => (closing ??= flush()),
  };
}
