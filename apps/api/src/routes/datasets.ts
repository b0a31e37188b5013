/**
 * /v1/datasets: evaluation datasets with immutable versions.
 *
 *   POST   /v1/datasets                            create (version 1)
 *   GET    /v1/datasets                            list, newest first
 *   GET    /v1/datasets/{id}                       one dataset
 *   DELETE /v1/datasets/{id}                       delete, unless a running eval uses it (409)
 *   POST   /v1/datasets/{id}/versions              a new version (becomes the latest)
 *   GET    /v1/datasets/{id}/versions              list, newest first
 *   GET    /v1/datasets/{id}/versions/{v}          one version
 *   GET    /v1/datasets/{id}/versions/{v}/items    its items in order, offset-paginated
 *
 * Items arrive as a JSON body (`{name, items: [...]}`) or as JSONL (`application/x-ndjson` or
 * `application/jsonl`, one item a line, the other fields as query parameters). Both go through the
 * same schema; a JSONL line's item is `items[<line - 1>]`, so an error names the line. Blank lines
 * are refused except at the end, which keeps that numbering exact. Another tenant's dataset is a 404.
 */
import express, { Router, type Request } from 'express';
import { z } from 'zod';
import { ConflictError, NotFoundError, ValidationError } from '@longhaul/core';
import {
  addDatasetVersion,
  createDataset,
  deleteDataset,
  getDatasetForTenant,
  getDatasetItems,
  getDatasetVersion,
  listDatasetVersions,
  listDatasets,
  type DatasetItem,
  type DatasetVersion,
  type DatasetWithCount,
} from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import { tooDeepAt } from '../json-depth.ts';
import { checkPathIds, ids, inputProblemError, parseInput, tooDeep } from '../request-input.ts';

export const MAX_DATASET_ITEMS = 10_000;
const MAX_ITEM_METADATA_KEYS = 16;
const JSONL_TYPES = ['application/x-ndjson', 'application/jsonl'];

const name = z.string().trim().min(1).max(256);
const description = z.string().max(4096).nullable();
const note = z.string().max(1024).nullable();

/** Keys as prompt placeholders name variables (`{{name}}`), so every variable can be used. */
const variableName = z
  .string()
  .regex(/^[A-Za-z_][\w-]*$/, 'variable names start with a letter or _ and hold letters, digits, _ and -')
  .max(128);
const itemSchema = z.strictObject({
  variables: z.record(variableName, z.string()),
  expected: z.json().optional(),
  metadata: z
    .record(z.string().min(1).max(64, 'metadata keys are at most 64 characters'), z.string().max(512, 'metadata values are at most 512 characters'))
    .refine((m) => Object.keys(m).length <= MAX_ITEM_METADATA_KEYS, { message: `metadata has at most ${MAX_ITEM_METADATA_KEYS} keys` })
    .optional(),
});
const items = z.array(itemSchema).min(1, 'a dataset version needs at least one item').max(MAX_DATASET_ITEMS, `a dataset version holds at most ${MAX_DATASET_ITEMS} items`);

export const createSchema = z.strictObject({ name, description: description.optional(), note: note.optional(), items });
export const versionSchema = z.strictObject({ note: note.optional(), items });
export const listSchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20), after: ids.dataset.optional() });
export const versionListSchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).default(20), after: z.coerce.number().int().positive().optional() });
export const itemListSchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  offset: z.coerce.number().int().min(0).max(MAX_DATASET_ITEMS).default(0),
});

const unix = (d: Date) => Math.floor(d.getTime() / 1000);

function toDatasetObject(d: DatasetWithCount) {
  return {
    id: d.id,
    object: 'dataset' as const,
    name: d.name,
    description: d.description,
    latest_version: d.latestVersion,
    /** Items of the latest version. */
    item_count: d.itemCount,
    created_at: unix(d.createdAt),
    updated_at: unix(d.updatedAt),
  };
}

function toVersionObject(v: DatasetVersion) {
  return { object: 'dataset.version' as const, dataset_id: v.datasetId, version: v.version, item_count: v.itemCount, note: v.note, created_at: unix(v.createdAt) };
}

function toItemObject(item: DatasetItem) {
  return { object: 'dataset.item' as const, index: item.index, variables: item.variables, expected: item.expected ?? null, metadata: item.metadata };
}

/**
 * The items of a JSONL body, line n being `items[n - 1]`. A line that is not JSON is a 400
 * `invalid_jsonl`; one nested too deep is refused before it is parsed, as JSON bodies are.
 */
