/**
 * Words the API, the worker, the database layer and the simulator share, defined once. Each is
 * derived from the state machine it belongs to where there is one, so a new status cannot be
 * forgotten in one of the lists.
 */
import { JOB_STATUSES, type JobStatus, type ProviderStatus, isTerminal } from './job-state.ts';

/**
 * The metadata key Longhaul adds to every response it creates, holding the job id: it links a
 * provider webhook to its job when the response id is not yet committed, and is reserved in a
 * tenant's own metadata.
 */
export const JOB_ID_METADATA_KEY = 'longhaul_job_id';

/** Job statuses the worker still owes work to (everything not terminal), in lifecycle order. */
export const ACTIVE_STATUSES: readonly JobStatus[] = JOB_STATUSES.filter((s) => !isTerminal(s));

/** Provider (OpenAI Responses) statuses a response never leaves. */
export const TERMINAL_PROVIDER_STATUSES = ['completed', 'failed', 'cancelled', 'incomplete'] as const satisfies readonly ProviderStatus[];
export type TerminalProviderStatus = (typeof TERMINAL_PROVIDER_STATUSES)[number];

export function isTerminalProviderStatus(status: string | null | undefined): status is TerminalProviderStatus {
  return (TERMINAL_PROVIDER_STATUSES as readonly string[]).includes(status ?? '');
}

/**
 * The provider event types (stream events and webhooks) that carry a finished response:
 * `response.<terminal status>` (streams have no `response.cancelled`; webhooks do).
 */
export const TERMINAL_RESPONSE_EVENT_TYPES: readonly string[] = TERMINAL_PROVIDER_STATUSES.map((s) => `response.${s}`);

/**
 * The type prefix of each id Longhaul mints (`job_4f9Qx…`): `newId` in @longhaul/db writes them,
 * the API's input parsing checks a path or body id against them before it reaches Postgres.
 */
export const ID_PREFIX = {
  job: 'job',
  prompt: 'prm',
  pipeline: 'pipe',
  run: 'run',
  /** A Batch API batch Longhaul collected (the provider's own id is `batch_…`). */
  batch: 'lhb',
  dataset: 'ds',
  eval: 'eval',
  rollout: 'ro',
  webhookEndpoint: 'we',
  /** Minted in SQL (`dlv_` + 32 hex characters) when a job's outcome is fanned out. */
  delivery: 'dlv',
  tenant: 'ten',
  apiKey: 'key',
  /** A tenant's API key itself (the secret), not its row id. */
  secretKey: 'lh_sk',
  event: 'evt',
} as const;

/** The shape of an id Longhaul minted with `prefix`: the prefix, `_`, then 8–64 base-62 characters. */
export function idPattern(prefix: (typeof ID_PREFIX)[keyof typeof ID_PREFIX]): RegExp {
  return new RegExp(`^${prefix}_[0-9A-Za-z]{8,64}$`);
}
