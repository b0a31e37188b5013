/**
 * Request fault injection for the /v1 endpoints: added latency, then 429 (with Retry-After) or
 * 500 with the configured probabilities. A rate of 1 always fires and 0 never does; a `seed`
 * makes the sequence in between reproducible.
 */
import type { RequestHandler } from 'express';
import type { FaultEndpoint } from './config.ts';
import { injectedServerError, rateLimited } from './errors.ts';
import { chance } from './random.ts';
import type { Simulator } from './simulator.ts';

/** Sleeps that close() can cut short, so no latency timer outlives the server. */
export class Delays {
  readonly #pending = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();

  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.#pending.delete(entry);
          resolve();
        }, ms),
        resolve,
      };
      this.#pending.add(entry);
    });
  }

  cancelAll(): void {
    for (const entry of this.#pending) {
      clearTimeout(entry.timer);
      entry.resolve();
    }
    this.#pending.clear();
  }
}

export function injectFaults(sim: Simulator, delays: Delays, endpoint: FaultEndpoint): RequestHandler {
  return async (_req, _res, next) => {
    const config = sim.config;
    if (!config.fault_endpoints.includes(endpoint)) return next();
    if (config.latency_ms > 0) await delays.wait(config.latency_ms);
    if (chance(sim.random, config.rate_limit_rate)) {
      sim.stats.rate_limited++;
      throw rateLimited(config.retry_after_s);
    }
    if (chance(sim.random, config.error_rate)) {
      sim.stats.errors++;
      throw injectedServerError();
    }
    next();
  };
}
