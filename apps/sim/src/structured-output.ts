/**
 * The text a simulated model writes for a structured-output request (`text.format`): for
 * `json_schema`, JSON valid against the schema; for `json_object`, a JSON object. Deterministic:
 * the value derives from the schema, the prompt and `sim_array_items` only.
 *
 * Unlike a function's minimal arguments (tool-arguments.ts), the value is filled in so a pipeline
 * can use it: every listed property is present, arrays have `sim_array_items` elements (3 by
 * default) moved into minItems/maxItems, and strings say what they are and what they answer
 * (`step 2 of: <first words of the prompt>`, `step 2 title of: …` for a property of an element), so a later step visibly uses an earlier one's
 * output. `const` wins, then `enum` (cycled over array elements); unions take their first
 * non-null branch; `allOf` is merged; local `$ref`s are followed up to MAX_DEPTH (then null).
 * `pattern` and `not` are not solved for, as in tool-arguments.ts.
 */
import { deref, FORMAT_EXAMPLES, isNullSchema, isSchema, mergeSchemas, minimalNumber, resolveRef, typeOf, type Schema } from './tool-arguments.ts';

const MAX_DEPTH = 16;
const DEFAULT_ARRAY_ITEMS = 3;
const PROMPT_WORDS = 8;

interface FillContext {
  /** The first words of the prompt, quoted in every string. */
  gist: string;
  /** Array length wanted (`sim_array_items`), before minItems/maxItems. */
  arrayItems: number | null;
}

/** The output text for `format` (the request's `text.format`), or null when it asks for plain text. */
export function structuredText(format: unknown, input: unknown, arrayItems: number | null): string | null {
  if (!isSchema(format)) return null;
  const context: FillContext = { gist: gistOf(input), arrayItems };
  if (format['type'] === 'json_schema') {
    const schema = isSchema(format['schema']) ? format['schema'] : {};
    return JSON.stringify(fill(schema, schema, context, { label: typeof format['name'] === 'string' ? format['name'] : 'answer', index: null, owner: null, ordinal: 0 }, 0));
  }
  if (format['type'] === 'json_object') return JSON.stringify({ answer: `answer to: ${context.gist}` });
  return null;
}

/** The first words of the input's text (a string, or the text of its messages' content). */
function gistOf(input: unknown): string {
  const words = textOf(input)
    .split(/\s+/)
    .filter((word) => word.length > 0);
  return words.slice(0, PROMPT_WORDS).join(' ');
}

function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(textOf).join(' ');
  if (!isSchema(value)) return '';
  if (value['type'] === 'input_text' || value['type'] === 'output_text') return textOf(value['text']);
  return 'content' in value ? textOf(value['content']) : '';
}

interface Place {
  /** The property (or the array's property, singular) the value is for. */
  label: string;
  /** Its position (0-based) when the value is an array element itself, or null. */
  index: number | null;
  /** The array element an object property belongs to (`step 2`), or null. */
  owner: string | null;
  /** The position of the nearest enclosing array element, 0 outside arrays: varies enums and numbers. */
  ordinal: number;
}

function fill(schema: unknown, root: unknown, context: FillContext, place: Place, depth: number): unknown {
  if (schema === true || !isSchema(schema) || depth > MAX_DEPTH) return schema === true ? stringFor({}, context, place) : null;
  const ref = schema['$ref'];
  if (typeof ref === 'string') {
    const { $ref: _ignored, ...siblings } = schema;
    const target = resolveRef(root, ref);
    return fill(target === undefined ? siblings : mergeSchemas([target, siblings]), root, context, place, depth + 1);
  }
  if ('const' in schema) return schema['const'];
  const choices = schema['enum'];
  if (Array.isArray(choices) && choices.length > 0) return choices[place.ordinal % choices.length];
  const allOf = schema['allOf'];
  if (Array.isArray(allOf) && allOf.length > 0) {
    const { allOf: _branches, ...rest } = schema;
    return fill(mergeSchemas([rest, ...allOf.map((branch) => deref(branch, root))]), root, context, place, depth + 1);
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const branches = schema[key];
    if (!Array.isArray(branches) || branches.length === 0) continue;
    const { [key]: _branches, ...rest } = schema;
    const branch = branches.find((b) => !isNullSchema(deref(b, root))) ?? branches[0];
    return fill(mergeSchemas([rest, deref(branch, root)]), root, context, place, depth + 1);
  }
  switch (typeOf(schema)) {
    case 'object':
      return fillObject(schema, root, context, place, depth);
    case 'array':
      return fillArray(schema, root, context, place, depth);
    case 'string':
      return stringFor(schema, context, place);
    case 'integer':
    case 'number':
      return numberFor(schema, typeOf(schema) === 'integer', place);
    case 'boolean':
      return place.ordinal % 2 === 0;
    case 'null':
      return null;
    default:
      return stringFor(schema, context, place);
  }
}

