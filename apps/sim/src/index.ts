/** Entrypoint: environment, logger, listen, graceful shutdown on SIGTERM/SIGINT. */
import { createLogger } from '@longhaul/runtime';
import { loadEnv } from './env.ts';
import { createSimServer } from './server.ts';

const SHUTDOWN_DEADLINE_MS = 10_000;

async function main(): Promise<void> {
  let env;
  try {
    env = loadEnv();
  } catch (error) {
    createLogger({ service: 'sim' }).fatal({ err: error }, (error as Error).message);
    process.exitCode = 1;
    return;
  }
  const logger = createLogger({ service: 'sim', level: env.logLevel });
  const sim = createSimServer(env.options, { logger, specPath: env.specPath });
  const listening = await sim.listen(env.port, env.host);
  logger.info({ url: listening.url, config: { ...sim.simulator.config, webhook_secret: '[redacted]' } }, 'simulator listening');

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal, forcing exit');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      logger.error('shutdown deadline passed, forcing exit');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    listening.close().then(
      () => {
        logger.info('simulator stopped');
        process.exitCode = 0;
      },
      (error: unknown) => {
        logger.error({ err: error }, 'error while shutting down');
        process.exitCode = 1;
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

void main();
