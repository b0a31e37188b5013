/**
 * JSON Schema checks of a job's `validate.json_schema` (@longhaul/core fallbacks.ts): the API
 * compiles the schema when the job is created (a schema that does not compile is a 400), and
 * reconcile checks an attempt's output against it.
 *
 * Why here: the core is dependency-free and takes the check as a function; this package is where
 * a provider's response is applied to a job (`reconcileJob`), and the API already depends on it,
 * so ajv lives in one place. Compiled validators are cached by the schema's JSON (a job's attempts
 * and a tenant's jobs mostly share a handful of schemas); the cache is bounded.
 */
import { Ajv, type ValidateFunction } from 'ajv';

const ajv = new Ajv({ allErrors: false, strict: false });
const compiled = new Map<string, ValidateFunction>();
const CACHE_LIMIT = 500;

function compile(schema: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile(schema);
    if (compiled.size >= CACHE_LIMIT) compiled.clear();
    compiled.set(key, validate);
  }
  return validate;
}

/** Why a schema does not compile, or null when it does. */
export function jsonSchemaProblem(schema: Record<string, unknown>): string | null {
  try {
    compile(schema);
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Whether `value` satisfies `schema`: null when it does, else ajv's first complaint (`/path must ...`). */
export function checkJsonSchema(schema: Record<string, unknown>, value: unknown): string | null {
  let validate: ValidateFunction;
  try {
    validate = compile(schema);
  } catch (err) {
    return `the schema does not compile: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (validate(value)) return null;
  const first = validate.errors?.[0];
  return first ? `${first.instancePath || '(root)'} ${first.message ?? 'is invalid'}` : 'the output does not match the schema';
}
