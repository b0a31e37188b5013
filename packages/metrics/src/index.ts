export * from './metrics.ts';
export * from './labels.ts';
export { Registry } from 'prom-client';
