export { startTelemetry, tracingWanted, type Telemetry } from './start.ts';
export {
  SpanKind,
  SpanStatusCode,
  currentTraceparent,
  setJobAttributes,
  setSpanAttributes,
  tracingEnabled,
  withSpan,
  type Attributes,
} from './spans.ts';
export { GEN_AI, genAiOperation, genAiRequestAttributes, genAiResponseAttributes } from './gen-ai.ts';
export { recallJobTrace, rememberJobTrace } from './job-trace.ts';
