/**
 * Per-job event log in a Redis Stream: the provider's stream events (for `stream: true` jobs)
 * and Longhaul's lifecycle events (job.queued, job.in_progress, job.completed, ...), in order.
 *
 * Entry ids encode the order: a provider event with `sequence_number` s is stored at id
 * `(s+1)-0`, so appending the same event twice (a resumed provider stream overlapping what was
 * stored) is refused by Redis itself: no duplicates. A lifecycle event is stored right after the
 * newest entry, at `a-k` (k ≥ 1), by an atomic script. Clients see ids as `s` for provider events
 * and `s.k` for lifecycle events (`-1.k` before the first provider event), and resume with them.
 * A lifecycle event is only ever placed after what is stored: whoever appends a job's terminal one
 * (which ends every watcher's SSE) must have stored the provider events that come before it
 * (see @longhaul/engine job-effects.ts, `streamEnded`).
 *
 * Turns (a tool-call loop, @longhaul/core tool-loop.ts): each turn is a response of its own whose
 * sequence numbers start again at 0, so each turn has its own range of ids, `TURN_SPAN` (10⁹)
 * wide: provider event s of turn t is stored at `((t-1)·10⁹ + s + 1)-0`, and its client id is
 * `(t-1)·10⁹ + s` (turn 1's ids are exactly the ids above). Ids grow across turns, one cursor
 * resumes anywhere in the log, and a re-append of the same event of the same turn is still
 * refused. A turn's lifecycle events (`job.requires_action` at its end, then `job.pending` when
 * answered) share its newest provider event's first part; turn 1's range also holds the `0-k`
 * entries before the job's first provider event. The price of the order: once a turn's events
 * are stored, a late event of an earlier turn is refused as a duplicate would be. So a turn is
 * stored whole, up to its terminal event, before its end is told on the log (the stream work
 * item appends `job.requires_action` after it: job-effects.ts `streamEnded`); the next turn's
 * events come after the tenant's answer. `clearTurn` forgets one turn (a response created but
 * never committed) and lets its ids be stored again.
 *
 * Which jobs have a stream: a `stream: true` job always (its provider events are stored for its
 * watchers to resume from); any other job only once someone watches it. A Redis Stream costs
 * about 4.7 KB even with one small entry (Redis preallocates each stream node's listpack), which
 * per waiting job would be most of what Redis holds for it. So the lifecycle events of a job that
 * does not stream from the provider are appended only to a stream that exists
 * (`appendLifecycleEventIfOpen`), and the first watcher opens it (`openForWatcher`): empty, then
 * the job's current state read from Postgres after the opening, unless a change got there first.
 * Every change committed after the opening finds the stream and is appended; one committed before
 * is in the state that was read; the two may carry the same change, which is stored once (an
 * append of the type the stream ends with is a duplicate). A watcher who joins late therefore
 * gets the job's current state, then every later change.
 *
 * Retention: each stream is capped (approximate MAXLEN) and expires some time after its job
 * finished (an opened stream also expires on its own, a day after the job's deadline). Postgres
 * stays the truth: a stream lost with Redis, or never opened, is replaced by the job's final state.
 *
 * Redis Cluster: every operation here touches one key; reading many jobs' streams in one XREAD
 * (the API's stream hub) works because they share the prefix's hash tag, i.e. one slot.
 */
import type { RedisClient } from './redis.ts';

export interface JobStreamEntry {
  /** Redis entry id `a-b`. */
  entryId: string;
  /** The id clients see (SSE `id:`): `s` or `s.k`. */
  eventId: string;
  type: string;
  data: string;
}

export interface JobStreamOptions {
  prefix: string;
  /** Approximate cap on entries per job. Default 20 000. */
  maxLength?: number;
}

/** How many sequence numbers each turn of a job has (see the design note): turn t's provider entries are `((t-1)·TURN_SPAN + s + 1)-0`. */
const TURN_SPAN = 1_000_000_000;

/** The first part of provider event `sequenceNumber` of `turn`'s entry id. */
function providerEntryMs(turn: number, sequenceNumber: number): number {
  if (!Number.isSafeInteger(turn) || turn < 1) throw new RangeError(`turn must be a positive integer, not ${turn}`);
  if (!Number.isSafeInteger(sequenceNumber) || sequenceNumber < 0 || sequenceNumber >= TURN_SPAN)
    throw new RangeError(`sequence_number ${sequenceNumber} is outside a turn's range [0, ${TURN_SPAN})`);
  return (turn - 1) * TURN_SPAN + sequenceNumber + 1;
}

/** The first parts of `turn`'s provider entries: from (its sequence 0) to (its last possible), both inclusive. */
function turnRange(turn: number): { from: number; to: number } {
  const from = providerEntryMs(turn, 0);
  return { from, to: from + TURN_SPAN - 1 };
}

