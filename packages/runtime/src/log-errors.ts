/**
 * What an error may put in a log line.
 *
 * pino's standard serializer copies every enumerable property of an error and appends the messages
 * of its causes, so a failed drizzle query (`DrizzleQueryError`: `query`, `params`, a message
 * holding both, and the pg error with its `detail` as `cause`) wrote every parameter of the
 * statement: a new endpoint's signing secret, or a 2 MB input three times over (message, stack
 * and params) on one line. Here an error keeps what identifies it and carries no request data:
 *
 * - its type, `code`, message (at most MESSAGE_LIMIT characters; a failed query's message, which
 *   is the statement and its parameters, becomes "Failed query") and stack frames (the stack's
 *   first line repeats the message, so the stack is rebuilt from the safe message and at most
 *   MAX_FRAMES frames);
 * - other properties only when they are small scalars (numbers, booleans, strings up to
 *   FIELD_LIMIT characters): Postgres's `code`, `severity`, `routine`, `table`, `column`,
 *   `constraint`, `schema`, `dataType`, Node's `errno`/`syscall`/`address`/`port`, our `status`
 *   and `param`;
 * - never `params`, `parameters`, `query`, `sql`, `values`, `detail` (Postgres puts key values and
 *   whole rows there: "Key (email)=(…) already exists", "Failing row contains (…)"), `where`
 *   (it quotes JSON input), `internalQuery`, `body`, `data`, `payload`, `headers`, `args`,
 *   `command`, `config`, `request`, `response`, nor any object or long string: those are listed by
 *   name in `omitted`, so a reader knows something was left out;
 * - its cause chain (and an AggregateError's errors), each treated the same way, up to MAX_CAUSES
 *   deep.
 */

/** Longest message kept; the rest is replaced by a count. */
export const MESSAGE_LIMIT = 2_048;
/** Longest string property kept; a longer one is omitted. */
const FIELD_LIMIT = 256;
/** Stack frames kept for the error itself, and for each cause. */
const MAX_FRAMES = 12;
const MAX_CAUSE_FRAMES = 6;
/** Causes followed. */
const MAX_CAUSES = 5;
const MAX_AGGREGATED = 5;
const MAX_OMITTED = 20;

/** Properties whose values are request data, whatever their size. Compared in lower case. */
const NEVER_LOGGED = new Set([
  'params',
  'parameters',
  'query',
  'sql',
  'text',
  'values',
  'value',
  'detail',
  'where',
  'internalquery',
  'body',
  'rawbody',
  'data',
  'payload',
  'input',
  'headers',
  'args',
  'command',
  'config',
  'request',
  'response',
  'secret',
  'secrets',
  'token',
  'password',
  'authorization',
  'apikey',
  'api_key',
  'cookie',
]);
/** Handled on their own. */
const STRUCTURAL = new Set(['name', 'message', 'stack', 'cause', 'errors', 'raw']);

/** Marks what this module produced, so serializing it again (pino-http wraps serializers) is a no-op. */
const SERIALIZED = Symbol('longhaul.serializedError');

interface SerializedError {
  type: string;
  name?: string;
  message: string;
  stack?: string;
  code?: string | number;
  cause?: SerializedError | string;
  aggregateErrors?: SerializedError[];
  /** Properties left out, by name. */
  omitted?: string[];
  [field: string]: unknown;
}

type ErrorLike = { message: string; name?: unknown; stack?: unknown; cause?: unknown; errors?: unknown; [key: string]: unknown };

function isErrorLike(value: unknown): value is ErrorLike {
  return typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string';
}

