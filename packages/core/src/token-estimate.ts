/**
 * Input-token estimate of a Responses request, made before it is sent: what a tenant's
 * tokens-per-minute budget is charged.
 */
export function estimateInputTokens(params: Record<string, unknown>): number {
  return Math.ceil(JSON.stringify(params).length / 4);
}
