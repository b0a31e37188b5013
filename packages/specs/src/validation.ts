/**
 * Validation of request bodies against OpenAI's OpenAPI document (`responses-subset.json` of
 * `@longhaul/specs`), so a malformed request built by a client fails here as it would at
 * OpenAI: a 400 `invalid_request_error` whose `param` names the offending path (`input[0].content`)
 * and whose message reads like OpenAI's.
 *
 * The document is compiled once per path and process (ajv, draft 2020-12, `strict: false` because
 * OpenAPI adds keywords such as `x-oaiMeta`); each operation's request-body schema is taken from
 * the document by its operationId with every `$ref` resolved by ajv.
 *
 * Choosing the error to report: a failed `oneOf` over item types yields errors from every branch.
 * The deepest error wins, errors of a branch whose `type` discriminator does not match the value
 * are dropped, and a discriminator mismatch is only reported when nothing else is left (then as
 * the list of supported types).
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { readSpecJson, specPath as specFile } from './index.ts';

/** The OpenAPI subset shipped in this package. */
export const DEFAULT_SPEC_PATH = specFile('responses-subset.json');

/** What is wrong with a request body, as OpenAI's 400 `invalid_request_error` says it. */
export interface RequestProblem {
  message: string;
  /** The offending path (`input[0].content`), or null for the body as a whole. */
  param: string | null;
  code: string;
}

function invalidRequest(message: string, param: string | null, code: string): RequestProblem {
  return { message, param, code };
}

export const VALIDATED_OPERATIONS = ['createResponse', 'createConversation', 'updateConversation', 'createConversationItems', 'createFile', 'createBatch'] as const;
export type ValidatedOperation = (typeof VALIDATED_OPERATIONS)[number];

export interface RequestValidator {
  /** The spec file the schemas come from. */
  readonly specPath: string;
  /** Null when `body` satisfies the operation's request-body schema. */
  validate(operation: ValidatedOperation, body: unknown): RequestProblem | null;
  /** Errors of `value` against `components.schemas.<name>` (at most five, as JSON), or null when it is valid. */
  schemaErrors(name: string, value: unknown): string | null;
}

const compiled = new Map<string, RequestValidator>();

/** The validator for the spec at `specPath`, compiled on first use and shared afterwards. */
export function loadRequestValidator(specPath: string = DEFAULT_SPEC_PATH): RequestValidator {
  let validator = compiled.get(specPath);
  if (validator === undefined) {
    validator = compileValidator(specPath);
    compiled.set(specPath, validator);
  }
  return validator;
}

function compileValidator(specPath: string): RequestValidator {
  const spec = oneOfAsAnyOf(JSON.parse(readFileSync(specPath, 'utf8'))) as OpenApiDocument;
  const ajv = newAjv(spec, true);

  const validators = new Map<ValidatedOperation, ValidateFunction>();
  for (const operation of VALIDATED_OPERATIONS) {
    const pointer = requestBodyPointer(spec, operation);
    const validate = ajv.getSchema(`openai.json#${pointer}`);
    if (validate === undefined) throw new Error(`${specPath}: no schema at ${pointer}`);
    validators.set(operation, validate);
  }
  return {
    specPath,
    validate(operation, body) {
      const validate = validators.get(operation) as ValidateFunction;
      if (validate(body)) return null;
      return toProblem(body, validate.errors ?? []);
    },
    schemaErrors(name, value) {
      const validate = schemaValidator(specPath, name);
      return validate(value) ? null : JSON.stringify(validate.errors?.slice(0, 5), null, 1);
    },
  };
}

function newAjv(spec: unknown, verbose: boolean): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, allErrors: true, verbose, logger: false });
  const addFormats = addFormatsModule as unknown as (instance: Ajv2020) => Ajv2020;
  addFormats(ajv);
  ajv.addFormat('unixtime', { type: 'number', validate: (value: number) => Number.isFinite(value) });
  ajv.addSchema(spec as object, 'openai.json');
  return ajv;
}

