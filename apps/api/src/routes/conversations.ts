/**
 * /v1/conversations: created at the provider (Conversations API) and recorded as the tenant's,
 * so jobs may use them with `conversation` and no other tenant can. Seed items are checked like a
 * job's input (job-preparation/file-references.ts): only the tenant's own files.
 */
import { Router } from 'express';
import { z } from 'zod';
import { NotFoundError } from '@longhaul/core';
import { getConversationForTenant, markConversationDeleted, recordConversation, updateConversationMetadata } from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import { checkFileReferences, collectFileReferences } from '../job-preparation/file-references.ts';
import { callProvider, requireProvider } from '../provider-calls.ts';
import { checkPathIds, ids, parseInput } from '../request-input.ts';

const metadata = z.record(z.string().min(1).max(64), z.string().max(512)).refine((m) => Object.keys(m).length <= 16, { message: 'metadata has at most 16 keys' });

/**
 * Seed items pass through to the provider, which validates them (at most 20, as OpenAI allows).
 * Both fields may be null, as OpenAI's document allows and the SDK's types let a caller send.
 */
export const createBody = z.strictObject({
  items: z.array(z.looseObject({})).max(20).nullish(),
  metadata: metadata.nullish(),
});

/** OpenAI's update: the metadata replaces the conversation's (null clears it). */
export const updateBody = z.strictObject({ metadata: metadata.nullable() });

export const itemsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: ids.conversationItem.optional(),
  order: z.enum(['asc', 'desc']).default('desc'),
});

export function conversationsRouter(ctx: ApiContext): Router {
  const router = Router();
  checkPathIds(router, { id: ids.conversation });

  router.post('/', async (req, res) => {
    const body = parseInput(createBody, req.body);
    const items = body.items ?? undefined;
    const metadata = body.metadata ?? undefined;
    await checkFileReferences(ctx.db, req.tenantId!, collectFileReferences(items ?? [], 'items'));
    const provider = requireProvider(ctx);
    const { conversation: created, keyId } = await callProvider(() => provider.createConversation({ items, metadata }));
    await recordConversation(ctx.db, { id: created.id, tenantId: req.tenantId!, metadata: metadata ?? {}, createdAt: ctx.clock(), providerKeyId: keyId });
    req.log.info({ tenant_id: req.tenantId, conversation_id: created.id }, 'conversation created');
    res.json(created);
  });

  router.get('/:id', async (req, res) => {
    const conversation = await getConversationForTenant(ctx.db, req.tenantId!, req.params.id!);
    if (!conversation) throw new NotFoundError(`No conversation with id '${req.params.id}'.`, 'id', 'conversation_not_found');
    const provider = requireProvider(ctx);
    res.json(await callProvider(() => provider.retrieveConversation(conversation.id, { keyId: conversation.providerKeyId })));
  });

  router.post('/:id', async (req, res) => {
    const body = parseInput(updateBody, req.body);
    const conversation = await getConversationForTenant(ctx.db, req.tenantId!, req.params.id!);
    if (!conversation) throw new NotFoundError(`No conversation with id '${req.params.id}'.`, 'id', 'conversation_not_found');
    const provider = requireProvider(ctx);
    const updated = await callProvider(() => provider.updateConversation(conversation.id, { metadata: body.metadata }, { keyId: conversation.providerKeyId }));
    await updateConversationMetadata(ctx.db, req.tenantId!, conversation.id, body.metadata ?? {});
    req.log.info({ tenant_id: req.tenantId, conversation_id: conversation.id }, 'conversation updated');
    res.json(updated);
  });

  router.get('/:id/items', async (req, res) => {
    const query = parseInput(itemsQuery, req.query);
    const conversation = await getConversationForTenant(ctx.db, req.tenantId!, req.params.id!);
    if (!conversation) throw new NotFoundError(`No conversation with id '${req.params.id}'.`, 'id', 'conversation_not_found');
    const provider = requireProvider(ctx);
    res.json(await callProvider(() => provider.listConversationItems(conversation.id, query, { keyId: conversation.providerKeyId })));
  });

  router.delete('/:id', async (req, res) => {
    const conversation = await getConversationForTenant(ctx.db, req.tenantId!, req.params.id!);
    if (!conversation) throw new NotFoundError(`No conversation with id '${req.params.id}'.`, 'id', 'conversation_not_found');
    const provider = requireProvider(ctx);
    await callProvider(() => provider.deleteConversation(conversation.id, { keyId: conversation.providerKeyId })).catch((err: unknown) => {
      if (!(err instanceof NotFoundError)) throw err;
    });
    await markConversationDeleted(ctx.db, req.tenantId!, conversation.id, ctx.clock());
    req.log.info({ tenant_id: req.tenantId, conversation_id: conversation.id }, 'conversation deleted');
    res.json({ id: conversation.id, object: 'conversation.deleted', deleted: true });
  });

  return router;
}
