/**
 * The body of the OpenAI-compatible `POST /v1/responses`: OpenAI's Responses create request as
 * its OpenAPI document defines it (every field, validated by the document itself, so a mistake is
 * OpenAI's 400 naming the `param`), plus Longhaul's own options, given as extra body fields (what
 * the SDK sends when they are added to the params) or as `Longhaul-*` headers:
 *
 *   callback_url               / Longhaul-Callback-Url        signed callbacks when the response ends
 *   previous_job_id            / Longhaul-Previous-Job-Id     continue an earlier job
 *   expected_duration_seconds  / Longhaul-Expected-Duration   the completion hint: how long it is expected to run
 *   tool_executor: {url}       / Longhaul-Tool-Executor: <url>  run the tool-call loop here (see below)
 *   max_turns                  / Longhaul-Max-Turns           the loop's most turns (only with a tool executor)
 *
 * The tool-call loop is opt-in here: a plain SDK client runs its own loop (a turn's function calls
 * are its response's output, and the next turn is its next create). With a tool executor the
 * response is the whole loop, as on POST /v1/jobs: Longhaul runs each turn's calls at the
 * executor and creates the next turn, and the response is `in_progress` until the last turn ends
 * (its output is the last turn's). Not with `stream: true` here: an SDK stream ends at its first
 * `response.completed`, which a loop's first turn already sends (GET /v1/jobs/{id}/stream carries
 * every turn's events).
 *
 * What the client asked of the mode (`background`, `stream`) decides how the answer is given;
 * at the provider every response runs in background mode. `previous_response_id` may name a
 * Longhaul response (or job): it is then resolved like `previous_job_id`.
 */
import type { Request } from 'express';
import { JOB_ID_METADATA_KEY, ValidationError } from '@longhaul/core';
import { loadRequestValidator } from '@longhaul/specs/validation';
import { normalizeHistory } from '../job-preparation/conversation.ts';
import type { PreparedJob } from '../job-preparation/index.ts';
import { type JobRequest, jobRequestSchema } from '../job-request.ts';
import { inputProblemError, findUnstorableText } from '../request-input.ts';
import { jobIdOfResponseId } from './ids.ts';

/** Longhaul's options: body field → header. */
const LONGHAUL_OPTIONS = {
  callback_url: 'Longhaul-Callback-Url',
  previous_job_id: 'Longhaul-Previous-Job-Id',
  expected_duration_seconds: 'Longhaul-Expected-Duration',
} as const;
type LonghaulOption = keyof typeof LONGHAUL_OPTIONS;
/** Options that are numbers: a header is text, read as a number when it is written as one (else it stays text, which the option's schema refuses). */
const NUMERIC_OPTIONS: ReadonlySet<LonghaulOption> = new Set(['expected_duration_seconds']);
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)$/;

/**
 * The tool-call loop's options: `tool_executor` (`{url}`, or the URL as the header) and
 * `max_turns`; the loop runs only with an executor.
 */
function toolLoopOptionsOf(req: Request, body: Record<string, unknown>): { tool_executor?: unknown; max_turns?: unknown } {
  const header = req.get('Longhaul-Tool-Executor')?.trim();
  if (header !== undefined && body.tool_executor !== undefined) {
    throw new ValidationError("'tool_executor' is given both as a body field and as the Longhaul-Tool-Executor header.", 'tool_executor', 'conflicting_parameters');
  }
  const toolExecutor = body.tool_executor ?? (header === undefined ? undefined : { url: header });
  const turnsHeader = req.get('Longhaul-Max-Turns')?.trim();
  if (turnsHeader !== undefined && body.max_turns !== undefined) {
    throw new ValidationError("'max_turns' is given both as a body field and as the Longhaul-Max-Turns header.", 'max_turns', 'conflicting_parameters');
  }
  const maxTurns = body.max_turns ?? (turnsHeader === undefined ? undefined : /^\d+$/.test(turnsHeader) ? Number(turnsHeader) : turnsHeader);
  if (maxTurns !== undefined && toolExecutor === undefined) {
    throw new ValidationError(
      "'max_turns' runs Longhaul's tool-call loop, which /v1/responses runs only with a 'tool_executor' (Longhaul-Tool-Executor): give one, or run the loop yourself (a response per turn), or use POST /v1/jobs.",
      'max_turns',
      'tool_executor_required',
    );
  }
  for (const [option, value] of [
    ['tool_executor', toolExecutor],
    ['max_turns', maxTurns],
  ] as const) {
    if (value === undefined) continue;
    const checked = jobRequestSchema.shape[option].safeParse(value);
    if (!checked.success) throw new ValidationError(`Invalid '${option}': ${checked.error.issues[0]?.message ?? 'invalid value'}.`, option, 'invalid_value');
  }
  return { ...(toolExecutor === undefined ? {} : { tool_executor: toolExecutor }), ...(maxTurns === undefined ? {} : { max_turns: maxTurns }) };
}

