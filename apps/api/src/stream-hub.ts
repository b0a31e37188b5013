/**
 * The stream hub: one per API process, it tails every watched job's event log (Redis Streams)
 * with a single blocking XREAD over all watched keys and fans entries out to the SSE watchers, so
 * a thousand watchers cost one Redis connection, not a thousand. A watcher joins with its own
 * cursor: it first catches up with XRANGE, and entries it may see twice (from the catch-up and
 * the live tail) are dropped by id, so it sees every entry exactly once, in order.
 *
 * A newly watched job joins the read at once: the blocked XREAD also reads a wake stream of this
 * hub's own (`<prefix>:stream-hub:<uuid>`), and appending to it makes the read return. The read
 * starts after the last wake entry seen, so a wake written before the read reaches Redis still
 * counts. (CLIENT UNBLOCK would need the blocked connection's id on its node, which a cluster
 * client does not expose; the wake key shares the job streams' hash tag, so on a Redis Cluster
 * the one XREAD still reads one slot.)
 */
import { randomUUID } from 'node:crypto';
import { type JobStreamEntry, type JobStreams, type Queues, createJobStreams, duplicateWaiting, jobStreamKey, toEntry } from '@longhaul/queue';
import type { Logger } from '@longhaul/runtime';

export interface Watcher {
  jobId: string;
  /** Entry id of the last entry this watcher was given. */
  lastEntryId: string;
  send(entry: JobStreamEntry): void;
  heartbeat(): void;
  /** The hub is closing (shutdown): end the response; the client resumes elsewhere with Last-Event-ID. */
  end(): void;
  /** Optional: hold writes between `cork` and `uncork` (one socket write per batch of entries). */
  cork?(): void;
  uncork?(): void;
}

export interface StreamHub {
  jobStreams: JobStreams;
  /** Catch `watcher` up from its cursor, then keep it fed live until `unwatch`. */
  watch(watcher: Watcher): Promise<void>;
  unwatch(watcher: Watcher): void;
  watcherCount(): number;
  close(): Promise<void>;
}

export function compareEntryIds(a: string, b: string): number {
  const [a1, a2] = a.split('-').map(Number) as [number, number];
  const [b1, b2] = b.split('-').map(Number) as [number, number];
  return a1 !== b1 ? a1 - b1 : a2 - b2;
}

export interface StreamHubOptions {
  /** The process's queues: their connection (catch-up reads, unblocking) and key prefix. */
  queues: Pick<Queues, 'connection' | 'prefix'>;
  logger: Logger;
  /** A watcher sent nothing this long gets a comment line, so idle proxies keep the connection. Default 15 000 ms. */
  heartbeatMs?: number;
}

