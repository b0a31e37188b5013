export * from './client.ts';
export * from './ids.ts';
export * from './migrate.ts';
export * from './tenants.ts';
export * from './jobs.ts';
export * from './job-transitions.ts';
export * from './webhook-inbox.ts';
export * as schema from './schema.ts';
export type { Job, JobEventRow, Tenant, WebhookInboxRow, WebhookInboxStatus } from './schema.ts';