/** OpenAI allows 16 metadata keys; Longhaul adds JOB_ID_METADATA_KEY to what it sends. */
const MAX_METADATA_KEYS = 15;

export interface ResponseCreate {
  /** The request as POST /v1/jobs would take it. */
  body: JobRequest;
  /** How the client wants its answer: at once (`background`), as events (`stream`), or when it is done. */
  answer: 'background' | 'stream' | 'wait';
  /** Run the tool-call loop (a tool executor was given). */
  toolLoop: boolean;
  /** Keep the client's `background` in the stored request (the job's Response echoes it). */
  finish(prepared: PreparedJob): PreparedJob;
}

function optionOf(req: Request, body: Record<string, unknown>, option: LonghaulOption): unknown {
  const text = req.get(LONGHAUL_OPTIONS[option])?.trim();
  const header = text !== undefined && NUMERIC_OPTIONS.has(option) && DECIMAL.test(text) ? Number(text) : text;
  const field = body[option];
  if (header !== undefined && field !== undefined && header !== field) {
    throw new ValidationError(`'${option}' is given both as a body field and as the ${LONGHAUL_OPTIONS[option]} header, with different values.`, option, 'conflicting_parameters');
  }
  return field ?? header;
}

/**
 * Response caching for this request: the `cache` body field (`{"ttl_seconds": …}` or `false`), or
 * the `Longhaul-Cache-Ttl: <seconds>` header (`0` or `off`: never cached).
 */
function cacheOptionOf(req: Request, field: unknown): unknown {
  const text = req.get('Longhaul-Cache-Ttl')?.trim();
  if (text !== undefined && field !== undefined) {
    throw new ValidationError("'cache' is given both as a body field and as the Longhaul-Cache-Ttl header.", 'cache', 'conflicting_parameters');
  }
  const value = text === undefined ? field : text === 'off' || text === '0' ? false : /^\d+$/.test(text) ? { ttl_seconds: Number(text) } : text;
  if (value === undefined) return undefined;
  const checked = jobRequestSchema.shape.cache.safeParse(value);
  if (!checked.success) throw new ValidationError(`Invalid 'cache': ${checked.error.issues[0]?.message ?? 'invalid value'}.`, 'cache', 'invalid_value');
  return checked.data;
}

