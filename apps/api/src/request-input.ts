/**
 * What a request may carry before any of it reaches Postgres: every router parses its path ids,
 * query and body through this module, so a malformed id, a NUL byte or broken Unicode is a 400
 * naming the parameter instead of a database error (a 500).
 *
 * Postgres refuses U+0000 in `text` and `jsonb`, and refuses `jsonb` holding an unpaired UTF-16
 * surrogate (`"\ud800"`, which JSON allows); both are checked on every string of a body or query,
 * keys included, before the route's zod schema runs. Ids Longhaul mints have a fixed shape (a type
 * prefix and base-62 characters, see `newId` in @longhaul/db); ids the provider mints (files,
 * conversations, responses) are only held to a safe alphabet and length, since their shape is
 * the provider's to change. A well-formed id that names nothing stays a 404.
 */
import type { Router } from 'express';
import { z } from 'zod';
import { ID_PREFIX, ValidationError, idPattern } from '@longhaul/core';
import { fromZodError, pathToParam } from './errors.ts';

const longhaulId = (prefix: (typeof ID_PREFIX)[keyof typeof ID_PREFIX], what: string) => z.string().regex(idPattern(prefix), `must be ${what} id (${prefix}_…)`);
/** OpenAI's ids: `file-…`, `conv_…`, `resp_…`, `msg_…`. */
const providerId = (what: string) => z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/, `must be ${what} id (up to 128 letters, digits, '_' and '-')`);

/** The id of each kind of object, as it may appear in a path, a query or a body. */
export const ids = {
  job: longhaulId(ID_PREFIX.job, 'a job'),
  prompt: longhaulId(ID_PREFIX.prompt, 'a prompt'),
  dataset: longhaulId(ID_PREFIX.dataset, 'a dataset'),
  eval: longhaulId(ID_PREFIX.eval, 'an eval'),
  pipeline: longhaulId(ID_PREFIX.pipeline, 'a pipeline'),
  run: longhaulId(ID_PREFIX.run, 'a pipeline run'),
  webhookEndpoint: longhaulId(ID_PREFIX.webhookEndpoint, 'a webhook endpoint'),
  /** `dlv_` + 32 hex characters (minted in SQL), within the general shape. */
  delivery: longhaulId(ID_PREFIX.delivery, 'a delivery'),
  tenant: longhaulId(ID_PREFIX.tenant, 'a tenant'),
  apiKey: longhaulId(ID_PREFIX.apiKey, 'an API key'),
  file: providerId('a file'),
  conversation: providerId('a conversation'),
  conversationItem: providerId('an item'),
  response: providerId('a response'),
} as const;

const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `text` cannot be stored as Postgres text or jsonb, or null when it can. */
export function textProblem(text: string): string | null {
  if (text.includes('\u0000')) return 'must not contain NUL (\\u0000) characters';
  if (UNPAIRED_SURROGATE.test(text)) return 'must be valid Unicode (it holds an unpaired surrogate)';
  return null;
}

/** `z.string()` refinement: text Postgres can store. */
export const storableText = (schema: z.ZodString = z.string()) =>
  schema.superRefine((text, ctx) => {
    const problem = textProblem(text);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** Deeper than this a body is refused: deeper still, serialising it for Postgres would overflow the stack. */
export const MAX_NESTING = 64;

/** What is wrong with a request value, and where; `code` defaults to `invalid_characters`. */
export interface InputProblem {
  path: (string | number)[];
  problem: string;
  code?: string;
}

/** A container at `path` nested past MAX_NESTING (json-depth.ts finds these in raw JSON). */
export const tooDeep = (path: (string | number)[]): InputProblem => ({ path, problem: `is nested deeper than ${MAX_NESTING} levels`, code: 'nesting_too_deep' });

/** Longest `param` named in an error: a path through long keys can be any length. */
const PARAM_LIMIT = 512;

/** The ValidationError for `found`, its param cut to PARAM_LIMIT characters. */
export function inputProblemError(found: InputProblem, prefix: (string | number)[] = []): ValidationError {
  const full = pathToParam([...prefix, ...found.path]);
  const param = full.length > PARAM_LIMIT ? `${full.slice(0, PARAM_LIMIT)}…` : full || null;
  return new ValidationError(`${param ? `Invalid '${param}': ` : 'The request body '}${found.problem}.`, param, found.code ?? 'invalid_characters');
}

/**
 * The first string (value or key) in `value` that Postgres could not store, or a nesting deeper
 * than MAX_NESTING, with where it is. Iterative, so no body can exhaust the stack here.
 */
export function findUnstorableText(value: unknown): InputProblem | null {
  const pending: Array<{ value: unknown; path: (string | number)[] }> = [{ value, path: [] }];
  while (pending.length > 0) {
    const { value: current, path } = pending.pop()!;
    if (typeof current === 'string') {
      const problem = textProblem(current);
      if (problem) return { path, problem };
      continue;
    }
    if (typeof current !== 'object' || current === null) continue;
    if (path.length >= MAX_NESTING) return tooDeep(path);
    // Pushed in reverse so the first offending field, in document order, is reported.
    const entries: Array<[string | number, unknown]> = Array.isArray(current) ? current.map((item, i) => [i, item]) : Object.entries(current);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, item] = entries[i]!;
      if (typeof key === 'string') {
        const problem = textProblem(key);
        if (problem) return { path: [...path, key], problem: `has a key that ${problem}` };
      }
      pending.push({ value: item, path: [...path, key] });
    }
  }
  return null;
}

/** A ValidationError for the first unstorable string of `value`, or null. */
export function unstorableTextError(value: unknown, prefix: (string | number)[] = []): ValidationError | null {
  const found = findUnstorableText(value);
  return found ? inputProblemError(found, prefix) : null;
}

/**
 * Parse a request's query or body with `schema`, after refusing text Postgres cannot store.
 * Throws a ValidationError naming the parameter. `undefined`/`null` parse as `{}`.
 */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const input = value ?? {};
  const unstorable = unstorableTextError(input);
  if (unstorable) throw unstorable;
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw fromZodError(parsed.error, [], input);
  return parsed.data;
}

/**
 * Check path parameters of `router` before its handlers run: `{ id: ids.job }` refuses a
 * malformed `:id` on every route of the router with a 400 naming `id`.
 */
export function checkPathIds(router: Router, params: Record<string, z.ZodType<string>>): void {
  for (const [name, schema] of Object.entries(params)) {
    router.param(name, (_req, _res, next, value: unknown) => {
      const parsed = schema.safeParse(value);
      if (parsed.success) return next();
      const shown = typeof value === 'string' && value.length <= 80 && textProblem(value) === null ? `, got '${value}'` : '';
      next(new ValidationError(`Invalid '${name}': ${parsed.error.issues[0]?.message ?? 'malformed'}${shown}.`, name, 'invalid_id'));
    });
  }
}
