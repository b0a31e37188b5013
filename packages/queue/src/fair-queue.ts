/**
 * Per-tenant admission to the provider: a fair queue kept in Redis next to the BullMQ submit queue.
 *
 * BullMQ (OSS) has no per-group fairness, so a tenant bursting thousands of jobs would otherwise
 * sit in front of everybody else's. Instead, every pending job is pushed here (per-tenant FIFO
 * lists) and every `submit` work item is a *turn*: when it runs it takes the fairest admissible
 * job, which may be another job than the one whose id it carries.
 *
 * - Fair share: active tenants sit in a sorted set scored by a virtual time. A tenant that becomes
 *   active is scored at the current global virtual time; each job taken from a tenant advances its
 *   score by one. The lowest admissible score goes next: round-robin over tenants, one job each.
 *   (`order: 'fifo'` takes the oldest admissible job instead: the behaviour without fairness.)
 * - Budget: each tenant with a tokens-per-window limit has a token bucket (capacity = the limit,
 *   refilled continuously over the window). A job is admissible when the bucket holds its
 *   estimated input tokens; a job bigger than the whole budget is admitted when the bucket is full
 *   and leaves it in debt. A tenant over budget is skipped: it never holds another tenant back.
 * - Binding: taking a job records turn → job and job → turn in the same script, so a turn retried
 *   by BullMQ (transient provider error, provider 429, crash) resumes the very job it took, and
 *   the sweeper can tell a job being submitted from a lost one. `release` ends the binding.
 * - Idempotent push: a job already waiting or taken is not pushed again.
 * - Lanes: evaluation jobs are pushed to a tenant's *low* lane, an entry of its own among the
 *   tenants (`<tenant>~low`, its list `q:<tenant>~low`) charged to the tenant's one budget. A
 *   take considers the low lanes only when no normal lane has an admissible job, so an eval of
 *   thousands of items never stands in front of anyone's production job, its own tenant's either.
 *
 * Every operation is one Lua script (atomic). Time is Redis's own clock (`TIME`), so workers with
 * skewed clocks share one view of every bucket. Postgres stays the truth: whatever is lost here
 * (Redis restarted without persistence) is pushed again by the sweeper from the pending jobs.
 *
 * Keys (under `<prefix>:fairq:`): `waiting` hash job → "tenant tokens seq", `q:<tenant>` list of
 * job ids, `tenants` zset tenant → virtual time, `vt`, `seq`, `limits` hash tenant → limit,
 * `bucket:<tenant>` hash {level, ts} (expires once full again), `taken` hash job → turn, `turns`
 * hash turn → job.
 *
 * Redis Cluster: the scripts derive the per-tenant keys (`q:<tenant>`, `bucket:<tenant>`) from
 * KEYS[1] (TAKE visits every active tenant, so they cannot all be declared), which is sound because
 * the whole key set shares the queue prefix's hash tag (`{longhaul}`): one slot, as BullMQ's own
 * scripts assume. A prefix without a tag is refused on a cluster (ClusterPrefixError).
 */
import { Cluster } from 'ioredis';
import { ClusterPrefixError, type RedisClient, isHashTagged } from './redis.ts';

/** A tenant's low lane is its own entry among the tenants, named with this suffix (tenant ids have no `~`). */
const LOW_SUFFIX = '~low';

const PUSH = `
local base = KEYS[1]
local jobId, tenant, tokens, limit, lane = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('HEXISTS', base .. 'waiting', jobId) == 1 or redis.call('HEXISTS', base .. 'taken', jobId) == 1 then return 0 end
local entry = tenant
if lane == 'low' then entry = tenant .. '${LOW_SUFFIX}' end
local seq = redis.call('INCR', base .. 'seq')
redis.call('HSET', base .. 'waiting', jobId, tenant .. ' ' .. tokens .. ' ' .. seq)
redis.call('RPUSH', base .. 'q:' .. entry, jobId)
redis.call('HSET', base .. 'limits', tenant, limit)
if not redis.call('ZSCORE', base .. 'tenants', entry) then
  redis.call('ZADD', base .. 'tenants', tonumber(redis.call('GET', base .. 'vt') or '0'), entry)
end
return 1
`;

