/**
 * Longhaul's Prometheus metrics, defined once and shared by the API and the worker.
 *
 * Design note: `createMetrics(registry)` registers everything on the registry it is given (never
 * prom-client's global one), so a test process can run several stacks side by side, each with
 * its own. Callers record domain facts (`jobCreated`, `providerRequest`, `callbackAttempt`, ...)
 * rather than touching counters, which keeps label names and value bounds in this one file.
 * `disabledMetrics()` has the same shape and does nothing (METRICS_ENABLED=false).
 */
import { Counter, Gauge, Histogram, type Registry, collectDefaultMetrics } from 'prom-client';
import { type JobStatus, WEBHOOK_HEALTH_STATES, type WebhookHealthState, isTerminal } from '@longhaul/core';
import { boundedLabel } from './labels.ts';

/** One row of queue depth: the number of work items of `queue` in `state` (waiting, delayed, ...). */
export interface QueueDepth {
  queue: string;
  state: string;
  count: number;
}

/** What a finished job contributes: outcome, durations, tokens and cost. */
export interface FinishedJob {
  tenantId: string;
  model: string;
  status: JobStatus;
  createdAt: Date;
  submittedAt: Date | null;
  finishedAt: Date | null;
  usage: {
    input_tokens: number;
    input_tokens_details?: { cached_tokens?: number } | null;
    output_tokens: number;
    output_tokens_details?: { reasoning_tokens?: number } | null;
  } | null;
  costUsd: number | null;
  /** The Longhaul prompt and version the job was rendered from (null: none). */
  promptId?: string | null;
  promptVersion?: number | null;
}

/** One provider HTTP call (create, retrieve, cancel). `status` is the HTTP status, or `timeout` / `network_error`. */
export interface ProviderRequestObservation {
  endpoint: string;
  status: number | 'timeout' | 'network_error';
  durationMs: number;
}

export type PollResult = 'pending' | 'terminal' | 'error' | 'not_found';
export type OpenAIWebhookResult = 'received' | 'duplicate' | 'rejected' | 'malformed';

export interface Metrics {
  readonly enabled: boolean;
  /** The Prometheus text exposition of every metric (`contentType` for the header). */
  render(): Promise<string>;
  readonly contentType: string;
  /** Where queue depths are read from at scrape time (Redis); unset: no queue gauges. */
  setQueueDepthSource(source: () => Promise<QueueDepth[]>): void;

  jobCreated(model: string): void;
  /** A job's response was created at the provider after waiting `queuedMs` in Longhaul. */
  jobSubmitted(model: string, queuedMs: number): void;
  /** A job reached a terminal status (call once, on the transition that made it terminal). */
  jobFinished(job: FinishedJob): void;
  providerRequest(observation: ProviderRequestObservation): void;
  /** The provider rejected a key (401): it was taken out of rotation. */
  providerKeyRejected(keyId: string): void;
  /** How many provider keys are `active`, `retired` and `rejected`, after each change. */
  providerKeys(counts: Record<'active' | 'retired' | 'rejected', number>): void;
  poll(result: PollResult): void;
  openaiWebhook(result: OpenAIWebhookResult): void;
  /**
   * Hybrid mode: the webhooks' health as this worker last read it (`unknown`, `healthy`,
   * `degraded`) and the estimated fraction of late or lost webhooks.
   */
  webhookHealth(state: WebhookHealthState, loss: number): void;
  /** Hybrid mode: this worker moved the shared webhook health from one state to another (counted once per change, by the worker that made it). */
  webhookHealthChanged(from: WebhookHealthState, to: WebhookHealthState): void;
  /**
   * One outgoing callback attempt. `result`: `success`, `failure` (non-2xx), `gone` (410: the
   * receiver asked to stop), `timeout`, `network_error`, `blocked` (SSRF guard), ...
   */
  callbackAttempt(result: string, durationMs: number): void;
  /** A callback delivery succeeded `latencyMs` after its event was created (retries included). */
  callbackDelivered(latencyMs: number): void;
  /**
   * A sweep's findings: `overdue` active jobs nobody looked at within the grace (stuck: their work
   * item lost or their worker dead; up to the sweep's batch size), of which `redispatched` were
   * missing from Redis and dispatched again.
   */
  sweep(found: { overdue: number; redispatched: number }): void;
  httpRequest(method: string, route: string, status: number, durationMs: number): void;
  /**
   * A cacheable job looked for an identical earlier result: `hit` (answered from it, `bytes` of
   * output text served), `miss` (it runs and becomes the entry) or `wait` (an identical job is running:
   * it waits for it).
   */
  responseCache(result: 'hit' | 'miss' | 'wait', bytes?: number): void;
}

