export * from './catalog.ts';
export * from './queues.ts';
