/**
 * stream: follow a `stream: true` job's provider event stream into the job's event log (a Redis
 * Stream that SSE watchers read), and reconcile the response's final state from its terminal
 * event through the one reconcile path.
 *
 * Any interruption (a cut connection, this process dying) is resumed from the last stored event,
 * `GET /v1/responses/{id}?stream=true&starting_after=<last>`: within this run while the provider
 * still yields events, else by the next run of the work item after a backoff.
 * Stored entry ids are derived from the provider's sequence numbers, so an overlap is refused by
 * Redis: watchers see no gap and no duplicate. When the provider can no longer stream the
 * response (OpenAI refuses resuming after a while), the work item polls for the final state and
 * stores a final `response.<status>` event, so the stream still ends with the final state.
 *
 * This work item ends the job's log: after the provider's terminal event it appends the final
 * `job.<status>` (`jobEffects.streamEnded`), also when a webhook or a retrieve finished the job
 * first (they leave that event to it, so watchers' SSE does not close before the provider's last
 * events). A run that finds the job finished but its log without that end (this work item
 * retried after a crash, or delayed when the webhook came) follows the stream to it first.
 *
 * A tool-call loop's turns (@longhaul/core tool-loop.ts): each turn is a response of its own,
 * stored in the turn's own range of the log (@longhaul/queue job-stream.ts), so a run follows the
 * job's current turn (the `turn` on its row) and resumes within that turn's range. A turn that
 * ends in `requires_action` is ended in the log the same way, with `job.requires_action` after
 * its `response.completed`; the next turn, created once the tenant answers, gets a work item of
 * its own, or is followed by this run if the answer came while it was still finishing (the next
 * turn's work item, keyed by the job's id, would have been taken for this one).
 */
import { DelayedError, UnrecoverableError, type Job as QueueJob } from 'bullmq';
import { JobStatus, TERMINAL_RESPONSE_EVENT_TYPES, isTerminal, isTerminalProviderStatus, nextWorkFor } from '@longhaul/core';
import { type Job, getJob, reconcileJob, scheduleNextCheck } from '@longhaul/db';
import { endsWithProviderStream } from '@longhaul/engine';
import { PROVIDER_KEY_MISSING, ProviderError, type ProviderEventStream, type ProviderResponseObject, type ProviderStreamEvent } from '@longhaul/provider';
import { parsePayload } from '@longhaul/queue';
import { jobLogFields } from '@longhaul/runtime';
import { setJobAttributes } from '@longhaul/telemetry';
import type { WorkerContext } from '../deps.ts';
import { failForMissingKey } from '../provider-key-missing.ts';

const TERMINAL_EVENTS = new Set(TERMINAL_RESPONSE_EVENT_TYPES);
const finished = (response: ProviderResponseObject) => isTerminalProviderStatus(response.status);

/** How often a live stream tells the sweeper it is still being followed. */
const HEARTBEAT_MS = 10_000;

/**
 * `shutdown` aborts the provider streams being followed when the worker stops: the work items
 * end at once as a transient failure and another worker resumes them after the retry delay,
 * instead of this one waiting out responses that may run for minutes.
 */