export function jobStreamKey(prefix: string, jobId: string): string {
  return `${prefix}:jobstream:${jobId}`;
}

/** Entry id → client event id. */
export function toEventId(entryId: string): string {
  const [a, b] = entryId.split('-').map(Number) as [number, number];
  return b === 0 ? String(a - 1) : `${a - 1}.${b}`;
}

/** Client event id (`Last-Event-ID`, `starting_after`) → the entry id to read after, or null if malformed. */
export function fromEventId(eventId: string): string | null {
  const m = /^(-1|\d{1,15})(?:\.(\d{1,15}))?$/.exec(eventId.trim());
  if (!m) return null;
  const a = Number(m[1]) + 1;
  const b = m[2] === undefined ? 0 : Number(m[2]);
  if (a === 0 && b === 0) return '0-0';
  return `${a}-${b}`;
}

const APPEND_LIFECYCLE = `
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local ms = '0'
if top[1] then ms = string.match(top[1][1], '^(%d+)') end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ms .. '-*', 'type', ARGV[2], 'data', ARGV[3])
`;

/** As APPEND_LIFECYCLE, unless the newest entry already is an event of this type (returns false then). */
const APPEND_LIFECYCLE_ONCE = `
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local ms = '0'
if top[1] then
  ms = string.match(top[1][1], '^(%d+)')
  local fields = top[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 'type' and fields[i + 1] == ARGV[2] then return false end
  end
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ms .. '-*', 'type', ARGV[2], 'data', ARGV[3])
`;

