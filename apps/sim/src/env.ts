/**
 * The simulator's environment, parsed once. Nothing else reads process.env. An empty value counts
 * as unset (see parseEnv in @longhaul/runtime).
 */
import { z } from 'zod';
import { parseEnv } from '@longhaul/runtime';
import { FAULT_ENDPOINTS, isUsableSecret, type SimOptions } from './config.ts';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((value) => value === 'true' || value === '1' || value === 'yes');
const rate = z.coerce.number().min(0).max(1);
const list = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0),
);

const envSchema = z.object({
  SIM_PORT: z.coerce.number().int().min(0).max(65535).default(3100),
  SIM_HOST: z.string().min(1).default('127.0.0.1'),
  SIM_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SIM_TIME_SCALE: z.coerce.number().positive().optional(),
  SIM_DEFAULT_DURATION_MS: z.coerce.number().min(0).optional(),
  SIM_RATE_LIMIT_RATE: rate.optional(),
  SIM_RETRY_AFTER_S: z.coerce.number().int().min(0).optional(),
  SIM_ERROR_RATE: rate.optional(),
  SIM_LATENCY_MS: z.coerce.number().min(0).optional(),
  SIM_CREATE_ANSWER_DELAY_MS: z.coerce.number().min(0).optional(),
  SIM_FAULT_ENDPOINTS: list.pipe(z.array(z.enum(FAULT_ENDPOINTS))).optional(),
  SIM_SEED: z.coerce.number().int().optional(),
  SIM_WEBHOOK_URLS: list.pipe(z.array(z.url({ protocol: /^https?$/ }))).optional(),
  SIM_WEBHOOK_SECRET: z.string().refine(isUsableSecret, 'must be "whsec_" followed by base64').optional(),
  SIM_WEBHOOK_DROP_RATE: rate.optional(),
  SIM_WEBHOOK_DUPLICATE_RATE: rate.optional(),
  SIM_WEBHOOK_DELAY_MS: z.coerce.number().min(0).optional(),
  SIM_WEBHOOK_REORDER: bool.optional(),
  SIM_WEBHOOK_REORDER_WINDOW_MS: z.coerce.number().min(0).optional(),
  SIM_WEBHOOK_BAD_SIGNATURE_RATE: rate.optional(),
  SIM_WEBHOOK_TIMEOUT_MS: z.coerce.number().positive().optional(),
  SIM_STREAM_RESUME_WINDOW_MS: z.coerce.number().min(0).optional(),
  SIM_STREAM_CUT_RATE: rate.optional(),
  SIM_STREAM_CUT_AFTER_EVENTS: z.coerce.number().int().min(1).optional(),
  SIM_MAX_FILE_BYTES: z.coerce.number().int().positive().optional(),
  SIM_FILES_MAX_TOTAL_BYTES: z.coerce.number().int().positive().optional(),
  SIM_BATCH_DURATION_MS: z.coerce.number().min(0).optional(),
  SIM_BATCH_COMPLETION_WINDOW_MS: z.coerce.number().positive().optional(),
  SIM_BATCH_LINE_FAILURE_RATE: rate.optional(),
  SIM_BATCH_EXPIRE_RATE: rate.optional(),
  SIM_FLEX_UNAVAILABLE_RATE: rate.optional(),
  /** API keys accepted, comma separated, each `key` or `project:key`; unset: any key is. */
  SIM_API_KEYS: list.optional(),
  /** OpenAI OpenAPI document that request bodies are validated against; `off` disables it. */
  SIM_SPEC_PATH: z.string().min(1).optional(),
  /** Set by the launcher (scripts/start.mjs, scripts/run-app.mjs): exit when that process is gone. */
  LONGHAUL_PARENT_PID: z.coerce.number().int().positive().optional(),
});

export interface SimEnv {
  port: number;
  host: string;
  logLevel: string;
  /** Undefined: `responses-subset.json` of `@longhaul/specs`; null: validation off. */
  specPath: string | null | undefined;
  /** LONGHAUL_PARENT_PID: the launcher whose exit ends the simulator. */
  parentPid: number | undefined;
  /** SIM_API_KEYS; empty: any key is accepted. */
  apiKeys: string[];
  options: SimOptions;
}

/** Throws InvalidConfigError (one line naming each bad variable); empty values count as unset. */
export function loadEnv(source: NodeJS.ProcessEnv = process.env): SimEnv {
  const env = parseEnv(envSchema, source, 'simulator');
  return {
    port: env.SIM_PORT,
    host: env.SIM_HOST,
    logLevel: env.SIM_LOG_LEVEL,
    specPath: env.SIM_SPEC_PATH === 'off' ? null : env.SIM_SPEC_PATH,
    parentPid: env.LONGHAUL_PARENT_PID,
    apiKeys: env.SIM_API_KEYS ?? [],
    options: {
      time_scale: env.SIM_TIME_SCALE,
      default_duration_ms: env.SIM_DEFAULT_DURATION_MS,
      rate_limit_rate: env.SIM_RATE_LIMIT_RATE,
      retry_after_s: env.SIM_RETRY_AFTER_S,
      error_rate: env.SIM_ERROR_RATE,
      latency_ms: env.SIM_LATENCY_MS,
      create_answer_delay_ms: env.SIM_CREATE_ANSWER_DELAY_MS,
      fault_endpoints: env.SIM_FAULT_ENDPOINTS,
      seed: env.SIM_SEED,
      webhook_urls: env.SIM_WEBHOOK_URLS,
      webhook_secret: env.SIM_WEBHOOK_SECRET,
      webhook_drop_rate: env.SIM_WEBHOOK_DROP_RATE,
      webhook_duplicate_rate: env.SIM_WEBHOOK_DUPLICATE_RATE,
      webhook_delay_ms: env.SIM_WEBHOOK_DELAY_MS,
      webhook_reorder: env.SIM_WEBHOOK_REORDER,
      webhook_reorder_window_ms: env.SIM_WEBHOOK_REORDER_WINDOW_MS,
      webhook_bad_signature_rate: env.SIM_WEBHOOK_BAD_SIGNATURE_RATE,
      webhook_timeout_ms: env.SIM_WEBHOOK_TIMEOUT_MS,
      stream_resume_window_ms: env.SIM_STREAM_RESUME_WINDOW_MS,
      stream_cut_rate: env.SIM_STREAM_CUT_RATE,
      stream_cut_after_events: env.SIM_STREAM_CUT_AFTER_EVENTS,
      max_file_bytes: env.SIM_MAX_FILE_BYTES,
      files_max_total_bytes: env.SIM_FILES_MAX_TOTAL_BYTES,
      batch_duration_ms: env.SIM_BATCH_DURATION_MS,
      batch_completion_window_ms: env.SIM_BATCH_COMPLETION_WINDOW_MS,
      batch_line_failure_rate: env.SIM_BATCH_LINE_FAILURE_RATE,
      batch_expire_rate: env.SIM_BATCH_EXPIRE_RATE,
      flex_unavailable_rate: env.SIM_FLEX_UNAVAILABLE_RATE,
    },
  };
}
