/**
 * The arguments a simulated model passes to a function: the smallest value valid against the
 * tool's `parameters` JSON schema, derived from the schema alone (no randomness), so the same tool
 * always gets the same arguments.
 *
 * "Smallest" means: an object has its required properties only (in the order `properties` lists
 * them), a string is `sample` (or its `format`'s example) fitted to minLength/maxLength, a number
 * is 0 moved into its bounds, a boolean is false, an array has minItems elements. `const` wins,
 * then the first `enum` value; a union takes its first branch that is not `null`; `allOf`
 * branches are merged; local `$ref`s (`#/$defs/…`, `#/definitions/…`) are followed, and a schema
 * that recurses through required properties stops at MAX_DEPTH with null.
 *
 * `pattern`, `uniqueItems` over non-enum items and `not` are not solved for: the strict schemas
 * OpenAI accepts for function tools rarely use them, and no value is fabricated to satisfy them.
 */

export type Schema = Record<string, unknown>;

const MAX_DEPTH = 16;
const SAMPLE = 'sample';

/** Examples for the string formats of JSON Schema 2020-12 that a function schema might name. */
export const FORMAT_EXAMPLES: Record<string, string> = {
  'date-time': '1970-01-01T00:00:00Z',
  date: '1970-01-01',
  time: '00:00:00Z',
  duration: 'PT1S',
  email: 'user@example.com',
  'idn-email': 'user@example.com',
  hostname: 'example.com',
  'idn-hostname': 'example.com',
  ipv4: '192.0.2.1',
  ipv6: '2001:db8::1',
  uri: 'https://example.com/',
  'uri-reference': 'https://example.com/',
  iri: 'https://example.com/',
  url: 'https://example.com/',
  uuid: '00000000-0000-4000-8000-000000000000',
};

/** The JSON string of the minimal arguments object for a function tool's `parameters` (null: `{}`). */
export function minimalArguments(parameters: unknown): string {
  const value = isSchema(parameters) ? minimalValue(parameters, parameters, 0) : {};
  return JSON.stringify(isPlainObject(value) ? value : {});
}

/** The minimal value valid against `schema`; `root` resolves `$ref`s. */
function minimalValue(schema: unknown, root: unknown, depth: number): unknown {
  if (schema === true || schema === false || !isSchema(schema) || depth > MAX_DEPTH) return null;
  const ref = schema['$ref'];
  if (typeof ref === 'string') {
    const target = resolveRef(root, ref);
    // Siblings of `$ref` apply too (2020-12): merge them over the target.
    const { $ref: _ignored, ...siblings } = schema;
    return minimalValue(target === undefined ? siblings : mergeSchemas([target, siblings]), root, depth + 1);
  }
  if ('const' in schema) return schema['const'];
  const choices = schema['enum'];
  if (Array.isArray(choices) && choices.length > 0) return choices[0];
  const allOf = schema['allOf'];
  if (Array.isArray(allOf) && allOf.length > 0) {
    const { allOf: _branches, ...rest } = schema;
    return minimalValue(mergeSchemas([rest, ...allOf.map((branch) => deref(branch, root))]), root, depth + 1);
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const branches = schema[key];
    if (!Array.isArray(branches) || branches.length === 0) continue;
    const { [key]: _branches, ...rest } = schema;
    const branch = branches.find((b) => !isNullSchema(deref(b, root))) ?? branches[0];
    return minimalValue(mergeSchemas([rest, deref(branch, root)]), root, depth + 1);
  }
  switch (typeOf(schema)) {
    case 'object':
      return minimalObject(schema, root, depth);
    case 'array':
      return minimalArray(schema, root, depth);
    case 'string':
      return minimalString(schema);
    case 'integer':
      return minimalNumber(schema, true);
    case 'number':
      return minimalNumber(schema, false);
    case 'boolean':
      return false;
    default:
      return null;
  }
}

export function typeOf(schema: Schema): string | null {
  const type = schema['type'];
  if (typeof type === 'string') return type;
  if (Array.isArray(type)) return (type.find((t) => t !== 'null') as string | undefined) ?? (type.length > 0 ? 'null' : null);
  if (isSchema(schema['properties']) || Array.isArray(schema['required'])) return 'object';
  if ('items' in schema || Array.isArray(schema['prefixItems'])) return 'array';
  return null;
}

