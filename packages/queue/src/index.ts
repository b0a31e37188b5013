export * from './catalog.ts';
export * from './queues.ts';
export * from './redis.ts';
export * from './redis-env.ts';
export * from './job-stream.ts';
export * from './health.ts';
export * from './depth.ts';
export * from './fair-queue.ts';
