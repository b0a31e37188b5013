/**
 * Scenario 2, API submit latency under an open-loop load: request i is sent at start + i/rate
 * whatever happened to the earlier ones, so a slow API cannot slow the load down (no coordinated
 * omission). Latency is measured from the *scheduled* send time to the last byte of the answer,
 * so any lag of the benchmark's own timers is charged to the result, never hidden.
 */
import { INSTANT_JOB } from './e2e.ts';
import { createJobsClient } from './http.ts';
import { sleep } from './pool.ts';
import type { Stack } from './stack.ts';
import { summarize, type Summary } from './stats.ts';

export interface LatencyOptions {
  rate: number;
  durationS: number;
}

export interface LatencyResult {
  sent: number;
  ok: number;
  errors: number;
  firstError?: string;
  /** Successful answers per second, from the first scheduled send to the last answer. */
  achievedRate: number;
  latency: Summary;
  /** How late the benchmark's own timer fired requests (p99, ms): large values mean the client was starved. */
  sendLagP99: number;
}

export async function runLatency(stack: Stack, options: LatencyOptions): Promise<LatencyResult> {
  const total = Math.max(1, Math.round(options.rate * options.durationS));
  const intervalMs = 1000 / options.rate;
  const client = createJobsClient(stack.apiUrl, stack.apiKey, Number.POSITIVE_INFINITY);
  // One request first to open a connection and warm the API's code paths; not measured.
  await client.submit(INSTANT_JOB);

  const latencies: number[] = [];
  const lags: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const inFlight: Promise<void>[] = [];
  const start = performance.now() + 20;
  let next = 0;

  const fire = (i: number) => {
    const scheduled = start + i * intervalMs;
    lags.push(performance.now() - scheduled);
    return client.submit(INSTANT_JOB).then(
      (result) => {
        if (result.jobId) latencies.push(performance.now() - scheduled);
        else {
          errors++;
          firstError ??= `${result.status} ${result.error}`;
        }
      },
      (err: Error) => {
        errors++;
        firstError ??= err.message;
      },
    );
  };

  while (next < total) {
    const now = performance.now();
    // Catch up on every slot that is due (a late timer sends a small burst, as an open loop must).
    while (next < total && start + next * intervalMs <= now) inFlight.push(fire(next++));
    if (next < total) await sleep(Math.max(0, start + next * intervalMs - performance.now()));
  }
  await Promise.all(inFlight);
  const windowS = (performance.now() - start) / 1000;
  client.close();

  return {
    sent: total,
    ok: latencies.length,
    errors,
    firstError,
    achievedRate: latencies.length / windowS,
    latency: summarize(latencies),
    sendLagP99: summarize(lags).p99,
  };
}
