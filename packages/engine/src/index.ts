export * from './admission.ts';
export * from './tenant-limits.ts';
