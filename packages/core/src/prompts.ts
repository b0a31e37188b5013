/**
 * Reusable prompts: templates with `{{variable}}` placeholders rendered into Responses create
 * parameters, the version a job runs (A/B traffic splits), and the prompt-cache key of a version.
 *
 * Design note: prompt caching. OpenAI (and the simulator) serve `cached_tokens` from the longest
 * previously seen *prefix* of a request, in 128-token steps from 1024 tokens, scoped by model and
 * `prompt_cache_key`. That prefix is `instructions` followed by the serialized `input`. So that
 * two jobs of one version with different variables share everything up to the first variable:
 *
 *   1. The template's content comes first and is never reordered: its instructions, then its
 *      input items in the author's order. A job's own `input` is always appended after them, and a
 *      template's string input is always sent as a one-message array, so its serialization does
 *      not depend on whether the job brought input of its own.
 *   2. Values are substituted in place. Everything before a version's first placeholder is the
 *      same bytes for every job: the template is read back from Postgres (jsonb orders object
 *      keys canonically) and the rendered request is stored and sent the same way, so the caller's
 *      key order never reaches the prefix.
 *   3. Jobs of one version share a cache route: `prompt_cache_key` defaults to
 *      `promptCacheKey(id, version)`, unless the caller gives one. A new version gets a new key
 *      (its prefix differs anyway, and its hit ratio is then measured on its own).
 *
 * What rendering cannot do is move a placeholder the author put early (that would change the
 * prompt's meaning): `staticPrefixChars` measures the static head of a version and the API shows
 * it on each version, so a template that starts with a variable shows up as uncacheable. The
 * advice is the guide's: static instructions and examples first, `{{variables}}` last.
 *
 * Everything here is pure; expected failures are returned as result unions.
 */

/** `{{ name }}`: a letter or underscore, then letters, digits, `_` or `-`; spaces inside the braces allowed. */
const PLACEHOLDER = /\{\{\s*([A-Za-z_][\w-]*)\s*\}\}/g;
const WHOLE_PLACEHOLDER = /^\s*\{\{\s*([A-Za-z_][\w-]*)\s*\}\}\s*$/;

/** A variable's value: text, or a content part (an `input_file` / `input_image` fills a whole part). */
export type PromptVariableValue = string | { type: 'input_text'; text: string } | { type: 'input_image' | 'input_file'; [field: string]: unknown };

/**
 * A prompt version's template: `instructions` and `input` may hold placeholders; every other key
 * (model, reasoning, max_output_tokens, text, tools, ...) is a default request setting.
 */
export interface PromptTemplate {
  instructions?: string;
  input?: string | Record<string, unknown>[];
  [setting: string]: unknown;
}

export interface PromptTrafficSplit {
  version: number;
  weight: number;
}

export type PromptRenderErrorCode = 'missing_prompt_variable' | 'unknown_prompt_variable' | 'invalid_prompt_variable';

export interface PromptRenderError {
  code: PromptRenderErrorCode;
  /** The variable at fault. */
  variable: string;
  message: string;
}

export type PromptResult<T, E> = { ok: true; value: T } | { ok: false; error: E };

function textsOfTemplate(template: PromptTemplate): string[] {
  const texts: string[] = [];
  if (typeof template.instructions === 'string') texts.push(template.instructions);
  const input = template.input;
  if (typeof input === 'string') texts.push(input);
  else if (Array.isArray(input)) {
    for (const item of input) {
      const content = item.content;
      if (typeof content === 'string') texts.push(content);
      else if (Array.isArray(content)) {
        for (const part of content as Record<string, unknown>[]) if (typeof part.text === 'string') texts.push(part.text);
      }
    }
  }
  return texts;
}

/** The variable names a template uses (in instructions and in input text), in order of first appearance. */
export function extractPromptVariables(template: PromptTemplate): string[] {
  const names = new Set<string>();
  for (const text of textsOfTemplate(template)) for (const m of text.matchAll(PLACEHOLDER)) names.add(m[1]!);
  return [...names];
}

class RenderFailure {
  constructor(readonly error: PromptRenderError) {}
}

function substitute(text: string, variables: Readonly<Record<string, PromptVariableValue>>, where: string): string {
  return text.replace(PLACEHOLDER, (_match, name: string) => {
    const value = variables[name]!;
    if (typeof value === 'string') return value;
    if (value.type === 'input_text') return value.text;
    throw new RenderFailure({
      code: 'invalid_prompt_variable',
      variable: name,
      message: `Prompt variable '${name}' is an ${value.type} part: it can only fill a content part whose whole text is {{${name}}}, not text in ${where}.`,
    });
  });
}

/** A content part whose whole text is one placeholder takes the variable's part as it is. */
function renderPart(part: Record<string, unknown>, variables: Readonly<Record<string, PromptVariableValue>>, where: string): Record<string, unknown> {
  if (typeof part.text !== 'string') return part;
  const whole = part.type === 'input_text' ? WHOLE_PLACEHOLDER.exec(part.text) : null;
  if (whole) {
    const value = variables[whole[1]!]!;
    if (typeof value !== 'string') return { ...value };
  }
  return { ...part, text: substitute(part.text, variables, where) };
}

function renderItem(item: Record<string, unknown>, index: number, variables: Readonly<Record<string, PromptVariableValue>>): Record<string, unknown> {
  const where = `input[${index}]`;
  const content = item.content;
  if (typeof content === 'string') {
    const whole = WHOLE_PLACEHOLDER.exec(content);
    const value = whole ? variables[whole[1]!]! : undefined;
    if (value !== undefined && typeof value !== 'string') return { ...item, content: [{ ...value }] };
    return { ...item, content: substitute(content, variables, where) };
  }
  if (Array.isArray(content)) return { ...item, content: (content as Record<string, unknown>[]).map((part) => renderPart(part, variables, where)) };
  return item;
}

