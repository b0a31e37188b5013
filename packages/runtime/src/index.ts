export * from './logger.ts';
export * from './shutdown.ts';
export * from './parent.ts';
export * from './stdio.ts';
export * from './readiness.ts';
export * from './env.ts';
