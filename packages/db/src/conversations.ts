/** Conversations a tenant created through Longhaul (the provider holds the items; we hold ownership). */
import { and, eq, isNull } from 'drizzle-orm';
import type { Database } from './client.ts';
import { conversations, type ConversationRow } from './schema.ts';

/** `providerKeyId`: the id of the provider key it was created with (null: `default`). */
export async function recordConversation(
  db: Database,
  row: { id: string; tenantId: string; metadata: Record<string, string>; createdAt: Date; providerKeyId?: string | null },
): Promise<ConversationRow> {
  const [created] = await db.insert(conversations).values(row).returning();
  return created!;
}

/** A tenant's live conversation, or null (unknown, deleted, or another tenant's: callers answer 404). */
export async function getConversationForTenant(db: Database, tenantId: string, conversationId: string): Promise<ConversationRow | null> {
  const [row] = await db
    .select()
    .from(conversations)
    .where(and(eq(conversations.id, conversationId), eq(conversations.tenantId, tenantId), isNull(conversations.deletedAt)));
  return row ?? null;
}

export async function markConversationDeleted(db: Database, tenantId: string, conversationId: string, at: Date): Promise<void> {
  await db
    .update(conversations)
    .set({ deletedAt: at })
    .where(and(eq(conversations.id, conversationId), eq(conversations.tenantId, tenantId)));
}

/** Record the metadata a conversation was updated with (the provider holds the truth; this is what Longhaul shows and searches). */
export async function updateConversationMetadata(db: Database, tenantId: string, conversationId: string, metadata: Record<string, string>): Promise<void> {
  await db
    .update(conversations)
    .set({ metadata })
    .where(and(eq(conversations.id, conversationId), eq(conversations.tenantId, tenantId), isNull(conversations.deletedAt)));
}
