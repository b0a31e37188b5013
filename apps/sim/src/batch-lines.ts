/**
 * The Batch API's file formats. The input file is JSONL, one request per line:
 * `{custom_id, method: "POST", url, body}`; the output and error files are JSONL too, one record per
 * executed line: `{id: "batch_req_…", custom_id, response: {status_code, request_id, body} | null,
 * error: {code, message} | null}` (the `BatchRequestInput` / `BatchRequestOutput` objects of
 * OpenAI's OpenAPI document up to commit e1cb7a8 of openai/openai-openapi, still OpenAI's formats
 * though the document no longer carries them). A request answered 2xx goes to the output file,
 * one answered otherwise to the error file with its HTTP status and error body, and one that
 * never ran (the batch expired or was cancelled first) to the error file with `response: null`
 * and `error.code` `batch_expired` / `batch_cancelled`.
 *
 * Input validation is all-or-nothing, as at OpenAI: any bad line fails the whole batch in
 * `validating` with the problems listed in `errors` (1-based `line`).
 */
import type { BatchError, BatchLine } from './batch-lifecycle.ts';
import { isSuccess } from './batch-lifecycle.ts';

/** OpenAI's per-batch limit on requests. */
export const MAX_BATCH_LINES = 50_000;
/** Validation errors reported per batch; the rest are not listed. */
const MAX_REPORTED_ERRORS = 100;

export interface InputLine {
  customId: string;
  body: Record<string, unknown>;
}

export type ParsedInput = { ok: true; lines: InputLine[] } | { ok: false; errors: BatchError[] };

/** Parses and validates a batch input file for `endpoint` (`/v1/responses`). */
export function parseBatchInput(data: Buffer, endpoint: string): ParsedInput {
  const rows = data.toString('utf8').split('\n');
  const lines: InputLine[] = [];
  const errors: BatchError[] = [];
  const seen = new Set<string>();
  rows.forEach((raw, index) => {
    if (raw.trim() === '') return;
    const problem = checkLine(raw, endpoint, seen, index + 1);
    if ('code' in problem) errors.push(problem);
    else lines.push(problem);
  });
  if (errors.length === 0 && lines.length === 0) {
    errors.push({ code: 'empty_file', message: 'The batch input file is empty.', param: null, line: null });
  }
  if (lines.length > MAX_BATCH_LINES) {
    errors.push({ code: 'too_many_requests', message: `The batch input file contains more than the maximum of ${MAX_BATCH_LINES} requests.`, param: null, line: null });
  }
  return errors.length > 0 ? { ok: false, errors: errors.slice(0, MAX_REPORTED_ERRORS) } : { ok: true, lines };
}

function checkLine(raw: string, endpoint: string, seen: Set<string>, line: number): InputLine | BatchError {
  const fail = (code: string, message: string, param: string | null): BatchError => ({ code, message, param, line });
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return fail('invalid_json_line', 'This line is not parseable as valid JSON.', null);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return fail('invalid_json_line', 'This line is not a JSON object.', null);
  const { custom_id: customId, method, url, body } = parsed as Record<string, unknown>;
  if (typeof customId !== 'string' || customId === '') return fail('missing_required_parameter', "Missing required parameter: 'custom_id'.", 'custom_id');
  if (seen.has(customId)) {
    return fail(
      'duplicate_custom_id',
      'The custom_id for this request is a duplicate of another request. The custom_id parameter must be unique for each request in a batch.',
      'custom_id',
    );
  }
  seen.add(customId);
  if (method !== 'POST') return fail('invalid_method', "The method for this request must be 'POST'.", 'method');
  if (url !== endpoint) return fail('invalid_url', `The URL provided for this request does not match the batch endpoint '${endpoint}'.`, 'url');
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return fail('missing_required_parameter', "Missing required parameter: 'body'.", 'body');
  return { customId, body: body as Record<string, unknown> };
}

/** Why a line that never ran did not: the batch expired, or was cancelled, before it. */
export type NotRunReason = 'batch_expired' | 'batch_cancelled';

const NOT_RUN_MESSAGES: Record<NotRunReason, string> = {
  batch_expired: 'This request could not be executed before the completion window expired.',
  batch_cancelled: 'This request was not executed because the batch was cancelled.',
};

/** The output and error files' contents (null: no such file), given the executed lines. */
export function resultFiles(lines: BatchLine[], executed: ReadonlySet<BatchLine>, notRun: NotRunReason | null): { output: string | null; errors: string | null } {
  const output: string[] = [];
  const errors: string[] = [];
  for (const line of lines) {
    if (executed.has(line)) {
      const record = JSON.stringify({
        id: line.id,
        custom_id: line.customId,
        response: { status_code: line.answer.statusCode, request_id: line.answer.requestId, body: line.answer.body },
        error: null,
      });
      (isSuccess(line.answer) ? output : errors).push(record);
    } else if (notRun !== null) {
      errors.push(JSON.stringify({ id: line.id, custom_id: line.customId, response: null, error: { code: notRun, message: NOT_RUN_MESSAGES[notRun] } }));
    }
  }
  const jsonl = (records: string[]): string | null => (records.length === 0 ? null : `${records.join('\n')}\n`);
  return { output: jsonl(output), errors: jsonl(errors) };
}
