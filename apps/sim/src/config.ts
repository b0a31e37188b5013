/**
 * Run-time configuration of the simulator: fault injection, time scaling, streaming, webhook
 * endpoints, the Batch API and flex processing.
 * The server starts from `SimOptions` (normally parsed from the environment), `POST /sim/config`
 * patches it, and `POST /sim/reset` returns to the starting options.
 */
import { Webhook } from 'standardwebhooks';
import { z } from 'zod';

export const FAULT_ENDPOINTS = ['create', 'retrieve', 'cancel', 'delete'] as const;
export type FaultEndpoint = (typeof FAULT_ENDPOINTS)[number];

const rate = z.number().min(0).max(1);
const nonNegative = z.number().min(0);

const webhookSecret = z.string().refine(isUsableSecret, {
  message: 'must be a Standard Webhooks secret: "whsec_" followed by base64',
});

export const simConfigSchema = z.strictObject({
  /** Multiplies every simulated duration and webhook retry delay. 0.01 turns 5 minutes into 3 s. Default 1. */
  time_scale: z.number().positive(),
  /** Simulated duration of a medium-effort response without `sim_duration_ms`. Default 2000. */
  default_duration_ms: nonNegative,
  /** Fraction of matching requests answered 429. Default 0. */
  rate_limit_rate: rate,
  /** `Retry-After` seconds sent with an injected 429. Default 1. */
  retry_after_s: z.number().int().min(0),
  /** Fraction of matching requests answered 500. Default 0. */
  error_rate: rate,
  /** Delay added before matching requests are answered, in real ms. Default 0. */
  latency_ms: nonNegative,
  /** Delay between creating a response and answering the create, in real ms. Default 0. */
  create_answer_delay_ms: nonNegative,
  /** Which endpoints the request faults above apply to. Default all. */
  fault_endpoints: z.array(z.enum(FAULT_ENDPOINTS)),
  /** Seed for fault and webhook randomness; null uses Math.random. Default null. */
  seed: z.number().int().nullable(),
  /** Endpoints that receive a webhook when a background response reaches a terminal state. */
  webhook_urls: z.array(z.url({ protocol: /^https?$/ })),
  /** `whsec_…` signing secret. A random one is generated when none is configured. */
  webhook_secret: webhookSecret,
  /** Fraction of webhook deliveries never sent. Default 0. */
  webhook_drop_rate: rate,
  /** Fraction of webhook deliveries sent again (1–2 extra times, same webhook-id). Default 0. */
  webhook_duplicate_rate: rate,
  /** Extra delay before the first attempt, in simulated ms (multiplied by time_scale). Default 0. */
  webhook_delay_ms: nonNegative,
  /** Hold first attempts for `webhook_reorder_window_ms` (real ms) and send each batch shuffled. */
  webhook_reorder: z.boolean(),
  webhook_reorder_window_ms: nonNegative,
  /** Fraction of attempts signed with a wrong secret. Default 0. */
  webhook_bad_signature_rate: rate,
  /** Per-attempt timeout of a webhook POST, in real ms. Default 10000. */
  webhook_timeout_ms: z.number().positive(),
  /**
   * How long after its creation a streamed background response can still be streamed with
   * `GET /v1/responses/{id}?stream=true`, in real ms: NOT multiplied by time_scale, because
   * OpenAI's limit is wall-clock (5 minutes). Default 300000.
   */
  stream_resume_window_ms: nonNegative,
  /** Fraction of SSE streams (created or resumed) cut after a random number of events. Default 0. */
  stream_cut_rate: rate,
  /** Cut every SSE stream after this many events (deterministic, for tests); null: off. Default null. */
  stream_cut_after_events: z.number().int().min(1).nullable(),
  /** Largest accepted upload, in bytes (OpenAI's limit is 512 MB). Default 64 MiB. */
  max_file_bytes: z.number().int().positive(),
  /** Bytes of uploads kept in memory; beyond this the oldest files are forgotten. Default 512 MiB. */
  files_max_total_bytes: z.number().int().positive(),
  /**
   * Simulated time a batch takes from create to completed, in ms (multiplied by time_scale):
   * 5 % validating, 85 % in_progress (lines finish evenly over it), 10 % finalizing. Default 600000.
   */
  batch_duration_ms: nonNegative,
  /** A batch's completion window (`24h`), simulated ms (× time_scale): a longer batch expires at it. Default 86400000. */
  batch_completion_window_ms: z.number().positive(),
  /** Fraction of batch lines answered with a 500 in the error file. Default 0. */
  batch_line_failure_rate: rate,
  /** Fraction of batches forced to expire half-way through in_progress. Default 0. */
  batch_expire_rate: rate,
  /** Fraction of `service_tier: "flex"` creates answered 429 Resource Unavailable. Default 0. */
  flex_unavailable_rate: rate,
});

export type SimConfig = z.infer<typeof simConfigSchema>;
/** Starting configuration; every key is optional and documented on `SimConfig`. */
export type SimOptions = Partial<SimConfig>;

export const configPatchSchema = simConfigSchema.partial();

export function defaultConfig(): SimConfig {
  return {
    time_scale: 1,
    default_duration_ms: 2000,
    rate_limit_rate: 0,
    retry_after_s: 1,
    error_rate: 0,
    latency_ms: 0,
    create_answer_delay_ms: 0,
    fault_endpoints: [...FAULT_ENDPOINTS],
    seed: null,
    webhook_urls: [],
    webhook_secret: generateWebhookSecret(),
    webhook_drop_rate: 0,
    webhook_duplicate_rate: 0,
    webhook_delay_ms: 0,
    webhook_reorder: false,
    webhook_reorder_window_ms: 200,
    webhook_bad_signature_rate: 0,
    webhook_timeout_ms: 10_000,
    stream_resume_window_ms: 5 * 60_000,
    stream_cut_rate: 0,
    stream_cut_after_events: null,
    max_file_bytes: 64 * 1024 * 1024,
    files_max_total_bytes: 512 * 1024 * 1024,
    batch_duration_ms: 10 * 60_000,
    batch_completion_window_ms: 24 * 60 * 60_000,
    batch_line_failure_rate: 0,
    batch_expire_rate: 0,
    flex_unavailable_rate: 0,
  };
}

/** Fills in defaults and validates, throwing a readable error naming the offending key. */
export function resolveConfig(options: SimOptions): SimConfig {
  const merged = { ...defaultConfig(), ...stripUndefined(options) };
  const parsed = simConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`invalid simulator option ${issue?.path.join('.') ?? ''}: ${issue?.message ?? ''}`);
  }
  return parsed.data;
}

export function generateWebhookSecret(): string {
  const bytes = new Uint8Array(32);
  crypto.getRandomValues(bytes);
  return `whsec_${Buffer.from(bytes).toString('base64')}`;
}

export function isUsableSecret(secret: string): boolean {
  if (!secret.startsWith('whsec_') || secret.length <= 'whsec_'.length) return false;
  try {
    new Webhook(secret);
    return true;
  } catch {
    return false;
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