const TAKE = `
local base = KEYS[1]
local turnId, window, order = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local bound = redis.call('HGET', base .. 'turns', turnId)
if bound then return {'bound', bound} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entries = redis.call('ZRANGE', base .. 'tenants', 0, -1, 'WITHSCORES')
local normal, low = {}, {}
for i = 1, #entries, 2 do
  local entry = entries[i]
  local head = redis.call('LINDEX', base .. 'q:' .. entry, 0)
  if not head then
    redis.call('ZREM', base .. 'tenants', entry)
  else
    local isLow = string.sub(entry, -${LOW_SUFFIX.length}) == '${LOW_SUFFIX}'
    local tenant = entry
    if isLow then tenant = string.sub(entry, 1, -${LOW_SUFFIX.length + 1}) end
    local info = redis.call('HGET', base .. 'waiting', head) or (tenant .. ' 0 0')
    local _, tokens, seq = string.match(info, '^(%S+) (%S+) (%S+)$')
    local c = { entry = entry, tenant = tenant, score = tonumber(entries[i + 1]), head = head, tokens = tonumber(tokens), seq = tonumber(seq) }
    if isLow then table.insert(low, c) else table.insert(normal, c) end
  end
end
if order == 'fifo' then
  table.sort(normal, function(a, b) return a.seq < b.seq end)
  table.sort(low, function(a, b) return a.seq < b.seq end)
end
-- The low lane (evaluations) only gets a job when no production job is admissible.
local candidates = normal
for _, c in ipairs(low) do table.insert(candidates, c) end
local wait, waitTenant, waitJob = nil, '', ''
for _, c in ipairs(candidates) do
  local limit = tonumber(redis.call('HGET', base .. 'limits', c.tenant) or '0') or 0
  local admitted = true
  if limit > 0 then
    local bucket = base .. 'bucket:' .. c.tenant
    local stored = redis.call('HMGET', bucket, 'level', 'ts')
    local level = tonumber(stored[1]) or limit
    local ts = tonumber(stored[2]) or now
    level = math.min(limit, level + math.max(0, now - ts) * limit / window)
    local need = math.min(c.tokens, limit)
    if level >= need then
      level = level - c.tokens
      redis.call('HSET', bucket, 'level', tostring(level), 'ts', tostring(now))
      redis.call('PEXPIRE', bucket, math.ceil((limit - level) * window / limit) + 1000)
    else
      admitted = false
      local w = math.ceil((need - level) * window / limit)
      if wait == nil or w < wait then wait, waitTenant, waitJob = w, c.tenant, c.head end
    end
  end
  if admitted then
    local queue = base .. 'q:' .. c.entry
    redis.call('LPOP', queue)
    redis.call('HDEL', base .. 'waiting', c.head)
    if redis.call('LLEN', queue) > 0 then
      redis.call('ZADD', base .. 'tenants', c.score + 1, c.entry)
    else
      redis.call('ZREM', base .. 'tenants', c.entry)
    end
    local vt = tonumber(redis.call('GET', base .. 'vt') or '0')
    if c.score > vt then redis.call('SET', base .. 'vt', tostring(c.score)) end
    redis.call('HSET', base .. 'taken', c.head, turnId)
    redis.call('HSET', base .. 'turns', turnId, c.head)
    return {'job', c.head, c.tenant, tostring(c.tokens)}
  end
end
if wait ~= nil then return {'wait', tostring(wait), waitTenant, waitJob} end
return {'empty'}
`;

const RELEASE = `
local base = KEYS[1]
local turnId, refundTenant, refund, window = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local jobId = redis.call('HGET', base .. 'turns', turnId)
if not jobId then return 0 end
redis.call('HDEL', base .. 'turns', turnId)
if redis.call('HGET', base .. 'taken', jobId) == turnId then redis.call('HDEL', base .. 'taken', jobId) end
if refund > 0 and refundTenant ~= '' then
  local bucket = base .. 'bucket:' .. refundTenant
  local level = tonumber(redis.call('HGET', bucket, 'level') or 'x')
  local limit = tonumber(redis.call('HGET', base .. 'limits', refundTenant) or '0') or 0
  if level and limit > 0 then
    level = math.min(limit, level + refund)
    redis.call('HSET', bucket, 'level', tostring(level))
    redis.call('PEXPIRE', bucket, math.ceil((limit - level) * window / limit) + 1000)
  end
end
return 1
`;

/** Drop a job → turn binding whose turn is gone (checked by the caller). */
const FORGET_TAKEN = `
local base = KEYS[1]
local jobId, turnId = ARGV[1], ARGV[2]
if redis.call('HGET', base .. 'taken', jobId) ~= turnId then return 0 end
redis.call('HDEL', base .. 'taken', jobId)
if redis.call('HGET', base .. 'turns', turnId) == jobId then redis.call('HDEL', base .. 'turns', turnId) end
return 1
`;

export type AdmissionOrder = 'fair' | 'fifo';

export interface FairQueueOptions {
  /** Key prefix, the queues' prefix (`queues.prefix`). */
  prefix: string;
  /** The window a tenant's token limit is counted over: the bucket refills fully in this long. Default 60 000 ms (tokens per minute). */
  windowMs?: number;
  /** `fair` (round-robin over tenants, default) or `fifo` (oldest job first: fairness off). */
  order?: AdmissionOrder;
}

export interface AdmissionRequest {
  jobId: string;
  tenantId: string;
  /** Estimated input tokens, charged to the tenant's budget when the job is taken. */
  tokens: number;
  /** The tenant's tokens-per-window limit; 0 = unlimited. The latest push sets it for the tenant. */
  tokenLimit: number;
  /** `low` (evaluation jobs): taken only when no tenant's normal job is admissible; charged to the same budget. Default `normal`. */
  lane?: 'normal' | 'low';
}

