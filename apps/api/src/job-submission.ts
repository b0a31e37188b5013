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
import { ValidationError } from '@longhaul/core';
import { createJob, findIdempotentReplay, type Job } from '@longhaul/db';
import { checkCallbackUrlResolved } from '@longhaul/callbacks';
import { jobLogFields } from '@longhaul/runtime';
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
  const now = clock();
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
      deadlineAt: new Date(now.getTime() + config.jobDeadlineMs),
    },
    now,
    idempotencyKey ? { key: idempotencyKey, requestHash, ttlMs: config.idempotencyTtlMs } : undefined,
  );
  if (replayed) {
    req.log.child(jobLogFields(job)).info({ idempotency_key: idempotencyKey }, 'idempotent replay');
  } else {
    req.log.child(jobLogFields(job)).info({ model: job.model }, 'job accepted');
    await jobEffects.afterJobChange({ ok: true, changed: true, job }, { type: 'created' }, { logger: req.log });
  }
  return { job, replayed };
}
