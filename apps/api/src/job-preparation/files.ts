/** Step 3: file inputs (see ./index.ts). */
import type { ApiContext } from '../server.ts';

export async function applyFileInputs(_ctx: ApiContext, _tenantId: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
  return params;
}
