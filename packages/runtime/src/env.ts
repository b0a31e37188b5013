/**
 * Reading an app's environment. Each app declares its variables once, as a zod schema in its
 * `src/env.ts`, and parses them with `parseEnv`:
 *
 * - a variable set to the empty string (or only blanks), as `DATABASE_URL=` in a compose file or
 *   an `.env` leaves it, counts as unset, so its default applies (or, when it is required, it is
 *   reported missing); `z.coerce.number()` would otherwise read `PORT=` as 0 and `z.url()` refuse it;
 * - every problem becomes `NAME: message`, all on one line, in an `InvalidConfigError`;
 * - an entrypoint wraps its `loadEnv()` in `loadConfigOrExit`, which prints that line and exits
 *   with status 1 instead of dying with a stack trace.
 *
 * The schema is only used through `safeParse`, so this package needs no zod of its own. Values
 * are never echoed: a URL may hold a password.
 */

/** What parseEnv needs of a schema (a zod schema has it). */
export interface EnvSchema<T> {
  safeParse(input: unknown): { success: true; data: T } | { success: false; error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> } };
}

export class InvalidConfigError extends Error {
  /** `NAME: message`, one per problem. */
  readonly problems: readonly string[];
  constructor(what: string, problems: readonly string[]) {
    super(`invalid ${what} configuration: ${problems.join('; ')}`);
    this.name = 'InvalidConfigError';
    this.problems = problems;
  }
}

/** `env` without the variables whose value is empty or blank. */
export function withoutEmptyValues(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined && value.trim() !== '') out[name] = value;
  return out;
}

/**
 * Parse `env` with `schema`, empty values counting as unset. Throws InvalidConfigError naming
 * every offending variable; `what` names the configuration in its message ("API", "worker").
 */
export function parseEnv<T>(schema: EnvSchema<T>, env: Readonly<Record<string, string | undefined>>, what: string): T {
  const parsed = schema.safeParse(withoutEmptyValues(env));
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const name = issue.path.map(String).join('.') || 'environment';
    return `${name}: ${issue.message.charAt(0).toLowerCase()}${issue.message.slice(1)}`;
  });
  throw new InvalidConfigError(what, problems);
}

/**
 * `load()`, or, when the configuration is invalid, its one-line message on stderr and exit 1.
 * Any other error is rethrown.
 */
export function loadConfigOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (!(error instanceof InvalidConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}

/**
 * Run a start-up step (migrations, the bootstrap key) that needs Postgres or Redis. If it fails
 * (the database unreachable, a migration refused), log one line naming the step with `code` and the
 * error in its safe form (no query parameters: see log-errors.ts) and exit 1, instead of an
 * unhandled rejection's stack trace on stderr.
 */
export async function startupStepOrExit<T>(
  logger: { fatal(fields: object, message: string): void; flush?(): void },
  step: { code: string; message: string },
  run: () => Promise<T>,
): Promise<T> {
  try {
    return await run();
  } catch (err) {
    logger.fatal({ err, code: step.code }, step.message);
    logger.flush?.();
    process.exit(1);
  }
}
