/**
 * submit: admit the fairest pending job to the provider, create its background response and commit
 * its id.
 *
 * Each submit work item is a *turn* (see packages/queue/src/fair-queue.ts): it takes the fairest
 * job whose tenant has token budget left (which may be another job than the one it was added
 * for), and stays bound to it until done, so BullMQ's retries (transient errors, provider 429,
 * a crashed worker) resume that same job. When every waiting tenant is over budget the turn
 * moves itself to delayed until the earliest refill and the jobs stay `pending`. When the fair
 * queue is empty the turn re-admits the job it was added for if that job is still pending and
 * nowhere in the fair queue (its push was lost); otherwise it has nothing to do.
 *
 * Flex (issue 17): a `service_tier: "flex"` create refused for flex capacity (429 Resource
 * Unavailable, ProviderError kind `unavailable`) is not a provider rate limit: the submit queue is
 * not paused and the turn keeps its job (and the tokens it was admitted with: the tenant's budget
 * is not charged again). The work item alone is delayed on the flex backoff (@longhaul/core
 * flex.ts), without using up a transient-retry attempt, until the flex window has passed since the
 * turn's first failed create; then the job is created at the standard tier (`flex_fallback:
 * "auto"`, recorded in its `submitted` event) or fails with `flex_unavailable`.
 *
 * Crash window: if this process dies after the provider accepted the create but before the
 * response id is committed, BullMQ re-runs the work item and a second response is created. The
 * `submit_attempts` counter is bumped before each create so such duplicates are visible.
 */
import { DelayedError, RateLimitError, UnrecoverableError, type Job as QueueJob } from 'bullmq';
import {
  DEFAULT_FLEX_RETRY_WINDOW_MS,
  JOB_ID_METADATA_KEY,
  JobStatus,
  RETRYABLE_ERROR_CODES,
  attemptModel,
  attemptParams,
  flexRetryDecision,
  hasFallbackLeft,
  isFlexRequest,
  mayRetry,
  nextTurnRequest,
  standardTierRequest,
} from '@longhaul/core';
import { type Job, applyJobEvent, claimSubmission, getJob, providerKeyOfReferences } from '@longhaul/db';
import { DEFAULT_PROVIDER_KEY_ID, ProviderError, type ProviderResult } from '@longhaul/provider';
import { parsePayload, type Turn } from '@longhaul/queue';
import { jobLogFields } from '@longhaul/runtime';
import { setJobAttributes } from '@longhaul/telemetry';
import type { WorkerContext, WorkerDeps } from '../deps.ts';
import { jobWorkSpan } from '../tracing.ts';

/**
 * Create a `stream: true` response: read its stream up to `response.created` (stored in the job's
 * event log, in the range of the job's turn), then let go of it: the stream processor resumes
 * after what is stored. Provider events left in this turn's range by an earlier attempt belong to
 * a response this job never committed (a crash between create and commit), so the turn is stored
 * afresh; a tool-call loop's earlier turns stay.
 */
async function createStreamed(deps: WorkerDeps, job: Job, params: Record<string, unknown>, keyId: string | null): Promise<ProviderResult> {
  if (job.submitAttempts > 1) await deps.jobStreams.clearTurn(job.id, job.turn);
  const stream = await deps.provider.createResponseStream(params, { jobId: job.id, keyId });
  try {
    for await (const event of stream) {
      await deps.jobStreams.appendProviderEvent(job.id, event.sequence_number, event.type, JSON.stringify(event), job.turn);
      if (event.response?.id) return { response: event.response, requestId: null, keyId: stream.keyId };
    }
  } finally {
    stream.abort();
  }
  throw new ProviderError('The provider stream ended before announcing the response.', { kind: 'transient', status: null, code: 'stream_ended_early' });
}

