/**
 * Webhook health: whether OpenAI's webhooks are arriving, learned from what the worker sees.
 * Hybrid completion mode polls on the schedule this chooses (schedules.ts): a safety net while
 * webhooks are `healthy`, adaptive polling while they are `unknown` (nothing seen yet) or
 * `degraded` (they stopped).
 *
 * Design note: two observations, both about a finished response:
 * - a webhook arrived (for a job still running, or one a poll had already finished: either way
 *   webhooks are being delivered);
 * - a poll found the response finished with no webhook applied, longer than the grace period
 *   ago or past the job's expected duration (`webhookIsLate`): its webhook is late or lost. A
 *   poll that finds a response just finished, early in the job's expected run, says nothing (its
 *   webhook may be on its way).
 * The model keeps `loss`, an exponentially weighted estimate of the fraction of late webhooks
 * (each observation weighs `weight`, 0.2: the last ~10 dominate), and moves between states with
 * hysteresis: degraded at `loss >= degradeAt` (0.5: four late webhooks in a row from a clean
 * record), healthy again at `loss <= recoverAt` (0.2: five to eight webhooks in a row), so a
 * partial loss between the two thresholds does not flap. Leaving `unknown` takes `minSamples`
 * observations. Silence alone is no observation: no webhook for an hour may only mean no job
 * finished; a webhook that should have come is noticed by the poll its job gets when it is
 * overdue.
 *
 * Observations are counted in batches (a worker flushes what it saw every few seconds into a
 * record every worker shares), so the update takes a batch: `n` observations of which `late` were
 * late move the estimate as `n` observations of the batch's average would.
 */
import { assertNever } from './job-state.ts';

export const WEBHOOK_HEALTH_STATES = ['unknown', 'healthy', 'degraded'] as const;
export type WebhookHealthState = (typeof WEBHOOK_HEALTH_STATES)[number];

export interface WebhookHealth {
  state: WebhookHealthState;
  /** Estimated fraction of finished responses whose webhook was late or lost, 0..1. */
  loss: number;
  /** Observations so far. */
  samples: number;
  /** When `state` last changed (ms since the epoch); null: never. */
  changedAtMs: number | null;
}

/** A fresh deployment: nothing seen yet. */
export const INITIAL_WEBHOOK_HEALTH: WebhookHealth = { state: 'unknown', loss: 0, samples: 0, changedAtMs: null };

/** What a worker saw since its last flush. */
export interface WebhookObservations {
  /** Webhooks of finished responses that arrived (and were applied, or found their job already finished). */
  arrived: number;
  /** Finished responses a poll found with no webhook applied, finished longer than the grace period ago. */
  late: number;
}

export interface WebhookHealthOptions {
  /** Weight of each observation in the loss estimate. Default 0.2. */
  weight?: number;
  /** Webhooks are degraded once the estimated loss reaches this. Default 0.5. */
  degradeAt?: number;
  /** Webhooks are healthy (again) once the estimated loss is down to this. Default 0.2. */
  recoverAt?: number;
  /** Observations needed before leaving `unknown`. Default 3. */
  minSamples?: number;
}

/** The health after a batch of observations at `nowMs`. Pure; the state changes only on a threshold. */
export function observeWebhooks(health: WebhookHealth, seen: WebhookObservations, nowMs: number, options: WebhookHealthOptions = {}): WebhookHealth {
  const n = Math.max(0, seen.arrived) + Math.max(0, seen.late);
  if (n === 0) return health;
  const weight = options.weight ?? 0.2;
  const keep = (1 - weight) ** n;
  const loss = clamp01(health.loss * keep + (Math.max(0, seen.late) / n) * (1 - keep));
  const samples = health.samples + n;
  const state = nextState(health.state, loss, samples, options);
  return { state, loss, samples, changedAtMs: state === health.state ? health.changedAtMs : nowMs };
}

function nextState(state: WebhookHealthState, loss: number, samples: number, options: WebhookHealthOptions): WebhookHealthState {
  const degradeAt = options.degradeAt ?? 0.5;
  const recoverAt = options.recoverAt ?? 0.2;
  switch (state) {
    case 'unknown':
      if (samples < (options.minSamples ?? 3)) return state;
      return loss >= degradeAt ? 'degraded' : loss <= recoverAt ? 'healthy' : state;
    case 'healthy':
      return loss >= degradeAt ? 'degraded' : state;
    case 'degraded':
      return loss <= recoverAt ? 'healthy' : state;
    default:
      return assertNever(state);
  }
}

/** `completed_at` is in whole seconds: a response completed up to this long after it says. */
const COMPLETED_AT_RESOLUTION_MS = 1_000;

/** A poll that found a job's response finished, with no webhook applied to the job. */
export interface FinishedByPoll {
  response: { status?: string | null; completed_at?: number | null };
  nowMs: number;
  /** How late a webhook may be (`webhookGraceMs`). */
  graceMs: number;
  /** When the job was submitted, and how long a job of its kind is expected to take (expected-duration.ts), if known. */
  submittedAtMs?: number;
  expectedDurationMs?: number;
}

/**
 * Whether a response a poll found finished (its job not yet finished by a webhook) tells of a
 * late webhook. Either it surely completed at least `graceMs` before the poll (`completed_at` is
 * in whole seconds, so it is read as the end of its second: a response just completed never
 * counts), or the job has run past its expected duration, which is learned from when jobs'
 * webhooks (or polls) finished them and so already holds the usual webhook delay. Otherwise the
 * poll came first by chance, the webhook may be on its way, and nothing is learned.
 */
export function webhookIsLate(found: FinishedByPoll): boolean {
  const { response, nowMs, graceMs, submittedAtMs, expectedDurationMs } = found;
  if (submittedAtMs !== undefined && expectedDurationMs !== undefined && nowMs - submittedAtMs >= expectedDurationMs) return true;
  if (response.status !== 'completed' || typeof response.completed_at !== 'number') return false;
  return nowMs - (response.completed_at * 1000 + COMPLETED_AT_RESOLUTION_MS) >= graceMs;
}

export function isWebhookHealthState(value: unknown): value is WebhookHealthState {
  return typeof value === 'string' && (WEBHOOK_HEALTH_STATES as readonly string[]).includes(value);
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}
