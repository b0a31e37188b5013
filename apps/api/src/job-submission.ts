/**
 * Accepting a job: what `POST /v1/jobs` and the OpenAI-compatible `POST /v1/responses` share.
 * A repeated Idempotency-Key is answered with the job it created (before preparation, which may
 * upload files); otherwise the request is prepared (job-preparation/), its callback URL checked,
 * and the job written to Postgres first. What follows (the fair-queue push and submit turn) is
 * `jobEffects.afterJobChange`, best effort: the sweeper dispatches a job whose work item is missing.
 */
import { createHash } from 'node:crypto';
import type { Request } from 'express';
import { z } from 'zod';
import { ValidationError, cacheDecision, isTerminal, responseCacheKey } from '@longhaul/core';
import { applyCacheHit, claimCacheEntry, createJob, findIdempotentReplay, getJobForTenant, lookupCacheEntry, waitForCacheSource, type Job } from '@longhaul/db';
import { checkCallbackUrlResolved } from '@longhaul/callbacks';
import { jobLogFields } from '@longhaul/runtime';
import { rememberJobTrace, setJobAttributes } from '@longhaul/telemetry';
import type { ApiContext } from './context.ts';
import type { JobRequest } from './job-request.ts';
import { prepareJob, type PreparedJob } from './job-preparation/index.ts';

const idempotencyKeySchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

/** The request's Idempotency-Key header, checked; undefined when it has none. */
export function idempotencyKeyOf(req: Request): string | undefined {
  const raw = req.get('Idempotency-Key');
  if (raw === undefined) return undefined;
  const parsed = idempotencyKeySchema.safeParse(raw);
  if (!parsed.success) throw new ValidationError('Idempotency-Key must be 1-255 printable ASCII characters.', 'Idempotency-Key', 'invalid_idempotency_key');
  return parsed.data;
}

/** Stable hash of a JSON body: key order does not matter. */
function canonicalHash(value: unknown): string {
  const canonical = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canonical)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
          )
        : v;
  return createHash('sha256')
    .update(JSON.stringify(canonical(value)))
    .digest('hex');
}

export interface Submission {
  tenantId: string;
  /** The validated request, as `POST /v1/jobs` takes it. */
  body: JobRequest;
  /** What the client sent (its hash tells a replay from a reuse of the key for another request). */
  rawBody: unknown;
  idempotencyKey?: string;
  /** Adjust the prepared provider parameters before the job is written (e.g. keep a field preparation drops). */
  finish?(prepared: PreparedJob): PreparedJob;
  /** Run the job's tool calls as a loop (`POST /v1/jobs`); without it a turn's calls are its result, as an SDK client expects. */
  toolLoop?: boolean;
}

/** Create the job (or find the one an earlier request with the same Idempotency-Key created). */
export async function submitJob(deps: ApiContext, req: Request, submission: Submission): Promise<{ job: Job; replayed: boolean }> {
  const { db, clock, config, jobEffects } = deps;
  const { tenantId, idempotencyKey } = submission;
  const requestHash = idempotencyKey ? canonicalHash(submission.rawBody) : '';
  if (idempotencyKey) {
    const earlier = await findIdempotentReplay(db, tenantId, { key: idempotencyKey, requestHash }, clock());
    if (earlier) {
      req.log.child(jobLogFields(earlier)).info({ idempotency_key: idempotencyKey }, 'idempotent replay');
      return { job: earlier, replayed: true };
    }
  }
  const preparedJob = await prepareJob(deps, tenantId, submission.body);
  const prepared = submission.finish ? submission.finish(preparedJob) : preparedJob;
  const { callbackUrl } = prepared;
  if (callbackUrl) {
    const checked = await checkCallbackUrlResolved(callbackUrl, config.callbackPolicy);
    if (!checked.ok) throw new ValidationError(`Invalid 'callback_url': ${checked.reason}.`, 'callback_url', 'url_not_allowed');
  }
  const toolExecutorUrl = await toolExecutorOf(deps, submission, prepared);
  const now = clock();
  const cacheKey = await cacheKeyOf(deps, tenantId, prepared);
  const { job, replayed } = await createJob(
    db,
    {
      tenantId,
      model: prepared.model,
      request: prepared.providerParams,
      metadata: prepared.metadata,
      callbackUrl,
      previousJobId: prepared.previousJobId,
      threadId: prepared.threadId,
      promptId: prepared.promptId,
      promptVersion: prepared.promptVersion,
      estimatedInputTokens: prepared.estimatedInputTokens,
      expectedDurationMs: prepared.expectedDurationMs,
      maxTurns: submission.toolLoop ? prepared.maxTurns : null,
      toolExecutorUrl,
      processing: prepared.processing,
      fallbacks: prepared.fallbacks,
      validation: prepared.validation,
      flexFallback: prepared.flexFallback,
      cacheKey,
      // A batch job may wait for its batch, then the batch's 24 h window.
      deadlineAt: new Date(now.getTime() + (prepared.processing === 'batch' ? Math.max(config.jobDeadlineMs, BATCH_JOB_DEADLINE_MS) : config.jobDeadlineMs)),
    },
    now,
    idempotencyKey ? { key: idempotencyKey, requestHash, ttlMs: config.idempotencyTtlMs } : undefined,
  );
  if (replayed) {
    req.log.child(jobLogFields(job)).info({ idempotency_key: idempotencyKey }, 'idempotent replay');
    return { job, replayed };
  }
  req.log.child(jobLogFields(job)).info({ model: job.model }, 'job accepted');
  // This request's span is the job's trace root, for the work that starts without a traceparent (a callback, a webhook).
  setJobAttributes(job);
  await rememberJobTrace(deps.queues.connection, deps.queues.prefix, job.id, (job.deadlineAt.getTime() - now.getTime()) / 1000 + JOB_TRACE_GRACE_SECONDS);
  if (cacheKey) {
    const answered = await answerFromCache(deps, req, job, cacheKey, prepared);
    if (answered) return { job: answered, replayed: false };
  }
  await jobEffects.afterJobChange({ ok: true, changed: true, job }, { type: 'created' }, { logger: req.log });
  return { job, replayed };
}

