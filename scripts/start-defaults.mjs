// What `npm start` gives each app on top of the environment (a variable set there wins): the
// settings of a deployment whose apps share one machine's cores. The bench starts its apps with the
// same (bench/children.ts), so that it measures what `npm start` users get.
export const COLOCATED_ENV = {
  worker: {
    // The API's latency first: the worker only takes cycles nothing else wants (SCHED_IDLE on
    // Linux, niceness 19 elsewhere). POST /v1/jobs at 200 req/s with the worker busy on the same
    // 2 cores: p99 24 ms, against 577 ms at normal priority (`npm run bench -- --only latency`).
    WORKER_CPU_PRIORITY: 'idle',
  },
};
