/**
 * Standard output that can neither block nor crash the process, whatever is on the other end.
 *
 * pino's default destination (sonic-boom) cannot promise that. On exit it flushes synchronously
 * and retries a failed write every 100 ms forever: a closed pipe (EPIPE) or a full pipe that
 * nobody reads (EAGAIN) leaves the main thread asleep in a futex after "shutdown complete". Its
 * asynchronous writes run on libuv's thread pool, and a thread blocked there on a full pipe
 * would also block `process.exit`, which joins the pool.
 *
 * So the logs go through `process.stdout` itself: on a pipe that is a libuv stream (the fd is
 * made non-blocking and a write that does not fit waits in memory, on the event loop, never on
 * a thread); on a file a plain synchronous write; on a terminal a blocking write, as every CLI
 * does. On top of it:
 *   - at most `maxQueuedBytes` wait for a slow or absent reader; lines beyond are dropped and
 *     counted, and one line says how many once the reader catches up;
 *   - an error on the stream (EPIPE, EIO from a closed terminal) ends logging instead of
 *     throwing an unhandled 'error' event; stderr gets the same guard;
 *   - nothing is flushed at exit: `stdioDrained` is a bounded wait the shutdown manager does
 *     before `process.exit`, so a reader still attached gets the last lines.
 */
import type { Writable } from 'node:stream';

const guarded = new WeakSet<Writable>();
const broken = new WeakSet<Writable>();

/** Swallow errors on a standard stream (EPIPE, EIO) and remember that it no longer takes writes. */
export function guardStdio(stream: Writable): void {
  if (guarded.has(stream)) return;
  guarded.add(stream);
  stream.on('error', () => {
    broken.add(stream);
  });
}

export interface StdoutDestinationOptions {
  /** Default `process.stdout`. */
  stream?: Writable;
  /** Bytes allowed to wait for the reader before lines are dropped. Default 4 MiB. */
  maxQueuedBytes?: number;
  /** On the line that reports dropped lines, as `service`. */
  service?: string;
}

/** A pino destination (anything with `write(line)`) that never blocks or throws. */
export function stdoutDestination(options: StdoutDestinationOptions = {}): { write(line: string): void } {
  const stream = options.stream ?? process.stdout;
  const maxQueuedBytes = options.maxQueuedBytes ?? 4 * 1024 * 1024;
  guardStdio(stream);
  guardStdio(process.stderr);
  let dropped = 0;
  const send = (line: string): void => {
    try {
      stream.write(line);
    } catch {
      // A synchronous stream (a file) throws instead of emitting: the disk is full or gone.
      broken.add(stream);
    }
  };
  return {
    write(line: string): void {
      if (broken.has(stream) || stream.destroyed) return;
      if (stream.writableLength > maxQueuedBytes) {
        dropped += 1;
        return;
      }
      if (dropped > 0) {
        const note = {
          level: 'warn',
          time: new Date().toISOString(),
          service: options.service,
          code: 'log_lines_dropped',
          dropped,
          msg: `stdout was not read: ${dropped} log lines dropped`,
        };
        dropped = 0;
        send(`${JSON.stringify(note)}\n`);
      }
      send(line);
    },
  };
}

/**
 * Resolves once stdout and stderr have handed everything to the OS (or are broken), or after
 * `timeoutMs`, whichever comes first. Never keeps the event loop alive by itself.
 */
export function stdioDrained(timeoutMs: number, streams: Writable[] = [process.stdout, process.stderr]): Promise<void> {
  const pending = () => streams.some((s) => !s.destroyed && !broken.has(s) && s.writableLength > 0);
  if (!pending()) return Promise.resolve();
  return new Promise((resolve) => {
    const started = Date.now();
    const timer = setInterval(() => {
      if (!pending() || Date.now() - started >= timeoutMs) {
        clearInterval(timer);
        resolve();
      }
    }, 10);
    timer.unref();
  });
}
