/**
 * The baseline of the detection scenario: the polling loop of OpenAI's background-mode guide,
 * run by the benchmark itself with the official SDK against the simulator:
 *
 *   resp = client.responses.create(..., background=True)
 *   while resp.status in {"queued", "in_progress"}:
 *       sleep(2)
 *       resp = client.responses.retrieve(resp.id)
 *
 * The 2 s sleep is multiplied by the simulator's time scale, like the responses' durations, so
 * the loop makes as many calls per job as it would in real time. One adjustment keeps that true:
 * retrieves are paced on a fixed grid (create + k × interval) rather than sleeping the full
 * interval after each answer, because a local request takes a sizeable share of a scaled 20 ms
 * interval while an OpenAI request is a small share of a real 2 s one. "Detected" here is the
 * moment the client sees the terminal status: there is no database write behind it.
 */
import OpenAI from 'openai';
import { sleep } from './pool.ts';
import { providerCalls, providerTerminalMs, simStats } from './sim-control.ts';
import { summarize, type Summary } from './stats.ts';

export interface GuidePollingOptions {
  jobs: number;
  /** Simulated duration of each response (ms before scaling). */
  simulatedMs: number;
  /** Real ms between a retrieve's answer and the next retrieve (the guide's 2 s, scaled). */
  intervalMs: number;
  /** Real ms over which the creates are spread (open loop). */
  spreadMs: number;
}

export interface GuidePollingResult {
  jobs: number;
  completed: number;
  failures: number;
  firstFailure?: string;
  /** Creates + retrieves per job, as the simulator counted them. */
  calls: Summary;
  /** Calls per job as the client counted them (a cross-check of the simulator's figure). */
  clientCallsMean: number;
  /** Client sees the terminal status − the provider finished, real ms. */
  detection: Summary;
}

export async function runGuidePolling(simUrl: string, options: GuidePollingOptions): Promise<GuidePollingResult> {
  const client = new OpenAI({ baseURL: `${simUrl}/v1`, apiKey: 'sk-longhaul-bench', maxRetries: 0 });
  const seen = new Map<string, { responseId: string; seenAtMs: number; calls: number; status: string }>();
  let failures = 0;
  let firstFailure: string | undefined;

  const follow = async (i: number) => {
    const tag = `guide_${i}_${Date.now()}`;
    let calls = 1;
    const created = performance.now();
    let resp = await client.responses.create({
      model: 'o3',
      input: `Guide loop ${i}: write a long novel about otters in space.`,
      background: true,
      store: true,
      // longhaul_job_id makes the simulator count this create under `tag`.
      metadata: { sim_duration_ms: String(options.simulatedMs), longhaul_job_id: tag },
    });
    while (resp.status === 'queued' || resp.status === 'in_progress') {
      // Next grid point after now: a late answer skips ahead rather than bunching retrieves.
      const next = created + Math.max(calls, Math.ceil((performance.now() - created) / options.intervalMs)) * options.intervalMs;
      await sleep(Math.max(0, next - performance.now()));
      resp = await client.responses.retrieve(resp.id);
      calls++;
    }
    seen.set(tag, { responseId: resp.id, seenAtMs: Date.now(), calls, status: resp.status ?? 'unknown' });
  };

  const spacing = options.spreadMs / options.jobs;
  const start = performance.now();
  const loops: Promise<void>[] = [];
  for (let i = 0; i < options.jobs; i++) {
    await sleep(Math.max(0, start + i * spacing - performance.now()));
    loops.push(
      follow(i).catch((err: unknown) => {
        failures++;
        firstFailure ??= err instanceof Error ? err.message : String(err);
      }),
    );
  }
  await Promise.all(loops);

  const stats = await simStats(simUrl);
  const calls: number[] = [];
  const detection: number[] = [];
  let clientCalls = 0;
  for (const [tag, job] of seen) {
    calls.push(providerCalls(stats, tag, job.responseId));
    clientCalls += job.calls;
    const finished = providerTerminalMs(stats, job.responseId);
    if (finished !== undefined) detection.push(job.seenAtMs - finished);
  }
  return {
    jobs: options.jobs,
    completed: [...seen.values()].filter((j) => j.status === 'completed').length,
    failures,
    firstFailure,
    calls: summarize(calls),
    clientCallsMean: seen.size ? clientCalls / seen.size : Number.NaN,
    detection: summarize(detection),
  };
}
