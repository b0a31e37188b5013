/**
 * Step 3: file inputs (see ./index.ts). Every provider resource the request names, wherever it
 * is (tool outputs and tool definitions included), is checked against the tenant first: see
 * ./file-references.ts (tenants share one provider account, so this is their isolation). Every
 * `input_file` / `input_image` part of the request (in `input`, and in a hosted prompt's
 * variables) is then checked before anything reaches the provider:
 *
 * - exactly one source: `file_id` (a file this tenant uploaded through Longhaul), `file_url`
 *   (http(s), fetched by the provider: only its form is checked) or `file_data` (a base64 data
 *   URL, with a `filename` for files);
 * - the guide's limits: each file under 10 MB, all files of one request at most 32 MB, else 413
 *   naming the part;
 * - inline files at or above the auto-upload size are uploaded to the provider's Files API and
 *   referenced by id, so the job row (read by every poll) does not carry megabytes of base64.
 *   If the upload fails the part stays inline: the job is not refused for it.
 */
import { PayloadTooLargeError, ValidationError } from '@longhaul/core';
import { recordFile } from '@longhaul/db';
import type { ApiContext, FileLimits } from '../context.ts';
import { checkFileReferences, collectFileReferences } from './file-references.ts';

export type { FileLimits } from '../context.ts';

export const DEFAULT_FILE_LIMITS: FileLimits = { maxFileBytes: 10 * 1024 * 1024, maxTotalBytes: 32 * 1024 * 1024, autoUploadBytes: 1024 * 1024 };

export interface FilesStep {
  params: Record<string, unknown>;
  /** Sizes of the files referenced by id (for the token estimate). */
  fileBytes: Map<string, number>;
}

type Part = Record<string, unknown>;

interface Located {
  part: Part;
  /** Where it is in the request, as an error's `param` (e.g. `input[0].content[1]`). */
  path: string;
  /** Replace the part in the (copied) request. */
  replace: (next: Part) => void;
}

const DATA_URL = /^data:([\w.+-]+\/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*);base64,/;
const BASE64_BODY = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;

function isFilePart(value: unknown): value is Part {
  return typeof value === 'object' && value !== null && ((value as Part).type === 'input_file' || (value as Part).type === 'input_image');
}

/** Copy the containers on the way to every file part, so replacing one never touches the caller's object. */
function locateParts(params: Record<string, unknown>): { params: Record<string, unknown>; parts: Located[] } {
  const out: Record<string, unknown> = { ...params };
  const parts: Located[] = [];
  if (Array.isArray(params.input)) {
    const input = params.input.map((item) => item);
    out.input = input;
    input.forEach((item, i) => {
      const content = (item as { content?: unknown } | null)?.content;
      if (!Array.isArray(content)) return;
      const copy = [...content];
      input[i] = { ...(item as object), content: copy };
      copy.forEach((part, j) => {
        if (isFilePart(part)) parts.push({ part, path: `input[${i}].content[${j}]`, replace: (next) => (copy[j] = next) });
      });
    });
  }
  const prompt = params.prompt as { variables?: Record<string, unknown> } | undefined;
  if (prompt?.variables) {
    const variables = { ...prompt.variables };
    out.prompt = { ...prompt, variables };
    for (const [name, value] of Object.entries(variables)) {
      if (isFilePart(value)) parts.push({ part: value, path: `prompt.variables.${name}`, replace: (next) => (variables[name] = next) });
    }
  }
  return { params: out, parts };
}

