/**
 * Which provider resources a request body names, and whether the tenant may send them.
 *
 * Tenants share one provider account, so the provider serves any file, vector store, container or
 * skill of the account to any request: Longhaul is the only thing between one tenant and another
 * tenant's documents. Everything that goes to the provider from a tenant's body (a job's create
 * parameters, a conversation's seed items) is walked here before it is sent.
 *
 * The walk is by key, at any depth, rather than by the item and tool shapes Longhaul knows: the
 * job schema passes tool definitions, tool-call items and their outputs through loosely, and the
 * provider keeps adding shapes, so a rule per shape would miss the next one. The rules:
 *
 * - `file_id` (a string) and `file_ids` (an array of strings) name files: each must be a live file
 *   the tenant uploaded through Longhaul, else 404 `file_not_found` naming its exact path. A
 *   `file_id` that is neither a string nor null is refused, not skipped.
 * - `vector_store_ids` (non-empty), `container` and `container_id` given as an id, and `skill_id`
 *   name account resources Longhaul does not track per tenant: 400 `unsupported_parameter`.
 * - Not walked, because the caller chooses the names there and nothing in them is resolved by the
 *   provider: function tools' `parameters` and a `json_schema` format's `schema` (JSON Schemas),
 *   and the keys of `variables`, `headers` and `metadata` records (their object values are walked:
 *   a prompt variable can be a file part). Strings are never parsed (a function call's
 *   `arguments` is text to the provider).
 *
 * Bodies are at most MAX_NESTING deep (request-input.ts) before they get here, so the recursion is
 * bounded.
 */
import { NotFoundError, ValidationError } from '@longhaul/core';
import { type Database, getFilesForTenant } from '@longhaul/db';

/** Account resources a body can name that Longhaul does not record per tenant. */
export type UntrackedResource = 'vector_store' | 'container' | 'skill';

export type FileReference =
  | { kind: 'file'; id: string; path: string }
  | { kind: 'untracked'; resource: UntrackedResource; path: string }
  /** A `file_id` / `file_ids` that is not a string (or list of them): refused, never guessed at. */
  | { kind: 'invalid'; path: string };

type Json = Record<string, unknown>;

/** Records whose keys the caller names (variables, headers, metadata): only their values are walked. */
const NAMED_RECORDS = new Set(['variables', 'headers', 'metadata']);

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const keyPath = (path: string, key: string) => (path ? `${path}.${key}` : key);

/** JSON Schemas inside a body: data the provider hands the model, not references it resolves. */
function isSchema(owner: Json, key: string): boolean {
  return (key === 'parameters' && owner.type === 'function') || (key === 'schema' && owner.type === 'json_schema');
}

/**
 * Every file, vector store, container and skill `body` names, in request order, with its path as
 * an error's `param` (`input[1].output[0].file_id`). `root` names where `body` sits in the
 * request (`items` for a conversation's seed items); the default is the request itself.
 */
export function collectFileReferences(body: unknown, root = ''): FileReference[] {
  const out: FileReference[] = [];
  walk(body, root, out);
  return out;
}

function walk(value: unknown, path: string, out: FileReference[]): void {
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      walk(item, `${path}[${i}]`, out);
    });
    return;
  }
  if (!isObject(value)) return;
  for (const [key, child] of Object.entries(value)) {
    const at = keyPath(path, key);
    if (isSchema(value, key)) continue;
    if (NAMED_RECORDS.has(key) && isObject(child)) {
      for (const [name, entry] of Object.entries(child)) if (typeof entry === 'object') walk(entry, keyPath(at, name), out);
      continue;
    }
    switch (key) {
      case 'file_id':
        if (typeof child === 'string') out.push({ kind: 'file', id: child, path: at });
        else if (child !== null && child !== undefined) out.push({ kind: 'invalid', path: at });
        break;
      case 'file_ids':
        if (Array.isArray(child)) {
          child.forEach((id, i) => {
            out.push(typeof id === 'string' ? { kind: 'file', id, path: `${at}[${i}]` } : { kind: 'invalid', path: `${at}[${i}]` });
          });
        } else if (child !== null && child !== undefined) out.push({ kind: 'invalid', path: at });
        break;
      case 'vector_store_ids':
        if (child !== null && child !== undefined && !(Array.isArray(child) && child.length === 0)) out.push({ kind: 'untracked', resource: 'vector_store', path: at });
        break;
      case 'container':
      case 'container_id':
        if (typeof child === 'string') out.push({ kind: 'untracked', resource: 'container', path: at });
        else walk(child, at, out);
        break;
      case 'skill_id':
        if (typeof child === 'string') out.push({ kind: 'untracked', resource: 'skill', path: at });
        break;
      default:
        walk(child, at, out);
    }
  }
}

const WHY = 'Tenants of this Longhaul share one provider account, and Longhaul does not record which tenant';

const UNTRACKED: Record<UntrackedResource, (path: string) => string> = {
  vector_store: (path) =>
    `${path}: vector stores are not supported. ${WHY} a vector store belongs to, so a request cannot name one. Give the documents as input_file parts, or as a code_interpreter container's file_ids, with files uploaded through POST /v1/files.`,
  container: (path) =>
    `${path}: a container cannot be named by id. ${WHY} a container belongs to. Use {"type": "auto", "file_ids": [...]} with files uploaded through POST /v1/files.`,
  skill: (path) => `${path}: skills cannot be named by id. ${WHY} a skill belongs to. Give the skill inline instead.`,
};

/**
 * Refuse `references` the tenant may not send, in one query for all the files: the first
 * untracked resource or malformed id (400, no lookup needed), else the first file that is not
 * one of the tenant's live files (404 `file_not_found`, as for a file the tenant never had).
 * Returns the size of each referenced file, by id.
 */
export async function checkFileReferences(db: Database, tenantId: string, references: readonly FileReference[]): Promise<Map<string, number>> {
  const fileIds = new Set<string>();
  for (const ref of references) {
    if (ref.kind === 'untracked') throw new ValidationError(UNTRACKED[ref.resource](ref.path), ref.path, 'unsupported_parameter');
    if (ref.kind === 'invalid') throw new ValidationError(`${ref.path} must be a file id (a string, e.g. "file-abc123").`, ref.path, 'invalid_value');
    fileIds.add(ref.id);
  }
  const bytes = new Map<string, number>();
  if (fileIds.size === 0) return bytes;
  for (const row of await getFilesForTenant(db, tenantId, [...fileIds])) bytes.set(row.id, row.bytes);
  for (const ref of references) {
    if (ref.kind === 'file' && !bytes.has(ref.id)) throw new NotFoundError(`No file with id '${ref.id}'. Upload it with POST /v1/files first.`, ref.path, 'file_not_found');
  }
  return bytes;
}