function parseJsonl(text: string): unknown[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === '') lines.pop();
  if (lines.length > MAX_DATASET_ITEMS) {
    throw new ValidationError(`Invalid 'items': a dataset version holds at most ${MAX_DATASET_ITEMS} items (got ${lines.length} lines).`, 'items', 'invalid_value');
  }
  return lines.map((line, i) => {
    const param = `items[${i}]`;
    if (line.trim() === '') throw new ValidationError(`Invalid '${param}': line ${i + 1} is empty.`, param, 'invalid_jsonl');
    const deep = tooDeepAt(Buffer.from(line, 'utf8'));
    if (deep) throw inputProblemError(tooDeep(deep), ['items', i]);
    try {
      return JSON.parse(line) as unknown;
    } catch {
      throw new ValidationError(`Invalid '${param}': line ${i + 1} is not valid JSON.`, param, 'invalid_jsonl');
    }
  });
}

/** The request's fields: the JSON body, or a JSONL body's items with the query's other fields. */
function datasetInput(req: Request): unknown {
  if (!req.is(JSONL_TYPES)) return req.body;
  return { ...(req.query as Record<string, unknown>), items: parseJsonl(typeof req.body === 'string' ? req.body : '') };
}

function parseVersionNumber(raw: string): number | null {
  return /^\d{1,9}$/.test(raw) && Number(raw) >= 1 ? Number(raw) : null;
}

export function datasetsRouter(deps: ApiContext): Router {
  const { db, clock } = deps;
  const router = Router();
  checkPathIds(router, { id: ids.dataset });
  const jsonl = express.text({ type: JSONL_TYPES, limit: deps.config.bodyLimit });
  const tenantOf = (req: Request) => req.tenantId!;
  const notFound = (id: unknown) => new NotFoundError(`No dataset with id '${id}'.`, 'id', 'dataset_not_found');

  async function datasetOr404(req: Request): Promise<DatasetWithCount> {
    const dataset = await getDatasetForTenant(db, tenantOf(req), String(req.params.id));
    if (!dataset) throw notFound(req.params.id);
    return dataset;
  }

  async function versionOr404(req: Request, dataset: DatasetWithCount): Promise<DatasetVersion> {
    const raw = String(req.params.version);
    const version = parseVersionNumber(raw);
    const row = version === null ? null : await getDatasetVersion(db, tenantOf(req), dataset.id, version);
    if (!row) throw new NotFoundError(`Dataset '${dataset.id}' has no version '${raw}'.`, 'version', 'dataset_version_not_found');
    return row;
  }

  router.post('/', jsonl, async (req, res) => {
    const body = parseInput(createSchema, datasetInput(req));
    const { dataset } = await createDataset(
      db,
      { tenantId: tenantOf(req), name: body.name, description: body.description ?? null, note: body.note ?? null, items: body.items },
      clock(),
    );
    res.status(201).setHeader('Location', `/v1/datasets/${dataset.id}`).json(toDatasetObject(dataset));
  });

  router.get('/', async (req, res) => {
    const query = parseInput(listSchema, req.query);
    const { data, hasMore } = await listDatasets(db, { tenantId: tenantOf(req), ...query });
    res.json({ object: 'list', data: data.map(toDatasetObject), has_more: hasMore });
  });

  router.get('/:id', async (req, res) => {
    res.json(toDatasetObject(await datasetOr404(req)));
  });

  router.delete('/:id', async (req, res) => {
    const outcome = await deleteDataset(db, tenantOf(req), String(req.params.id));
    if (outcome === 'not_found') throw notFound(req.params.id);
    if (outcome === 'in_use') throw new ConflictError(`Dataset '${req.params.id}' is used by a running eval; cancel it or wait for it to finish.`, 'dataset_in_use');
    res.json({ id: req.params.id, object: 'dataset.deleted', deleted: true });
  });

  router.post('/:id/versions', jsonl, async (req, res) => {
    const body = parseInput(versionSchema, datasetInput(req));
    const added = await addDatasetVersion(db, tenantOf(req), String(req.params.id), { note: body.note ?? null, items: body.items }, clock());
    if (!added) throw notFound(req.params.id);
    res.status(201).setHeader('Location', `/v1/datasets/${added.dataset.id}/versions/${added.version.version}`).json(toVersionObject(added.version));
  });

  router.get('/:id/versions', async (req, res) => {
    const query = parseInput(versionListSchema, req.query);
    const dataset = await datasetOr404(req);
    const { data, hasMore } = await listDatasetVersions(db, { tenantId: tenantOf(req), datasetId: dataset.id, limit: query.limit, before: query.after });
    res.json({ object: 'list', data: data.map(toVersionObject), has_more: hasMore });
  });

  router.get('/:id/versions/:version', async (req, res) => {
    const dataset = await datasetOr404(req);
    res.json(toVersionObject(await versionOr404(req, dataset)));
  });

  router.get('/:id/versions/:version/items', async (req, res) => {
    const query = parseInput(itemListSchema, req.query);
    const dataset = await datasetOr404(req);
    const version = await versionOr404(req, dataset);
    const rows = await getDatasetItems(db, tenantOf(req), dataset.id, version.version, { offset: query.offset, limit: query.limit + 1 });
    res.json({ object: 'list', data: rows.slice(0, query.limit).map(toItemObject), has_more: rows.length > query.limit });
  });

  return router;
}
