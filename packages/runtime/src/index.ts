export * from './logger.ts';
export * from './shutdown.ts';
export * from './readiness.ts';
