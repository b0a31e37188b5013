/** Entrypoint: environment, logger, listen, graceful shutdown on SIGTERM/SIGINT or when the launcher is gone. */
import { createLogger, loadConfigOrExit, onShutdown } from '@longhaul/runtime';
import { loadEnv } from './env.ts';
import { createSimServer } from './server.ts';

const SHUTDOWN_DEADLINE_MS = 10_000;

async function main(): Promise<void> {
  const env = loadConfigOrExit(loadEnv);
  const logger = createLogger({ service: 'sim', level: env.logLevel });
  const sim = createSimServer(env.options, { logger, specPath: env.specPath, apiKeys: env.apiKeys });
  const listening = await sim.listen(env.port, env.host);
  logger.info({ url: listening.url, config: { ...sim.simulator.config, webhook_secret: '[redacted]' }, api_keys: env.apiKeys.length }, 'simulator listening');

  onShutdown(logger, SHUTDOWN_DEADLINE_MS, () => listening.close(), { parentPid: env.parentPid });
}

void main();
