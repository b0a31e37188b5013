/**
 * webhook: act on an OpenAI webhook recorded in the inbox. The payload is thin (a response id),
 * so the response is retrieved and applied through the one reconcile path. A job that is already
 * terminal costs no provider call: duplicates and late redeliveries end here. In hybrid mode every
 * webhook applied to a job (or finding it already finished) tells the webhook health it arrived.
 *
 * A webhook can arrive before the submit processor has committed the response id. Then the
 * response's metadata names the job: the row waits (`waiting`), the work item looks again after
 * growing delays (without asking the provider again), and after those the sweeper applies it once
 * the job has its response id. A response no Longhaul job owns, or a duplicate created by a crash
 * that its job has since replaced, is recorded as an orphan.
 *
 * The receiver's work item carries the event and the job it names (a snapshot, looked up when the
 * webhook was recorded), so the common case reads nothing before the guarded reconcile; an item
 * without them (the sweeper's, a job that had not committed its response id) reads both.
 */
import { DelayedError, UnrecoverableError, type Job as QueueJob } from 'bullmq';
import { JOB_ID_METADATA_KEY, TERMINAL_RESPONSE_EVENT_TYPES, isTerminal } from '@longhaul/core';
import { type Job, type WebhookInboxRow, findJobByResponseId, fromJobSnapshot, getInboxRow, getJob, reconcileJob, settleInboxRow } from '@longhaul/db';
import { ProviderError, type ProviderResult } from '@longhaul/provider';
import { parsePayload } from '@longhaul/queue';
import { jobLogFields } from '@longhaul/runtime';
import { setJobAttributes, setSpanAttributes } from '@longhaul/telemetry';
import type { WorkerContext } from '../deps.ts';
import { jobWorkSpan } from '../tracing.ts';
import { failForMissingKey } from '../provider-key-missing.ts';

/** How long a webhook that beat its submission's commit waits before each new look. */
const WAITING_RETRY_DELAYS_MS = [100, 250, 500, 1_000, 2_000, 5_000];

const TERMINAL_EVENTS = new Set(TERMINAL_RESPONSE_EVENT_TYPES);

