/**
 * One shutdown manager per process. The first SIGTERM or SIGINT, or the launcher going away
 * (`parentPid`, see parent.ts), runs `close`: stop accepting work, drain, close connections. Every
 * way out ends in `process.exit`, and none of them can be held up by logging:
 *   - `close` resolved: exit 0, after at most 1 s for stdout to hand its last lines to a reader;
 *   - `close` failed: exit 1, after the same bounded wait;
 *   - the deadline (`timeoutMs` + 2 s) passed: exit 1 at once. Its timer is unref'd, so it fires
 *     whenever anything else keeps the event loop alive; when nothing does, the process ends on
 *     its own, with exit code 1 (set when shutdown began, 0 only once `close` resolved);
 *   - a second signal: exit 1 at once. One Ctrl-C can arrive twice (the terminal signals the
 *     whole process group, and a launcher such as npm relays it), so a repeat within 1 s of the
 *     first is the same request.
 * The log line of each exit is written first but best effort: a logger that throws cannot keep
 * the process from exiting (the logger itself never blocks, see stdio.ts).
 */
import type { Logger } from './logger.ts';
import { exitWithParent } from './parent.ts';
import { stdioDrained } from './stdio.ts';

export interface ShutdownOptions {
  /** Pid of the launcher that started this process (LONGHAUL_PARENT_PID); its exit counts as a SIGTERM. */
  parentPid?: number;
}

export interface Shutdown {
  /** Shut down as a signal would (idempotent); `reason` is logged in place of the signal's name. */
  begin(reason: string): void;
}

const REPEAT_WINDOW_MS = 1_000;
const DEADLINE_GRACE_MS = 2_000;
const STDIO_DRAIN_MS = 1_000;

function bestEffort(log: () => void): void {
  try {
    log();
  } catch {
    // The exit matters more than its log line.
  }
}

export function onShutdown(logger: Logger, timeoutMs: number, close: () => Promise<void>, options: ShutdownOptions = {}): Shutdown {
  let startedAt: number | undefined;
  const finish = async (code: number, log: () => void): Promise<void> => {
    bestEffort(log);
    await stdioDrained(STDIO_DRAIN_MS);
    process.exit(code);
  };
  const begin = (reason: string, fromSignal: boolean): void => {
    if (startedAt !== undefined) {
      if (fromSignal && Date.now() - startedAt >= REPEAT_WINDOW_MS) {
        bestEffort(() => logger.warn({ signal: reason }, 'second signal: exiting now'));
        process.exit(1);
      }
      return;
    }
    startedAt = Date.now();
    process.exitCode = 1;
    bestEffort(() => logger.info({ signal: reason, timeout_ms: timeoutMs }, 'shutting down'));
    const deadline = setTimeout(() => {
      bestEffort(() => logger.error({ code: 'shutdown_timeout' }, 'shutdown deadline passed: exiting'));
      process.exit(1);
    }, timeoutMs + DEADLINE_GRACE_MS);
    deadline.unref();
    close().then(
      () => {
        process.exitCode = 0;
        return finish(0, () => logger.info('shutdown complete'));
      },
      (err: unknown) => finish(1, () => logger.error({ err }, 'shutdown failed')),
    );
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => begin(signal, true));
  exitWithParent(logger, options.parentPid, () => begin('parent_gone', false));
  return { begin: (reason) => begin(reason, false) };
}