/** The job this turn works on: the one it is bound to, the fairest admissible one, or its own job re-admitted. */
async function takeTurn({ db, admission }: WorkerContext, turnId: string, ownJobId: string): Promise<Turn> {
  const turn = await admission.fairQueue.take(turnId);
  if (turn.kind !== 'empty') return turn;
  const own = await getJob(db.db, ownJobId);
  if (!own || own.status !== JobStatus.Pending) return turn;
  if (!(await admission.admit(own))) return turn;
  return admission.fairQueue.take(turnId);
}

/** Jitter on a budget wait, so turns waiting for the same refill do not all wake at once. */
const waitJitterMs = (waitMs: number) => Math.floor(Math.random() * Math.min(250, waitMs / 4));

export function submitJobProcessor(deps: WorkerContext) {
  const { admission } = deps;
  /** The job each tenant was last logged waiting with: one log line per job that waits, not one per turn. */
  const loggedWaits = new Map<string, string>();
  return async (work: QueueJob, token?: string): Promise<void> => {
    const payload = parsePayload('submit', work.data);
    const turnId = work.id ?? payload.jobId;
    const turn = await takeTurn(deps, turnId, payload.jobId);
    if (turn.kind === 'empty') return;
    if (turn.kind === 'wait') {
      if (loggedWaits.get(turn.tenantId) !== turn.jobId) {
        if (loggedWaits.size > 10_000) loggedWaits.clear();
        loggedWaits.set(turn.tenantId, turn.jobId);
        deps.logger.info({ job_id: turn.jobId, tenant_id: turn.tenantId, wait_ms: turn.waitMs, code: 'admission_wait' }, 'tenant over its token budget: job waits in pending');
      }
      await work.moveToDelayed(deps.clock().getTime() + turn.waitMs + waitJitterMs(turn.waitMs), token);
      throw new DelayedError();
    }
    let outcome: 'done' | 'skipped';
    try {
      // The span is the taken job's: the turn's own traceparent only when it took its own job.
      const trace = { jobId: turn.jobId, traceparent: turn.jobId === payload.jobId ? payload.traceparent : undefined };
      outcome = await jobWorkSpan(deps.queues, 'longhaul.submit', 'submit', work, trace, () => submitTaken(deps, work, token, turn.jobId, payload.firstAttemptAt));
    } catch (err) {
      // Anything but a retry ends the turn: an unknown job, or a failure BullMQ will not retry.
      if (err instanceof UnrecoverableError) await admission.fairQueue.release(turnId);
      throw err;
    }
    // A job taken but no longer pending (cancelled while it waited) gives its tokens back.
    const refund = outcome === 'skipped' && !turn.resumed && turn.tenantId ? { tenantId: turn.tenantId, tokens: turn.tokens } : undefined;
    await admission.fairQueue.release(turnId, refund);
  };
}

/**
 * Submit one job. Returns when the turn is done with it (submitted, failed, or no longer
 * pending); throws to have BullMQ run the turn again on the same job. `flexGaveUpAfterMs`: the
 * job's flex window is over and it is created at the standard tier (`flex_fallback: "auto"`).
 */
