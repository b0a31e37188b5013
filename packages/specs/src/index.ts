/**
 * The external contracts Longhaul is built and tested against, kept inside the repository (see
 * README.md here for each file's source, version and licence). The files sit at the package root,
 * one level above this module, so the same `../` resolution holds whether this runs from `src/`
 * or from a compiled `dist/` beside it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const SPEC_FILES = [
  'responses-subset.json',
  'response-stream-events.json',
  'webhooks-subset.json',
  'standard-webhooks-vectors.json',
  'standard-webhooks-vectors.meta.json',
  'ssrf-cases.json',
  'standard-webhooks.md',
] as const;
export type SpecFile = (typeof SPEC_FILES)[number];

/** Absolute path of a spec file in this package. */
export function specPath(file: SpecFile): string {
  return fileURLToPath(new URL(`../${file}`, import.meta.url));
}

/** A JSON spec file, parsed. The caller states the shape it relies on. */
export function readSpecJson<T = unknown>(file: Extract<SpecFile, `${string}.json`>): T {
  return JSON.parse(readFileSync(specPath(file), 'utf8')) as T;
}
