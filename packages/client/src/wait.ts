/**
 * `jobs.wait(id)`: the job once its status is terminal. It follows the job's event stream, which
 * tells the end the moment it happens; when the stream cannot be opened (streams disabled, a proxy
 * that does not pass SSE) or is lost beyond resumption, it polls GET /v1/jobs/{id} with backoff
 * instead. Either way the job returned is read from GET /v1/jobs/{id} after the end, so it is the
 * full job object whichever way the end was learnt.
 */
import { type Job, TERMINAL_STATUSES } from './api-types.ts';
import { WaitTimeoutError } from './errors.ts';
import { sleep } from './sleep.ts';
import { type StreamEvent, type StreamOptions, isTerminalEvent } from './stream.ts';

export interface WaitOptions {
  signal?: AbortSignal;
  /** Give up after this long with a WaitTimeoutError (`wait_timeout`); default: no limit. */
  timeoutMs?: number;
  /** Each stream event as it arrives (progress: status changes, output deltas). */
  onEvent?: (event: StreamEvent) => void;
  /** Each job read while polling (after the stream was found unavailable). */
  onPoll?: (job: Job) => void;
  /** Polling: the first pause, growing ×1.5 up to `maxPollIntervalMs` (defaults 500 ms and 5 s). */
  pollIntervalMs?: number;
  maxPollIntervalMs?: number;
}

export interface WaitSource {
  stream(options: StreamOptions): AsyncIterable<StreamEvent>;
  get(options: { signal?: AbortSignal }): Promise<Job>;
}

const isTerminalJob = (job: Job) => TERMINAL_STATUSES.includes(job.status);

/** A signal that aborts with the caller's signal, or with a WaitTimeoutError when time is up. */
function deadlineSignal(options: WaitOptions): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => controller.abort(new WaitTimeoutError(`The job did not finish within ${options.timeoutMs} ms.`, { code: 'wait_timeout' })), options.timeoutMs);
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    },
  };
}

async function poll(source: WaitSource, options: WaitOptions, signal: AbortSignal): Promise<Job> {
  let delay = options.pollIntervalMs ?? 500;
  const maxDelay = options.maxPollIntervalMs ?? 5_000;
  for (;;) {
    const job = await source.get({ signal });
    if (isTerminalJob(job)) return job;
    options.onPoll?.(job);
    await sleep(delay, signal);
    delay = Math.min(delay * 1.5, maxDelay);
  }
}

export async function waitForJob(source: WaitSource, options: WaitOptions = {}): Promise<Job> {
  const { signal, done } = deadlineSignal(options);
  try {
    try {
      for await (const event of source.stream({ signal, maxReconnects: 2 })) {
        options.onEvent?.(event);
        if (isTerminalEvent(event)) break;
      }
    } catch {
      // The caller's abort or the deadline ends the wait; any other stream failure falls back to polling.
      if (signal.aborted) throw signal.reason;
    }
    return await poll(source, options, signal);
  } catch (err) {
    throw signal.aborted ? signal.reason : err;
  } finally {
    done();
  }
}