export function streamJobProcessor(deps: WorkerContext, shutdown: AbortSignal) {
  const { db, provider, jobStreams, clock, config, jobEffects } = deps;

  /**
   * The provider's terminal event of the job's turn `job.turn` is stored: settle the job (if nothing
   * did yet) and end the turn in its log, when the job ended there (finished, or waiting for answers).
   */
  async function reconcileFinal(job: Job, response: ProviderResponseObject): Promise<void> {
    const result = await reconcileJob(db.db, job, response, { source: 'poll', now: clock(), details: { via: 'stream' }, prices: config.prices });
    await jobEffects.afterJobChange(result, { type: 'streamed' });
    const final = result.ok && endedTurn(result.job, job.turn) ? result.job : await getJob(db.db, job.id);
    if (final && endedTurn(final, job.turn)) await jobEffects.streamEnded(final);
  }

  /** The job is finished, or waits for answers, at turn `turn`. */
  const endedTurn = (job: Job, turn: number) => job.turn === turn && (isTerminal(job.status) || job.status === JobStatus.RequiresAction);

  /** A job that ended its turn whose log still lacks the turn's `job.<status>` (the provider's last events may be missing too). */
  async function awaitsItsEnd(job: Job): Promise<boolean> {
    if (!endsWithProviderStream(job)) return false;
    return (await jobStreams.last(job.id))?.type !== `job.${job.status}`;
  }

  /**
   * Follow the job's current turn, if it is later than `after`. Returns the turn followed to its
   * end, when the job then waited for answers (a next turn may have begun meanwhile), else null.
   */
  const follow = async (work: QueueJob, token: string | undefined, after: number): Promise<number | null> => {
    const { jobId } = parsePayload('stream', work.data);
    const job = await getJob(db.db, jobId);
    if (!job) throw new UnrecoverableError(`job ${jobId} does not exist`);
    setJobAttributes(job);
    if (job.turn <= after || job.status === JobStatus.Pending || !job.responseId) return null;
    if ((isTerminal(job.status) || job.status === JobStatus.RequiresAction) && !(await awaitsItsEnd(job))) return null;
    const { responseId, turn } = job;
    const log = deps.logger.child(jobLogFields(job));
    /** What follows this turn's end: the job may go on with a next turn. */
    const turnDone = () => (job.maxTurns !== null ? turn : null);

    const appendFinal = async (response: ProviderResponseObject) => {
      // Only statuses with a stream event of their own (there is no response.cancelled event).
      if (response.status === 'cancelled') return;
      // Stored already (a run that stopped between storing it and ending the log): not twice.
      const stored = await jobStreams.lastProviderEvent(job.id, turn);
      if (stored && TERMINAL_EVENTS.has(stored.type)) return;
      const sequence = ((await jobStreams.lastProviderSequence(job.id, turn)) ?? -1) + 1;
      const type = `response.${response.status}`;
      await jobStreams.appendProviderEvent(job.id, sequence, type, JSON.stringify({ type, sequence_number: sequence, response }), turn);
    };

    // Follow the stream; when it ends without a terminal event, resume it from the last stored
    // event while it still yields events (a cut connection), and settle from a retrieve once it
    // yields nothing more (a cancelled response's stream ends without a final event).
    for (;;) {
      const last = await jobStreams.lastProviderSequence(job.id, turn);
      let stream: ProviderEventStream;
      try {
        if (shutdown.aborted) throw new ProviderError('The worker is shutting down.', { kind: 'transient', status: null, code: 'worker_shutdown' });
        stream = await provider.streamResponse(responseId, last, { jobId: job.id, keyId: job.providerKeyId });
      } catch (err) {
        if (!(err instanceof ProviderError) || (err.kind !== 'rejected' && err.kind !== 'not_found') || err.code === PROVIDER_KEY_MISSING) throw err;
        // The provider will not stream it any more (too old to resume): poll for the final state.
        log.warn({ code: 'stream_resume_refused', provider_code: err.code, last_sequence: last }, 'provider refused to resume the stream; polling for the final state');
        const retrieved = await provider.retrieveResponse(responseId, { jobId: job.id, keyId: job.providerKeyId });
        if (finished(retrieved.response)) {
          await appendFinal(retrieved.response);
          await reconcileFinal(job, retrieved.response);
          return turnDone();
        }
        // No state changed: this work item tries again later, after the delay nextWorkFor gives.
        const [retry] = nextWorkFor({ status: job.status, streamed: true }, { type: 'stream_unavailable', attempt: work.attemptsMade, pollAfterMs: retrieved.pollAfterMs }, config);
        if (retry?.kind !== 'stream') return null;
        const delayMs = retry.delayMs;
        const next = clock().getTime() + delayMs;
        await scheduleNextCheck(db.db, job.id, new Date(next), { poll: true });
        await work.moveToDelayed(next, token);
        throw new DelayedError();
      }

      let beat = Date.now();
      let stored = 0;
      const onShutdown = () => stream.abort();
      shutdown.addEventListener('abort', onShutdown);
      try {
        for await (const event of stream as AsyncIterable<ProviderStreamEvent>) {
          if (await jobStreams.appendProviderEvent(job.id, event.sequence_number, event.type, JSON.stringify(event), turn)) stored += 1;
          if (event.type === 'response.in_progress' && event.response) {
            const result = await reconcileJob(db.db, job, event.response, { source: 'poll', now: clock(), details: { via: 'stream' } });
            await jobEffects.afterJobChange(result, { type: 'streamed' });
          }
          if (TERMINAL_EVENTS.has(event.type) && event.response) {
            await reconcileFinal(job, event.response);
            return turnDone();
          }
          if (Date.now() - beat > HEARTBEAT_MS) {
            beat = Date.now();
            await scheduleNextCheck(db.db, job.id, new Date(clock().getTime() + config.lockDurationMs + HEARTBEAT_MS));
          }
        }
      } finally {
        shutdown.removeEventListener('abort', onShutdown);
        stream.abort();
      }
      if (shutdown.aborted) {
        log.info({ code: 'stream_handed_back', events: stored }, 'worker stopping: the stream is handed to another worker');
        throw new ProviderError('The worker is shutting down.', { kind: 'transient', status: null, code: 'worker_shutdown' });
      }

      const retrieved = await provider.retrieveResponse(responseId, { jobId: job.id, keyId: job.providerKeyId });
      if (!finished(retrieved.response)) {
        log.warn({ code: 'stream_cut', events: stored }, 'provider stream ended early; resuming');
        throw new ProviderError('The provider stream ended before the response finished.', { kind: 'transient', status: null, code: 'stream_ended_early' });
      }
      if (stored === 0) {
        await appendFinal(retrieved.response);
        await reconcileFinal(job, retrieved.response);
        return turnDone();
      }
    }
  };

  return async (work: QueueJob, token?: string): Promise<void> => {
    try {
      // A turn ended: if the tenant answered meanwhile, follow the next turn too (see the design note).
      let turn = await follow(work, token, 0);
      while (turn !== null) turn = await follow(work, token, turn);
    } catch (err) {
      // The key the job's response was created with is gone: the job fails (provider-key-missing.ts).
      const job = err instanceof ProviderError && err.code === PROVIDER_KEY_MISSING ? await getJob(db.db, parsePayload('stream', work.data).jobId) : null;
      if (job && (await failForMissingKey(deps, job, err, 'poll'))) return;
      throw err;
    }
  };
}
