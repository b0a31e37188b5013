/**
 * The body of the OpenAI-compatible `POST /v1/responses`: OpenAI's Responses create request as
 * its OpenAPI document defines it (every field, validated by the document itself, so a mistake is
 * OpenAI's 400 naming the `param`), plus Longhaul's own options, given as extra body fields (what
 * the SDK sends when they are added to the params) or as `Longhaul-*` headers:
 *
 *   callback_url               / Longhaul-Callback-Url        signed callbacks when the response ends
 *   previous_job_id            / Longhaul-Previous-Job-Id     continue an earlier job
 *   expected_duration_seconds  / Longhaul-Expected-Duration   the completion hint: how long it is expected to run
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

/** OpenAI allows 16 metadata keys; Longhaul adds JOB_ID_METADATA_KEY to what it sends. */
const MAX_METADATA_KEYS = 15;

export interface ResponseCreate {
  /** The request as POST /v1/jobs would take it. */
  body: JobRequest;
  /** How the client wants its answer: at once (`background`), as events (`stream`), or when it is done. */
  answer: 'background' | 'stream' | 'wait';
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
  const { callback_url: _c, previous_job_id: _p, expected_duration_seconds: _e, cache: _k, ...params } = raw as Record<string, unknown>;
  const cache = cacheOptionOf(req, (raw as Record<string, unknown>).cache);
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
  const body = {
    ...params,
    ...(cache === undefined ? {} : { cache }),
    ...(options.callback_url === undefined ? {} : { callback_url: options.callback_url }),
    ...(previousJobId === undefined ? {} : { previous_job_id: previousJobId }),
    ...(options.expected_duration_seconds === undefined ? {} : { expected_duration_seconds: options.expected_duration_seconds }),
  } as JobRequest;
  return {
    body,
    answer: stream ? 'stream' : background ? 'background' : 'wait',
    finish: (prepared) => ({ ...prepared, providerParams: { ...prepared.providerParams, background } }),
  };
}
