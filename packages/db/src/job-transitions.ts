/**
 * The one place a job's state changes.
 *
 * `changeJobState` locks the job row, asks a pure decision function from @longhaul/core
 * (`transition` or `reconcileResponse`) what the next state is, writes it, appends the
 * job_events row and the callback outbox rows (event + deliveries), all in one transaction. A refused decision (e.g. the job is already terminal)
 * writes nothing, which is what keeps terminal states sticky under duplicate webhooks and late
 * polls.
 */
import { eq } from 'drizzle-orm';
import {
  type EventSource,
  type JobEvent,
  JobStatus,
  type PriceTable,
  type ProviderResponse,
  type TransitionError,
  estimateJobCostUsd,
  isTerminal,
  reconcileResponse,
  transition,
} from '@longhaul/core';
import type { Database } from './client.ts';
import { writeCallbackOutbox } from './callback-outbox.ts';
import { jobEvents, jobs, type Job } from './schema.ts';

type JobColumns = Partial<Omit<typeof jobs.$inferInsert, 'id' | 'tenantId' | 'status'>>;

/** What a decision function answers: the next status and the columns that go with it. */
export type Decision =
  | { ok: true; status: JobStatus; changed: boolean; fields?: JobColumns }
  | { ok: false; error: TransitionError };

export type ChangeResult =
  | { ok: true; changed: boolean; from: JobStatus; job: Job }
  | { ok: false; error: TransitionError | { code: 'job_not_found'; message: string }; job: Job | null };

export interface ChangeContext {
  source: EventSource;
  now: Date;
  /** Recorded on the event row (provider status, response id, error, ...). */
  details?: Record<string, unknown>;
}

export async function changeJobState(db: Database, jobId: string, ctx: ChangeContext, decide: (job: Job) => Decision): Promise<ChangeResult> {
  return db.transaction(async (tx) => {
    const [job] = await tx.select().from(jobs).where(eq(jobs.id, jobId)).for('update');
    if (!job) return { ok: false, error: { code: 'job_not_found', message: `job ${jobId} not found` }, job: null };
    const decision = decide(job);
    if (!decision.ok) return { ok: false, error: decision.error, job };

    const fields: JobColumns = { ...decision.fields };
    if (!decision.changed && Object.keys(fields).length === 0) return { ok: true, changed: false, from: job.status, job };

    if (decision.changed) {
      fields.updatedAt = ctx.now;
      if (decision.status === JobStatus.InProgress && !job.startedAt) fields.startedAt = ctx.now;
      if (decision.status === JobStatus.Cancelling) fields.cancelRequestedAt ??= ctx.now;
      if (isTerminal(decision.status)) {
        fields.finishedAt = ctx.now;
        fields.nextCheckAt = null;
      }
    }
    const [updated] = await tx
      .update(jobs)
      .set({ ...fields, status: decision.status })
      .where(eq(jobs.id, jobId))
      .returning();
    if (decision.changed) {
      await writeCallbackOutbox(tx, updated!, ctx.now);
      await tx.insert(jobEvents).values({
        jobId,
        tenantId: job.tenantId,
        fromStatus: job.status,
        toStatus: decision.status,
        source: ctx.source,
        at: ctx.now,
        details: ctx.details ?? {},
      });
    }
    return { ok: true, changed: decision.changed, from: job.status, job: updated! };
  });
}

/** Apply a job event (submitted, cancel requested, submit failed, expired). */
export function applyJobEvent(db: Database, jobId: string, event: JobEvent, ctx: ChangeContext, fields: JobColumns = {}): Promise<ChangeResult> {
  return changeJobState(db, jobId, ctx, (job) => {
    const result = transition(job, event);
    return result.ok ? { ...result, fields } : result;
  });
}

/**
 * Reconcile: the one path that applies a provider Response to a job (status, output, usage and
 * its cost estimate at `prices`, error, incomplete details). Idempotent: applying the same
 * terminal response twice changes nothing the second time.
 */
export function reconcileJob(db: Database, jobId: string, response: ProviderResponse, ctx: ChangeContext & { prices?: PriceTable }): Promise<ChangeResult> {
  return changeJobState(db, jobId, { ...ctx, details: { response_id: response.id, response_status: response.status, ...ctx.details } }, (job) => {
    const result = reconcileResponse(job, response);
    if (!result.ok) return result;
    const p = result.patch;
    const fields: JobColumns = {};
    if (p.output !== undefined) fields.output = p.output;
    if (p.outputText !== undefined) fields.outputText = p.outputText;
    if (p.usage !== undefined) {
      fields.usage = p.usage;
      fields.costUsd = ctx.prices ? estimateJobCostUsd(ctx.prices, job.model, p.usage) : null;
    }
    if (p.error !== undefined) fields.error = p.error;
    if (p.incompleteDetails !== undefined) fields.incompleteDetails = p.incompleteDetails;
    if (!job.responseId) fields.responseId = response.id;
    return { ok: true, status: p.status, changed: result.changed, fields: result.changed ? fields : {} };
  });
}
