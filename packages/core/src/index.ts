export * from './job-state.ts';
export * from './schedules.ts';
export * from './reconcile.ts';
export * from './errors.ts';
export * from './callbacks.ts';
export * from './cost.ts';
export * from './price-config.ts';
export * from './token-estimate.ts';
