/**
 * Scenario 3, the baseline: what bare BullMQ does with the same number of jobs on the same Redis
 * in the same run. The producer (this process) keeps `concurrency` `Queue.add` calls in flight,
 * mirroring how the end-to-end scenario keeps that many HTTP submits in flight; a separate
 * process runs a Worker with a no-op processor. Completion is observed like the end-to-end run:
 * one count (of the completed set) every ~50 ms.
 */
import { Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { spawnApp } from './children.ts';
import { runPool, sleep } from './pool.ts';
import { deletePrefix, servicesFromEnv, trackCleanup, uniquePrefix } from './stack.ts';
import { procCpuMs } from './usage.ts';

const QUEUE = 'noop';
const STALL_MS = 30_000;

export interface BaselineOptions {
  jobs: number;
  /** Adds in flight on the producer side. */
  concurrency: number;
  /** The no-op Worker's concurrency. */
  workerConcurrency: number;
}

export interface BaselineResult {
  completed: number;
  seconds: number;
  jobsPerSecond: number;
  /** Adds per second on their own. */
  addPerSecond: number;
  /** CPU per job of the worker process and of this (producer) process, ms. */
  workerCpuMsPerJob: number;
  producerCpuMsPerJob: number;
}

export async function runBaseline(options: BaselineOptions): Promise<BaselineResult> {
  const { redisUrl } = servicesFromEnv();
  const prefix = uniquePrefix('base');
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(QUEUE, { connection: redis as ConnectionOptions, prefix });
  const worker = spawnApp('baseline-worker', {
    BASELINE_REDIS_URL: redisUrl,
    BASELINE_PREFIX: prefix,
    BASELINE_QUEUE: QUEUE,
    BASELINE_CONCURRENCY: String(options.workerConcurrency),
  });
  let cleaning: Promise<void> | undefined;
  let adding: Promise<void> | undefined;
  let stopped = false;
  const cleanup = () =>
    (cleaning ??= (async () => {
      // Stop the producer first, or in-flight adds recreate keys after the prefix is deleted.
      stopped = true;
      await adding?.catch(() => {});
      await worker.stop(5_000);
      await queue.close();
      await deletePrefix(redis, prefix);
      redis.disconnect();
    })());
  const untrack = trackCleanup(cleanup);
  try {
    await worker.waitForLine((line) => line.trim() === 'ready', 30_000);
    await queue.waitUntilReady();

    const workerCpuBefore = procCpuMs(worker.pid) ?? Number.NaN;
    const producerCpuBefore = process.cpuUsage();
    const started = performance.now();
    let addEnded = 0;
    let addDone = false;
    adding = runPool(options.jobs, options.concurrency, async (i) => {
      if (!stopped) await queue.add('noop', { i });
    }).finally(() => {
      addDone = true;
      addEnded = performance.now();
    });
    let completed = 0;
    let ended = started;
    let lastProgress = started;
    for (;;) {
      await sleep(50);
      const n = await queue.getCompletedCount();
      ended = performance.now();
      if (n > completed) lastProgress = ended;
      completed = n;
      if (addDone && completed >= options.jobs) break;
      if (ended - lastProgress > STALL_MS) break;
    }
    await adding;
    const workerCpuMs = (procCpuMs(worker.pid) ?? Number.NaN) - workerCpuBefore;
    const producerCpu = process.cpuUsage(producerCpuBefore);
    const seconds = (ended - started) / 1000;
    return {
      completed,
      seconds,
      jobsPerSecond: completed / seconds,
      addPerSecond: options.jobs / ((addEnded - started) / 1000),
      workerCpuMsPerJob: workerCpuMs / Math.max(1, completed),
      producerCpuMsPerJob: (producerCpu.user + producerCpu.system) / 1000 / Math.max(1, completed),
    };
  } finally {
    await cleanup();
    untrack();
  }
}
