/**
 * GET /v1/jobs/{id}/stream: Server-Sent Events of a job's event log. `id:` is the provider's
 * `sequence_number` (`s.k` for Longhaul's lifecycle events in between), `event:` the event type,
 * `data:` the event JSON. `Last-Event-ID` (or `?starting_after=`) resumes after that event; no
 * cursor replays from the first event. A finished job replays and closes; a running one is
 * followed live until its terminal lifecycle event. Comment lines every few seconds keep idle
 * proxies from cutting the connection.
 *
 * A job that does not stream from the provider has a log only once someone watches it (what a
 * waiting job costs in Redis: @longhaul/queue job-stream.ts): the first watcher opens it, with
 * the job's current state, and every change after it is stored. A finished job that never had a
 * log is told from Postgres, as its final event `-1.1`.
 */
import { type Request, type Response, Router } from 'express';
import { NotFoundError, ValidationError, isTerminal } from '@longhaul/core';
import { TERMINAL_EVENT_TYPES as TERMINAL_JOB_EVENT_TYPES, getJobForTenant, toJobObject, type Job } from '@longhaul/db';
import { type JobStreamEntry, fromEventId, toEventId } from '@longhaul/queue';
import { endsWithProviderStream } from '@longhaul/engine';
import type { ApiDeps } from '../context.ts';
import { checkPathIds, ids } from '../request-input.ts';
import { type Watcher, compareEntryIds } from '../stream-hub.ts';

const TERMINAL_EVENT_TYPES = new Set(TERMINAL_JOB_EVENT_TYPES);
/**
 * How long after a job finished its log may still lack its final event before Postgres speaks
 * for it: a streamed job's final event waits for the worker to store the provider's last events.
 */
const FINAL_EVENT_GRACE_MS = 2_000;
/** An opened stream of a job that never finishes expires this long after the job's deadline. */
const OPENED_STREAM_GRACE_MS = 24 * 3_600_000;
/** The one event a finished job without a log is told as, from Postgres. */
const FINAL_FROM_DATABASE_ENTRY = '0-1';
/** States of a stream work item that will still run (a crashed worker's active item is retried). */
const LIVE_WORK_ITEM = new Set(['active', 'waiting', 'delayed', 'prioritized']);

function cursorOf(req: Request): string {
  const raw = req.get('last-event-id') ?? (typeof req.query.starting_after === 'string' ? req.query.starting_after : undefined);
  if (raw === undefined || raw === '') return '0-0';
  const entryId = fromEventId(raw);
  if (!entryId)
    throw new ValidationError(`Invalid event cursor '${raw}': use an event id from this stream.`, req.get('last-event-id') ? 'Last-Event-ID' : 'starting_after', 'invalid_cursor');
  return entryId;
}

/** A job's lifecycle event as the worker appends it: `job.<status>` carrying the job object. */
function lifecycleEvent(job: Job): { type: string; data: string } {
  const type = `job.${job.status}`;
  return { type, data: JSON.stringify({ type, job: toJobObject(job) }) };
}

/** An entry's SSE frame, encoded once however many watchers it goes to (the hub hands each of them the same entry). */
const frames = new WeakMap<object, Buffer>();
function frameOf(entry: Pick<JobStreamEntry, 'eventId' | 'type' | 'data'>): Buffer {
  let frame = frames.get(entry);
  if (!frame) {
    frame = Buffer.from(`id: ${entry.eventId}\nevent: ${entry.type}\ndata: ${entry.data}\n\n`);
    frames.set(entry, frame);
  }
  return frame;
}

/**
 * The periodic look at a watched job's row (has it finished without its log saying so?), one per
 * job however many watch it: a thousand watchers of a few jobs cost a few reads per interval, not
 * a thousand reads at once.
 */
function createFinalChecks(intervalMs: number, read: (job: Pick<Job, 'id' | 'tenantId'>) => Promise<Job | null>) {
  const checks = new Map<string, { listeners: Set<(current: Job) => void>; timer: NodeJS.Timeout }>();
  return {
    /** Call `listener` with the job's row every interval while subscribed; returns the unsubscribe. */
    subscribe(job: Pick<Job, 'id' | 'tenantId'>, listener: (current: Job) => void): () => void {
      let check = checks.get(job.id);
      if (!check) {
        const listeners = new Set<(current: Job) => void>();
        const timer = setInterval(() => {
          read(job)
            .then((current) => {
              if (current) for (const l of listeners) l(current);
            })
            .catch(() => {});
        }, intervalMs);
        timer.unref();
        check = { listeners, timer };
        checks.set(job.id, check);
      }
      check.listeners.add(listener);
      return () => {
        const current = checks.get(job.id);
        if (!current) return;
        current.listeners.delete(listener);
        if (current.listeners.size === 0) {
          clearInterval(current.timer);
          checks.delete(job.id);
        }
      };
    },
  };
}