async function submitTaken(
  deps: WorkerContext,
  work: QueueJob,
  token: string | undefined,
  jobId: string,
  firstFailedAt: number | undefined,
  flexGaveUpAfterMs?: number,
): Promise<'done' | 'skipped'> {
  const { db, queues, provider, clock, config, jobEffects } = deps;
  const now = clock();
  // Counted before the create: a crash between create and commit shows up as attempts > 1.
  const job = await claimSubmission(db.db, jobId, new Date(now.getTime() + config.lockDurationMs));
  if (!job) {
    const current = await getJob(db.db, jobId);
    if (!current) throw new UnrecoverableError(`job ${jobId} does not exist`);
    deps.logger.child(jobLogFields(current)).debug({ status: current.status }, 'submit skipped: job is no longer pending');
    return 'skipped';
  }
  const log = deps.logger.child(jobLogFields(job));
  setJobAttributes(job);
  // A tool-call loop's next turn follows its previous one with the tool outputs as input
  // (@longhaul/core tool-loop.ts), on the key that created it.
  const nextTurn = job.turn > 1 && job.responseId !== null && job.requiredAction !== null;
  // A job's attempt n > 1 runs its request with fallback n − 1 applied (@longhaul/core fallbacks.ts).
  const request = nextTurn ? nextTurnRequest(job.request, job.responseId!, job.requiredAction!) : attemptParams(job.request, job.fallbacks, job.attempt);
  const asked = { ...request, metadata: { ...job.metadata, [JOB_ID_METADATA_KEY]: job.id } };
  const params: Record<string, unknown> = flexGaveUpAfterMs === undefined ? asked : standardTierRequest(asked);
  const streamed = job.request.stream === true;
  // A job that continues a response or a conversation is created with the key that can reach it
  // (the provider keys objects by project); any other with the next active key.
  const continues = job.previousJobId !== null || job.request.previous_response_id !== undefined || job.request.conversation !== undefined;
  // (Recorded without a key id: the key `default`.)
  const keyId = nextTurn ? (job.providerKeyId ?? DEFAULT_PROVIDER_KEY_ID) : continues ? ((await providerKeyOfReferences(db.db, job)) ?? DEFAULT_PROVIDER_KEY_ID) : null;
  let created: ProviderResult;
  try {
    created = streamed ? await createStreamed(deps, job, params, keyId) : await provider.createResponse(params, { jobId: job.id, keyId });
  } catch (err) {
    if (!(err instanceof ProviderError)) throw err;
    if (err.kind === 'rate_limited') {
      const waitMs = Math.max(err.retryAfterMs ?? 1_000, 50);
      log.warn({ code: err.code, retry_after_ms: waitMs }, 'provider rate limit: pausing submissions');
      await queues.get('submit').rateLimit(waitMs);
      throw new RateLimitError();
    }
    // The retry budget counts from this turn's first failed create: time spent waiting for the
    // tenant's token budget (or behind other tenants) is not time spent retrying.
    const firstAttemptAt = firstFailedAt ?? now.getTime();
    const elapsed = now.getTime() - firstAttemptAt;
    let flexError: { code: string; message: string } | undefined;
    if (err.kind === 'unavailable' && isFlexRequest(params)) {
      const windowMs = config.flexRetryWindowMs ?? DEFAULT_FLEX_RETRY_WINDOW_MS;
      const decision = flexRetryDecision({
        elapsedMs: elapsed,
        windowMs,
        fallback: job.flexFallback,
        baseMs: config.retry.baseMs ?? 1_000,
        maxMs: config.retry.maxMs ?? 60_000,
        random: Math.random(),
      });
      if (decision.kind === 'retry') {
        log.info(
          { code: 'flex_unavailable_retry', provider_code: err.code, elapsed_ms: elapsed, window_ms: windowMs, delay_ms: decision.delayMs },
          'flex capacity unavailable: retrying flex',
        );
        if (firstFailedAt === undefined) await work.updateData({ ...work.data, firstAttemptAt });
        // Only this work item waits (still bound to its job, its tokens kept); BullMQ counts no attempt.
        await work.moveToDelayed(clock().getTime() + decision.delayMs, token);
        throw new DelayedError();
      }
      if (decision.kind === 'standard') {
        log.warn({ code: 'flex_fallback_standard', elapsed_ms: elapsed, window_ms: windowMs }, 'flex unavailable for the whole window: creating the response at the standard tier');
        return submitTaken(deps, work, token, jobId, firstFailedAt, elapsed);
      }
      flexError = decision.error;
    }
    // (Outside flex, a "Resource Unavailable" answer is retried as a transient failure.)
    if ((err.kind === 'transient' || (err.kind === 'unavailable' && !flexError)) && mayRetry(work.attemptsMade + 1, elapsed, config.retry)) {
      log.warn({ code: err.code, status: err.status, attempt: work.attemptsMade + 1 }, 'provider create failed, will retry');
      if (firstFailedAt === undefined) await work.updateData({ ...work.data, firstAttemptAt });
      throw err;
    }
    const error =
      flexError ??
      (err.kind === 'transient' || err.kind === 'unavailable'
        ? { code: 'provider_unavailable', message: `Provider unavailable after ${work.attemptsMade + 1} attempts: ${err.message}` }
        : { code: err.code, message: err.message });
    // With a fallback left, a submission that failed for a reason another attempt may fix (the
    // input too long for the model, the provider unavailable) is followed by the next attempt, in
    // this same turn: its retry budget starts afresh.
    if (RETRYABLE_ERROR_CODES.has(error.code) && hasFallbackLeft(job)) {
      const ended = { attempt: job.attempt, model: attemptModel(job.model, job.fallbacks, job.attempt), response_id: null, status: 'failed', error, usage: null };
      const retried = await applyJobEvent(
        db.db,
        job,
        { type: 'attempt_failed', retry: true, error },
        { source: 'submit', now: clock(), details: { status: err.status, code: err.code, attempt: job.attempt } },
        { attempt: job.attempt + 1, attempts: [...job.attempts, ended] },
      );
      // (Its submit work item is this one: the next attempt is submitted below, not dispatched.)
      await jobEffects.afterJobChange(retried, { type: 'submit_failed' });
      log.warn({ code: err.code, status: err.status, attempt: job.attempt, changed: retried.ok && retried.changed }, 'submission failed: trying the next fallback');
      if (!retried.ok) return 'done';
      if (firstFailedAt !== undefined || work.data.firstAttemptAt !== undefined) await work.updateData({ ...work.data, firstAttemptAt: undefined });
      return submitTaken(deps, work, token, jobId, undefined);
    }
    const failed = await applyJobEvent(
      db.db,
      job,
      { type: 'submit_failed', error },
      { source: 'submit', now: clock(), details: { status: err.status, code: err.code, ...(flexError && { flex_unavailable_for_ms: elapsed }) } },
      { error },
    );
    await jobEffects.afterJobChange(failed, { type: 'submit_failed' });
    log.warn({ code: flexError?.code ?? err.code, status: err.status, changed: failed.ok && failed.changed }, 'job failed at submission');
    return 'done';
  }

  const response = created.response;
  // When the sweeper should next expect a look at the job: the first poll's delay, as
  // afterJobChange will schedule it (in hybrid mode it depends on the webhooks' health).
  const firstPollMs = jobEffects.firstCheckDelayMs(job, created.pollAfterMs);
  const at = clock();
  const result = await applyJobEvent(
    db.db,
    job,
    { type: 'submitted', responseId: response.id, responseStatus: response.status ?? 'queued' },
    {
      source: 'submit',
      now: at,
      details: {
        response_id: response.id,
        response_status: response.status,
        request_id: created.requestId,
        // Flex had no capacity for the whole window: this response runs at the standard tier.
        ...(flexGaveUpAfterMs !== undefined && { flex_fallback: 'auto', service_tier: params.service_tier, flex_unavailable_for_ms: flexGaveUpAfterMs }),
      },
    },
    // The key it was created with is recorded with the response id: every later call about the response uses it.
    // A loop's later turn keeps the job's first submission time.
    { responseId: response.id, providerKeyId: created.keyId, submittedAt: job.submittedAt ?? at, nextCheckAt: new Date(at.getTime() + firstPollMs) },
  );
  const jobLog = log.child({ response_id: response.id });
  if (!result.ok) {
    // Cancelled (or expired) while we were creating: do not leave a billed response running.
    jobLog.info({ status: result.job?.status }, 'job finished during submission: cancelling the new response');
    await provider
      .cancelResponse(response.id, { jobId: job.id, keyId: created.keyId })
      .catch((cancelErr: unknown) => jobLog.warn({ err: cancelErr, code: 'orphan_cancel_failed' }, 'could not cancel orphaned response'));
    return 'done';
  }
  jobLog.info({ status: result.job.status, request_id: created.requestId }, 'response created');
  // Followed by its stream or its first poll, and cancelled too if a cancel raced the create.
  await jobEffects.afterJobChange(result, { type: 'submitted', pollAfterMs: created.pollAfterMs });
  return 'done';
}
