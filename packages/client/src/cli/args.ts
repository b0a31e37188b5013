/** The CLI's argument helpers: a mistake in the command line is a UsageError (exit code 2). */
import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** `--input @question.txt` reads the file, `--input -` reads stdin, anything else is the text itself. */
export async function readInput(value: string): Promise<string> {
  if (value === '-') return text(process.stdin);
  if (!value.startsWith('@')) return value;
  try {
    return await readFile(value.slice(1), 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --input ${value}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** `--metadata k=v` (repeatable) → `{k: "v"}`. */
export function parsePairs(flag: string, pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--${flag} expects key=value, got '${pair}'`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** A whole number flag, or undefined when absent. */
export function parseCount(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${flag} expects a whole number > 0, got '${value}'`);
  return n;
}

/** The single positional id a command takes. */
export function onlyId(command: string, positionals: string[]): string {
  const [id, ...rest] = positionals;
  if (!id || rest.length > 0) throw new UsageError(`usage: longhaul ${command} <id>`);
  return id;
}
