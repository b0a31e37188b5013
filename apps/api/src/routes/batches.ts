/**
 * /v1/batches: the Batch API batches Longhaul collected a tenant's `processing: "batch"` jobs
 * into (issue 17). Read-only: a batch is made by the worker's batch loop and cancelled by
 * cancelling its jobs, so a tenant only looks.
 *
 *   GET /v1/batches?limit=…&after=…     the tenant's batches, newest first
 *   GET /v1/batches/{id}                one batch, with its jobs counted by status
 *   GET /v1/batches/{id}/events         its recorded changes (batch_events), oldest first
 *
 * `getBatch` is not tenant-scoped, so every lookup here checks the tenant itself: another
 * tenant's batch is a 404, as an unknown one is, and as a paging cursor it starts nothing.
 */
import { type Request, Router } from 'express';
import { z } from 'zod';
import { ID_PREFIX, NotFoundError, idPattern } from '@longhaul/core';
import { type Batch, batchJobCounts, getBatch, listBatchEvents, listBatchesForTenant } from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import { checkPathIds, parseInput } from '../request-input.ts';

/** A Longhaul batch id (`lhb_…`; the provider's own is `batch_…` and is not accepted here). */
export const batchIdSchema = z.string().regex(idPattern(ID_PREFIX.batch), `must be a batch id (${ID_PREFIX.batch}_…)`);

export const listSchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20), after: batchIdSchema.optional() });

const unix = (d: Date | null) => (d ? Math.floor(d.getTime() / 1000) : null);

function toBatchObject(b: Batch, jobs: Record<string, number>) {
  return {
    id: b.id,
    object: 'batch' as const,
    status: b.status,
    model: b.model,
    provider_batch_id: b.providerBatchId,
    input_file_id: b.inputFileId,
    output_file_id: b.outputFileId,
    error_file_id: b.errorFileId,
    job_count: b.jobCount,
    bytes: b.bytes,
    request_counts: b.requestCounts,
    jobs,
    error: b.error,
    create_attempts: b.createAttempts,
    created_at: unix(b.createdAt),
    submitted_at: unix(b.submittedAt),
    finished_at: unix(b.finishedAt),
    reconciled_at: unix(b.reconciledAt),
  };
}

/** The tenant's batch, or null for an unknown id or another tenant's. */
async function tenantBatch(deps: ApiContext, tenantId: string, batchId: string): Promise<Batch | null> {
  const batch = await getBatch(deps.db, batchId);
  return batch && batch.tenantId === tenantId ? batch : null;
}

export function batchesRouter(deps: ApiContext): Router {
  const { db } = deps;
  const router = Router();
  checkPathIds(router, { id: batchIdSchema });
  const tenantOf = (req: Request) => req.tenantId!;

  async function batchOr404(req: Request): Promise<Batch> {
    const batch = await tenantBatch(deps, tenantOf(req), String(req.params.id));
    if (!batch) throw new NotFoundError(`No batch with id '${req.params.id}'.`, 'id', 'batch_not_found');
    return batch;
  }

  router.get('/', async (req, res) => {
    const query = parseInput(listSchema, req.query);
    const cursor = query.after ? await tenantBatch(deps, tenantOf(req), query.after) : undefined;
    if (cursor === null) {
      // As the other lists: a cursor that names none of the tenant's batches has nothing after it.
      res.json({ object: 'list', data: [], has_more: false });
      return;
    }
    const rows = await listBatchesForTenant(db, tenantOf(req), { limit: query.limit + 1, before: cursor ? { createdAt: cursor.createdAt, id: cursor.id } : undefined });
    const page = rows.slice(0, query.limit);
    const counts = await Promise.all(page.map((b) => batchJobCounts(db, b.id)));
    res.json({ object: 'list', data: page.map((b, i) => toBatchObject(b, counts[i]!)), has_more: rows.length > query.limit });
  });

  router.get('/:id', async (req, res) => {
    const batch = await batchOr404(req);
    res.json(toBatchObject(batch, await batchJobCounts(db, batch.id)));
  });

  router.get('/:id/events', async (req, res) => {
    const batch = await batchOr404(req);
    const rows = await listBatchEvents(db, batch.id);
    res.json({ object: 'list', data: rows.map((e) => ({ from: e.fromStatus, to: e.toStatus, at: unix(e.at), details: e.details })) });
  });

  return router;
}
