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
 * Retention: each stream is capped (approximate MAXLEN) and expires some time after its job
 * finished. Postgres stays the truth: a stream lost with Redis is replaced by the job's final state.
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

export interface JobStreams {
  /** Append a provider event; returns false when it was already stored (a duplicate). */
  appendProviderEvent(jobId: string, sequenceNumber: number, type: string, data: string): Promise<boolean>;
  /** Append a Longhaul lifecycle event after everything stored so far. */
  appendLifecycleEvent(jobId: string, type: string, data: string): Promise<string>;
  /**
   * Append a lifecycle event after everything stored so far unless the newest entry already is one
   * of this type (a retried work item appending a job's end again); returns its entry id, or null.
   */
  appendLifecycleEventOnce(jobId: string, type: string, data: string): Promise<string | null>;
  /** The newest provider sequence number stored, or null. */
  lastProviderSequence(jobId: string): Promise<number | null>;
  /** The newest provider event stored, or null. */
  lastProviderEvent(jobId: string): Promise<JobStreamEntry | null>;
  /** The newest entry, or null. */
  last(jobId: string): Promise<JobStreamEntry | null>;
  /** Entries after `afterEntryId` (exclusive), oldest first. */
  readAfter(jobId: string, afterEntryId: string, count?: number): Promise<JobStreamEntry[]>;
  /** Forget a job's stream entirely. */
  clear(jobId: string): Promise<void>;
  /** Let a finished job's stream expire. */
  expire(jobId: string, seconds: number): Promise<void>;
}

export function createJobStreams(redis: RedisClient, options: JobStreamOptions): JobStreams {
  const maxLength = String(options.maxLength ?? 20_000);
  const key = (jobId: string) => jobStreamKey(options.prefix, jobId);
  return {
    async appendProviderEvent(jobId, sequenceNumber, type, data) {
      try {
        await redis.xadd(key(jobId), 'MAXLEN', '~', maxLength, `${sequenceNumber + 1}-0`, 'type', type, 'data', data);
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
    async lastProviderSequence(jobId) {
      // Lifecycle entries share the newest provider entry's first part, so the top tells.
      const top = await redis.xrevrange(key(jobId), '+', '-', 'COUNT', 1);
      const first = top[0]?.[0];
      if (!first) return null;
      const a = Number(first.split('-')[0]);
      return a === 0 ? null : a - 1;
    },
    async lastProviderEvent(jobId) {
      const [top] = await redis.xrevrange(key(jobId), '+', '-', 'COUNT', 1);
      if (!top) return null;
      const a = top[0].split('-')[0];
      if (a === '0') return null;
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
