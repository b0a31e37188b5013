export * from './job-state.ts';
export * from './schedules.ts';
export * from './reconcile.ts';
export * from './errors.ts';
