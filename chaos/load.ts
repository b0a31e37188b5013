/**
 * The client side of a scenario: submits jobs at a steady rate across the API processes, the way
 * a careful client does (an Idempotency-Key per job; on a 503, a refused or reset connection or a
 * 409 in flight it waits, honouring Retry-After, and retries on the next API), and records every
 * request it made (when it was sent, when and how it ended). "Accepted" means a 202 was received:
 * those are the jobs that must never be lost.
 *
 * Every answer is classified; a 500, an unexpected 4xx or a request that hangs past HANG_MS are
 * what the scenarios count as violations. The record is the client's own, independent of what the
 * API logs: scenarios read from it what the API answered during a fault (202s while Redis was
 * down) and which requests a shutdown dropped.
 *
 * A connection that ends without an answer is one of two things, told apart afterwards from the
 * same key's next answer: a request the API never processed (the retry is answered with a fresh
 * 202) or one it processed and then dropped unanswered (the retry is answered as a replay, or 409
 * while the first is still being processed). Only the second is a request lost in flight.
 */
import { type Deployment, SIM_TIME_SCALE } from './cluster.ts';
import { sleep, unitRandom } from './time.ts';

/** A request unanswered this long is a hang. */
export const HANG_MS = 10_000;

export interface AnswerCounts {
  accepted: number;
  replayed: number;
  /** 503 database_unavailable. */
  unavailable: number;
  /** 503 without Retry-After (should not happen). */
  missingRetryAfter: number;
  /** 500s and other 5xx than 503: violations. */
  serverErrors: number;
  /** 4xx other than a 409 in flight: violations. */
  unexpected: number;
  inFlight: number;
  refused: number;
  reset: number;
  hangs: number;
  reads: number;
  /** Submission attempts after a job's first (each after a 503, 409, refusal, reset or hang). */
  retries: number;
}

/** How one request ended, as the client saw it. */
export type RequestOutcome = 'accepted' | 'replayed' | 'unavailable' | 'in_flight' | 'server_error' | 'unexpected' | 'refused' | 'reset' | 'hang' | 'ok';

/** One request of the client's own record. */
export interface RecordedRequest {
  method: 'POST' | 'GET';
  /** The Idempotency-Key of a submission; null for a read. */
  key: string | null;
  apiUrl: string;
  /** When it was sent and when it ended (answered, refused, reset or given up), client clock. */
  sentAt: number;
  endedAt: number;
  outcome: RequestOutcome;
  /** The HTTP status; null when the connection ended without an answer. */
  status: number | null;
}

export interface Load {
  /** Job ids in the order they were accepted. */
  accepted(): string[];
  /** Jobs the client set out to submit (accepted or not). */
  submitted(): number;
  counts: AnswerCounts;
  /** Every request made, in the order they ended. */
  requests: RecordedRequest[];
  /** Submissions sent at or after `from` and answered 202 (fresh or replayed) at or before `to`. */
  acceptedBetween(from: number, to: number): RecordedRequest[];
  /**
   * Submissions whose connection ended without an answer although the API had processed them:
   * the key's next answer was a replay (or a 409 while the first was still being processed).
   */
  droppedInFlight(): RecordedRequest[];
  /** Every violation, with what was answered (first few kept). */
  violations: string[];
  maxLatencyMs: number;
  /**
   * Submit `count` jobs, evenly over `count / ratePerSecond` seconds; resolves once each was
   * accepted (or `giveUpMs`, default 60 s, after its first try).
   */
  submit(count: number, options: { ratePerSecond: number; body: (i: number) => Record<string, unknown>; giveUpMs?: number }): Promise<void>;
  /** Read random accepted jobs (and the list) at `ratePerSecond` until `stopReads()`. */
  startReads(ratePerSecond: number): void;
  stopReads(): Promise<void>;
}

/** A job for the simulator that takes `durationMs` of real time (simulated time × SIM_TIME_SCALE). */
export function jobBody(i: number, durationMs: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model: 'o3',
    input: `Chaos job ${i}: write a short story about otters in space.`,
    reasoning: { effort: 'high' },
    metadata: { sim_duration_ms: String(Math.round(durationMs / SIM_TIME_SCALE)), chaos_index: String(i) },
    ...extra,
  };
}

