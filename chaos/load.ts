/**
 * The client side of a scenario: submits jobs at a steady rate across the API processes, the way
 * a careful client does (an Idempotency-Key per job; on a 503, a refused or reset connection or a
 * 409 in flight it waits, honouring Retry-After, and retries on the next API), and records every
 * answer. "Accepted" means a 202 was received: those are the jobs that must never be lost.
 *
 * Every answer is classified; a 500, an unexpected 4xx or a request that hangs past HANG_MS are
 * what the scenarios count as violations.
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
}

export interface Load {
  /** Job ids in the order they were accepted. */
  accepted(): string[];
  counts: AnswerCounts;
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
  };
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

  type Outcome = { kind: 'accepted'; id: string } | { kind: 'retry'; waitMs: number } | { kind: 'fatal' };

  const classifyError = (err: unknown, what: string): Outcome => {
    const e = err as { name?: string; cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') {
      counts.hangs += 1;
      violation(`${what}: no answer within ${HANG_MS} ms`);
      return { kind: 'retry', waitMs: 500 };
    }
    if (e.cause?.code === 'ECONNREFUSED') counts.refused += 1;
    else counts.reset += 1;
    return { kind: 'retry', waitMs: 300 };
  };

  const classifyAnswer = async (res: Response, what: string): Promise<Outcome | null> => {
    const text = await res.text();
    if (res.status === 503) {
      let code = '';
      try {
        code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? '';
      } catch {}
      if (code === 'database_unavailable') counts.unavailable += 1;
      else {
        counts.serverErrors += 1;
        violation(`${what}: 503 ${text.slice(0, 200)}`);
      }
      const retryAfter = Number(res.headers.get('retry-after'));
      if (!res.headers.has('retry-after')) counts.missingRetryAfter += 1;
      // Honour Retry-After, capped: the scenarios are time-scaled.
      return { kind: 'retry', waitMs: Math.min(1_000, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 500) };
    }
    if (res.status >= 500) {
      counts.serverErrors += 1;
      violation(`${what}: ${res.status} ${text.slice(0, 200)}`);
      return { kind: 'retry', waitMs: 500 };
    }
    if (res.status === 409) {
      counts.inFlight += 1;
      return { kind: 'retry', waitMs: 200 };
    }
    if (res.status >= 400) {
      counts.unexpected += 1;
      violation(`${what}: ${res.status} ${text.slice(0, 200)}`);
      return { kind: 'fatal' };
    }
    if (res.status === 202) {
      if (res.headers.get('idempotent-replayed') === 'true') counts.replayed += 1;
      return { kind: 'accepted', id: (JSON.parse(text) as { id: string }).id };
    }
    return null;
  };

  const submitOne = async (i: number, body: string, giveUpAt: number): Promise<void> => {
    const key = `${name}-${i}`;
    for (let attempt = 0; Date.now() < giveUpAt; attempt++) {
      const apiUrl = deployment.apiUrls[(i + attempt) % deployment.apiUrls.length]!;
      const started = Date.now();
      let outcome: Outcome;
      try {
        const res = await fetch(`${apiUrl}/v1/jobs`, { method: 'POST', headers: { ...headers, 'idempotency-key': key }, body, signal: AbortSignal.timeout(HANG_MS) });
        outcome = (await classifyAnswer(res, `POST /v1/jobs (${apiUrl})`)) ?? { kind: 'fatal' };
        state.maxLatencyMs = Math.max(state.maxLatencyMs, Date.now() - started);
      } catch (err) {
        outcome = classifyError(err, `POST /v1/jobs (${apiUrl})`);
      }
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
    try {
      const res = await fetch(`${apiUrl}${path}`, { headers, signal: AbortSignal.timeout(HANG_MS) });
      counts.reads += 1;
      await classifyAnswer(res, `GET ${path}`);
      state.maxLatencyMs = Math.max(state.maxLatencyMs, Date.now() - started);
    } catch (err) {
      classifyError(err, `GET ${path}`);
    }
  };

  return {
    accepted: () => [...acceptedIds],
    counts,
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
