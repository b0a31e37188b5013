/**
 * Streaming scenario (issue 5): the latency Longhaul adds to each provider stream event on its
 * way to SSE watchers, and how many concurrent watchers one API process holds.
 *
 * For each `stream: true` job the bench opens one direct stream to the simulator (the provider)
 * and `watchers / jobs` SSE streams to the API; the added latency of an event is its arrival time
 * at a watcher minus its arrival at the direct provider stream, both measured in this process.
 * It covers the worker following the provider stream, the Redis Streams append, the API's stream
 * hub and the SSE write.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { type Stack, startStack } from './stack.ts';
import { type Summary, summarize } from './stats.ts';
import { sleep } from './pool.ts';

export interface StreamingOptions {
  jobs: number;
  watchers: number;
  /** Simulated (= real, time scale 1) duration of each job's response. */
  durationMs: number;
  nodeArgs?: string[];
}

export interface StreamingResult {
  watchersConnected: number;
  watchersCompleted: number;
  eventsPerWatcher: number;
  addedLatency: Summary;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

/** Read an SSE response, calling `onEvent(id, type)` with each event's arrival. */
function sse(url: string, headers: Record<string, string>, onEvent: (id: string, type: string, at: number) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`${url}: HTTP ${res.statusCode}`));
      }
      let buffer = '';
      let id = '';
      let type = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const at = performance.now();
        buffer += chunk;
        for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line.startsWith('id: ')) id = line.slice(4);
          else if (line.startsWith('event: ')) type = line.slice(7);
          else if (line === '' && type) {
            onEvent(id, type, at);
            id = '';
            type = '';
          }
        }
      });
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export async function runStreaming(options: StreamingOptions): Promise<StreamingResult> {
  let stack: Stack | undefined;
  try {
    stack = await startStack({
      kind: 'stream',
      workerEnv: { STREAM_CONCURRENCY: String(options.jobs + 10), COMPLETION_MODE: 'poll' },
      apiEnv: { STREAM_HEARTBEAT_MS: '15000' },
      simEnv: { SIM_TIME_SCALE: '1', SIM_STREAM_RESUME_WINDOW_MS: '600000' },
      nodeArgs: options.nodeArgs,
    });
    const s = stack;
    const auth = { authorization: `Bearer ${s.apiKey}` };
    const perJob = Math.max(1, Math.round(options.watchers / options.jobs));

    // Submit the jobs, then wait until each has its response id (the provider stream exists).
    const jobIds: string[] = [];
    for (let i = 0; i < options.jobs; i++) {
      const res = await fetch(`${s.apiUrl}/v1/jobs`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'o3',
          input: `streaming bench ${i} ${randomBytes(4).toString('hex')}`,
          stream: true,
          metadata: { sim_duration_ms: String(options.durationMs) },
        }),
      });
      jobIds.push(((await res.json()) as { id: string }).id);
    }
    const responseIds = new Map<string, string>();
    await waitFor(
      'response ids',
      async () => {
        const { rows } = await s.pool.query<{ id: string; response_id: string | null }>('select id, response_id from jobs where id = any($1)', [jobIds]);
        for (const r of rows) if (r.response_id) responseIds.set(r.id, r.response_id);
        return responseIds.size === jobIds.length;
      },
      30_000,
    );

    // Provider arrival times, per job and sequence number.
    const direct = new Map<string, Map<string, number>>();
    const watched: Array<{ job: string; arrivals: Map<string, number> }> = [];
    const streams: Promise<unknown>[] = [];
    for (const jobId of jobIds) {
      const arrivals = new Map<string, number>();
      direct.set(jobId, arrivals);
      // The provider's SSE has no id lines: the n-th event is sequence number n (a full replay).
      streams.push(
        sse(`${s.simUrl}/v1/responses/${responseIds.get(jobId)}?stream=true`, { authorization: 'Bearer sk-bench' }, (_id, _type, at) => {
          arrivals.set(String(arrivals.size), at);
        }),
      );
      for (let w = 0; w < perJob; w++) {
        const mine = new Map<string, number>();
        watched.push({ job: jobId, arrivals: mine });
        streams.push(
          sse(`${s.apiUrl}/v1/jobs/${jobId}/stream`, auth, (id, _type, at) => {
            if (!id.includes('.')) mine.set(id, at);
          }).catch(() => undefined),
        );
      }
    }
    // Events replayed to late connections are not live: count only events after everyone is in.
    const liveFrom = performance.now() + 2_000;
    await Promise.all(streams);

    const samples: number[] = [];
    let completed = 0;
    let events = 0;
    for (const w of watched) {
      const providerTimes = direct.get(w.job)!;
      if (w.arrivals.size > 0 && w.arrivals.size === providerTimes.size) completed += 1;
      events = Math.max(events, w.arrivals.size);
      for (const [seq, at] of w.arrivals) {
        const sent = providerTimes.get(seq);
        if (sent !== undefined && sent > liveFrom) samples.push(at - sent);
      }
    }
    return { watchersConnected: watched.length, watchersCompleted: completed, eventsPerWatcher: events, addedLatency: summarize(samples) };
  } finally {
    await stack?.stop();
  }
}