export interface MetricsOptions {
  /** Also collect prom-client's process metrics (CPU, memory, event loop lag, GC). Default false. */
  processMetrics?: boolean;
  /** Prefix of every metric name. Default `longhaul_`. */
  prefix?: string;
  /** Distinct model / tenant label values kept before folding the rest into `other`. Defaults 100 / 1000. */
  maxModels?: number;
  maxTenants?: number;
  /** Distinct prompt-version label values kept before folding the rest into `other`. Default 1000. */
  maxPromptVersions?: number;
  /** Distinct provider key ids kept before folding the rest into `other`. Default 100. */
  maxProviderKeys?: number;
}

/** Job durations run from milliseconds (instant simulated jobs) to hours (the 6 h deadline). */
const JOB_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 21600];
const REQUEST_SECONDS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Callback deliveries are retried for days. */
const DELIVERY_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400, 259200];

export function createMetrics(registry: Registry, options: MetricsOptions = {}): Metrics {
  const p = options.prefix ?? 'longhaul_';
  const registers = [registry];
  const model = boundedLabel(options.maxModels ?? 100);
  const tenant = boundedLabel(options.maxTenants ?? 1_000);
  const promptVersion = boundedLabel(options.maxPromptVersions ?? 1_000);
  const providerKey = boundedLabel(options.maxProviderKeys ?? 100);
  if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix: p });

  const cacheLookups = new Counter({
    name: `${p}response_cache_total`,
    help: 'Response cache lookups of cacheable jobs, by result (hit, miss, wait).',
    labelNames: ['result'],
    registers,
  });
  const cacheBytes = new Counter({ name: `${p}response_cache_hit_bytes_total`, help: 'Output text served from the response cache (bytes of UTF-16 text length).', registers });
  const jobsCreated = new Counter({ name: `${p}jobs_created_total`, help: 'Jobs accepted by the API (idempotent replays excluded).', labelNames: ['model'], registers });
  const jobsFinished = new Counter({ name: `${p}jobs_finished_total`, help: 'Jobs that reached a terminal status.', labelNames: ['status', 'model'], registers });
  const queuedSeconds = new Histogram({
    name: `${p}job_queued_seconds`,
    help: 'From acceptance to the response being created at the provider.',
    labelNames: ['model'],
    buckets: JOB_SECONDS,
    registers,
  });
  const providerSeconds = new Histogram({
    name: `${p}job_provider_seconds`,
    help: 'From the response being created at the provider to the job being terminal.',
    labelNames: ['model', 'status'],
    buckets: JOB_SECONDS,
    registers,
  });
  const endToEndSeconds = new Histogram({
    name: `${p}job_duration_seconds`,
    help: 'From acceptance to a terminal status (end to end).',
    labelNames: ['model', 'status'],
    buckets: JOB_SECONDS,
    registers,
  });
  const providerRequests = new Counter({
    name: `${p}provider_requests_total`,
    help: 'Provider HTTP requests by endpoint and status code.',
    labelNames: ['endpoint', 'status_code'],
    registers,
  });
  const providerRequestSeconds = new Histogram({
    name: `${p}provider_request_duration_seconds`,
    help: 'Provider request latency.',
    labelNames: ['endpoint'],
    buckets: REQUEST_SECONDS,
    registers,
  });
  const providerRateLimited = new Counter({ name: `${p}provider_rate_limited_total`, help: 'Provider answers with status 429.', labelNames: ['endpoint'], registers });
  const providerKeysRejected = new Counter({
    name: `${p}provider_key_rejected_total`,
    help: 'Provider keys taken out of rotation because the provider rejected them (401), by key id.',
    labelNames: ['key_id'],
    registers,
  });
  const providerKeyGauge = new Gauge({
    name: `${p}provider_keys`,
    help: 'Provider keys by state: active (takes new creates), retired (serves what it created), rejected (401 from the provider).',
    labelNames: ['state'],
    registers,
  });
  const polls = new Counter({ name: `${p}polls_total`, help: 'Polls of a response, by what they found.', labelNames: ['result'], registers });
  const webhooks = new Counter({
    name: `${p}openai_webhooks_total`,
    help: 'OpenAI webhooks by outcome: received, duplicate, rejected (signature), malformed.',
    labelNames: ['result'],
    registers,
  });
  const webhookHealth = new Gauge({
    name: `${p}webhook_health`,
    help: 'Hybrid completion mode: 1 for the state of OpenAI webhooks this worker polls by (unknown, healthy: polls are a safety net, degraded: adaptive polling), 0 for the others.',
    labelNames: ['state'],
    registers,
  });
  const webhookLoss = new Gauge({
    name: `${p}webhook_loss_ratio`,
    help: 'Hybrid completion mode: estimated fraction of finished responses whose webhook was late or lost (weighted towards the last few).',
    registers,
  });
  const webhookHealthTransitions = new Counter({
    name: `${p}webhook_health_transitions_total`,
    help: 'Hybrid completion mode: changes of the webhooks health, counted by the worker that made them.',
    labelNames: ['from', 'to'],
    registers,
  });
  const callbackAttempts = new Counter({ name: `${p}callback_attempts_total`, help: 'Outgoing callback attempts by result.', labelNames: ['result'], registers });
  const callbackAttemptSeconds = new Histogram({
    name: `${p}callback_attempt_duration_seconds`,
    help: 'Duration of one callback HTTP attempt.',
    labelNames: ['result'],
    buckets: REQUEST_SECONDS,
    registers,
  });
  const callbackDeliverySeconds = new Histogram({
    name: `${p}callback_delivery_latency_seconds`,
    help: 'From a callback event being created to its successful delivery (retries included).',
    buckets: DELIVERY_SECONDS,
    registers,
  });
  const tokens = new Counter({
    name: `${p}tokens_total`,
    help: 'Tokens used by finished jobs; kind is input (all, cached included), cached_input, output (reasoning included) or reasoning.',
    labelNames: ['tenant', 'model', 'kind'],
    registers,
  });
  // Cache-hit ratio per prompt version in PromQL:
  //   sum by (prompt) (rate(longhaul_prompt_cached_input_tokens_total[1h]))
  //     / sum by (prompt) (rate(longhaul_prompt_input_tokens_total[1h]))
  const promptInputTokens = new Counter({
    name: `${p}prompt_input_tokens_total`,
    help: 'Input tokens (cached included) of finished jobs by model and prompt version (prompt="prm_…@<version>", or none).',
    labelNames: ['model', 'prompt'],
    registers,
  });
  const promptCachedInputTokens = new Counter({
    name: `${p}prompt_cached_input_tokens_total`,
    help: 'Input tokens served from the prompt cache, of finished jobs by model and prompt version (prompt="prm_…@<version>", or none).',
    labelNames: ['model', 'prompt'],
    registers,
  });
  const cost = new Counter({ name: `${p}cost_usd_total`, help: 'Estimated cost of finished jobs at list prices, USD.', labelNames: ['tenant', 'model'], registers });
  const httpRequests = new Counter({ name: `${p}http_requests_total`, help: 'HTTP requests served.', labelNames: ['method', 'route', 'status_code'], registers });
  const httpSeconds = new Histogram({
    name: `${p}http_request_duration_seconds`,
    help: 'HTTP request duration.',
    labelNames: ['method', 'route'],
    buckets: REQUEST_SECONDS,
    registers,
  });

  const jobsOverdue = new Gauge({
    name: `${p}jobs_overdue`,
    help: 'Active jobs the last sweep found overdue (not looked at within the grace; up to the sweep batch size): stuck jobs the sweeper is recovering.',
    registers,
  });
  const jobsRedispatched = new Counter({
    name: `${p}jobs_redispatched_total`,
    help: 'Overdue jobs the sweeper found missing from Redis and dispatched again (their work item lost).',
    registers,
  });

  let queueDepthSource: (() => Promise<QueueDepth[]>) | undefined;
  new Gauge({
    name: `${p}queue_jobs`,
    help: 'Work items per queue and state (waiting, active, delayed, prioritized, failed), read from Redis at scrape time.',
    labelNames: ['queue', 'state'],
    registers,
    async collect() {
      this.reset();
      if (!queueDepthSource) return;
      // Redis down: the gauge is left empty for this scrape rather than failing the whole scrape.
      const rows = await queueDepthSource().catch(() => []);
      for (const row of rows) this.set({ queue: row.queue, state: row.state }, row.count);
    },
  });

  return {
    enabled: true,
    render: () => registry.metrics(),
    contentType: registry.contentType,
    setQueueDepthSource(source) {
      queueDepthSource = source;
    },
    jobCreated(m) {
      jobsCreated.inc({ model: model(m) });
    },
    responseCache(result, bytes = 0) {
      cacheLookups.inc({ result });
      if (bytes > 0) cacheBytes.inc(bytes);
    },
    jobSubmitted(m, queuedMs) {
      queuedSeconds.observe({ model: model(m) }, Math.max(0, queuedMs) / 1000);
    },
    jobFinished(job) {
      const labels = { model: model(job.model), status: job.status };
      jobsFinished.inc(labels);
      if (job.finishedAt) {
        endToEndSeconds.observe(labels, Math.max(0, job.finishedAt.getTime() - job.createdAt.getTime()) / 1000);
        if (job.submittedAt) providerSeconds.observe(labels, Math.max(0, job.finishedAt.getTime() - job.submittedAt.getTime()) / 1000);
      }
      const t = { tenant: tenant(job.tenantId), model: labels.model };
      if (job.usage) {
        tokens.inc({ ...t, kind: 'input' }, job.usage.input_tokens || 0);
        tokens.inc({ ...t, kind: 'cached_input' }, job.usage.input_tokens_details?.cached_tokens || 0);
        tokens.inc({ ...t, kind: 'output' }, job.usage.output_tokens || 0);
        tokens.inc({ ...t, kind: 'reasoning' }, job.usage.output_tokens_details?.reasoning_tokens || 0);
        const pv = { model: labels.model, prompt: promptVersion(job.promptId ? `${job.promptId}@${job.promptVersion}` : null) };
        promptInputTokens.inc(pv, job.usage.input_tokens || 0);
        promptCachedInputTokens.inc(pv, job.usage.input_tokens_details?.cached_tokens || 0);
      }
      if (job.costUsd !== null) cost.inc(t, job.costUsd);
    },
    providerRequest({ endpoint, status, durationMs }) {
      providerRequests.inc({ endpoint, status_code: String(status) });
      providerRequestSeconds.observe({ endpoint }, durationMs / 1000);
      if (status === 429) providerRateLimited.inc({ endpoint });
    },
    providerKeyRejected(keyId) {
      providerKeysRejected.inc({ key_id: providerKey(keyId) });
    },
    providerKeys(counts) {
      for (const [state, count] of Object.entries(counts)) providerKeyGauge.set({ state }, count);
    },
    poll(result) {
      polls.inc({ result });
    },
    openaiWebhook(result) {
      webhooks.inc({ result });
    },
    webhookHealth(state, loss) {
      for (const s of WEBHOOK_HEALTH_STATES) webhookHealth.set({ state: s }, s === state ? 1 : 0);
      webhookLoss.set(loss);
    },
    webhookHealthChanged(from, to) {
      webhookHealthTransitions.inc({ from, to });
    },
    callbackAttempt(result, durationMs) {
      callbackAttempts.inc({ result });
      callbackAttemptSeconds.observe({ result }, durationMs / 1000);
    },
    sweep({ overdue, redispatched }) {
      jobsOverdue.set(overdue);
      if (redispatched > 0) jobsRedispatched.inc(redispatched);
    },
    callbackDelivered(latencyMs) {
      callbackDeliverySeconds.observe(Math.max(0, latencyMs) / 1000);
    },
    httpRequest(method, route, status, durationMs) {
      httpRequests.inc({ method, route, status_code: String(status) });
      httpSeconds.observe({ method, route }, durationMs / 1000);
    },
  };
}

