/**
 * Rows written in batches: one write per `flushIntervalMs` (or per `batchSize` rows) instead of
 * one per row, each write after the one before. For bookkeeping no job state depends on (the
 * provider call log, applied webhooks' inbox rows): a crash loses at most the last interval's rows,
 * and each user says what that costs. A failed write is handed to `onError` with its rows; they
 * are not retried. At most `maxBuffered` rows wait (the oldest are dropped beyond).
 */
export interface BatchWriterOptions<Row> {
  write(rows: Row[]): Promise<void>;
  onError(err: unknown, rows: Row[]): void;
  flushIntervalMs: number;
  batchSize: number;
  /** Default unbounded. */
  maxBuffered?: number;
}

export interface BatchWriter<Row> {
  add(row: Row): void;
  /** Write what waits now. */
  flush(): Promise<void>;
  /** Write what waits; nothing waits on a timer afterwards. Idempotent. */
  close(): Promise<void>;
}

export function createBatchWriter<Row>(options: BatchWriterOptions<Row>): BatchWriter<Row> {
  const maxBuffered = options.maxBuffered ?? Number.POSITIVE_INFINITY;
  let buffer: Row[] = [];
  let flushing: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;

  const flush = (): Promise<void> => {
    clearTimeout(timer);
    timer = undefined;
    if (buffer.length === 0) return flushing;
    const rows = buffer;
    buffer = [];
    flushing = flushing.then(() => options.write(rows).catch((err: unknown) => options.onError(err, rows)));
    return flushing;
  };

  let closing: Promise<void> | undefined;
  return {
    add(row) {
      buffer.push(row);
      if (buffer.length > maxBuffered) buffer.splice(0, buffer.length - maxBuffered);
      if (buffer.length >= options.batchSize) void flush();
      else if (!timer) {
        timer = setTimeout(() => void flush(), options.flushIntervalMs);
        timer.unref();
      }
    },
    flush,
    close: () => (closing ??= flush()),
  };
}
