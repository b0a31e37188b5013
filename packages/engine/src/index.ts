export * from './admission.ts';
export * from './job-effects.ts';
export * from './tenant-limits.ts';
export * from './job-deletion.ts';
export * from './job-answers.ts';
export * from './prompt-rendering.ts';
export * from './run-advance.ts';
export * from './batching.ts';
