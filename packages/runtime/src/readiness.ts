/**
 * Readiness: can this process do its work right now? Each check is a function that resolves when
 * its dependency is usable and throws (or times out) with the reason when not. The report names
 * every check, so a 503 says which dependency is missing.
 */
export type ReadinessCheck = () => Promise<void>;

export interface CheckResult {
  ok: boolean;
  ms: number;
  error?: string;
}

export interface ReadinessReport {
  ready: boolean;
  /** The failing checks and their errors, e.g. `redis: connection is reconnecting`; empty when ready. */
  reason: string;
  checks: Record<string, CheckResult>;
}

/** Run every check concurrently, each bounded by `timeoutMs` (default 2 000). */
export async function checkReadiness(checks: Record<string, ReadinessCheck>, timeoutMs = 2_000): Promise<ReadinessReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, CheckResult]> => {
      const started = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          check(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        return [name, { ok: true, ms: Math.round(performance.now() - started) }];
      } catch (err) {
        return [name, { ok: false, ms: Math.round(performance.now() - started), error: err instanceof Error ? err.message : String(err) }];
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const failing = entries.filter(([, r]) => !r.ok);
  return {
    ready: failing.length === 0,
    reason: failing.map(([name, r]) => `${name}: ${r.error}`).join('; '),
    checks: Object.fromEntries(entries),
  };
}

/** The HTTP answer to a readiness probe: 200 when ready, 503 with the reason when not. */
export function readinessResponse(report: ReadinessReport): { status: number; body: Record<string, unknown> } {
  return report.ready
    ? { status: 200, body: { status: 'ready', checks: report.checks } }
    : { status: 503, body: { status: 'not_ready', reason: report.reason, checks: report.checks } };
}