function minimalObject(schema: Schema, root: unknown, depth: number): Record<string, unknown> {
  const properties = isSchema(schema['properties']) ? schema['properties'] : {};
  const required = Array.isArray(schema['required']) ? schema['required'].filter((key): key is string => typeof key === 'string') : [];
  const wanted = new Set(required);
  const minProperties = typeof schema['minProperties'] === 'number' ? schema['minProperties'] : 0;
  // Properties in the order the schema lists them, then required keys it does not describe.
  const keys = [...Object.keys(properties).filter((key) => wanted.has(key)), ...required.filter((key) => !(key in properties))];
  for (const key of Object.keys(properties)) {
    if (keys.length >= minProperties) break;
    if (!wanted.has(key)) keys.push(key);
  }
  const extra = schema['additionalProperties'];
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    out[key] = minimalValue(key in properties ? properties[key] : isSchema(extra) ? extra : {}, root, depth + 1);
  }
  return out;
}

function minimalArray(schema: Schema, root: unknown, depth: number): unknown[] {
  const minItems = typeof schema['minItems'] === 'number' ? schema['minItems'] : 0;
  const prefix = Array.isArray(schema['prefixItems']) ? schema['prefixItems'] : [];
  const items = deref(schema['items'], root);
  const enumItems = isSchema(items) && Array.isArray(items['enum']) ? items['enum'] : null;
  const out: unknown[] = [];
  for (let i = 0; i < minItems; i++) {
    if (i < prefix.length) out.push(minimalValue(prefix[i], root, depth + 1));
    // Distinct enum values keep `uniqueItems` satisfied when there are enough of them.
    else if (schema['uniqueItems'] === true && enumItems !== null && i < enumItems.length) out.push(enumItems[i]);
    else out.push(minimalValue(items, root, depth + 1));
  }
  return out;
}

function minimalString(schema: Schema): string {
  const format = typeof schema['format'] === 'string' ? FORMAT_EXAMPLES[schema['format']] : undefined;
  let value = format ?? SAMPLE;
  const minLength = typeof schema['minLength'] === 'number' ? schema['minLength'] : 0;
  const maxLength = typeof schema['maxLength'] === 'number' ? schema['maxLength'] : Number.POSITIVE_INFINITY;
  if (value.length < minLength) value = value.padEnd(minLength, 'x');
  if (value.length > maxLength) value = value.slice(0, Math.max(0, maxLength));
  return value;
}

export function minimalNumber(schema: Schema, integer: boolean): number {
  const num = (key: string): number | null => (typeof schema[key] === 'number' ? (schema[key] as number) : null);
  const step = num('multipleOf');
  const lowest = num('minimum');
  const above = num('exclusiveMinimum');
  const highest = num('maximum');
  const below = num('exclusiveMaximum');
  let value = 0;
  if (lowest !== null && value < lowest) value = lowest;
  if (above !== null && value <= above) value = integer || step !== null ? Math.floor(above) + 1 : above + 1;
  if (integer) value = Math.ceil(value);
  if (step !== null && step > 0) value = Math.ceil(value / step) * step;
  // 0 above the upper bound: the bound itself (or just under it), which is the smallest magnitude left.
  if (highest !== null && value > highest) value = integer ? Math.floor(highest) : highest;
  if (below !== null && value >= below) value = integer ? Math.ceil(below) - 1 : below - 1;
  if (step !== null && step > 0 && (highest !== null || below !== null)) value = Math.floor(value / step) * step;
  return value;
}

/** Shallow merge of object schemas: properties and required lists are combined, the rest first wins. */
export function mergeSchemas(schemas: unknown[]): Schema {
  const merged: Schema = {};
  const properties: Schema = {};
  const required: string[] = [];
  for (const schema of schemas) {
    if (!isSchema(schema)) continue;
    for (const [key, value] of Object.entries(schema)) {
      if (key === 'properties' && isSchema(value)) Object.assign(properties, value);
      else if (key === 'required' && Array.isArray(value)) required.push(...value.filter((v): v is string => typeof v === 'string' && !required.includes(v)));
      else if (!(key in merged)) merged[key] = value;
    }
  }
  if (Object.keys(properties).length > 0) merged['properties'] = properties;
  if (required.length > 0) merged['required'] = required;
  return merged;
}

export function deref(schema: unknown, root: unknown): unknown {
  if (!isSchema(schema) || typeof schema['$ref'] !== 'string') return schema;
  return resolveRef(root, schema['$ref']) ?? schema;
}

/** A local JSON pointer reference (`#/$defs/Thing`); anything else resolves to undefined. */
export function resolveRef(root: unknown, ref: string): unknown {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isSchema(node) && !Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

export function isNullSchema(schema: unknown): boolean {
  return isSchema(schema) && (schema['type'] === 'null' || (Array.isArray(schema['type']) && schema['type'].every((t) => t === 'null')));
}

export function isSchema(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return isSchema(value);
}