/** Decoded size of a base64 data URL's payload, or null when it is not one. */
function dataUrlBytes(value: string): { bytes: number; mimeType: string | null; bodyStart: number } | null {
  const match = DATA_URL.exec(value);
  if (!match) return null;
  const bodyStart = match[0].length;
  const body = value.slice(bodyStart);
  if (!BASE64_BODY.test(body)) return null;
  const compact = body.replace(/\s+/g, '');
  const padding = compact.endsWith('==') ? 2 : compact.endsWith('=') ? 1 : 0;
  return { bytes: Math.floor((compact.length * 3) / 4) - padding, mimeType: match[1] ?? null, bodyStart };
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

const mb = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

/**
 * `original`: the request as the earlier steps made it (what will be sent). `asWritten`: the
 * body as the tenant wrote it, when a step rewrote it (a Longhaul prompt's variables rendered into
 * `input`): its references are checked too and come first, so an error names the place the tenant
 * gave the id (`prompt.variables.doc.file_id`) rather than where rendering put it.
 */
export async function applyFileInputs(ctx: ApiContext, tenantId: string, original: Record<string, unknown>, asWritten: Record<string, unknown> = original): Promise<FilesStep> {
  const limits = { ...DEFAULT_FILE_LIMITS, ...ctx.config.files };
  const { params, parts } = locateParts(original);

  // Shape first, with the sizes that are known from the request itself.
  const sized: { located: Located; bytes: number; inline: { mimeType: string | null; bodyStart: number } | null }[] = [];
  const byId: Located[] = [];
  for (const located of parts) {
    const { part, path } = located;
    if (part.type === 'input_file') {
      const sources = ['file_id', 'file_url', 'file_data'].filter((k) => part[k] !== undefined);
      if (sources.length !== 1) {
        throw new ValidationError(
          `${path} must have exactly one of 'file_id', 'file_url' and 'file_data'${sources.length ? ` (got ${sources.join(', ')})` : ''}.`,
          path,
          'invalid_file_part',
        );
      }
    }
    const inlineValue = part.type === 'input_file' ? part.file_data : typeof part.image_url === 'string' && part.image_url.startsWith('data:') ? part.image_url : undefined;
    if (typeof inlineValue === 'string') {
      const field = part.type === 'input_file' ? 'file_data' : 'image_url';
      const parsed = dataUrlBytes(inlineValue);
      if (!parsed) throw new ValidationError(`${path}.${field} must be a base64 data URL, e.g. "data:application/pdf;base64,JVBERi0…".`, `${path}.${field}`, 'invalid_file_data');
      if (part.type === 'input_file' && typeof part.filename !== 'string') {
        throw new ValidationError(`${path} has 'file_data' but no 'filename' (the provider needs the name to read the file).`, `${path}.filename`, 'missing_required_parameter');
      }
      sized.push({ located, bytes: parsed.bytes, inline: { mimeType: parsed.mimeType, bodyStart: parsed.bodyStart } });
      continue;
    }
    const url = part.type === 'input_file' ? part.file_url : part.image_url;
    if (typeof url === 'string') {
      const field = part.type === 'input_file' ? 'file_url' : 'image_url';
      if (!isHttpUrl(url)) throw new ValidationError(`${path}.${field} must be an absolute http(s) URL (the provider fetches it).`, `${path}.${field}`, 'invalid_file_url');
      continue;
    }
    if (typeof part.file_id === 'string') byId.push(located);
    else if (part.type === 'input_image') throw new ValidationError(`${path} must have 'image_url' or 'file_id'.`, path, 'invalid_file_part');
  }

  const references = collectFileReferences(asWritten);
  if (asWritten !== original) references.push(...collectFileReferences(original));
  const fileBytes = await checkFileReferences(ctx.db, tenantId, references);
  if (parts.length === 0) return { params: original, fileBytes };
  // Every part by id is one of the references just checked, so its size is known.
  for (const located of byId) sized.push({ located, bytes: fileBytes.get(located.part.file_id as string)!, inline: null });

  // The guide's limits, in request order so the error names the part that crossed the line.
  sized.sort((a, b) => parts.indexOf(a.located) - parts.indexOf(b.located));
  let total = 0;
  for (const { located, bytes } of sized) {
    if (bytes >= limits.maxFileBytes) {
      throw new PayloadTooLargeError(`${located.path} is ${mb(bytes)}; each file must be smaller than ${mb(limits.maxFileBytes)}.`, located.path, 'file_too_large');
    }
    total += bytes;
    if (total > limits.maxTotalBytes) {
      throw new PayloadTooLargeError(
        `The files of this request add up to more than ${mb(limits.maxTotalBytes)} (the limit is crossed at ${located.path}).`,
        located.path,
        'files_too_large',
      );
    }
  }

  if (limits.autoUploadBytes > 0 && ctx.provider) {
    for (const { located, bytes, inline } of sized) {
      if (!inline || located.part.type !== 'input_file' || bytes < limits.autoUploadBytes) continue;
      const fileId = await uploadInline(ctx, tenantId, located, inline);
      if (fileId) {
        located.replace({ type: 'input_file', file_id: fileId });
        fileBytes.set(fileId, bytes);
      }
    }
  }
  return { params, fileBytes };
}

async function uploadInline(ctx: ApiContext, tenantId: string, located: Located, inline: { mimeType: string | null; bodyStart: number }): Promise<string | null> {
  const filename = located.part.filename as string;
  const data = Buffer.from((located.part.file_data as string).slice(inline.bodyStart), 'base64');
  try {
    const { file, keyId } = await ctx.provider!.createFile({ data, filename, contentType: inline.mimeType ?? undefined }, 'user_data');
    await recordFile(ctx.db, { id: file.id, tenantId, providerKeyId: keyId, filename, bytes: data.length, purpose: 'user_data', jobId: null });
    ctx.logger.info({ tenant_id: tenantId, file_id: file.id, bytes: data.length, part: located.path }, 'inline file uploaded to the provider');
    return file.id;
  } catch (err) {
    ctx.logger.warn({ err, tenant_id: tenantId, part: located.path, code: 'file_auto_upload_failed' }, 'could not upload an inline file; sending it inline');
    return null;
  }
}