export function parseResponseCreate(req: Request): ResponseCreate {
  const raw = req.body as unknown;
  if (raw === undefined || raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ValidationError('Request body must be a JSON object (Content-Type: application/json).', null, 'invalid_body');
  }
  const unstorable = findUnstorableText(raw);
  if (unstorable) throw inputProblemError(unstorable);
  const { callback_url: _c, previous_job_id: _p, expected_duration_seconds: _e, cache: _k, tool_executor: _t, max_turns: _m, ...params } = raw as Record<string, unknown>;
  const cache = cacheOptionOf(req, (raw as Record<string, unknown>).cache);
  const loop = toolLoopOptionsOf(req, raw as Record<string, unknown>);
  const options = {
    callback_url: optionOf(req, raw as Record<string, unknown>, 'callback_url'),
    previous_job_id: optionOf(req, raw as Record<string, unknown>, 'previous_job_id'),
    expected_duration_seconds: optionOf(req, raw as Record<string, unknown>, 'expected_duration_seconds'),
  };
  for (const option of Object.keys(options) as LonghaulOption[]) {
    if (options[option] === undefined) continue;
    const checked = jobRequestSchema.shape[option].safeParse(options[option]);
    if (!checked.success) throw new ValidationError(`Invalid '${option}': ${checked.error.issues[0]?.message ?? 'invalid value'}.`, option, 'invalid_value');
  }

  // The guide's manual history copies output messages back without their ids: OpenAI takes them,
  // its document does not; they are sent in the input-message form it defines (as on /v1/jobs).
  if (Array.isArray(params.input)) params.input = normalizeHistory(params.input);
  const problem = loadRequestValidator().validate('createResponse', params);
  if (problem) throw new ValidationError(problem.message, problem.param, problem.code);
  if (params.store === false) {
    throw new ValidationError(
      "Longhaul runs every response in background mode at the provider, which stores it: 'store: false' cannot be honoured (OpenAI refuses background mode without storage too). Leave 'store' unset or true.",
      'store',
      'unsupported_value',
    );
  }
  const metadata = params.metadata as Record<string, string> | null | undefined;
  if (metadata) {
    if (JOB_ID_METADATA_KEY in metadata)
      throw new ValidationError(`Invalid 'metadata': the key "${JOB_ID_METADATA_KEY}" is Longhaul's.`, `metadata.${JOB_ID_METADATA_KEY}`, 'invalid_value');
    if (Object.keys(metadata).length > MAX_METADATA_KEYS) {
      throw new ValidationError(
        `Invalid 'metadata': at most ${MAX_METADATA_KEYS} keys (OpenAI allows 16; Longhaul adds "${JOB_ID_METADATA_KEY}").`,
        'metadata',
        'object_above_max_properties',
      );
    }
  }

  // A Longhaul response (or job) id as previous_response_id continues that job.
  let previousJobId = options.previous_job_id as string | undefined;
  const previousResponseId = params.previous_response_id;
  if (typeof previousResponseId === 'string' && jobIdOfResponseId(previousResponseId)) {
    if (previousJobId !== undefined) {
      throw new ValidationError("Give at most one of 'previous_job_id' and 'previous_response_id'.", 'previous_response_id', 'conflicting_parameters');
    }
    previousJobId = jobIdOfResponseId(previousResponseId)!;
    delete params.previous_response_id;
  }
  for (const key of ['metadata', 'previous_response_id', 'conversation', 'instructions', 'prompt'] as const) {
    if (params[key] === null) delete params[key]; // null is "not given" in OpenAI's create body
  }

  const background = params.background === true;
  const stream = params.stream === true;
  const toolLoop = loop.tool_executor !== undefined;
  if (toolLoop && stream) {
    throw new ValidationError(
      "A response whose tool-call loop Longhaul runs ('tool_executor') cannot be streamed here: an SDK stream ends at the first turn's response.completed. Leave 'stream' out and follow GET /v1/jobs/{id}/stream (the Longhaul-Job-Id header names the job), or run the loop yourself.",
      'stream',
      'unsupported_parameter',
    );
  }
  const body = {
    ...params,
    ...loop,
    ...(cache === undefined ? {} : { cache }),
    ...(options.callback_url === undefined ? {} : { callback_url: options.callback_url }),
    ...(previousJobId === undefined ? {} : { previous_job_id: previousJobId }),
    ...(options.expected_duration_seconds === undefined ? {} : { expected_duration_seconds: options.expected_duration_seconds }),
  } as JobRequest;
  return {
    body,
    answer: stream ? 'stream' : background ? 'background' : 'wait',
    toolLoop,
    finish: (prepared) => ({ ...prepared, providerParams: { ...prepared.providerParams, background } }),
  };
}
