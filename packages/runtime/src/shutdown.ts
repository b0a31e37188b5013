import type { Logger } from './logger.ts';

/**
 * One shutdown manager: the first SIGTERM/SIGINT runs `close` (stop accepting work, drain, close
 * connections) within `timeoutMs`; a second signal, or the deadline, forces exit.
 */
export function onShutdown(logger: Logger, timeoutMs: number, close: () => Promise<void>): void {
  let shuttingDown = false;
  const handler = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    shuttingDown = true;
    logger.info({ signal, timeout_ms: timeoutMs }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ code: 'shutdown_timeout' }, 'shutdown deadline passed: exiting');
      process.exit(1);
    }, timeoutMs + 2_000);
    timer.unref();
    close().then(
      () => {
        logger.info('shutdown complete');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
