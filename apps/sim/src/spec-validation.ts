/**
 * The simulator's request validation: OpenAI's OpenAPI document (`@longhaul/specs/validation`),
 * each problem answered as OpenAI's 400 `invalid_request_error`.
 */
import { DEFAULT_SPEC_PATH, loadRequestValidator as loadSpecValidator, type ValidatedOperation } from '@longhaul/specs/validation';
import { type ApiError, invalidRequest } from './errors.ts';

export { formatParam } from '@longhaul/specs/validation';
export type { ValidatedOperation } from '@longhaul/specs/validation';

export interface RequestValidator {
  readonly specPath: string;
  /** Null when `body` satisfies the operation's request-body schema. */
  validate(operation: ValidatedOperation, body: unknown): ApiError | null;
}

export function loadRequestValidator(specPath: string = DEFAULT_SPEC_PATH): RequestValidator {
  const validator = loadSpecValidator(specPath);
  return {
    specPath,
    validate(operation, body) {
      const problem = validator.validate(operation, withErrata(body));
      return problem && invalidRequest(problem.message, problem.param, problem.code);
    },
  };
}

/**
 * Where the document contradicts the API it describes. `MCPApprovalResponse` requires
 * `request_id`, a property it does not define and that neither OpenAI's SDKs (openai-node's
 * `ResponseInputItem.McpApprovalResponse`) nor its guides send: checked as written, every approval
 * would be a 400. The check sees a copy whose approval responses carry that key.
 */
function withErrata(body: unknown): unknown {
  if (typeof body !== 'object' || body === null) return body;
  const record = body as Record<string, unknown>;
  const key = Array.isArray(record['input']) ? 'input' : Array.isArray(record['items']) ? 'items' : null;
  if (key === null) return body;
  const items = record[key] as unknown[];
  const needsKey = (item: unknown): item is Record<string, unknown> =>
    typeof item === 'object' && item !== null && (item as Record<string, unknown>)['type'] === 'mcp_approval_response' && !('request_id' in item);
  if (!items.some(needsKey)) return body;
  return { ...record, [key]: items.map((item) => (needsKey(item) ? { ...item, request_id: item['approval_request_id'] ?? '' } : item)) };
}