/**
 * Objects a server returns are checked against the document as written (its `oneOf`s exclusive):
 * what Longhaul answers must match exactly one variant, as OpenAI's own answers do.
 */
const strictAjvs = new Map<string, Ajv2020>();
function schemaValidator(specPath: string, name: string): ValidateFunction {
  let ajv = strictAjvs.get(specPath);
  if (ajv === undefined) {
    ajv = newAjv(JSON.parse(readFileSync(specPath, 'utf8')), false);
    strictAjvs.set(specPath, ajv);
  }
  const validate = ajv.getSchema(`openai.json#/components/schemas/${name}`);
  if (validate === undefined) throw new Error(`${specPath}: no schema components.schemas.${name}`);
  return validate;
}

/**
 * OpenAI's `oneOf`s overlap (an easy input message `{role, content: [...]}` also matches the
 * `message` item variant) and its SDKs treat them as plain unions, as does the API: validating
 * them as exclusive would reject the most common request there is.
 */
function oneOfAsAnyOf(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(oneOfAsAnyOf);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    const target = key === 'oneOf' && !('anyOf' in node) ? 'anyOf' : key;
    out[target] = oneOfAsAnyOf(value);
  }
  return out;
}

interface OpenApiDocument {
  paths: Record<string, Record<string, { operationId?: string; requestBody?: { content?: Record<string, unknown> } }>>;
}

/** JSON pointer of the operation's request-body schema (JSON or multipart form). */
function requestBodyPointer(spec: OpenApiDocument, operationId: string): string {
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      if (operation?.operationId !== operationId) continue;
      const contentType = Object.keys(operation.requestBody?.content ?? {})[0];
      if (contentType === undefined) break;
      return ['', 'paths', path, method, 'requestBody', 'content', contentType, 'schema'].map(escapePointer).join('/');
    }
  }
  throw new Error(`operation ${operationId} has no request body in the spec`);
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

function toProblem(body: unknown, errors: ErrorObject[]): RequestProblem {
  const chosen = chooseError(body, errors);
  if (chosen === undefined) return invalidRequest('Invalid request body.', null, 'invalid_request');
  const { error, siblings } = chosen;
  const path = pointerSegments(error.instancePath);
  if (error.keyword === 'required') {
    const param = formatParam([...path, (error.params as { missingProperty: string }).missingProperty]);
    return invalidRequest(`Missing required parameter: '${param}'.`, param, 'missing_required_parameter');
  }
  const param = formatParam(path);
  const value = valueAt(body, path);
  if (error.keyword === 'additionalProperties') {
    const extra = formatParam([...path, (error.params as { additionalProperty: string }).additionalProperty]);
    return invalidRequest(`Unknown parameter: '${extra}'.`, extra, 'unknown_parameter');
  }
  if (error.keyword === 'enum' || error.keyword === 'const') {
    const allowed = [...new Set(siblings.flatMap(allowedValues))];
    return invalidRequest(`Invalid value: ${describeValue(value)}. Supported values are: ${listOf(allowed.map((v) => `'${String(v)}'`))}.`, param, 'invalid_value');
  }
  if (error.keyword === 'type') {
    const expected = [...new Set(siblings.filter((e) => e.keyword === 'type').flatMap(expectedTypes))];
    return invalidRequest(
      `Invalid type for '${param}': expected ${expected.length > 1 ? 'one of ' : ''}${listOf(expected.map(article), 'or')}, but got ${article(jsonType(value))} instead.`,
      param,
      'invalid_type',
    );
  }
  const limit = describeLimit(error, value);
  return invalidRequest(`Invalid '${param}': ${limit}`, param, invalidCode(error, value));
}

