/**
 * Pipeline references (issue 16): the `{{…}}` templates a pipeline step's text holds, parsed and
 * rendered against a run's inputs and its finished steps. Pure.
 *
 * Design note: three roots, each a dotted path (whitespace inside the braces allowed):
 *
 *   {{input.question}}, {{input.a.b}}, {{input}}      the run's inputs
 *   {{steps.plan.output_text}}                        a finished step's output text
 *   {{steps.plan.output}}, {{steps.plan.output.steps.0.title}}
 *                                                     its output text parsed as JSON
 *   {{item}}, {{item.field}}                          the element of a `for_each` step
 *
 * A fan-out step seen by a later step has a list for each: `output_text` its elements' texts and
 * `output` their parsed outputs, in element order (null where an element failed or its text is
 * not JSON). A step that failed with `on_failure: continue` has null for both, and a null anywhere
 * on a path resolves to null (rendered as ''), so the steps after it still run. What is missing
 * (an input not given, a field not in the JSON, a step whose output is not JSON at all) is a
 * `TemplateError` naming the reference: a run fails its step rather than send a prompt with a hole.
 * Rendered into text, a string goes in as it is and any other value as JSON.
 */

export type ReferenceRoot = 'input' | 'steps' | 'item';

export interface Reference {
  /** The reference as written, braces included. */
  raw: string;
  root: ReferenceRoot;
  /** For `steps`: the step named. */
  step?: string;
  /**
   * The path below the root: for `steps`, below the step's name (its first element is
   * `output_text` or `output`); for `input` and `item`, below the root (may be empty).
   */
  path: string[];
}

/** A finished step as later steps see it. `output` undefined: the step's text is not JSON. */
export interface StepResult {
  output_text: string | (string | null)[] | null;
  output: unknown;
}

export interface TemplateScope {
  input: Record<string, unknown>;
  steps: Record<string, StepResult>;
  /** The element of a `for_each` step (absent elsewhere). */
  item?: unknown;
}

/** A reference that is malformed, or that names nothing in the scope it is rendered with. */
export class TemplateError extends Error {
  readonly code = 'template_error';
  /** The reference at fault, as written (`{{steps.plan.output.x}}`). */
  readonly reference: string;
  constructor(message: string, reference: string) {
    super(message);
    this.name = 'TemplateError';
    this.reference = reference;
  }
}

const REFERENCE = /\{\{([^{}]*)\}\}/g;
const SEGMENT = /^[\w-]+$/;
const INDEX = /^\d+$/;
const STEP_FIELDS = new Set(['output_text', 'output']);

function parseInner(raw: string, inner: string): Reference {
  const body = inner.trim();
  if (body === '') throw new TemplateError(`Empty reference ${raw}.`, raw);
  const segments = body.split('.').map((s) => s.trim());
  if (segments.some((s) => !SEGMENT.test(s))) throw new TemplateError(`Malformed reference ${raw}: a reference is a dotted path of names and indexes.`, raw);
  const [root, ...rest] = segments as [string, ...string[]];
  switch (root) {
    case 'input':
    case 'item':
      return { raw, root, path: rest };
    case 'steps': {
      const [step, field] = rest;
      if (step === undefined || field === undefined || !STEP_FIELDS.has(field)) {
        throw new TemplateError(`Malformed reference ${raw}: a step reference is {{steps.<name>.output_text}} or {{steps.<name>.output…}}.`, raw);
      }
      return { raw, root, step, path: rest.slice(1) };
    }
    default:
      throw new TemplateError(`Unknown reference ${raw}: a reference starts with input, steps or item.`, raw);
  }
}

/** Every reference in `text`, in order. Throws `TemplateError` for a malformed one. */
export function parseReferences(text: string): Reference[] {
  if (!text.includes('{{')) return [];
  const refs: Reference[] = [];
  for (const m of text.matchAll(REFERENCE)) refs.push(parseInner(m[0], m[1]!));
  return refs;
}

/** The single reference `text` is (surrounding whitespace allowed), or null when it is anything else. */
export function wholeReference(text: string): Reference | null {
  const m = /^\s*(\{\{([^{}]*)\}\})\s*$/.exec(text);
  return m ? parseInner(m[1]!, m[2]!) : null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function walk(value: unknown, path: readonly string[], ref: Reference, from: string): unknown {
  let current = value;
  let at = from;
  for (const segment of path) {
    if (current === null) return null;
    if (Array.isArray(current) && INDEX.test(segment) && Number(segment) < current.length) current = current[Number(segment)];
    else if (isRecord(current) && Object.hasOwn(current, segment)) current = current[segment];
    else {
      const what = Array.isArray(current) ? `a list of ${current.length}` : isRecord(current) ? 'an object without it' : `a ${typeof current}`;
      throw new TemplateError(`Reference ${ref.raw} names nothing: ${at} is ${what}, it has no '${segment}'.`, ref.raw);
    }
    at = `${at}.${segment}`;
  }
  return current;
}

function resolveParsed(ref: Reference, scope: TemplateScope): unknown {
  switch (ref.root) {
    case 'input':
      return walk(scope.input, ref.path, ref, 'input');
    case 'item':
      if (!('item' in scope) || scope.item === undefined) throw new TemplateError(`Reference ${ref.raw}: {{item}} is only defined in a for_each step.`, ref.raw);
      return walk(scope.item, ref.path, ref, 'item');
    case 'steps': {
      const step = ref.step!;
      const result = Object.hasOwn(scope.steps, step) ? scope.steps[step] : undefined;
      if (result === undefined) throw new TemplateError(`Reference ${ref.raw}: step '${step}' has not finished (or does not exist).`, ref.raw);
      const [field, ...rest] = ref.path as [keyof StepResult, ...string[]];
      const value = result[field];
      if (value === undefined) throw new TemplateError(`Reference ${ref.raw}: the output of step '${step}' is not JSON (use {{steps.${step}.output_text}}).`, ref.raw);
      return walk(value, rest, ref, `steps.${step}.${field}`);
    }
  }
}

/** Text as a rendered value: strings as they are, null as '', anything else as JSON. */
function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  return JSON.stringify(value);
}

/** `text` with every reference replaced by its value. Throws `TemplateError` (malformed or missing). */
export function renderTemplate(text: string, scope: TemplateScope): string {
  if (!text.includes('{{')) return text;
  return text.replace(REFERENCE, (raw: string, inner: string) => asText(resolveParsed(parseInner(raw, inner), scope)));
}

/** The value of `text`, which must be exactly one reference (a `for_each`, a run's `output`). Throws `TemplateError`. */
export function resolveReference(text: string, scope: TemplateScope): unknown {
  const ref = wholeReference(text);
  if (!ref) throw new TemplateError(`'${text}' is not a single {{…}} reference.`, text);
  return resolveParsed(ref, scope);
}
