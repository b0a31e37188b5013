/**
 * Following a job: its event log from a cursor, live, until its terminal lifecycle event. Shared
 * by everything in the API that waits on a job: the SSE of `GET /v1/jobs/{id}/stream`, the
 * OpenAI-compatible response streams and a synchronous `POST /v1/responses` waiting for its
 * answer. Each follower is a watcher of the process's stream hub (one Redis read for all).
 *
 * A job that does not stream from the provider has a log only once someone watches it (what a
 * waiting job costs in Redis: @longhaul/queue job-stream.ts): the first follower opens it, with
 * the job's current state, and every change after it is stored. Postgres stays the truth: a job
 * that finished while its log never said so (never opened, or lost with Redis) is told from its
 * row, as one final lifecycle event, by a periodic look at the row (one per job, however many
 * follow it).
 */
import { isTerminal } from '@longhaul/core';
import { TERMINAL_EVENT_TYPES as TERMINAL_JOB_EVENT_TYPES, getJobForTenant, toJobObject, type Job } from '@longhaul/db';
import { endsWithProviderStream } from '@longhaul/engine';
import { type JobStreamEntry, toEventId } from '@longhaul/queue';
import type { Logger } from '@longhaul/runtime';
import type { Database } from '@longhaul/db';
import type { Queues } from '@longhaul/queue';
import { type StreamHub, type Watcher, compareEntryIds } from './stream-hub.ts';

export const TERMINAL_EVENT_TYPES: ReadonlySet<string> = new Set(TERMINAL_JOB_EVENT_TYPES);
/**
 * How long after a job finished its log may still lack its final event before Postgres speaks
 * for it: a streamed job's final event waits for the worker to store the provider's last events.
 */
const FINAL_EVENT_GRACE_MS = 2_000;
/** An opened stream of a job that never finishes expires this long after the job's deadline. */
const OPENED_STREAM_GRACE_MS = 24 * 3_600_000;
/** The entry a finished job without a log is told as, from Postgres (event id `-1.1`). */
export const FINAL_FROM_DATABASE_ENTRY = '0-1';
/** States of a stream work item that will still run (a crashed worker's active item is retried). */
const LIVE_WORK_ITEM = new Set(['active', 'waiting', 'delayed', 'prioritized']);

export type FollowedEntry = Pick<JobStreamEntry, 'eventId' | 'type' | 'data'> & { entryId?: string };

/** A job's lifecycle event as the worker appends it: `job.<status>` carrying the job object. */
export function lifecycleEvent(job: Job): { type: string; data: string } {
  const type = `job.${job.status}`;
  return { type, data: JSON.stringify({ type, job: toJobObject(job) }) };
}

export interface FollowOptions {
  /** Entry id to follow after (`0-0`: from the first). */
  cursor: string;
  /** Each entry after the cursor, in order, once; the terminal lifecycle event is the last. */
  send(entry: FollowedEntry): void;
  /** Nothing was sent for a while: keep the connection alive. */
  heartbeat?(): void;
  /** Following ended: after the terminal event, or because the process is shutting down. */
  end(): void;
  cork?(): void;
  uncork?(): void;
  logger: Logger;
  /** The log's newest entry, when the caller has just read it (undefined: read here). */
  lastStored?: JobStreamEntry | null;
}

export interface Following {
  readonly streamHub: StreamHub;
  /** Follow `job` until its terminal event; the returned `stop` ends it early (idempotent). */
  follow(job: Job, options: FollowOptions): Promise<{ stop(): void }>;
}

/**
 * The periodic look at a followed job's row (has it finished without its log saying so?), one per
 * job however many follow it: a thousand followers of a few jobs cost a few reads per interval, not
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

export interface FollowingDeps {
  db: Database;
  queues: Queues;
  clock: () => Date;
  streamHub: StreamHub;
  config: { /** How often a followed job's row is checked for a final state its log never carried. Default 5 000 ms. */ streamFinalCheckMs?: number };
}

export function createFollowing(deps: FollowingDeps): Following {
  const { db, streamHub, queues } = deps;
  const finalChecks = createFinalChecks(deps.config.streamFinalCheckMs ?? 5_000, (job) => getJobForTenant(db, job.tenantId, job.id));
  /** Redis unreachable: not alive (the answer then comes from Postgres). */
  const streamWorkAlive = (jobId: string) =>
    queues
      .get('stream')
      .getJobState(jobId)
      .then((state) => LIVE_WORK_ITEM.has(state))
      .catch(() => false);
  /** Give the log a moment to carry the terminal event itself before speaking for it. */
  const pastGrace = (current: Job) => current.finishedAt !== null && deps.clock().getTime() - current.finishedAt.getTime() > FINAL_EVENT_GRACE_MS;

  async function follow(job: Job, options: FollowOptions): Promise<{ stop(): void }> {
    const log = options.logger;
    // A job that does not stream from the provider has a log only once someone watches it: open it.
    if (!isTerminal(job.status) && job.request.stream !== true) {
      const lastStored = options.lastStored !== undefined ? options.lastStored : await streamHub.jobStreams.last(job.id).catch(() => null);
      if (!lastStored) {
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
    }

    let ended = false;
    const finish = () => {
      if (ended) return;
      ended = true;
      streamHub.unwatch(watcher);
      stopFinalCheck();
      options.end();
    };
    const write = (entry: FollowedEntry) => {
      if (ended) return;
      options.send(entry);
      if (TERMINAL_EVENT_TYPES.has(entry.type)) finish();
    };
    const watcher: Watcher = {
      jobId: job.id,
      lastEntryId: options.cursor,
      send: write,
      heartbeat: () => {
        if (!ended) options.heartbeat?.();
      },
      end: finish,
      cork: options.cork,
      uncork: options.uncork,
    };
    /** If the job is finished but its log never said so (log lost with Redis), say it from Postgres. */
    const closeFromDatabase = async (current: Job) => {
      if (ended || !isTerminal(current.status)) return;
      const top = await streamHub.jobStreams.last(current.id).catch(() => null);
      if (top && TERMINAL_EVENT_TYPES.has(top.type)) {
        // The log has its end. A follower past it is done; one that is not yet gets it (and whatever
        // precedes it) from the hub, which follows the log: closing now would drop those events.
        if (compareEntryIds(watcher.lastEntryId, top.entryId) >= 0) finish();
        return;
      }
      // While its stream work item lives, a worker stores the provider's last events and then ends the log itself.
      if (endsWithProviderStream(current) && (await streamWorkAlive(current.id))) return;
      const [a, b] = (top?.entryId ?? '0-0').split('-').map(Number) as [number, number];
      const entryId = `${a}-${b + 1}`;
      write({ entryId, eventId: toEventId(entryId), ...lifecycleEvent(current) });
    };
    const stopFinalCheck = finalChecks.subscribe(job, (current) => {
      if (isTerminal(current.status) && pastGrace(current)) closeFromDatabase(current).catch(() => {});
    });

    try {
      await streamHub.watch(watcher);
    } catch (err) {
      log.warn({ err, code: 'event_log_unavailable' }, 'job event log unavailable; answering from Postgres');
    }
    // A streamed job's log gets its end from the worker after the provider's last events: wait for
    // it (live) unless it is overdue.
    if (!ended && isTerminal(job.status) && (!endsWithProviderStream(job) || pastGrace(job))) await closeFromDatabase(job);
    return { stop: finish };
  }

  return { streamHub, follow };
}
