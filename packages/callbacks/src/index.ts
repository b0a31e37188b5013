export * from './ssrf.ts';
export * from './send.ts';
