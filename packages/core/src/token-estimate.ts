/**
 * Input-token estimate of a Responses request, made before it is sent: what a tenant's
 * tokens-per-minute budget is charged when the job is admitted to the provider.
 *
 * It mirrors the simulator's accounting (apps/sim/src/usage.ts), which approximates OpenAI:
 * - text: ceil(chars / 4) of `instructions` followed by the input (a string as is, an item list
 *   serialized as JSON with each file and image part replaced by `{"type":"input_file"}` /
 *   `{"type":"input_image"}`: those are counted by kind, see apps/sim/src/context.ts);
 * - an `input_file` of N bytes is max(1, ceil(N / 50 000)) pages of 1 000 tokens: N is the decoded
 *   length of inline `file_data`, the uploaded size of a `file_id` (looked up through
 *   `fileBytes`; one page when unknown), and a `file_url` counts as 4 pages (its size is unknown
 *   before the provider fetches it);
 * - an `input_image` costs 85 tokens at `detail: 'low'` and 765 otherwise.
 * `max_output_tokens` is not counted: the budget is charged for the input only.
 */

export const CHARS_PER_TOKEN = 4;
export const FILE_PAGE_BYTES = 50_000;
export const FILE_PAGE_TOKENS = 1_000;
export const FILE_URL_PAGES = 4;
export const IMAGE_LOW_DETAIL_TOKENS = 85;
export const IMAGE_TOKENS = 765;

export interface TokenEstimateOptions {
  /** Size in bytes of an uploaded file, by id; undefined when unknown (counted as one page). */
  fileBytes?: (fileId: string) => number | undefined;
}

type Part = Record<string, unknown>;

const isPart = (value: unknown): value is Part => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Pages of a file of `bytes` bytes (at least one). */
export function filePages(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / FILE_PAGE_BYTES));
}

/** Decoded length of base64 data, optionally a `data:…;base64,` URL. */
export function base64DecodedBytes(data: string): number {
  const comma = data.startsWith('data:') ? data.indexOf(',') : -1;
  const payload = (comma >= 0 ? data.slice(comma + 1) : data).replace(/\s+/g, '');
  const padding = payload.endsWith('==') ? 2 : payload.endsWith('=') ? 1 : 0;
  return Math.max(0, Math.floor((payload.length * 3) / 4) - padding);
}

function fileTokens(part: Part, options: TokenEstimateOptions): number {
  if (typeof part.file_data === 'string') return filePages(base64DecodedBytes(part.file_data)) * FILE_PAGE_TOKENS;
  if (typeof part.file_id === 'string') {
    const bytes = options.fileBytes?.(part.file_id);
    return (bytes === undefined ? 1 : filePages(bytes)) * FILE_PAGE_TOKENS;
  }
  if (typeof part.file_url === 'string') return FILE_URL_PAGES * FILE_PAGE_TOKENS;
  return FILE_PAGE_TOKENS;
}

function imageTokens(part: Part): number {
  return part.detail === 'low' ? IMAGE_LOW_DETAIL_TOKENS : IMAGE_TOKENS;
}

/**
 * An input item with its file and image parts replaced by `{"type": …}` stubs (as the simulator
 * serializes them), their tokens added to `media`. Parts are found as items themselves or in an
 * item's `content` list, at any depth of `content`.
 */
function stubMedia(item: unknown, options: TokenEstimateOptions, media: { tokens: number }): unknown {
  if (!isPart(item)) return item;
  if (item.type === 'input_file' || item.type === 'input_image') {
    media.tokens += item.type === 'input_file' ? fileTokens(item, options) : imageTokens(item);
    return { type: item.type };
  }
  if (!Array.isArray(item.content)) return item;
  return { ...item, content: item.content.map((part) => stubMedia(part, options, media)) };
}

export function estimateInputTokens(params: Record<string, unknown>, options: TokenEstimateOptions = {}): number {
  const instructions = typeof params.instructions === 'string' ? params.instructions : '';
  const media = { tokens: 0 };
  const input = params.input;
  let inputText = '';
  if (typeof input === 'string') inputText = input;
  else if (Array.isArray(input)) inputText = JSON.stringify(input.map((item) => stubMedia(item, options, media)));
  return Math.ceil((instructions.length + inputText.length) / CHARS_PER_TOKEN) + media.tokens;
}