/** As APPEND_LIFECYCLE_ONCE, only to a stream that exists (returns false when it does not). */
const APPEND_LIFECYCLE_IF_OPEN = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
${APPEND_LIFECYCLE_ONCE}`;

/**
 * Create an empty stream unless the key exists, expiring after ARGV[1] ms. Its last id is 0-0, as
 * a stream's before its first entry, so the first lifecycle event is still `-1.1`. (A consumer
 * group's MKSTREAM is the one way to create an empty stream; the group goes at once.)
 */
const OPEN = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('XGROUP', 'CREATE', KEYS[1], 'open', '$', 'MKSTREAM')
redis.call('XGROUP', 'DESTROY', KEYS[1], 'open')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;

/** Append a lifecycle event to a stream that exists and holds nothing yet (returns false otherwise). */
const SEED = `
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('XLEN', KEYS[1]) > 0 then return false end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '0-*', 'type', ARGV[2], 'data', ARGV[3])
`;

/**
 * Delete the entries whose first part lies in [ARGV[1], ARGV[2]] (a turn's range), and set the
 * stream's last id back to the newest entry left, so those ids can be appended again (XADD
 * compares with the last id ever added, not the newest entry). A stream left empty goes.
 */
const CLEAR_RANGE = `
local rows = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2])
if #rows == 0 then return 0 end
for i = 1, #rows do redis.call('XDEL', KEYS[1], rows[i][1]) end
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if top[1] then redis.call('XSETID', KEYS[1], top[1][1]) else redis.call('DEL', KEYS[1]) end
return #rows
`;

/** A lifecycle event as stored: `job.<status>` and its JSON. */
export interface LifecycleEvent {
  type: string;
  data: string;
}

export interface OpenForWatcherOptions {
  /** How long the opened stream lives if its job never finishes (finishing sets the retention instead). */
  ttlMs: number;
  /** The job's current lifecycle event, read from Postgres (null: none yet, e.g. a pending job). */
  current(): Promise<LifecycleEvent | null>;
}

export interface JobStreams {
  /**
   * Append provider event `sequenceNumber` of the job's turn `turn` (default 1: a job without a
   * tool-call loop); returns false when it was already stored (a duplicate), or when a later turn's
   * events are stored already (see the design note).
   */
  appendProviderEvent(jobId: string, sequenceNumber: number, type: string, data: string, turn?: number): Promise<boolean>;
  /** Append a Longhaul lifecycle event after everything stored so far. */
  appendLifecycleEvent(jobId: string, type: string, data: string): Promise<string>;
  /**
   * Append a lifecycle event after everything stored so far unless the newest entry already is one
   * of this type (a retried work item appending a job's end again); returns its entry id, or null.
   */
  appendLifecycleEventOnce(jobId: string, type: string, data: string): Promise<string | null>;
  /**
   * As `appendLifecycleEventOnce`, for a job that does not stream from the provider: only when its
   * stream exists (someone watches it); returns its entry id, or null when nothing was appended.
   */
  appendLifecycleEventIfOpen(jobId: string, type: string, data: string): Promise<string | null>;
  /**
   * A watcher joins a job that does not stream from the provider: make sure its stream exists and,
   * if it holds nothing yet, starts with the job's current state (see the design note).
   */
  openForWatcher(jobId: string, options: OpenForWatcherOptions): Promise<void>;
  /** The newest provider sequence number stored of turn `turn` (default 1), or null. */
  lastProviderSequence(jobId: string, turn?: number): Promise<number | null>;
  /** The newest provider event stored of turn `turn` (default 1), or null. */
  lastProviderEvent(jobId: string, turn?: number): Promise<JobStreamEntry | null>;
  /** The newest entry, or null. */
  last(jobId: string): Promise<JobStreamEntry | null>;
  /** Entries after `afterEntryId` (exclusive), oldest first. */
  readAfter(jobId: string, afterEntryId: string, count?: number): Promise<JobStreamEntry[]>;
  /** Forget a job's stream entirely. */
  clear(jobId: string): Promise<void>;
  /**
   * Forget what turn `turn` stored (its provider events and the lifecycle events after them; for
   * turn 1 also those before the job's first provider event), keeping the earlier turns: the turn
   * is stored afresh. Returns how many entries went.
   */
  clearTurn(jobId: string, turn: number): Promise<number>;
  /** Let a finished job's stream expire. */
  expire(jobId: string, seconds: number): Promise<void>;
}

export function createJobStreams(redis: RedisClient, options: JobStreamOptions): JobStreams {
  const maxLength = String(options.maxLength ?? 20_000);
  const key = (jobId: string) => jobStreamKey(options.prefix, jobId);
  return {
    async appendProviderEvent(jobId, sequenceNumber, type, data, turn = 1) {
      const ms = providerEntryMs(turn, sequenceNumber);
      try {
        await redis.xadd(key(jobId), 'MAXLEN', '~', maxLength, `${ms}-0`, 'type', type, 'data', data);
        return true;
      } catch (err) {
        if (err instanceof Error && /equal or smaller than the target stream top item/.test(err.message)) return false;
        throw err;
      }
    },
    async appendLifecycleEvent(jobId, type, data) {
      return (await redis.eval(APPEND_LIFECYCLE, 1, key(jobId), maxLength, type, data)) as string;
    },
    async appendLifecycleEventOnce(jobId, type, data) {
      return ((await redis.eval(APPEND_LIFECYCLE_ONCE, 1, key(jobId), maxLength, type, data)) as string | null) ?? null;
    },
    async appendLifecycleEventIfOpen(jobId, type, data) {
      return ((await redis.eval(APPEND_LIFECYCLE_IF_OPEN, 1, key(jobId), maxLength, type, data)) as string | null) ?? null;
    },
    async openForWatcher(jobId, { ttlMs, current }) {
      await redis.eval(OPEN, 1, key(jobId), String(Math.max(1, Math.ceil(ttlMs))));
      // Read after the opening: a change committed since is appended by whoever made it.
      const event = await current();
      if (event) await redis.eval(SEED, 1, key(jobId), maxLength, event.type, event.data);
    },
    async lastProviderSequence(jobId, turn = 1) {
      // Lifecycle entries share the newest provider entry's first part, so the turn's top tells.
      const { from, to } = turnRange(turn);
      const top = await redis.xrevrange(key(jobId), String(to), String(from), 'COUNT', 1);
      const first = top[0]?.[0];
      if (!first) return null;
      return Number(first.split('-')[0]) - from;
    },
    async lastProviderEvent(jobId, turn = 1) {
      const { from, to } = turnRange(turn);
      const [top] = await redis.xrevrange(key(jobId), String(to), String(from), 'COUNT', 1);
      if (!top) return null;
      const a = top[0].split('-')[0];
      const [entry] = await redis.xrange(key(jobId), `${a}-0`, `${a}-0`);
      return entry ? toEntry(entry[0], entry[1]) : null;
    },
    async last(jobId) {
      const [top] = await redis.xrevrange(key(jobId), '+', '-', 'COUNT', 1);
      return top ? toEntry(top[0], top[1]) : null;
    },
    async readAfter(jobId, afterEntryId, count = 1000) {
      const rows = await redis.xrange(key(jobId), `(${afterEntryId}`, '+', 'COUNT', count);
      return rows.map(([entryId, fields]) => toEntry(entryId, fields));
    },
    async clear(jobId) {
      await redis.del(key(jobId));
    },
    async clearTurn(jobId, turn) {
      const { from, to } = turnRange(turn);
      return (await redis.eval(CLEAR_RANGE, 1, key(jobId), turn === 1 ? '0' : String(from), String(to))) as number;
    },
    async expire(jobId, seconds) {
      await redis.expire(key(jobId), seconds);
    },
  };
}

export function toEntry(entryId: string, fields: string[]): JobStreamEntry {
  let type = '';
  let data = '';
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'type') type = fields[i + 1]!;
    else if (fields[i] === 'data') data = fields[i + 1]!;
  }
  return { entryId, eventId: toEventId(entryId), type, data };
}
