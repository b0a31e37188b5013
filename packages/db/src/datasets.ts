/**
 * Evaluation datasets and their immutable versions, scoped by tenant. Like prompts' versions,
 * a dataset's versions are numbered 1..latest_version without gaps and never change: a new
 * version takes its number by incrementing latest_version under the dataset's row lock, in the
 * same transaction that inserts the version and all of its items, so a reader sees a version
 * with every item or not at all.
 *
 * dataset_items carry no tenant column: every read reaches them through dataset_versions (which
 * does), so an item is only ever read within its tenant. A dataset is deleted only while no
 * running eval uses it; the check and the delete hold the dataset's row lock.
 */
import { EvalStatus, ID_PREFIX } from '@longhaul/core';
import { and, asc, desc, eq, getTableColumns, lt, or, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { newId } from './ids.ts';
import { datasetItems, datasets, datasetVersions, evals, type Dataset, type DatasetItem, type DatasetVersion } from './schema.ts';

export type { Dataset, DatasetItem, DatasetVersion } from './schema.ts';

/** Rows per INSERT of items: 1000 rows × 6 columns stays far below Postgres's 65,535 parameters. */
const ITEM_CHUNK = 1000;

export interface NewDatasetItem {
  /** The prompt variables the item fills in. */
  variables: Record<string, string>;
  /** What a good answer is (any JSON), for graders; null or absent: none. */
  expected?: unknown;
  metadata?: Record<string, string>;
}

export interface NewDatasetVersion {
  note: string | null;
  items: NewDatasetItem[];
}

export interface NewDataset extends NewDatasetVersion {
  tenantId: string;
  name: string;
  description: string | null;
}

/** A dataset with the item count of its latest version. */
export type DatasetWithCount = Dataset & { itemCount: number };

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

/** Insert a version's row and its items (indexes 0..n-1, in order). */
async function insertVersion(tx: Tx, tenantId: string, datasetId: string, version: number, input: NewDatasetVersion, now: Date): Promise<DatasetVersion> {
  const [row] = await tx.insert(datasetVersions).values({ datasetId, version, tenantId, itemCount: input.items.length, note: input.note, createdAt: now }).returning();
  for (let start = 0; start < input.items.length; start += ITEM_CHUNK) {
    const chunk = input.items.slice(start, start + ITEM_CHUNK);
    await tx.insert(datasetItems).values(
      chunk.map((item, i) => ({
        datasetId,
        version,
        index: start + i,
        variables: item.variables,
        expected: item.expected ?? null,
        metadata: item.metadata ?? {},
      })),
    );
  }
  return row!;
}

/** Create a dataset with its version 1. */
export async function createDataset(db: Database, input: NewDataset, now: Date): Promise<{ dataset: DatasetWithCount; version: DatasetVersion }> {
  return db.transaction(async (tx) => {
    const [dataset] = await tx
      .insert(datasets)
      .values({ id: newId(ID_PREFIX.dataset), tenantId: input.tenantId, name: input.name, description: input.description, latestVersion: 1, createdAt: now, updatedAt: now })
      .returning();
    const version = await insertVersion(tx, input.tenantId, dataset!.id, 1, input, now);
    return { dataset: { ...dataset!, itemCount: version.itemCount }, version };
  });
}

/** Add the next version of a dataset (it becomes the latest). Null when the tenant has no such dataset. */
export async function addDatasetVersion(
  db: Database,
  tenantId: string,
  datasetId: string,
  input: NewDatasetVersion,
  now: Date,
): Promise<{ dataset: DatasetWithCount; version: DatasetVersion } | null> {
  return db.transaction(async (tx) => {
    // The UPDATE takes the row lock: concurrent additions are numbered one after the other.
    const [dataset] = await tx
      .update(datasets)
      .set({ latestVersion: sqlIncrement(), updatedAt: now })
      .where(and(eq(datasets.id, datasetId), eq(datasets.tenantId, tenantId)))
      .returning();
    if (!dataset) return null;
    const version = await insertVersion(tx, tenantId, datasetId, dataset.latestVersion, input, now);
    return { dataset: { ...dataset, itemCount: version.itemCount }, version };
  });
}

function sqlIncrement() {
  return sql`${datasets.latestVersion} + 1`;
}

const withCount = { ...getTableColumns(datasets), itemCount: datasetVersions.itemCount };
const latestVersionJoin = and(eq(datasetVersions.datasetId, datasets.id), eq(datasetVersions.version, datasets.latestVersion));

/** A tenant's dataset, or null (unknown or another tenant's: callers answer 404). */
export async function getDatasetForTenant(db: Database, tenantId: string, datasetId: string): Promise<DatasetWithCount | null> {
  const [row] = await db
    .select(withCount)
    .from(datasets)
    .innerJoin(datasetVersions, latestVersionJoin)
    .where(and(eq(datasets.id, datasetId), eq(datasets.tenantId, tenantId)));
  return row ?? null;
}

/** Newest first, cursor-paginated on (created_at, id). */
export async function listDatasets(db: Database, options: { tenantId: string; limit: number; after?: string }): Promise<{ data: DatasetWithCount[]; hasMore: boolean }> {
  const conditions = [eq(datasets.tenantId, options.tenantId)];
  if (options.after) {
    const cursor = await getDatasetForTenant(db, options.tenantId, options.after);
    if (!cursor) return { data: [], hasMore: false };
    conditions.push(or(lt(datasets.createdAt, cursor.createdAt), and(eq(datasets.createdAt, cursor.createdAt), lt(datasets.id, cursor.id)))!);
  }
  const rows = await db
    .select(withCount)
    .from(datasets)
    .innerJoin(datasetVersions, latestVersionJoin)
    .where(and(...conditions))
    .orderBy(desc(datasets.createdAt), desc(datasets.id))
    .limit(options.limit + 1);
  return { data: rows.slice(0, options.limit), hasMore: rows.length > options.limit };
}

export async function getDatasetVersion(db: Database, tenantId: string, datasetId: string, version: number): Promise<DatasetVersion | null> {
  const [row] = await db
    .select()
    .from(datasetVersions)
    .where(and(eq(datasetVersions.datasetId, datasetId), eq(datasetVersions.version, version), eq(datasetVersions.tenantId, tenantId)));
  return row ?? null;
}

/** Newest version first; `before` is a cursor (the last version number of the previous page). */
export async function listDatasetVersions(
  db: Database,
  options: { tenantId: string; datasetId: string; limit: number; before?: number },
): Promise<{ data: DatasetVersion[]; hasMore: boolean }> {
  const conditions = [eq(datasetVersions.datasetId, options.datasetId), eq(datasetVersions.tenantId, options.tenantId)];
  if (options.before !== undefined) conditions.push(lt(datasetVersions.version, options.before));
  const rows = await db
    .select()
    .from(datasetVersions)
    .where(and(...conditions))
    .orderBy(desc(datasetVersions.version))
    .limit(options.limit + 1);
  return { data: rows.slice(0, options.limit), hasMore: rows.length > options.limit };
}

/**
 * A version's items in index order, from `offset` (default 0), at most `limit` of them (default:
 * all, as the eval runner reads them). Empty for a version the tenant does not have.
 */
export async function getDatasetItems(
  db: Database,
  tenantId: string,
  datasetId: string,
  version: number,
  options: { offset?: number; limit?: number } = {},
): Promise<DatasetItem[]> {
  const query = db
    .select(getTableColumns(datasetItems))
    .from(datasetItems)
    .innerJoin(datasetVersions, and(eq(datasetVersions.datasetId, datasetItems.datasetId), eq(datasetVersions.version, datasetItems.version)))
    .where(and(eq(datasetItems.datasetId, datasetId), eq(datasetItems.version, version), eq(datasetVersions.tenantId, tenantId)))
    .orderBy(asc(datasetItems.index))
    .offset(options.offset ?? 0)
    .$dynamic();
  return options.limit === undefined ? query : query.limit(options.limit);
}

/**
 * Delete a dataset with its versions and items, unless a running eval uses it ('in_use'). The
 * dataset's row lock is held from the check to the delete; an eval that starts on a dataset
 * should take the same lock (`for share`) so it cannot start in between.
 */
export async function deleteDataset(db: Database, tenantId: string, datasetId: string): Promise<'deleted' | 'not_found' | 'in_use'> {
  return db.transaction(async (tx) => {
    const [dataset] = await tx
      .select({ id: datasets.id })
      .from(datasets)
      .where(and(eq(datasets.id, datasetId), eq(datasets.tenantId, tenantId)))
      .for('update');
    if (!dataset) return 'not_found';
    const [running] = await tx
      .select({ id: evals.id })
      .from(evals)
      .where(and(eq(evals.tenantId, tenantId), eq(evals.datasetId, datasetId), eq(evals.status, EvalStatus.Running)))
      .limit(1);
    if (running) return 'in_use';
    await tx.delete(datasetItems).where(eq(datasetItems.datasetId, datasetId));
    await tx.delete(datasetVersions).where(eq(datasetVersions.datasetId, datasetId));
    await tx.delete(datasets).where(eq(datasets.id, datasetId));
    return 'deleted';
  });
}
