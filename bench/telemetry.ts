/**
 * `--only telemetry`: what OpenTelemetry tracing costs. The e2e run (instant jobs over HTTP, sim,
 * API and worker as child processes) with the OTEL_* variables unset (no SDK loaded) and with
 * them exporting every span over OTLP/HTTP to a local sink (a loopback HTTP server that reads and
 * counts what it is sent), in alternating rounds; CPU ms per job of the API and the worker both
 * ways, and the spans exported per job.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { withSpan } from '@longhaul/telemetry';
import { runE2e } from './e2e.ts';
import { startStack } from './stack.ts';
import { snapshotUsage, usageBetween } from './usage.ts';

export interface TelemetryBenchOptions {
  jobs: number;
  concurrency: number;
  /** Rounds of each mode, alternating off/on (default 2). */
  rounds?: number;
  workerOverrides: Record<string, string>;
  nodeArgs: string[];
  log: (line: string) => void;
}

interface OtlpSink {
  url: string;
  spans: number;
  bytes: number;
  close(): Promise<void>;
}

/** An OTLP/HTTP endpoint that accepts every export (JSON) and counts its spans. */
async function startSink(): Promise<OtlpSink> {
  const sink = { spans: 0, bytes: 0 } as OtlpSink;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      sink.bytes += body.length;
      try {
        const parsed = JSON.parse(body.toString('utf8')) as { resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[] };
        for (const rs of parsed.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) sink.spans += ss.spans?.length ?? 0;
      } catch {}
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  sink.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sink.close = () => new Promise((resolve) => server.close(() => resolve()));
  return sink;
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

export async function runTelemetryBench(options: TelemetryBenchOptions): Promise<{ rows: string[][] }> {
  const { log } = options;
  const sink = await startSink();
  const modes = ['off', 'on'] as const;
  const totals = { off: { api: 0, worker: 0, jobs: 0 }, on: { api: 0, worker: 0, jobs: 0 } };
  try {
    for (let round = 0; round < (options.rounds ?? 2); round++) {
      for (const mode of round % 2 === 0 ? modes : [...modes].reverse()) {
        // Off: none of the OTEL_* variables (the children inherit the benchmark's environment, scrubbed).
        const otel: Record<string, string> = mode === 'on' ? { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_SERVICE_NAME: 'longhaul-bench' } : {};
        for (const key of Object.keys(process.env)) if (key.startsWith('OTEL_')) delete process.env[key];
        const stack = await startStack({ workerEnv: { ...options.workerOverrides, ...otel }, apiEnv: otel, nodeArgs: options.nodeArgs, kind: 'otel' });
        try {
          const spansBefore = sink.spans;
          const before = await snapshotUsage(stack);
          const e2e = await runE2e(stack, { jobs: options.jobs, concurrency: options.concurrency, log: () => {} });
          const units = Math.max(1, e2e.terminal);
          const usage = usageBetween(before, await snapshotUsage(stack, true), units);
          totals[mode].api += (usage.perUnit.api ?? 0) * units;
          totals[mode].worker += (usage.perUnit.worker ?? 0) * units;
          totals[mode].jobs += units;
          log(
            `  round ${round + 1}, tracing ${mode}: ${e2e.terminal}/${e2e.submitted} terminal, ${fmt(e2e.jobsPerSecond, 0)} jobs/s; CPU ms per job api ${fmt(usage.perUnit.api ?? Number.NaN, 3)}, worker ${fmt(usage.perUnit.worker ?? Number.NaN, 3)}${mode === 'on' ? `; ${fmt((sink.spans - spansBefore) / units, 1)} spans per job exported` : ''}`,
          );
        } finally {
          await stack.stop();
        }
      }
    }
  } finally {
    await sink.close();
  }
  const per = (mode: 'off' | 'on', kind: 'api' | 'worker') => totals[mode][kind] / Math.max(1, totals[mode].jobs);
  const rows: string[][] = [];
  // Off, what the code paths pay: a traced boundary against the same call without one, in this
  // (untraced) process; a job crosses about 10 boundaries (request, submit, create, polls and
  // retrieves, deliveries), each also asking for a traceparent to put in its next work item.
  const offNs = await offPathNanoseconds();
  const perJobMs = (offNs * 10) / 1e6;
  rows.push(['telemetry: OTEL unset, a traced boundary costs (ns over the bare call)', fmt(offNs, 1), '', '']);
  rows.push([
    'telemetry: OTEL unset, ~10 boundaries per job, share of the worker CPU per job',
    `${fmt(perJobMs, 6)} ms`,
    '',
    `${fmt((perJobMs / Math.max(1e-9, per('off', 'worker'))) * 100, 4)} %`,
  ]);
  for (const kind of ['api', 'worker'] as const) {
    const off = per('off', kind);
    const on = per('on', kind);
    rows.push([`telemetry: ${kind} CPU ms per job, OTEL unset`, fmt(off, 3), '', '']);
    rows.push([`telemetry: ${kind} CPU ms per job, exporting`, fmt(on, 3), '', `${on >= off ? '+' : ''}${fmt(((on - off) / off) * 100, 1)} %`]);
  }
  return { rows };
}

/** Nanoseconds a `withSpan` boundary adds to the call it wraps when tracing is off (best of 5 runs of 1e6 calls). */
async function offPathNanoseconds(): Promise<number> {
  const calls = 1_000_000;
  const work = async () => 1;
  const time = async (fn: () => Promise<number>) => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) await fn();
    return Number(process.hrtime.bigint() - start) / calls;
  };
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 5; run++) {
    const bare = await time(work);
    const wrapped = await time(() => withSpan('longhaul.bench', {}, work));
    best = Math.min(best, Math.max(0, wrapped - bare));
  }
  return best;
}
