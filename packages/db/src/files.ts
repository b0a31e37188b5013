/** Files a tenant uploaded through Longhaul (the provider holds the bytes; we hold ownership). */
import { and, desc, eq, inArray, isNull } from 'drizzle-orm';
import type { Database } from './client.ts';
import { files, type FileRow } from './schema.ts';

export async function recordFile(db: Database, file: Omit<FileRow, 'createdAt' | 'deletedAt'> & { createdAt?: Date }): Promise<FileRow> {
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

export async function listFiles(db: Database, tenantId: string, limit: number): Promise<{ data: FileRow[]; hasMore: boolean }> {
  const rows = await db
    .select()
    .from(files)
    .where(and(eq(files.tenantId, tenantId), isNull(files.deletedAt)))
    .orderBy(desc(files.createdAt), desc(files.id))
    .limit(limit + 1);
  return { data: rows.slice(0, limit), hasMore: rows.length > limit };
}

export async function markFileDeleted(db: Database, tenantId: string, fileId: string, at: Date): Promise<void> {
  await db
    .update(files)
    .set({ deletedAt: at })
    .where(and(eq(files.id, fileId), eq(files.tenantId, tenantId)));
}
