/**
 * /v1/files: upload (multipart, `purpose=user_data`) through the provider's Files API, list,
 * read and delete. Longhaul records which tenant owns each file: a job may only reference its
 * own tenant's files by `file_id`.
 *
 * The answers are OpenAI's File, list and deletion objects, so the official SDK pointed at
 * Longhaul works unchanged (test/openai-sdk-files-conversations.test.ts): the list takes OpenAI's
 * `purpose`, `order`, `after` and `limit` (1 to 10 000, default 10 000, as OpenAI's). Reading a
 * file's bytes back (`/content`) is not offered: the provider adapter has no such call.
 */
import { Router, type Request } from 'express';
import multer from 'multer';
import { z } from 'zod';
import { NotFoundError, PayloadTooLargeError, ValidationError } from '@longhaul/core';
import { getFileForTenant, listFiles, markFileDeleted, recordFile, type FileRow } from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import { DEFAULT_FILE_LIMITS } from '../job-preparation/files.ts';
import { callProvider, requireProvider } from '../provider-calls.ts';
import { checkPathIds, ids, parseInput, textProblem } from '../request-input.ts';

/** Purposes Longhaul uploads for: files that are model inputs. */
const PURPOSES = ['user_data'] as const;

/**
 * OpenAI's File object. `status` is required by OpenAI's document (and deprecated there): a file
 * is recorded only once the provider has accepted it, and a `user_data` file is usable at once,
 * so it is always `processed`.
 */
export function toFileObject(file: FileRow) {
  return {
    id: file.id,
    object: 'file' as const,
    bytes: file.bytes,
    created_at: Math.floor(file.createdAt.getTime() / 1000),
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed' as const,
  };
}

/** OpenAI's list parameters, with its bounds and defaults. */
export const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
  order: z.enum(['asc', 'desc']).default('desc'),
  after: ids.file.optional(),
  purpose: z.string().max(64).optional(),
});

/**
 * Form fields of an upload besides `file` and `purpose`. `expires_after` is OpenAI's, but the
 * provider adapter cannot pass it on: accepting it silently would keep a file the caller meant
 * to expire, so it is refused by name.
 */
function uploadFieldProblem(fields: Record<string, unknown>): ValidationError | null {
  for (const field of Object.keys(fields)) {
    if (field === 'purpose') continue;
    if (field === 'expires_after')
      return new ValidationError("Longhaul does not support 'expires_after' on uploads: delete the file when it is no longer needed.", 'expires_after', 'unsupported_parameter');
    return new ValidationError(`Unknown parameter: '${field}'.`, field, 'unknown_parameter');
  }
  return null;
}

export function filesRouter(ctx: ApiContext): Router {
  const router = Router();
  checkPathIds(router, { id: ids.file });
  const maxFileBytes = ctx.config.files?.maxFileBytes ?? DEFAULT_FILE_LIMITS.maxFileBytes;
  // One file, held in memory (it is under the per-file limit), and nothing else but fields.
  const upload = multer({ storage: multer.memoryStorage(), limits: { fileSize: maxFileBytes - 1, files: 1, fields: 4, fieldSize: 1024, parts: 6 } }).single('file');

  const receive = (req: Request): Promise<void> =>
    new Promise((resolve, reject) => {
      upload(req, req.res!, (err: unknown) => {
        if (!err) return resolve();
        if (err instanceof multer.MulterError) {
          if (err.code === 'LIMIT_FILE_SIZE')
            return reject(
              new PayloadTooLargeError(
                `The file must be smaller than ${(maxFileBytes / (1024 * 1024)).toFixed(0)} MB (the limit for model input files).`,
                'file',
                'file_too_large',
              ),
            );
          return reject(new ValidationError(`Invalid multipart upload: ${err.message}.`, err.field ?? null, 'invalid_upload'));
        }
        const message = err instanceof Error ? err.message : String(err);
        reject(new ValidationError(`Invalid multipart upload: ${message}.`, null, 'invalid_upload'));
      });
    });

  router.post('/', async (req, res) => {
    if (!req.is('multipart/form-data')) throw new ValidationError('Upload a file as multipart/form-data with the fields `file` and `purpose`.', null, 'invalid_content_type');
    await receive(req);
    const fields = (req.body as Record<string, unknown> | undefined) ?? {};
    const fieldProblem = uploadFieldProblem(fields);
    if (fieldProblem) throw fieldProblem;
    const purpose = fields.purpose;
    if (purpose === undefined) throw new ValidationError("Missing required parameter: 'purpose'.", 'purpose', 'missing_required_parameter');
    if (!PURPOSES.includes(purpose as (typeof PURPOSES)[number]))
      throw new ValidationError(`Invalid 'purpose': Longhaul uploads files for model inputs, so it must be one of ${PURPOSES.join(', ')}.`, 'purpose', 'invalid_value');
    const file = req.file;
    if (!file) throw new ValidationError("Missing required parameter: 'file'.", 'file', 'missing_required_parameter');
    if (file.size === 0) throw new ValidationError('The file is empty.', 'file', 'empty_file');
    const filenameProblem = textProblem(file.originalname);
    if (filenameProblem) throw new ValidationError(`Invalid 'file': its filename ${filenameProblem}.`, 'file', 'invalid_filename');
    const provider = requireProvider(ctx);
    const { file: created, keyId } = await callProvider(() =>
      provider.createFile({ data: file.buffer, filename: file.originalname || 'upload', contentType: file.mimetype }, 'user_data'),
    );
    const row = await recordFile(ctx.db, {
      id: created.id,
      tenantId: req.tenantId!,
      providerKeyId: keyId,
      filename: created.filename ?? file.originalname,
      bytes: file.size,
      purpose: 'user_data',
      jobId: null,
      createdAt: ctx.clock(),
    });
    req.log.info({ tenant_id: req.tenantId, file_id: row.id, bytes: row.bytes }, 'file uploaded');
    res.json(toFileObject(row));
  });

  router.get('/', async (req, res) => {
    const query = parseInput(listQuery, req.query);
    const { data, hasMore } = await listFiles(ctx.db, req.tenantId!, query);
    res.json({ object: 'list', data: data.map(toFileObject), first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore });
  });

  router.get('/:id', async (req, res) => {
    const file = await getFileForTenant(ctx.db, req.tenantId!, req.params.id!);
    if (!file) throw new NotFoundError(`No file with id '${req.params.id}'.`, 'id', 'file_not_found');
    res.json(toFileObject(file));
  });

  router.delete('/:id', async (req, res) => {
    const file = await getFileForTenant(ctx.db, req.tenantId!, req.params.id!);
    if (!file) throw new NotFoundError(`No file with id '${req.params.id}'.`, 'id', 'file_not_found');
    const provider = requireProvider(ctx);
    await callProvider(() => provider.deleteFile(file.id, { keyId: file.providerKeyId })).catch((err: unknown) => {
      // Already gone at the provider: deleting it here too is what the caller wants.
      if (!(err instanceof NotFoundError)) throw err;
    });
    await markFileDeleted(ctx.db, req.tenantId!, file.id, ctx.clock());
    req.log.info({ tenant_id: req.tenantId, file_id: file.id }, 'file deleted');
    res.json({ id: file.id, object: 'file', deleted: true });
  });

  return router;
}