export function processWebhookProcessor(deps: WorkerContext) {
  const { db, provider, clock, config, jobEffects, inboxSettler } = deps;
  return async (work: QueueJob, token?: string): Promise<void> => {
    const { inboxId, waits, event, job: carried } = parsePayload('webhook', work.data);
    // The receiver's item carries the event of the row it has just inserted (`received`); settling
    // it is guarded by the row's status, so a row settled meanwhile stays as it is.
    const row: Pick<WebhookInboxRow, 'id' | 'status' | 'webhookId' | 'eventType' | 'responseId' | 'jobId'> | null =
      event && waits === 0 ? { id: inboxId, status: 'received', jobId: null, ...event } : await getInboxRow(db.db, inboxId);
    if (!row) throw new UnrecoverableError(`webhook inbox row ${inboxId} does not exist`);
    if (row.status !== 'received' && row.status !== 'waiting') return;
    const log = deps.logger.child({ webhook_id: row.webhookId, response_id: row.responseId, event_type: row.eventType });
    if (!TERMINAL_EVENTS.has(row.eventType) || !row.responseId) {
      await settleInboxRow(db.db, row.id, 'ignored', { note: 'not a background response event', now: clock() });
      return;
    }

    const responseId = row.responseId;

    /** In the job's trace (OpenAI sends no traceparent: the job's root is recalled). */
    const applyToJob = (job: Job, retrieved?: ProviderResult): Promise<void> =>
      jobWorkSpan(deps.queues, 'longhaul.process_webhook', 'webhook', work, { jobId: job.id }, () => {
        setJobAttributes(job);
        setSpanAttributes({ 'longhaul.webhook_id': row.webhookId, 'longhaul.webhook_event_type': row.eventType });
        return reconcileWithResponse(job, retrieved);
      });

    /** Reconcile the job with its response, retrieved once (the webhook payload is thin). */
    const reconcileWithResponse = async (job: Job, retrieved?: ProviderResult): Promise<void> => {
      const jobLog = log.child(jobLogFields(job));
      if (isTerminal(job.status)) {
        inboxSettler.applied({ id: row.id, jobId: job.id, note: `job already ${job.status}`, at: clock() });
        // Late for this job (a poll finished it first), but webhooks are arriving.
        deps.webhookHealth?.webhookArrived();
        jobLog.debug('webhook for a finished job: nothing to do');
        return;
      }
      try {
        retrieved ??= await provider.retrieveResponse(responseId, { jobId: job.id, keyId: job.providerKeyId });
      } catch (err) {
        if (!(await failForMissingKey(deps, job, err, 'webhook'))) throw err;
        inboxSettler.applied({ id: row.id, jobId: job.id, note: 'provider key missing', at: clock() });
        return;
      }
      const result = await reconcileJob(db.db, job, retrieved.response, {
        source: 'webhook',
        now: clock(),
        details: { webhook_id: row.webhookId, event_type: row.eventType },
        prices: config.prices,
      });
      // A job the webhook finished has its pending safety poll retired.
      await jobEffects.afterJobChange(result, { type: 'webhook' });
      inboxSettler.applied({ id: row.id, jobId: job.id, note: null, at: clock() });
      deps.webhookHealth?.webhookArrived();
      if (result.ok && result.changed) jobLog.info({ from: result.from, to: result.job.status }, 'job status changed');
    };

    const known = fromJobSnapshot(carried);
    const job = known?.responseId === responseId ? known : await findJobByResponseId(db.db, responseId);
    if (job) return applyToJob(job);

    // A waiting row already knows its job from the response's metadata.
    let ownerId = row.status === 'waiting' ? row.jobId : null;
    let retrieved: ProviderResult | undefined;
    if (!ownerId) {
      try {
        // No job has recorded this response (nor its key) yet: each key is asked.
        retrieved = await provider.retrieveResponse(responseId, { anyKey: true });
        const metadata = (retrieved.response as { metadata?: Record<string, string> | null }).metadata;
        ownerId = metadata?.[JOB_ID_METADATA_KEY] ?? null;
      } catch (err) {
        if (!(err instanceof ProviderError) || err.kind !== 'not_found') throw err;
      }
    }
    const owner = ownerId ? await getJob(db.db, ownerId) : null;
    if (!owner) {
      await settleInboxRow(db.db, row.id, 'orphan', { note: 'response is not a Longhaul job', now: clock() });
      log.info({ code: 'webhook_orphan' }, 'webhook for a response Longhaul does not own');
    } else if (owner.responseId === responseId) {
      // The submission committed this very response id between the lookup by response id above
      // and this one: it is the job's own response, not a duplicate.
      await applyToJob(owner, retrieved);
    } else if (owner.responseId === null && !isTerminal(owner.status)) {
      await settleInboxRow(db.db, row.id, 'waiting', { jobId: owner.id, note: 'job has not committed its response id yet', now: clock() });
      log.child(jobLogFields(owner)).info({ code: 'webhook_waiting', waits }, 'webhook arrived before the submission committed: waiting');
      if (waits < WAITING_RETRY_DELAYS_MS.length) {
        // The submission is normally a moment from committing: look again shortly. After that
        // the sweeper applies the row once the job has its response id.
        await work.updateData({ inboxId, waits: waits + 1 });
        await work.moveToDelayed(clock().getTime() + WAITING_RETRY_DELAYS_MS[waits]!, token);
        throw new DelayedError();
      }
    } else {
      await settleInboxRow(db.db, row.id, 'orphan', { jobId: owner.id, note: 'superseded response (duplicate create)', now: clock() });
      log.child(jobLogFields(owner)).warn({ code: 'webhook_superseded_response' }, 'webhook for a duplicate response of a job');
    }
  };
}
