/**
 * The Files API (`file-…`): uploads held in memory. Each file is capped at `max_file_bytes`
 * (OpenAI's limit is 512 MB; the simulator's default is lower to protect its memory) and all
 * files together at `files_max_total_bytes`: beyond that the oldest uploads are forgotten, as the
 * simulator forgets its oldest responses.
 *
 * Uploads are parsed with busboy, the streaming multipart parser under multer: it enforces the
 * size limit while the bytes arrive (the upload is never buffered past the cap), and using it
 * directly keeps every refusal in OpenAI's error shape.
 */
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { ApiError, invalidRequest } from './errors.ts';
import { newFileId } from './ids.ts';
import { listLimit } from './conversations.ts';

export interface StoredFile {
  id: string;
  filename: string;
  purpose: string;
  createdAtMs: number;
  expiresAtMs: number | null;
  contentType: string;
  data: Buffer;
}

export class FileStore {
  #files = new Map<string, StoredFile>();
  #totalBytes = 0;

  add(file: Omit<StoredFile, 'id'>, maxTotalBytes: number): StoredFile {
    const stored: StoredFile = { id: newFileId(), ...file };
    this.#files.set(stored.id, stored);
    this.#totalBytes += stored.data.length;
    for (const [id, old] of this.#files) {
      if (this.#totalBytes <= maxTotalBytes || id === stored.id) break;
      this.#files.delete(id);
      this.#totalBytes -= old.data.length;
    }
    return stored;
  }

  /** The file, unless unknown or expired. */
  find(id: string, now: number): StoredFile | undefined {
    const file = this.#files.get(id);
    if (file === undefined) return undefined;
    if (file.expiresAtMs !== null && file.expiresAtMs <= now) {
      this.#remove(id);
      return undefined;
    }
    return file;
  }

  get(id: string, now: number): StoredFile {
    const file = this.find(id, now);
    if (file === undefined) throw noSuchFile(id);
    return file;
  }

  delete(id: string, now: number): void {
    this.get(id, now);
    this.#remove(id);
  }

  list(query: { purpose?: unknown; limit?: unknown; order?: unknown; after?: unknown }, now: number): Record<string, unknown> {
    const limit = listLimit(query.limit, 10_000, 10_000);
    const order = query.order ?? 'desc';
    if (order !== 'asc' && order !== 'desc') {
      throw invalidRequest(`Invalid value: '${String(order)}'. Supported values are: 'asc' and 'desc'.`, 'order', 'invalid_value');
    }
    let files = [...this.#files.keys()].map((id) => this.find(id, now)).filter((f): f is StoredFile => f !== undefined);
    if (typeof query.purpose === 'string' && query.purpose !== '') files = files.filter((f) => f.purpose === query.purpose);
    if (order === 'desc') files.reverse();
    let start = 0;
    if (typeof query.after === 'string' && query.after !== '') {
      start = files.findIndex((f) => f.id === query.after) + 1;
      if (start === 0) throw invalidRequest(`No such File object: ${query.after}`, 'after', 'invalid_value');
    }
    const data = files.slice(start, start + limit).map(renderFile);
    return {
      object: 'list',
      data,
      first_id: data[0]?.['id'] ?? null,
      last_id: data.at(-1)?.['id'] ?? null,
      has_more: start + limit < files.length,
    };
  }

  clear(): void {
    this.#files.clear();
    this.#totalBytes = 0;
  }

  #remove(id: string): void {
    const file = this.#files.get(id);
    if (file === undefined) return;
    this.#files.delete(id);
    this.#totalBytes -= file.data.length;
  }
}

export function renderFile(file: StoredFile): Record<string, unknown> {
  const body: Record<string, unknown> = {
    id: file.id,
    object: 'file',
    bytes: file.data.length,
    created_at: Math.floor(file.createdAtMs / 1000),
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed',
  };
  if (file.expiresAtMs !== null) body['expires_at'] = Math.floor(file.expiresAtMs / 1000);
  return body;
}

/** OpenAI's answer for an unknown file on the Files endpoints. */
export function noSuchFile(id: string): ApiError {
  return new ApiError({ status: 404, type: 'invalid_request_error', message: `No such File object: ${id}`, param: 'id', code: null });
}

export interface Upload {
  /** Form fields, with bracketed names (`expires_after[seconds]`) nested. */
  fields: Record<string, unknown>;
  file: { filename: string; contentType: string; data: Buffer } | null;
}

/** Reads a `multipart/form-data` upload; refuses a file over `maxFileBytes` with a 413. */
export function readUpload(req: IncomingMessage, maxFileBytes: number): Promise<Upload> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      // busboy signals `limit` once a file reaches `fileSize` bytes: one more than what is allowed.
      parser = busboy({ headers: req.headers, limits: { fileSize: maxFileBytes + 1, files: 1, fields: 20, fieldSize: 64 * 1024 } });
    } catch {
      reject(invalidRequest("The request must be multipart/form-data with a 'file' and a 'purpose'.", null, 'invalid_request'));
      return;
    }
    const fields: Record<string, unknown> = {};
    let file: Upload['file'] = null;
    let failure: ApiError | null = null;
    parser.on('field', (name, value) => setField(fields, name, value));
    parser.on('file', (name, stream, info) => {
      if (name !== 'file') {
        stream.resume();
        failure ??= invalidRequest(`Unknown parameter: '${name}'.`, name, 'unknown_parameter');
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('limit', () => {
        failure ??= fileTooLarge(maxFileBytes);
      });
      stream.on('end', () => {
        file = { filename: info.filename ?? 'upload', contentType: info.mimeType, data: Buffer.concat(chunks) };
      });
    });
    parser.on('error', () => reject(invalidRequest('The multipart body could not be parsed.', null, 'invalid_request')));
    parser.on('close', () => (failure === null ? resolve({ fields, file }) : reject(failure)));
    req.pipe(parser);
  });
}

function fileTooLarge(maxFileBytes: number): ApiError {
  return new ApiError({
    status: 413,
    type: 'invalid_request_error',
    message: `File is too large: the maximum size is ${maxFileBytes} bytes.`,
    param: 'file',
    code: 'file_too_large',
  });
}

/** `expires_after[seconds]=3600` → `{ expires_after: { seconds: 3600 } }` (numbers as numbers). */
function setField(fields: Record<string, unknown>, name: string, value: string): void {
  const keys = name.split('[').map((key) => key.replace(/]$/, ''));
  let target = fields;
  for (const key of keys.slice(0, -1)) {
    const next = target[key];
    target[key] = typeof next === 'object' && next !== null ? next : {};
    target = target[key] as Record<string, unknown>;
  }
  const last = keys.at(-1) as string;
  target[last] = keys.length > 1 && /^-?\d+$/.test(value) ? Number(value) : value;
}