function fillObject(schema: Schema, root: unknown, context: FillContext, place: Place, depth: number): Record<string, unknown> {
  const properties = isSchema(schema['properties']) ? schema['properties'] : {};
  const required = Array.isArray(schema['required']) ? schema['required'].filter((key): key is string => typeof key === 'string') : [];
  const out: Record<string, unknown> = {};
  const owner = place.index === null ? place.owner : `${place.label} ${place.index + 1}`;
  // Every described property (a strict schema requires them all), then required keys it does not describe.
  for (const key of [...Object.keys(properties), ...required.filter((key) => !(key in properties))]) {
    const extra = schema['additionalProperties'];
    const propertySchema = key in properties ? properties[key] : isSchema(extra) ? extra : {};
    out[key] = fill(propertySchema, root, context, { label: key, index: null, owner, ordinal: place.ordinal }, depth + 1);
  }
  return out;
}

function fillArray(schema: Schema, root: unknown, context: FillContext, place: Place, depth: number): unknown[] {
  const minItems = typeof schema['minItems'] === 'number' ? schema['minItems'] : 0;
  const maxItems = typeof schema['maxItems'] === 'number' ? schema['maxItems'] : Number.POSITIVE_INFINITY;
  const prefix = Array.isArray(schema['prefixItems']) ? schema['prefixItems'] : [];
  const items = deref(schema['items'], root);
  const enumItems = isSchema(items) && Array.isArray(items['enum']) ? items['enum'] : null;
  let length = Math.min(maxItems, Math.max(minItems, context.arrayItems ?? DEFAULT_ARRAY_ITEMS));
  // Distinct enum values keep `uniqueItems` satisfied: no more elements than values (unless minItems asks).
  if (schema['uniqueItems'] === true && enumItems !== null) length = Math.max(minItems, Math.min(length, enumItems.length));
  if (schema['items'] === false) length = Math.min(length, prefix.length);
  const label = singular(place.label);
  const out: unknown[] = [];
  for (let i = 0; i < length; i++) out.push(fill(i < prefix.length ? prefix[i] : items, root, context, { label, index: i, owner: place.owner, ordinal: i }, depth + 1));
  return out;
}

function stringFor(schema: Schema, context: FillContext, place: Place): string {
  const format = typeof schema['format'] === 'string' ? FORMAT_EXAMPLES[schema['format']] : undefined;
  const label = `${place.owner === null ? '' : `${place.owner} `}${place.label.replace(/[_-]+/g, ' ')}`;
  let value = format ?? (place.index === null ? `${label} of: ${context.gist}` : `${label} ${place.index + 1} of: ${context.gist}`);
  const minLength = typeof schema['minLength'] === 'number' ? schema['minLength'] : 0;
  const maxLength = typeof schema['maxLength'] === 'number' ? schema['maxLength'] : Number.POSITIVE_INFINITY;
  if (value.length < minLength) value = value.padEnd(minLength, '.');
  if (value.length > maxLength) value = value.slice(0, Math.max(0, maxLength));
  return value;
}

/** Numbers count up from the smallest allowed (1 when that is 0) over the enclosing array's elements. */
function numberFor(schema: Schema, integer: boolean, place: Place): number {
  const smallest = minimalNumber(schema, integer);
  const step = typeof schema['multipleOf'] === 'number' && schema['multipleOf'] > 0 ? schema['multipleOf'] : 1;
  const wanted = (smallest === 0 ? step : smallest) + place.ordinal * step;
  return withinBounds(schema, wanted) ? wanted : smallest;
}

function withinBounds(schema: Schema, value: number): boolean {
  const num = (key: string): number | null => (typeof schema[key] === 'number' ? (schema[key] as number) : null);
  const step = num('multipleOf');
  return (
    (num('minimum') === null || value >= (num('minimum') as number)) &&
    (num('maximum') === null || value <= (num('maximum') as number)) &&
    (num('exclusiveMinimum') === null || value > (num('exclusiveMinimum') as number)) &&
    (num('exclusiveMaximum') === null || value < (num('exclusiveMaximum') as number)) &&
    (step === null || step <= 0 || Number.isInteger(value / step))
  );
}

function singular(word: string): string {
  if (word.endsWith('ies') && word.length > 3) return `${word.slice(0, -3)}y`;
  if (word.endsWith('ses') || word.endsWith('xes')) return word.slice(0, -2);
  if (word.endsWith('s') && !word.endsWith('ss') && word.length > 1) return word.slice(0, -1);
  return word;
}