/** The error to report, plus the other errors at the same place (for "one of" lists). */
function chooseError(body: unknown, errors: ErrorObject[]): { error: ErrorObject; siblings: ErrorObject[] } | undefined {
  const relevant = errors.filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf' && e.keyword !== 'allOf' && e.keyword !== 'if');
  const misses = relevant.filter((e) => isDiscriminatorMiss(e));
  const rest = relevant.filter((e) => !isDiscriminatorMiss(e) && !inMismatchedBranch(body, e));
  const bestRest = best(rest);
  const bestMiss = best(misses);
  // A value whose `type` matches no variant is reported as such, unless a variant it does
  // match has a deeper (more specific) problem.
  const missObjectDepth = bestMiss === undefined ? -1 : pointerSegments(bestMiss.instancePath).length - 1;
  const useMisses = bestMiss !== undefined && (bestRest === undefined || missObjectDepth > pointerSegments(bestRest.instancePath).length);
  const pool = useMisses ? misses : rest.length > 0 ? rest : errors;
  const chosen = useMisses ? bestMiss : (bestRest ?? best(errors));
  if (chosen === undefined) return undefined;
  const at = chosen.instancePath;
  return { error: chosen, siblings: pool.filter((e) => e.instancePath === at) };
}

function best(errors: ErrorObject[]): ErrorObject | undefined {
  let top: ErrorObject | undefined;
  for (const error of errors) {
    if (top === undefined || rank(error) > rank(top)) top = error;
  }
  return top;
}

/** Deeper first; at one place a missing or unknown key, then a bad value, then a bad type (often just `null`). */
const KEYWORD_PRIORITY: Record<string, number> = { required: 5, additionalProperties: 4, enum: 3, const: 3, type: 1 };

function rank(error: ErrorObject): number {
  return pointerSegments(error.instancePath).length * 10 + (KEYWORD_PRIORITY[error.keyword] ?? 2);
}

/** An enum/const failure on a `type` property: the value is simply another variant. */
function isDiscriminatorMiss(error: ErrorObject): boolean {
  return (error.keyword === 'enum' || error.keyword === 'const') && error.instancePath.endsWith('/type');
}

/** An object-level error (required, additionalProperties) from a variant whose `type` is not the value's. */
function inMismatchedBranch(body: unknown, error: ErrorObject): boolean {
  const schema = error.parentSchema as { properties?: Record<string, { enum?: unknown[]; const?: unknown }> } | undefined;
  const discriminator = schema?.properties?.['type'];
  if (discriminator === undefined) return false;
  const allowed = discriminator.enum ?? (discriminator.const === undefined ? undefined : [discriminator.const]);
  if (allowed === undefined) return false;
  const value = valueAt(body, pointerSegments(error.instancePath));
  if (typeof value !== 'object' || value === null) return false;
  const type = (value as Record<string, unknown>)['type'];
  // An easy input message has no `type`: only the `message` variants can be meant.
  return !allowed.includes(type === undefined ? 'message' : type);
}

function allowedValues(error: ErrorObject): unknown[] {
  if (error.keyword === 'enum') return (error.params as { allowedValues: unknown[] }).allowedValues;
  if (error.keyword === 'const') return [(error.params as { allowedValue: unknown }).allowedValue];
  return [];
}

const TYPE_NAMES: Record<string, string> = { string: 'string', integer: 'integer', number: 'number', boolean: 'boolean', array: 'array', object: 'object', null: 'null' };

function expectedTypes(error: ErrorObject): string[] {
  const type = (error.params as { type: string | string[] }).type;
  return (Array.isArray(type) ? type : type.split(',')).map((t) => TYPE_NAMES[t] ?? t);
}

