/**
 * Starting OpenTelemetry tracing for one process, or not.
 *
 * Design note: tracing is off unless the standard OTEL_* variables ask for an export
 * (`tracingWanted`). Off, no SDK module is imported at all: the spans Longhaul makes go to the
 * no-op tracer of @opentelemetry/api, and the helpers in spans.ts return before even that, so an
 * untraced deployment pays one boolean check per boundary. On, a NodeTracerProvider is registered
 * globally (AsyncLocalStorage context, the W3C propagator) with a batching OTLP/HTTP exporter. The
 * SDK reads its own settings (endpoint, headers, timeout, sampler, batch sizes, resource
 * attributes) from the OTEL_* variables as the OpenTelemetry specification defines them: those are
 * the one exception to "packages take options"; a deployment configures them once for every
 * OpenTelemetry-instrumented service it runs.
 */
import { markTracing } from './spans.ts';

export interface TelemetryOptions {
  /** `service.name` when OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) does not set one, e.g. `longhaul-api`. */
  serviceName: string;
  /** Where the OTEL_* variables are read from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

export interface Telemetry {
  /** Spans are exported (false: the no-op tracer, nothing loaded). */
  enabled: boolean;
  /** Names in OTEL_TRACES_EXPORTER this build cannot start (only `otlp` and `console`): for the process to warn about. */
  ignoredExporters: string[];
  /** Export what is buffered now (tests, before a process exits on its own). */
  flush(): Promise<void>;
  /** Export what is buffered and stop. Idempotent. */
  shutdown(): Promise<void>;
}

/** The exporters this build can start (OTEL_TRACES_EXPORTER); others are ignored with a warning. */
const SUPPORTED_EXPORTERS = new Set(['otlp', 'console']);

/**
 * Whether the environment asks for traces: OTEL_SDK_DISABLED is not true, OTEL_TRACES_EXPORTER is
 * not `none`, and either an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT,
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or OTEL_TRACES_EXPORTER itself is set.
 */
export function tracingWanted(env: NodeJS.ProcessEnv): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  const exporters = exportersOf(env);
  if (exporters.length === 1 && exporters[0] === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_TRACES_EXPORTER);
}

function exportersOf(env: NodeJS.ProcessEnv): string[] {
  return (env.OTEL_TRACES_EXPORTER ?? 'otlp')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

let started: Telemetry | undefined;

/** Start tracing if the environment asks for it (once per process: a second call returns the first's handle). */
export async function startTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  if (started) return started;
  const env = options.env ?? process.env;
  if (!tracingWanted(env)) {
    started = { enabled: false, ignoredExporters: [], flush: async () => {}, shutdown: async () => {} };
    return started;
  }
  const [{ NodeTracerProvider, BatchSpanProcessor, ConsoleSpanExporter }, { OTLPTraceExporter }, { defaultResource, detectResources, envDetector, resourceFromAttributes }] =
    await Promise.all([import('@opentelemetry/sdk-trace-node'), import('@opentelemetry/exporter-trace-otlp-http'), import('@opentelemetry/resources')]);
  const exporters = exportersOf(env).filter((name) => SUPPORTED_EXPORTERS.has(name));
  const ignoredExporters = exportersOf(env).filter((name) => !SUPPORTED_EXPORTERS.has(name));
  const spanProcessors = exporters.map((name) => new BatchSpanProcessor(name === 'console' ? new ConsoleSpanExporter() : new OTLPTraceExporter()));
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (envDetector) win over the process's own name.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': options.serviceName }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors });
  provider.register();
  markTracing(true);
  let stopping: Promise<void> | undefined;
  started = {
    enabled: true,
    ignoredExporters,
    flush: () => provider.forceFlush().catch(() => {}),
    shutdown: () =>
      (stopping ??= (async () => {
        markTracing(false);
        await provider.shutdown().catch(() => {});
      })()),
  };
  return started;
}
