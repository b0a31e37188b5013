/**
 * What `longhaul jobs submit --wait` and `longhaul jobs watch` show while a job runs. On a terminal,
 * one status line redrawn in place (status, elapsed time, tokens streamed so far; the cost once
 * done), then the output text. Anywhere else (a pipe, a file, CI), one JSON object per line: each
 * stream event as `{"id","type","data"}`, each polled job as `{"type":"poll","data":job}`, and the
 * final job as `{"type":"result","data":job}`, so scripts can follow along with a line reader.
 */
import { type Job, outputTokensOf } from '../api-types.ts';
import type { StreamEvent } from '../stream.ts';

/** Provider events that carry streamed tokens: one delta is one token as OpenAI streams them. */
const TOKEN_DELTAS = new Set(['response.output_text.delta', 'response.refusal.delta', 'response.reasoning_summary_text.delta', 'response.reasoning_text.delta']);

export interface Progress {
  event(event: StreamEvent): void;
  poll(job: Job): void;
  /** The job has finished: the last line, then the output. */
  done(job: Job): void;
  /** Watching stopped before the end (a timeout, an error): leave the terminal on a fresh line. */
  stop(): void;
}

export interface Output {
  write(text: string): void;
  isTTY?: boolean;
  columns?: number;
}

function formatElapsed(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
}

export function formatCost(usd: number | null | undefined): string {
  if (usd === null || usd === undefined) return 'cost n/a';
  return `$${usd < 0.01 ? usd.toFixed(6) : usd.toFixed(4)}`;
}

/** One line redrawn in place; elapsed time ticks on its own while nothing arrives. */
function ttyProgress(out: Output, jobId: string, startedAt: number, now: () => number): Progress {
  let status = 'pending';
  let tokens = 0;
  const line = (extra = '') => `${jobId}  ${status}  ${formatElapsed(now() - startedAt)}  ${tokens} tokens${extra}`;
  const draw = () => {
    const text = line();
    const width = out.columns ?? 80;
    out.write(`\r\x1b[2K${text.length >= width ? text.slice(0, width - 1) : text}`);
  };
  const timer = setInterval(draw, 250);
  draw();
  return {
    event(event) {
      if (event.type.startsWith('job.')) status = event.type.slice(4);
      else if (TOKEN_DELTAS.has(event.type)) tokens += 1;
      draw();
    },
    poll(job) {
      status = job.status;
      draw();
    },
    done(job) {
      clearInterval(timer);
      status = job.status;
      // The output tokens the provider counted (reasoning included), when known: a job that was not
      // streamed has no deltas to count, and reasoning is not streamed.
      tokens = outputTokensOf(job) ?? tokens;
      const end = job.finished_at ? job.finished_at * 1000 : now();
      const reasoning = job.reasoning_tokens ? ` (${job.reasoning_tokens} reasoning)` : '';
      out.write(`\r\x1b[2K${jobId}  ${status}  ${formatElapsed(end - startedAt)}  ${tokens} tokens${reasoning}  ${formatCost(job.cost_usd)}\n`);
      if (job.output_text) out.write(`${job.output_text}\n`);
      if (job.error) out.write(`error ${job.error.code}: ${job.error.message}\n`);
    },
    stop() {
      clearInterval(timer);
      draw();
      out.write('\n');
    },
  };
}

function jsonLinesProgress(out: Output): Progress {
  const line = (value: unknown) => out.write(`${JSON.stringify(value)}\n`);
  return {
    event: (event) => line(event),
    poll: (job) => line({ type: 'poll', data: job }),
    done: (job) => line({ type: 'result', data: job }),
    stop: () => {},
  };
}

export function createProgress(out: Output, job: Pick<Job, 'id' | 'created_at'>, now: () => number = Date.now): Progress {
  return out.isTTY ? ttyProgress(out, job.id, job.created_at * 1000, now) : jsonLinesProgress(out);
}