export function jobStreamRouter(deps: ApiDeps): Router {
  const router = Router();
  checkPathIds(router, { id: ids.job });
  const { db, streamHub, queues } = deps;
  const finalChecks = createFinalChecks(deps.config.streamFinalCheckMs ?? 5_000, (job) => getJobForTenant(db, job.tenantId, job.id));
  /** Redis unreachable: not alive (the answer then comes from Postgres). */
  const streamWorkAlive = (jobId: string) =>
    queues
      .get('stream')
      .getJobState(jobId)
      .then((state) => LIVE_WORK_ITEM.has(state))
      .catch(() => false);

  router.get('/:id/stream', async (req: Request, res: Response) => {
    if (!streamHub) throw new NotFoundError('Job streams are not enabled on this server.');
    const cursor = cursorOf(req);
    const job = await getJobForTenant(db, req.tenantId!, String(req.params.id));
    if (!job) throw new NotFoundError(`No job with id '${req.params.id}'.`, 'id');
    const log = req.log.child({ job_id: job.id, tenant_id: job.tenantId, response_id: job.responseId });

    const lastStored = await streamHub.jobStreams.last(job.id).catch(() => null);
    // Nothing after the cursor, ever: 204 tells EventSource clients to stop reconnecting. A
    // finished job without a log (never watched, or lost with Redis) is told as one event, -1.1.
    const pastEnd = lastStored
      ? TERMINAL_EVENT_TYPES.has(lastStored.type) && compareEntryIds(cursor, lastStored.entryId) >= 0
      : compareEntryIds(cursor, FINAL_FROM_DATABASE_ENTRY) === 0;
    if (isTerminal(job.status) && pastEnd) {
      res.status(204).end();
      return;
    }
    // A job that does not stream from the provider has a log only once someone watches it: open it.
    if (!lastStored && !isTerminal(job.status) && job.request.stream !== true) {
      const ttlMs = job.deadlineAt.getTime() - deps.clock().getTime() + OPENED_STREAM_GRACE_MS;
      await streamHub.jobStreams
        .openForWatcher(job.id, {
          ttlMs,
          current: async () => {
            const current = await getJobForTenant(db, job.tenantId, job.id);
            return current && current.status !== 'pending' ? lifecycleEvent(current) : null;
          },
        })
        .catch((err: unknown) => log.warn({ err, code: 'event_log_unavailable' }, 'could not open the job event log; answering from Postgres'));
    }

    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`: stream of ${job.id}\n\n`);

    let ended = false;
    const finish = () => {
      if (ended) return;
      ended = true;
      streamHub.unwatch(watcher);
      stopFinalCheck();
      res.end();
    };
    const write = (entry: Pick<JobStreamEntry, 'eventId' | 'type' | 'data'>) => {
      if (ended) return;
      res.write(frameOf(entry));
      if (TERMINAL_EVENT_TYPES.has(entry.type)) finish();
    };
    const watcher: Watcher = {
      jobId: job.id,
      lastEntryId: cursor,
      send: write,
      heartbeat: () => {
        if (!ended) res.write(': keep-alive\n\n');
      },
      end: finish,
      cork: () => res.cork(),
      uncork: () => res.uncork(),
    };
    /** If the job is finished but its log never said so (log lost with Redis), say it from Postgres. */
    const closeFromDatabase = async (current: Job) => {
      if (ended || !isTerminal(current.status)) return;
      const top = await streamHub.jobStreams.last(current.id).catch(() => null);
      if (top && TERMINAL_EVENT_TYPES.has(top.type)) {
        // The log has its end. A client past it is done; one that is not yet gets it (and whatever
        // precedes it) from the hub, which follows the log: closing now would drop those events.
        if (compareEntryIds(watcher.lastEntryId, top.entryId) >= 0) finish();
        return;
      }
      // While its stream work item lives, a worker stores the provider's last events and then ends the log itself.
      if (endsWithProviderStream(current) && (await streamWorkAlive(current.id))) return;
      const [a, b] = (top?.entryId ?? '0-0').split('-').map(Number) as [number, number];
      write({ eventId: toEventId(`${a}-${b + 1}`), ...lifecycleEvent(current) });
    };
    /** Give the log a moment to carry the terminal event itself before speaking for it. */
    const pastGrace = (current: Job) => current.finishedAt !== null && deps.clock().getTime() - current.finishedAt.getTime() > FINAL_EVENT_GRACE_MS;
    const stopFinalCheck = finalChecks.subscribe(job, (current) => {
      if (isTerminal(current.status) && pastGrace(current)) closeFromDatabase(current).catch(() => {});
    });
    req.on('close', finish);

    try {
      await streamHub.watch(watcher);
    } catch (err) {
      log.warn({ err, code: 'event_log_unavailable' }, 'job event log unavailable; answering from Postgres');
    }
    // A streamed job's log gets its end from the worker after the provider's last events: wait for
    // it (live) unless it is overdue.
    if (!ended && isTerminal(job.status) && (!endsWithProviderStream(job) || pastGrace(job))) await closeFromDatabase(job);
  });

  return router;
}