/** A real duration in [minMs, maxMs) picked deterministically from the job's index. */
export function durationFor(i: number, minMs: number, maxMs: number): number {
  return minMs + unitRandom(i, 7) * (maxMs - minMs);
}

export function createLoad(deployment: Deployment, name: string): Load {
  const counts: AnswerCounts = {
    accepted: 0,
    replayed: 0,
    unavailable: 0,
    missingRetryAfter: 0,
    serverErrors: 0,
    unexpected: 0,
    inFlight: 0,
    refused: 0,
    reset: 0,
    hangs: 0,
    reads: 0,
    retries: 0,
  };
  const requests: RecordedRequest[] = [];
  const violations: string[] = [];
  const acceptedIds: string[] = [];
  let nextIndex = 0;
  let reading: Promise<void> | null = null;
  let stopRead = false;
  const state = { maxLatencyMs: 0 };
  const violation = (what: string) => {
    if (violations.length < 20) violations.push(what);
  };
  const headers = { authorization: `Bearer ${deployment.apiKey}`, 'content-type': 'application/json' };

  type Outcome = { kind: 'accepted'; id: string; as: RequestOutcome } | { kind: 'retry'; waitMs: number; as: RequestOutcome } | { kind: 'fatal'; as: RequestOutcome };

  const classifyError = (err: unknown, what: string): Outcome => {
    const e = err as { name?: string; cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') {
      counts.hangs += 1;
      violation(`${what}: no answer within ${HANG_MS} ms`);
      return { kind: 'retry', waitMs: 500, as: 'hang' };
    }
    if (e.cause?.code === 'ECONNREFUSED') {
      counts.refused += 1;
      return { kind: 'retry', waitMs: 300, as: 'refused' };
    }
    counts.reset += 1;
    return { kind: 'retry', waitMs: 300, as: 'reset' };
  };

  const classifyAnswer = async (res: Response, what: string): Promise<Outcome> => {
    const text = await res.text();
    if (res.status === 503) {
      let code = '';
      try {
        code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '';
      } catch {}
      const unavailable = code === 'database_unavailable';
      if (unavailable) counts.unavailable += 1;
      else {
        counts.serverErrors += 1;
        violation(`${what}: 503 ${text.slice(0, 200)}`);
      }
      const retryAfter = Number(res.headers.get('retry-after'));
      if (!res.headers.has('retry-after')) counts.missingRetryAfter += 1;
      // Honour Retry-After, capped: the scenarios are time-scaled.
      return { kind: 'retry', waitMs: Math.min(1_000, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 500), as: unavailable ? 'unavailable' : 'server_error' };
    }
    if (res.status >= 500) {
      counts.serverErrors += 1;
      violation(`${what}: ${res.status} ${text.slice(0, 200)}`);
      return { kind: 'retry', waitMs: 500, as: 'server_error' };
    }
    if (res.status === 409) {
      counts.inFlight += 1;
      return { kind: 'retry', waitMs: 200, as: 'in_flight' };
    }
    if (res.status >= 400) {
      counts.unexpected += 1;
      violation(`${what}: ${res.status} ${text.slice(0, 200)}`);
      return { kind: 'fatal', as: 'unexpected' };
    }
    if (res.status === 202) {
      const replayed = res.headers.get('idempotent-replayed') === 'true';
      if (replayed) counts.replayed += 1;
      return { kind: 'accepted', id: (JSON.parse(text) as { id: string }).id, as: replayed ? 'replayed' : 'accepted' };
    }
    return { kind: 'fatal', as: 'ok' };
  };

  const submitOne = async (i: number, body: string, giveUpAt: number): Promise<void> => {
    const key = `${name}-${i}`;
    for (let attempt = 0; Date.now() < giveUpAt; attempt++) {
      const apiUrl = deployment.apiUrls[(i + attempt) % deployment.apiUrls.length]!;
      if (attempt > 0) counts.retries += 1;
      const started = Date.now();
      let outcome: Outcome;
      let status: number | null = null;
      try {
        const res = await fetch(`${apiUrl}/v1/jobs`, { method: 'POST', headers: { ...headers, 'idempotency-key': key }, body, signal: AbortSignal.timeout(HANG_MS) });
        status = res.status;
        outcome = await classifyAnswer(res, `POST /v1/jobs (${apiUrl})`);
        state.maxLatencyMs = Math.max(state.maxLatencyMs, Date.now() - started);
      } catch (err) {
        outcome = classifyError(err, `POST /v1/jobs (${apiUrl})`);
      }
      requests.push({ method: 'POST', key, apiUrl, sentAt: started, endedAt: Date.now(), outcome: outcome.as, status });
      if (outcome.kind === 'accepted') {
        counts.accepted += 1;
        acceptedIds.push(outcome.id);
        return;
      }
      if (outcome.kind === 'fatal') return;
      await sleep(outcome.waitMs);
    }
  };

  const readOne = async (i: number): Promise<void> => {
    const ids = acceptedIds;
    const apiUrl = deployment.apiUrls[i % deployment.apiUrls.length]!;
    const path = ids.length > 0 && i % 3 !== 0 ? `/v1/jobs/${ids[Math.floor(unitRandom(i, 3) * ids.length)]}` : '/v1/jobs?limit=20';
    const started = Date.now();
    let outcome: Outcome;
    let status: number | null = null;
    try {
      const res = await fetch(`${apiUrl}${path}`, { headers, signal: AbortSignal.timeout(HANG_MS) });
      counts.reads += 1;
      status = res.status;
      outcome = await classifyAnswer(res, `GET ${path}`);
      state.maxLatencyMs = Math.max(state.maxLatencyMs, Date.now() - started);
    } catch (err) {
      outcome = classifyError(err, `GET ${path}`);
    }
    requests.push({ method: 'GET', key: null, apiUrl, sentAt: started, endedAt: Date.now(), outcome: outcome.as, status });
  };

  const droppedInFlight = (): RecordedRequest[] => {
    const byKey = new Map<string, RecordedRequest[]>();
    for (const r of requests) {
      if (r.key === null) continue;
      const list = byKey.get(r.key) ?? [];
      list.push(r);
      byKey.set(r.key, list);
    }
    const dropped: RecordedRequest[] = [];
    for (const list of byKey.values()) {
      list.forEach((r, n) => {
        if (r.outcome !== 'reset' && r.outcome !== 'hang') return;
        // The key's next attempt that reached an API: a refusal or another reset says nothing.
        const next = list.slice(n + 1).find((x) => x.status !== null);
        if (next && (next.outcome === 'replayed' || next.outcome === 'in_flight')) dropped.push(r);
      });
    }
    return dropped;
  };

  return {
    accepted: () => [...acceptedIds],
    submitted: () => nextIndex,
    counts,
    requests,
    acceptedBetween: (from, to) => requests.filter((r) => r.method === 'POST' && (r.outcome === 'accepted' || r.outcome === 'replayed') && r.sentAt >= from && r.endedAt <= to),
    droppedInFlight,
    violations,
    get maxLatencyMs() {
      return state.maxLatencyMs;
    },
    async submit(count, options) {
      const first = nextIndex;
      nextIndex += count;
      const started = Date.now();
      const tasks: Promise<void>[] = [];
      for (let k = 0; k < count; k++) {
        const due = started + (k * 1000) / options.ratePerSecond;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
        const i = first + k;
        tasks.push(submitOne(i, JSON.stringify(options.body(i)), Date.now() + (options.giveUpMs ?? 60_000)));
      }
      await Promise.all(tasks);
    },
    startReads(ratePerSecond) {
      stopRead = false;
      reading = (async () => {
        const inFlight = new Set<Promise<void>>();
        for (let i = 0; !stopRead; i++) {
          const p = readOne(i).finally(() => inFlight.delete(p));
          inFlight.add(p);
          await sleep(1000 / ratePerSecond);
        }
        await Promise.all(inFlight);
      })();
    },
    async stopReads() {
      stopRead = true;
      await reading;
    },
  };
}