/**
 * Record a job that a state change (`changeJobState`'s result) just made terminal. Only the one
 * change that made it terminal counts, so duplicates and late signals are never counted twice.
 */
export function observeStateChange(metrics: Metrics, result: { ok: true; changed: boolean; job: FinishedJob } | { ok: false }): void {
  if (result.ok && result.changed && isTerminal(result.job.status)) metrics.jobFinished(result.job);
}

/** A hook for outgoing callback attempts: every attempt by outcome, and the delivery latency of successes. */
export function callbackAttemptObserver(metrics: Metrics): (attempt: { outcome: string; latencyMs: number; deliveryLatencyMs: number }) => void {
  return (attempt) => {
    metrics.callbackAttempt(attempt.outcome, attempt.latencyMs);
    if (attempt.outcome === 'success') metrics.callbackDelivered(attempt.deliveryLatencyMs);
  };
}

const noop = () => {};

/** Metrics switched off: the same interface, recording nothing. */
export function disabledMetrics(): Metrics {
  return {
    enabled: false,
    render: async () => '',
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    setQueueDepthSource: noop,
    jobCreated: noop,
    responseCache: noop,
    jobSubmitted: noop,
    jobFinished: noop,
    providerRequest: noop,
    providerKeyRejected: noop,
    providerKeys: noop,
    poll: noop,
    openaiWebhook: noop,
    webhookHealth: noop,
    webhookHealthChanged: noop,
    callbackAttempt: noop,
    callbackDelivered: noop,
    sweep: noop,
    httpRequest: noop,
  };
}
