/**
 * Reusable prompts and their immutable versions, scoped by tenant. Versions of a prompt are
 * numbered 1..latest_version without gaps and never change or disappear, so "version v exists"
 * is `1 <= v <= latest_version`; a new version takes its number by incrementing latest_version
 * under the prompt's row lock, in the same transaction that inserts it.
 */
import { ID_PREFIX } from '@longhaul/core';
import { and, desc, eq, lt, or, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { newId } from './ids.ts';
import { prompts, promptVersions, type Prompt, type PromptVersion } from './schema.ts';

export interface NewPromptVersion {
  template: Record<string, unknown>;
  /** The variable names the template uses, in order of first appearance. */
  variables: string[];
  note: string | null;
  /** Response caching for the version's jobs that do not say otherwise; null: the tenant's default. */
  cache?: { ttl_seconds: number; continuations?: boolean } | null;
}

export interface NewPrompt extends NewPromptVersion {
  tenantId: string;
  name: string;
  description: string | null;
}

/** Create a prompt with its version 1 (current). */
export async function createPrompt(db: Database, input: NewPrompt, now: Date): Promise<{ prompt: Prompt; version: PromptVersion }> {
  return db.transaction(async (tx) => {
    const [prompt] = await tx
      .insert(prompts)
      .values({
        id: newId(ID_PREFIX.prompt),
        tenantId: input.tenantId,
        name: input.name,
        description: input.description,
        currentVersion: 1,
        latestVersion: 1,
        createdAt: now,
        updatedAt: now,
      })
      .returning();
    const [version] = await tx
      .insert(promptVersions)
      .values({
        promptId: prompt!.id,
        version: 1,
        tenantId: input.tenantId,
        template: input.template,
        variables: input.variables,
        note: input.note,
        cache: input.cache ?? null,
        createdAt: now,
      })
      .returning();
    return { prompt: prompt!, version: version! };
  });
}

/** A tenant's prompt, or null (unknown or another tenant's: callers answer 404). */
export async function getPromptForTenant(db: Database, tenantId: string, promptId: string): Promise<Prompt | null> {
  const [row] = await db
    .select()
    .from(prompts)
    .where(and(eq(prompts.id, promptId), eq(prompts.tenantId, tenantId)));
  return row ?? null;
}

/** Newest first, cursor-paginated on (created_at, id). */
export async function listPrompts(db: Database, options: { tenantId: string; limit: number; after?: string }): Promise<{ data: Prompt[]; hasMore: boolean }> {
  const conditions = [eq(prompts.tenantId, options.tenantId)];
  if (options.after) {
    const cursor = await getPromptForTenant(db, options.tenantId, options.after);
    if (!cursor) return { data: [], hasMore: false };
    conditions.push(or(lt(prompts.createdAt, cursor.createdAt), and(eq(prompts.createdAt, cursor.createdAt), lt(prompts.id, cursor.id)))!);
  }
  const rows = await db
    .select()
    .from(prompts)
    .where(and(...conditions))
    .orderBy(desc(prompts.createdAt), desc(prompts.id))
    .limit(options.limit + 1);
  return { data: rows.slice(0, options.limit), hasMore: rows.length > options.limit };
}

/**
 * Add the next version of a prompt; it becomes the current version (an A/B `traffic` split, which
 * names its versions, is left as it is). Null when the tenant has no such prompt.
 */
export async function addPromptVersion(
  db: Database,
  tenantId: string,
  promptId: string,
  input: NewPromptVersion,
  now: Date,
): Promise<{ prompt: Prompt; version: PromptVersion } | null> {
  return db.transaction(async (tx) => {
    const [prompt] = await tx
      .update(prompts)
      .set({ latestVersion: sqlIncrement(), currentVersion: sqlIncrement(), updatedAt: now })
      .where(and(eq(prompts.id, promptId), eq(prompts.tenantId, tenantId)))
      .returning();
    if (!prompt) return null;
    const [version] = await tx
      .insert(promptVersions)
      .values({
        promptId,
        version: prompt.latestVersion,
        tenantId,
        template: input.template,
        variables: input.variables,
        note: input.note,
        cache: input.cache ?? null,
        createdAt: now,
      })
      .returning();
    return { prompt, version: version! };
  });
}

/** `latest_version + 1`: both columns are set from the row as it was before the update. */
function sqlIncrement() {
  return sql`${prompts.latestVersion} + 1`;
}

export interface PromptChanges {
  name?: string;
  description?: string | null;
  currentVersion?: number;
  traffic?: { version: number; weight: number }[] | null;
}

/**
 * Change a prompt's name, description, current version (roll back or forward) or traffic split.
 * Versions named must exist (the caller checks them against `latestVersion`, which only grows).
 * Null when the tenant has no such prompt.
 */
export async function updatePrompt(db: Database, tenantId: string, promptId: string, changes: PromptChanges, now: Date): Promise<Prompt | null> {
  const [row] = await db
    .update(prompts)
    .set({ ...changes, updatedAt: now })
    .where(and(eq(prompts.id, promptId), eq(prompts.tenantId, tenantId)))
    .returning();
  return row ?? null;
}

export async function getPromptVersion(db: Database, tenantId: string, promptId: string, version: number): Promise<PromptVersion | null> {
  const [row] = await db
    .select()
    .from(promptVersions)
    .where(and(eq(promptVersions.promptId, promptId), eq(promptVersions.version, version), eq(promptVersions.tenantId, tenantId)));
  return row ?? null;
}

/** Newest version first; `before` is a cursor (the last version number of the previous page). */
export async function listPromptVersions(
  db: Database,
  options: { tenantId: string; promptId: string; limit: number; before?: number },
): Promise<{ data: PromptVersion[]; hasMore: boolean }> {
  const conditions = [eq(promptVersions.promptId, options.promptId), eq(promptVersions.tenantId, options.tenantId)];
  if (options.before !== undefined) conditions.push(lt(promptVersions.version, options.before));
  const rows = await db
    .select()
    .from(promptVersions)
    .where(and(...conditions))
    .orderBy(desc(promptVersions.version))
    .limit(options.limit + 1);
  return { data: rows.slice(0, options.limit), hasMore: rows.length > options.limit };
}
