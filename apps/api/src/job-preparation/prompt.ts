/** Step 1: reusable prompts (see ./index.ts). */
import type { ApiContext } from '../server.ts';

export interface PromptStep {
  params: Record<string, unknown>;
  promptId: string | null;
  promptVersion: number | null;
}

export async function applyPrompt(_ctx: ApiContext, _tenantId: string, params: Record<string, unknown>): Promise<PromptStep> {
  return { params, promptId: null, promptVersion: null };
}