/** How long a job's trace root is kept after its deadline: its callbacks' retries join its trace. */
const JOB_TRACE_GRACE_SECONDS = 3 * 86_400;

/** A batch job's deadline: the collector's wait, the Batch API's 24 h completion window, and an hour to read it back. */
const BATCH_JOB_DEADLINE_MS = 26 * 3_600_000;

/**
 * The job's tool executor URL (`tool_executor.url`), checked like a callback URL (the same
 * address policy, its host resolved now; the worker checks again at connect time), and only for a
 * job whose tools the client runs (a function or custom tool among its tools, a prompt's included).
 */
async function toolExecutorOf(deps: ApiContext, submission: Submission, prepared: PreparedJob): Promise<string | null> {
  const url = submission.body.tool_executor?.url;
  if (url === undefined) return null;
  const tools = prepared.providerParams.tools;
  const clientRuns = Array.isArray(tools) && tools.some((t: { type?: unknown }) => t?.type === 'function' || t?.type === 'custom');
  if (!submission.toolLoop || !clientRuns) {
    throw new ValidationError("'tool_executor' needs tools the client runs (a function or custom tool): there would be no calls to send it.", 'tool_executor', 'invalid_value');
  }
  const checked = await checkCallbackUrlResolved(url, deps.config.callbackPolicy);
  if (!checked.ok) throw new ValidationError(`Invalid 'tool_executor.url': ${checked.reason}.`, 'tool_executor.url', 'url_not_allowed');
  return url;
}

/** The job's response-cache key, when its request may be cached (the job's setting, its prompt version's, its tenant's). */
async function cacheKeyOf(deps: ApiContext, tenantId: string, prepared: PreparedJob): Promise<string | null> {
  // A batch job answers within 24 h: neither a source others should wait for, nor one to answer.
  if (prepared.cache.job === false || prepared.processing === 'batch') return null;
  const tenantTtl = prepared.cache.job || prepared.cache.prompt ? 0 : (await deps.admission.limits.of(tenantId)).cacheTtlSeconds;
  const decision = cacheDecision(prepared.providerParams, { job: prepared.cache.job, prompt: prepared.cache.prompt, tenant: tenantTtl > 0 ? { ttlSeconds: tenantTtl } : null });
  return decision.cache ? responseCacheKey(prepared.providerParams) : null;
}

/**
 * A cacheable job, just written: answered at once from an identical completed job, left waiting
 * for an identical job still running (single flight; that job's end answers or releases it), or,
 * when there is neither, made the entry's source. Returns the job when it is taken care of here,
 * null when it goes to the provider as any job does.
 */
async function answerFromCache(deps: ApiContext, req: Request, job: Job, key: string, prepared: PreparedJob): Promise<Job | null> {
  const { db, clock, jobEffects, metrics } = deps;
  const ttlSeconds = (prepared.cache.job || prepared.cache.prompt)?.ttlSeconds ?? (await deps.admission.limits.of(job.tenantId)).cacheTtlSeconds;
  // Created like any job, though no submit turn follows.
  const created = () => metrics.jobCreated(job.model);
  for (let attempt = 0; attempt < 3; attempt++) {
    const found = await lookupCacheEntry(db, job.tenantId, key, clock());
    if (found.kind === 'hit') {
      const hit = await applyCacheHit(db, job, found.source, { source: 'cache', now: clock() });
      if (!hit.ok) return null;
      created();
      metrics.responseCache('hit', found.source.outputText?.length ?? 0);
      req.log.child(jobLogFields(hit.job)).info({ cached_from: found.source.id }, 'answered from the response cache');
      await jobEffects.afterJobChange(hit, { type: 'cache_hit' }, { logger: req.log });
      return hit.job;
    }
    if (found.kind === 'wait') {
      await waitForCacheSource(db, job.id, found.source.id);
      created();
      metrics.responseCache('wait');
      const waiting = { ...job, cachedFrom: found.source.id };
      // The source may have ended before this job was marked: settle it now rather than leave it to the sweeper.
      const source = await getJobForTenant(db, job.tenantId, found.source.id);
      if (!source || isTerminal(source.status)) await jobEffects.settleCacheWaiter(waiting, req.log);
      return (await getJobForTenant(db, job.tenantId, job.id)) ?? waiting;
    }
    const claimed = await claimCacheEntry(db, { tenantId: job.tenantId, key, sourceJobId: job.id, ttlSeconds, promptId: job.promptId, promptVersion: job.promptVersion }, clock());
    if (claimed) {
      metrics.responseCache('miss');
      return null;
    }
  }
  return null;
}