/** `text` cut to `limit` characters, saying how much was cut. */
export function capText(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit)}… [${text.length - limit} more characters]`;
}

/** drizzle's DrizzleQueryError: `Failed query: <statement>\nparams: <every parameter>`. */
function isFailedQuery(err: ErrorLike): boolean {
  return err.message.startsWith('Failed query: ') && ('params' in err || 'query' in err);
}

/** The message an error may show in a log line (also pino's `msg` when none was given). */
export function safeErrorMessage(err: unknown): string {
  if (!isErrorLike(err)) return typeof err === 'string' ? capText(err, MESSAGE_LIMIT) : String(err);
  if ((err as { [SERIALIZED]?: true })[SERIALIZED]) return err.message;
  if (isFailedQuery(err)) return 'Failed query (statement and parameters not logged)';
  return capText(err.message, MESSAGE_LIMIT);
}

function typeOf(err: ErrorLike): string {
  const ctor = (err as { constructor?: { name?: unknown } }).constructor;
  if (typeof ctor === 'function' && typeof ctor.name === 'string' && ctor.name && ctor.name !== 'Object') return ctor.name;
  return typeof err.name === 'string' && err.name ? err.name : 'Error';
}

/** The stack's frames under a first line built from the safe message: the original first lines repeat the raw message. */
function safeStack(err: ErrorLike, header: string, maxFrames: number): string | undefined {
  if (typeof err.stack !== 'string') return undefined;
  const frames: string[] = [];
  for (const line of err.stack.split('\n')) {
    if (!/^\s+at /.test(line)) continue;
    if (frames.length === maxFrames) {
      frames.push('    …');
      break;
    }
    frames.push(capText(line, FIELD_LIMIT * 2));
  }
  return frames.length === 0 ? header : `${header}\n${frames.join('\n')}`;
}

function scalar(value: unknown): string | number | boolean | null | undefined {
  switch (typeof value) {
    case 'number':
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'string':
      return value.length <= FIELD_LIMIT ? value : undefined;
    default:
      return value === null ? null : undefined;
  }
}

function serialize(err: ErrorLike, depth: number, seen: Set<object>): SerializedError {
  seen.add(err);
  const type = typeOf(err);
  const message = safeErrorMessage(err);
  const out: SerializedError = { type, message };
  // pg's DatabaseError is named 'error'; plain 'Error' says nothing the type does not.
  if (typeof err.name === 'string' && err.name !== type && err.name !== 'Error' && err.name.length <= FIELD_LIMIT) out.name = err.name;
  const omitted: string[] = [];
  for (const key of Object.keys(err)) {
    if (STRUCTURAL.has(key)) continue;
    const value = err[key];
    if (value === undefined) continue;
    const kept = NEVER_LOGGED.has(key.toLowerCase()) ? undefined : scalar(value);
    if (kept === undefined) {
      if (omitted.length < MAX_OMITTED) omitted.push(capText(key, 64));
      continue;
    }
    out[key] = kept;
  }
  const stack = safeStack(err, `${type}: ${message}`, depth === 0 ? MAX_FRAMES : MAX_CAUSE_FRAMES);
  if (stack !== undefined) out.stack = stack;
  const cause = err.cause;
  if (cause !== undefined && cause !== null) {
    if (isErrorLike(cause)) {
      if (seen.has(cause)) out.cause = '[circular]';
      else if (depth >= MAX_CAUSES) out.cause = '[more causes not logged]';
      else out.cause = serialize(cause, depth + 1, seen);
    } else if (typeof cause === 'string') {
      out.cause = capText(cause, FIELD_LIMIT);
    } else {
      omitted.push('cause');
    }
  }
  if (Array.isArray(err.errors) && depth < MAX_CAUSES) {
    out.aggregateErrors = err.errors
      .slice(0, MAX_AGGREGATED)
      .filter((e): e is ErrorLike => isErrorLike(e) && !seen.has(e))
      .map((e) => serialize(e, depth + 1, seen));
  }
  if (omitted.length > 0) out.omitted = omitted;
  Object.defineProperty(out, SERIALIZED, { value: true });
  return out;
}

/**
 * pino serializer for errors (`err`, `error`, `cause`): see the module comment for what is kept.
 * Accepts an error, pino's own serialization of one (pino-http runs the standard serializer
 * first; its `raw` is the error) or anything else logged under an error key.
 */
export function serializeError(value: unknown): unknown {
  if (typeof value === 'string') return capText(value, MESSAGE_LIMIT);
  if (typeof value !== 'object' || value === null) return value;
  if ((value as { [SERIALIZED]?: true })[SERIALIZED]) return value;
  const raw = (value as { raw?: unknown }).raw;
  if (!(value instanceof Error) && isErrorLike(raw)) return serializeError(raw);
  if (!isErrorLike(value)) {
    const ctor = (value as { constructor?: { name?: unknown } }).constructor;
    const type = typeof ctor?.name === 'string' && ctor.name ? capText(ctor.name, 64) : 'Object';
    return { type, message: '[not an error; its properties are not logged]' };
  }
  return serialize(value, 0, new Set());
}