export type Turn =
  /** A job taken now (its tokens charged), or the job this turn had taken before (`resumed`). */
  | { kind: 'job'; jobId: string; tenantId: string | null; tokens: number; resumed: boolean }
  /** Jobs are waiting but every waiting tenant is over budget: try again in `waitMs` (when `jobId` of `tenantId` fits). */
  | { kind: 'wait'; waitMs: number; tenantId: string; jobId: string }
  | { kind: 'empty' };

export interface FairQueue {
  /** Add a pending job; false when it is already waiting or being submitted. */
  push(request: AdmissionRequest): Promise<boolean>;
  /** Take the fairest admissible job for `turnId` (a turn already bound gets its job back). */
  take(turnId: string): Promise<Turn>;
  /** End `turnId`'s binding; `refund` gives the tokens back (the job was not submitted after all). */
  release(turnId: string, refund?: { tenantId: string; tokens: number }): Promise<void>;
  /** Where a job is: waiting, taken by a turn, or unknown here. */
  locate(jobId: string): Promise<{ state: 'waiting' } | { state: 'taken'; turnId: string } | { state: 'absent' }>;
  /** Drop a binding whose turn no longer exists, so the job can be pushed again. */
  forgetTaken(jobId: string, turnId: string): Promise<boolean>;
  /** Jobs waiting, per tenant (admin, tests); a tenant's low lane is listed as `<tenant>~low`. */
  waitingByTenant(): Promise<Record<string, number>>;
}

type Scripts = {
  fairqPush(base: string, ...args: (string | number)[]): Promise<number>;
  fairqTake(base: string, ...args: (string | number)[]): Promise<string[]>;
  fairqRelease(base: string, ...args: (string | number)[]): Promise<number>;
  fairqForgetTaken(base: string, ...args: (string | number)[]): Promise<number>;
};

function withScripts(redis: RedisClient): RedisClient & Scripts {
  const r = redis as RedisClient & Partial<Scripts>;
  if (typeof r.fairqTake !== 'function') {
    redis.defineCommand('fairqPush', { numberOfKeys: 1, lua: PUSH });
    redis.defineCommand('fairqTake', { numberOfKeys: 1, lua: TAKE });
    redis.defineCommand('fairqRelease', { numberOfKeys: 1, lua: RELEASE });
    redis.defineCommand('fairqForgetTaken', { numberOfKeys: 1, lua: FORGET_TAKEN });
  }
  return redis as RedisClient & Scripts;
}

export function fairQueueKey(prefix: string): string {
  return `${prefix}:fairq:`;
}

export function createFairQueue(redis: RedisClient, options: FairQueueOptions): FairQueue {
  if (redis instanceof Cluster && !isHashTagged(options.prefix)) throw new ClusterPrefixError(options.prefix);
  const r = withScripts(redis);
  const base = fairQueueKey(options.prefix);
  const windowMs = options.windowMs ?? 60_000;
  const order = options.order ?? 'fair';
  return {
    async push({ jobId, tenantId, tokens, tokenLimit, lane }) {
      if (/[\s~]/.test(tenantId)) throw new Error(`tenant id must not contain whitespace or '~': ${tenantId}`);
      return (await r.fairqPush(base, jobId, tenantId, Math.max(0, Math.ceil(tokens)), Math.max(0, Math.floor(tokenLimit)), lane ?? 'normal')) === 1;
    },
    async take(turnId) {
      const reply = await r.fairqTake(base, turnId, windowMs, order);
      switch (reply[0]) {
        case 'bound':
          return { kind: 'job', jobId: reply[1]!, tenantId: null, tokens: 0, resumed: true };
        case 'job':
          return { kind: 'job', jobId: reply[1]!, tenantId: reply[2]!, tokens: Number(reply[3]), resumed: false };
        case 'wait':
          return { kind: 'wait', waitMs: Number(reply[1]), tenantId: reply[2]!, jobId: reply[3]! };
        default:
          return { kind: 'empty' };
      }
    },
    async release(turnId, refund) {
      await r.fairqRelease(base, turnId, refund?.tenantId ?? '', refund?.tokens ?? 0, windowMs);
    },
    async locate(jobId) {
      const [waiting, turnId] = await Promise.all([r.hexists(`${base}waiting`, jobId), r.hget(`${base}taken`, jobId)]);
      if (turnId !== null) return { state: 'taken', turnId };
      return Number(waiting) === 1 ? { state: 'waiting' } : { state: 'absent' };
    },
    async forgetTaken(jobId, turnId) {
      return (await r.fairqForgetTaken(base, jobId, turnId)) === 1;
    },
    async waitingByTenant() {
      const tenants = await r.zrange(`${base}tenants`, '0', '-1');
      const out: Record<string, number> = {};
      for (const tenant of tenants) out[tenant] = await r.llen(`${base}q:${tenant}`);
      return out;
    },
  };
}