function describeLimit(error: ErrorObject, value: unknown): string {
  const params = error.params as { limit?: number; comparison?: string };
  switch (error.keyword) {
    case 'maxLength':
      return `string too long. Expected a string with maximum length ${params.limit}, but got a string with length ${String(value).length} instead.`;
    case 'minLength':
      return `string too short. Expected a string with minimum length ${params.limit}, but got a string with length ${String(value).length} instead.`;
    case 'maxItems':
      return `array too long. Expected an array with maximum length ${params.limit}, but got an array with length ${(value as unknown[]).length} instead.`;
    case 'minItems':
      return `array too short. Expected an array with minimum length ${params.limit}, but got an array with length ${(value as unknown[]).length} instead.`;
    case 'maxProperties':
      return `too many properties. Expected an object with at most ${params.limit} properties.`;
    case 'minimum':
    case 'exclusiveMinimum':
      return `number below minimum value. Expected a value ${params.comparison} ${params.limit}, but got ${String(value)} instead.`;
    case 'maximum':
    case 'exclusiveMaximum':
      return `number above maximum value. Expected a value ${params.comparison} ${params.limit}, but got ${String(value)} instead.`;
    case 'format':
      return `expected a valid ${(error.params as { format: string }).format}, but got ${describeValue(value)} instead.`;
    default:
      return `${error.message ?? 'invalid value'}.`;
  }
}

function invalidCode(error: ErrorObject, value: unknown): string {
  const codes: Record<string, string> = {
    maxLength: 'string_above_max_length',
    minLength: 'string_below_min_length',
    maxItems: 'array_above_max_length',
    minItems: 'array_below_min_length',
    maxProperties: 'object_above_max_properties',
    minimum: `${jsonType(value)}_below_min_value`,
    exclusiveMinimum: `${jsonType(value)}_below_min_value`,
    maximum: `${jsonType(value)}_above_max_value`,
    exclusiveMaximum: `${jsonType(value)}_above_max_value`,
  };
  return codes[error.keyword] ?? 'invalid_value';
}

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function article(word: string): string {
  if (word === 'null') return 'null';
  return `${/^[aeiou]/.test(word) ? 'an' : 'a'} ${word}`;
}

function describeValue(value: unknown): string {
  const text = typeof value === 'string' ? `'${value}'` : (JSON.stringify(value) ?? 'undefined');
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function listOf(items: string[], conjunction = 'and'): string {
  if (items.length <= 1) return items.join('');
  if (items.length === 2) return `${items[0]} ${conjunction} ${items[1]}`;
  return `${items.slice(0, -1).join(', ')}, ${conjunction} ${items.at(-1)}`;
}

function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** `['input', '0', 'content']` → `input[0].content`, as OpenAI names params. */
export function formatParam(path: readonly (string | number)[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number' || /^\d+$/.test(segment)) out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out;
}

function valueAt(root: unknown, path: readonly string[]): unknown {
  let current: unknown = root;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** Errors of `value` against `components.schemas.<name>` of the default document (at most five, as JSON), or null when it is valid. */
export function specSchemaErrors(name: string, value: unknown): string | null {
  return loadRequestValidator().schemaErrors(name, value);
}

export interface StreamEventVariant {
  schema: string;
  type: string;
  required: string[];
  properties: string[];
}

let streamEventTable: Map<string, StreamEventVariant> | undefined;

/** The 58 ResponseStreamEvent variants of response-stream-events.json, by event type. */
export function streamEventVariants(): Map<string, StreamEventVariant> {
  streamEventTable ??= new Map(readSpecJson<StreamEventVariant[]>('response-stream-events.json').map((variant) => [variant.type, variant]));
  return streamEventTable;
}

/**
 * Problems with one streamed event: a type missing from the table, a required field of its variant
 * missing, or a mismatch with the variant's OpenAPI schema. Null when it is fine.
 */
export function streamEventErrors(event: Record<string, unknown>): string | null {
  const variant = streamEventVariants().get(String(event['type']));
  if (variant === undefined) return `unknown event type ${String(event['type'])}`;
  const missing = variant.required.filter((field) => !(field in event));
  if (missing.length > 0) return `${variant.type} lacks ${missing.join(', ')}`;
  return specSchemaErrors(variant.schema, event);
}
