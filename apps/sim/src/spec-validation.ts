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
      const problem = validator.validate(operation, body);
      return problem && invalidRequest(problem.message, problem.param, problem.code);
    },
  };
}
