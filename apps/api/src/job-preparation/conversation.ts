/** Step 2: conversation state (see ./index.ts). */
import type { ApiContext } from '../server.ts';

export interface ConversationStep {
  params: Record<string, unknown>;
  previousJobId: string | null;
  threadId: string | null;
}

export async function applyConversationState(_ctx: ApiContext, _tenantId: string, params: Record<string, unknown>, previousJobId: string | null): Promise<ConversationStep> {
  return { params, previousJobId, threadId: null };
}