export function createStreamHub(options: StreamHubOptions): StreamHub {
  const { logger } = options;
  const { connection: redis, prefix } = options.queues;
  const jobStreams = createJobStreams(redis, { prefix });
  // A connection of its own: it blocks in XREAD (and waits for Redis instead of failing fast).
  const blocking = duplicateWaiting(redis);
  const wakeKey = `${prefix}:stream-hub:${randomUUID()}`;
  /** The last wake entry the read has seen; a wake is pending while one is written and not yet seen. */
  let wakeCursor = '0-0';
  let wakePending = false;
  const watchers = new Map<string, Set<Watcher>>();
  /** Per watched job, the entry id the hub reads after. */
  const cursors = new Map<string, string>();
  let closed = false;
  let wake: (() => void) | null = null;
  let reading = false;

  /** When each watcher was last written to (an entry or a heartbeat). */
  const lastSent = new WeakMap<Watcher, number>();
  const send = (watcher: Watcher, entry: JobStreamEntry) => {
    watcher.lastEntryId = entry.entryId;
    lastSent.set(watcher, Date.now());
    watcher.send(entry);
  };

  /** Live entries that arrive while a watcher is still catching up wait here, in order. */
  const catchingUp = new Map<Watcher, JobStreamEntry[]>();

  const deliver = (watcher: Watcher, entry: JobStreamEntry) => {
    const buffer = catchingUp.get(watcher);
    if (buffer) {
      buffer.push(entry);
      return;
    }
    if (compareEntryIds(entry.entryId, watcher.lastEntryId) <= 0) return; // seen already
    send(watcher, entry);
  };

  async function loop(): Promise<void> {
    while (!closed) {
      if (cursors.size === 0) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        continue;
      }
      const jobIds = [...cursors.keys()];
      let result: [string, [string, string[]][]][] | null;
      try {
        reading = true;
        result = (await blocking.xread(
          'COUNT',
          1000,
          'BLOCK',
          5000,
          'STREAMS',
          wakeKey,
          ...jobIds.map((id) => jobStreamKey(prefix, id)),
          wakeCursor,
          ...jobIds.map((id) => cursors.get(id)!),
        )) as unknown as typeof result;
      } catch (err) {
        reading = false;
        if (closed) return;
        logger.warn({ err, code: 'stream_hub_read_failed' }, 'stream hub read failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      reading = false;
      for (const [key, rows] of result ?? []) {
        if (key === wakeKey) {
          wakeCursor = rows.at(-1)?.[0] ?? wakeCursor;
          wakePending = false;
          continue;
        }
        const jobId = key.slice(prefix.length + ':jobstream:'.length);
        const set = watchers.get(jobId);
        if (!set || rows.length === 0) continue;
        const entries = rows.map(([entryId, fields]) => toEntry(entryId, fields));
        for (const watcher of set) {
          watcher.cork?.();
          for (const entry of entries) deliver(watcher, entry);
          watcher.uncork?.();
        }
        cursors.set(jobId, rows.at(-1)![0]);
      }
    }
  }

  /** Make the blocked XREAD return so it picks up a newly watched key (one wake at a time is enough). */
  const interrupt = () => {
    if (wake) wake();
    else if (reading && !wakePending && !closed) {
      wakePending = true;
      redis
        .multi()
        .xadd(wakeKey, 'MAXLEN', '1', '*', 'w', '1')
        .pexpire(wakeKey, 60_000)
        .exec()
        .then(
          (replies) => {
            if (!replies || replies.some(([err]) => err)) wakePending = false;
          },
          () => {
            wakePending = false; // Redis down: the read fails too, and is retried with every watched key
          },
        );
    }
  };

  const running = loop().catch((err: unknown) => logger.error({ err, code: 'stream_hub_stopped' }, 'stream hub stopped'));
  // A watcher sent nothing for a heartbeat interval gets a comment line. Checked twice an
  // interval, so a connection is never silent longer than one; a busy one gets none (a thousand
  // watchers fed events do not all get a write at the same instant).
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const heartbeat = setInterval(() => {
    const idleSince = Date.now() - heartbeatMs / 2;
    for (const set of watchers.values())
      for (const w of set) {
        if ((lastSent.get(w) ?? 0) > idleSince) continue;
        lastSent.set(w, Date.now());
        w.heartbeat();
      }
  }, heartbeatMs / 2);

  return {
    jobStreams,
    async watch(watcher) {
      // A stream that reaches the hub after it closed (its route was still setting up when the
      // shutdown began) ends at once, as the ones the close ended did.
      if (closed) {
        watcher.end();
        return;
      }
      let set = watchers.get(watcher.jobId);
      if (!set) {
        set = new Set();
        watchers.set(watcher.jobId, set);
      }
      set.add(watcher);
      const hubCursor = cursors.get(watcher.jobId);
      if (hubCursor === undefined || compareEntryIds(watcher.lastEntryId, hubCursor) < 0) {
        cursors.set(watcher.jobId, watcher.lastEntryId);
        interrupt();
      }
      // Catch up: everything after the watcher's cursor that is stored now; live entries wait
      // until then (and the ones the catch-up already gave are dropped by id).
      catchingUp.set(watcher, []);
      try {
        for (;;) {
          const entries = await jobStreams.readAfter(watcher.jobId, watcher.lastEntryId, 1000);
          for (const entry of entries) {
            if (compareEntryIds(entry.entryId, watcher.lastEntryId) <= 0) continue;
            send(watcher, entry);
          }
          if (entries.length < 1000) break;
        }
      } finally {
        const waiting = catchingUp.get(watcher) ?? [];
        catchingUp.delete(watcher);
        for (const entry of waiting) deliver(watcher, entry);
      }
    },
    unwatch(watcher) {
      const set = watchers.get(watcher.jobId);
      if (!set) return;
      set.delete(watcher);
      catchingUp.delete(watcher);
      if (set.size === 0) {
        watchers.delete(watcher.jobId);
        cursors.delete(watcher.jobId);
      }
    },
    watcherCount: () => [...watchers.values()].reduce((n, s) => n + s.size, 0),
    async close() {
      closed = true;
      clearInterval(heartbeat);
      for (const set of [...watchers.values()]) for (const w of [...set]) w.end();
      wake?.();
      blocking.disconnect();
      await running;
      await redis.del(wakeKey).catch(() => {});
    },
  };
}
