/** Files a tenant uploaded through Longhaul (the provider holds the bytes; we hold ownership). */
import { and, asc, desc, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { files, type FileRow } from './schema.ts';

export async function recordFile(
  db: Database,
  file: Omit<FileRow, 'createdAt' | 'deletedAt' | 'providerKeyId'> & { createdAt?: Date; providerKeyId?: string | null },
): Promise<FileRow> {
  const [row] = await db.insert(files).values(file).returning();
  return row!;
}

/** A tenant's live file, or null (unknown, deleted, or another tenant's: callers answer 404). */
export async function getFileForTenant(db: Database, tenantId: string, fileId: string): Promise<FileRow | null> {
  const [row] = await db
    .select()
    .from(files)
    .where(and(eq(files.id, fileId), eq(files.tenantId, tenantId), isNull(files.deletedAt)));
  return row ?? null;
}

/** Several of a tenant's live files at once (missing ids are simply absent from the result). */
export async function getFilesForTenant(db: Database, tenantId: string, fileIds: string[]): Promise<FileRow[]> {
  if (fileIds.length === 0) return [];
  return db
    .select()
    .from(files)
    .where(and(inArray(files.id, fileIds), eq(files.tenantId, tenantId), isNull(files.deletedAt)));
}

/** What a page of `listFiles` holds: OpenAI's list parameters. */
export interface FileListOptions {
  limit: number;
  /** By creation time (then id); OpenAI's default is `desc`. */
  order: 'asc' | 'desc';
  /** Cursor: the id of the last file of the previous page. */
  after?: string;
  purpose?: string;
}

/**
 * A page of the tenant's live files, keyset-paginated on (created_at, id). The cursor is looked
 * up in SQL, not read back into a JS Date: created_at holds microseconds (files uploaded
 * automatically take the database's now()) and a Date would round them off, skipping or repeating
 * rows. A cursor that was deleted since still marks its place, so deleting files while walking
 * the pages does not end the walk; one that is not the tenant's matches nothing (an empty page).
 */
export async function listFiles(db: Database, tenantId: string, options: FileListOptions): Promise<{ data: FileRow[]; hasMore: boolean }> {
  const conditions = [eq(files.tenantId, tenantId), isNull(files.deletedAt)];
  if (options.purpose !== undefined) conditions.push(eq(files.purpose, options.purpose));
  if (options.after !== undefined) {
    const cursor = sql`(select c.created_at, c.id from ${files} c where c.id = ${options.after} and c.tenant_id = ${tenantId})`;
    conditions.push(options.order === 'asc' ? sql`(${files.createdAt}, ${files.id}) > ${cursor}` : sql`(${files.createdAt}, ${files.id}) < ${cursor}`);
  }
  const direction = options.order === 'asc' ? asc : desc;
  const rows = await db
    .select()
    .from(files)
    .where(and(...conditions))
    .orderBy(direction(files.createdAt), direction(files.id))
    .limit(options.limit + 1);
  return { data: rows.slice(0, options.limit), hasMore: rows.length > options.limit };
}

export async function markFileDeleted(db: Database, tenantId: string, fileId: string, at: Date): Promise<void> {
  await db
    .update(files)
    .set({ deletedAt: at })
    .where(and(eq(files.id, fileId), eq(files.tenantId, tenantId)));
}
