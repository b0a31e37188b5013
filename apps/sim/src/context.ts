/**
 * What a model "sees" for one request, and what it costs in input tokens.
 *
 * The token rule (Longhaul's estimator mirrors it):
 * - text: ceil(chars / 4) of the instructions followed by the input (a string as is, an item list
 *   as JSON) in which every `input_file` / `input_image` part is replaced by `{"type":"input_file"}`
 *   / `{"type":"input_image"}`;
 * - plus, per `input_file` part, `pages × 1000` tokens with `pages = max(1, ceil(bytes / 50000))`:
 *   `file_data` counts its decoded bytes, `file_id` the stored file's bytes, `file_url` 4 pages;
 * - plus, per `input_image` part, 85 tokens with `detail: 'low'`, 765 otherwise.
 * Context inherited from a previous response or a conversation comes first and adds its tokens.
 *
 * A `Context` also carries the text the prompt cache hashes: exactly 4 characters per token, with
 * each file or image standing in as a marker derived from its identity, so a prefix that repeats
 * a file is cached like repeated text.
 */
import { createHash } from 'node:crypto';
import { ApiError } from './errors.ts';
import { formatParam } from './spec-validation.ts';
import { CHARS_PER_TOKEN } from './usage.ts';

export const FILE_PAGE_BYTES = 50_000;
export const FILE_PAGE_TOKENS = 1000;
/** A `file_url` is not fetched: it counts as this many pages. */
export const FILE_URL_PAGES = 4;
export const IMAGE_LOW_TOKENS = 85;
export const IMAGE_TOKENS = 765;

export interface Context {
  /** Cache text: `tokens × 4` characters. */
  text: string;
  tokens: number;
}

export const EMPTY_CONTEXT: Context = { text: '', tokens: 0 };

export function concatContexts(...parts: Context[]): Context {
  return { text: parts.map((p) => p.text).join(''), tokens: parts.reduce((sum, p) => sum + p.tokens, 0) };
}

/** Plain text: ceil(chars / 4) tokens. */
export function textContext(text: string): Context {
  const tokens = Math.ceil(text.length / CHARS_PER_TOKEN);
  return { text: text.padEnd(tokens * CHARS_PER_TOKEN, '\u0000'), tokens };
}

export function filePages(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / FILE_PAGE_BYTES));
}

/** Resolves a stored file's size; undefined when there is no such file. */
export type FileBytesLookup = (fileId: string) => number | undefined;

const STUB = { input_file: '{"type":"input_file"}', input_image: '{"type":"input_image"}' } as const;

/**
 * The context of instructions + input. `paramPrefix` names where the input sits in the request
 * (for errors about a part): `input`, or `prompt.variables`.
 */
export function inputContext(
  instructions: string | null,
  input: string | readonly unknown[] | null,
  files: FileBytesLookup,
  paramPrefix: readonly (string | number)[] = ['input'],
): Context {
  if (input === null || typeof input === 'string') return textContext((instructions ?? '') + (input ?? ''));
  const parts: { stub: string; tokens: number; identity: string }[] = [];
  const stubbed = input.map((item, index) => stubParts(item, [...paramPrefix, index], files, parts));
  const json = (instructions ?? '') + JSON.stringify(stubbed);
  const textTokens = Math.ceil(json.length / CHARS_PER_TOKEN);
  if (parts.length === 0) return textContext(json);
  // Markers follow their stub in order; the stubs are unambiguous because JSON escapes the quotes
  // of any such text inside a string value.
  let text = '';
  let rest = json;
  for (const part of parts) {
    const at = rest.indexOf(part.stub);
    text += rest.slice(0, at + part.stub.length) + marker(part.identity, part.tokens);
    rest = rest.slice(at + part.stub.length);
  }
  text += rest;
  const tokens = textTokens + parts.reduce((sum, p) => sum + p.tokens, 0);
  return { text: text.padEnd(tokens * CHARS_PER_TOKEN, '\u0000'), tokens };
}

function stubParts(item: unknown, path: (string | number)[], files: FileBytesLookup, parts: { stub: string; tokens: number; identity: string }[]): unknown {
  if (typeof item !== 'object' || item === null) return item;
  const record = item as Record<string, unknown>;
  if (record['type'] === 'input_file' || record['type'] === 'input_image') {
    const type = record['type'];
    const { tokens, identity } = type === 'input_file' ? fileCost(record, path, files) : imageCost(record);
    parts.push({ stub: STUB[type], tokens, identity });
    return { type };
  }
  if (!Array.isArray(record['content'])) return item;
  const content = (record['content'] as unknown[]).map((part, index) => stubParts(part, [...path, 'content', index], files, parts));
  return { ...record, content };
}

function fileCost(part: Record<string, unknown>, path: (string | number)[], files: FileBytesLookup): { tokens: number; identity: string } {
  const fileId = part['file_id'];
  if (typeof fileId === 'string') {
    const bytes = files(fileId);
    if (bytes === undefined) throw fileNotFound(fileId, formatParam([...path, 'file_id']));
    return { tokens: filePages(bytes) * FILE_PAGE_TOKENS, identity: `id:${fileId}` };
  }
  const data = part['file_data'];
  if (typeof data === 'string') {
    return { tokens: filePages(decodedLength(data)) * FILE_PAGE_TOKENS, identity: `data:${digest(data)}` };
  }
  const url = part['file_url'];
  if (typeof url === 'string') return { tokens: FILE_URL_PAGES * FILE_PAGE_TOKENS, identity: `url:${url}` };
  throw new ApiError({
    status: 400,
    type: 'invalid_request_error',
    message: "Invalid input_file: one of 'file_id', 'file_data' or 'file_url' must be provided.",
    param: formatParam(path),
    code: 'missing_required_parameter',
  });
}

function imageCost(part: Record<string, unknown>): { tokens: number; identity: string } {
  const source = typeof part['file_id'] === 'string' ? `id:${part['file_id']}` : `url:${digest(String(part['image_url'] ?? ''))}`;
  const detail = part['detail'] === 'low' ? 'low' : 'high';
  return { tokens: detail === 'low' ? IMAGE_LOW_TOKENS : IMAGE_TOKENS, identity: `${source}:${detail}` };
}

/** Bytes a base64 payload (optionally a `data:…;base64,` URL) decodes to. */
export function decodedLength(fileData: string): number {
  const comma = fileData.startsWith('data:') ? fileData.indexOf(',') : -1;
  const base64 = (comma >= 0 ? fileData.slice(comma + 1) : fileData).replace(/\s/g, '');
  let padding = 0;
  if (base64.endsWith('==')) padding = 2;
  else if (base64.endsWith('=')) padding = 1;
  return Math.max(0, Math.floor((base64.length * 3) / 4) - padding);
}

export function fileNotFound(fileId: string, param: string | null): ApiError {
  return new ApiError({
    status: 404,
    type: 'invalid_request_error',
    message: `File with id '${fileId}' not found.`,
    param,
    code: 'file_not_found',
  });
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64');
}

/** `tokens × 4` characters derived from `identity`. */
function marker(identity: string, tokens: number): string {
  const unit = `\u0001${digest(identity)}`;
  return unit.repeat(Math.ceil((tokens * CHARS_PER_TOKEN) / unit.length)).slice(0, tokens * CHARS_PER_TOKEN);
}