/**
 * Render a template with a job's variables: every placeholder must have a value and every value
 * a placeholder. The result is the template's settings with `instructions` and `input` rendered;
 * `input` is always an array (see the design note).
 */
export function renderPromptTemplate(
  template: PromptTemplate,
  variables: Readonly<Record<string, PromptVariableValue>> = {},
): PromptResult<Record<string, unknown>, PromptRenderError> {
  const used = extractPromptVariables(template);
  for (const name of used) {
    if (!Object.hasOwn(variables, name)) {
      return { ok: false, error: { code: 'missing_prompt_variable', variable: name, message: `Missing prompt variable '${name}': the prompt uses {{${name}}}.` } };
    }
  }
  for (const name of Object.keys(variables)) {
    if (!used.includes(name)) {
      const known = used.length ? `it uses ${used.map((n) => `'${n}'`).join(', ')}` : 'it has no variables';
      return { ok: false, error: { code: 'unknown_prompt_variable', variable: name, message: `Unknown prompt variable '${name}': ${known}.` } };
    }
  }
  try {
    const { instructions, input, ...settings } = template;
    const rendered: Record<string, unknown> = { ...settings };
    if (instructions !== undefined) rendered.instructions = substitute(instructions, variables, 'instructions');
    if (typeof input === 'string') rendered.input = [renderItem({ role: 'user', content: input }, 0, variables)];
    else if (Array.isArray(input)) rendered.input = input.map((item, i) => renderItem(item, i, variables));
    return { ok: true, value: rendered };
  } catch (err) {
    if (err instanceof RenderFailure) return { ok: false, error: err.error };
    throw err;
  }
}

/**
 * The request a job sends: the rendered template's settings overridden by the job's own
 * parameters, the job's `input` after the template's, `prompt` removed (it was rendered here) and
 * the version's cache key unless the job gives its own.
 */
export function composePromptRequest(rendered: Record<string, unknown>, params: Record<string, unknown>, cacheKey: string): Record<string, unknown> {
  const { prompt: _rendered, input: ownInput, ...own } = params;
  const out: Record<string, unknown> = { ...rendered };
  for (const [key, value] of Object.entries(own)) if (value !== undefined) out[key] = value;
  const templateInput = Array.isArray(rendered.input) ? (rendered.input as unknown[]) : [];
  const jobInput = ownInput === undefined ? [] : typeof ownInput === 'string' ? [{ role: 'user', content: ownInput }] : (ownInput as unknown[]);
  if (templateInput.length + jobInput.length > 0) out.input = [...templateInput, ...jobInput];
  else delete out.input;
  if (out.prompt_cache_key === undefined) out.prompt_cache_key = cacheKey;
  return out;
}

/** The `prompt_cache_key` jobs of one prompt version share: short, deterministic, distinct per version. */
export function promptCacheKey(promptId: string, version: number): string {
  return `${promptId}:v${version}`;
}

/**
 * Characters of a version's "instructions + serialized input" (what the cache prefix is made of)
 * before its first placeholder: the part every job of the version shares. The whole length when
 * the template has no variables.
 */
export function staticPrefixChars(template: PromptTemplate): number {
  const input = template.input;
  const text = (template.instructions ?? '') + (input === undefined ? '' : JSON.stringify(typeof input === 'string' ? [{ role: 'user', content: input }] : input));
  PLACEHOLDER.lastIndex = 0;
  const first = PLACEHOLDER.exec(text);
  PLACEHOLDER.lastIndex = 0;
  return first ? first.index : text.length;
}

/** A traffic split is usable when its versions exist, are distinct, and some weight is positive. */
export function checkPromptTraffic(traffic: readonly PromptTrafficSplit[], latestVersion: number): PromptResult<PromptTrafficSplit[], { index: number; message: string }> {
  const seen = new Set<number>();
  let total = 0;
  for (const [index, split] of traffic.entries()) {
    if (!Number.isInteger(split.version) || split.version < 1 || split.version > latestVersion) {
      return { ok: false, error: { index, message: `version ${split.version} does not exist (this prompt has versions 1 to ${latestVersion})` } };
    }
    if (seen.has(split.version)) return { ok: false, error: { index, message: `version ${split.version} is listed twice` } };
    if (!Number.isFinite(split.weight) || split.weight < 0) return { ok: false, error: { index, message: 'weights are non-negative numbers' } };
    seen.add(split.version);
    total += split.weight;
  }
  if (!(total > 0)) return { ok: false, error: { index: 0, message: 'at least one weight must be positive' } };
  return { ok: true, value: traffic.map(({ version, weight }) => ({ version, weight })) };
}

/**
 * The version a job without an explicit version runs, given `random` uniform in [0, 1): version v
 * is chosen with probability weight(v) / total weight. Expects a split `checkPromptTraffic` accepted.
 */
export function choosePromptVersion(traffic: readonly PromptTrafficSplit[], random: number): number {
  const total = traffic.reduce((sum, s) => sum + s.weight, 0);
  const target = Math.min(Math.max(random, 0), 1) * total;
  let cumulative = 0;
  let last = traffic[0]!.version;
  for (const split of traffic) {
    if (split.weight <= 0) continue;
    cumulative += split.weight;
    last = split.version;
    if (target < cumulative) return split.version;
  }
  return last;
}
