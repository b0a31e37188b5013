/**
 * What a tenant API key may do: its scopes, and the scope each /v1 request needs.
 *
 * Design note: a scope is `*` (everything, including resources added later) or
 * `<resource>:read` / `<resource>:write`; `write` implies `read` of the same resource, and
 * `read_only` is a preset that `parseScopes` expands to every `:read` when a key is made (a key
 * never gains power because a resource was added after it was made; only `*` does). What a
 * request needs comes from one table of path prefixes, matched on whole segments and without
 * case, as Express mounts its routers. A path that no entry claims needs `*`: a route added
 * without an entry here is closed to restricted keys instead of open to all of them.
 */

/** Each resource, the /v1 path prefixes it covers, and whether it has a `:write` scope. */
const RESOURCES = {
  jobs: { prefixes: ['/v1/jobs', '/v1/responses', '/v1/cache', '/v1/batches'], writable: true },
  prompts: { prefixes: ['/v1/prompts'], writable: true },
  pipelines: { prefixes: ['/v1/pipelines', '/v1/runs'], writable: true },
  files: { prefixes: ['/v1/files', '/v1/conversations'], writable: true },
  evals: { prefixes: ['/v1/datasets', '/v1/evals'], writable: true },
  webhooks: { prefixes: ['/v1/webhook-endpoints', '/v1/deliveries', '/v1/callback-secret'], writable: true },
  usage: { prefixes: ['/v1/usage'], writable: false },
  keys: { prefixes: ['/v1/api-keys'], writable: true },
} as const satisfies Record<string, { prefixes: readonly string[]; writable: boolean }>;

type Resource = keyof typeof RESOURCES;

/**
 * Prefixes whose every method needs write. GET /v1/callback-secret answers the secret that signs
 * callbacks: whoever reads it can sign callbacks the tenant's receivers trust, so it is not a read.
 */
const WRITE_ONLY_PREFIXES: readonly string[] = ['/v1/callback-secret'];

const ALL = '*';
const READ_ONLY = 'read_only';

/** Every scope a key can hold, in the order keys list them. */
const SCOPES: readonly string[] = [
  ALL,
  ...(Object.entries(RESOURCES) as Array<[Resource, (typeof RESOURCES)[Resource]]>).flatMap(([resource, r]) =>
    r.writable ? [`${resource}:read`, `${resource}:write`] : [`${resource}:read`],
  ),
];
const READ_SCOPES = SCOPES.filter((s) => s.endsWith(':read'));

/** A held scope and what it implies: write implies read of its resource, read_only every read. */
function implied(scope: string): string[] {
  if (scope === READ_ONLY) return READ_SCOPES;
  if (scope.endsWith(':write')) return [scope, `${scope.slice(0, -':write'.length)}:read`];
  return [scope];
}

/**
 * The scopes a key asks for, checked and in canonical form: `*` alone if it is there, `read_only`
 * expanded, duplicates and reads implied by a write dropped, in SCOPES order. An unknown scope is
 * refused with its index; so is an empty list (a key that can do nothing).
 */
export function parseScopes(requested: readonly string[]): { ok: true; scopes: string[] } | { ok: false; index: number | null; message: string } {
  if (requested.length === 0) return { ok: false, index: null, message: `A key needs at least one scope (${ALL} for everything).` };
  const bad = requested.findIndex((s) => s !== READ_ONLY && !SCOPES.includes(s));
  if (bad >= 0) {
    return { ok: false, index: bad, message: `Unknown scope '${requested[bad]}'; use ${ALL}, ${READ_ONLY}, or one of ${SCOPES.slice(1).join(', ')}.` };
  }
  if (requested.includes(ALL)) return { ok: true, scopes: [ALL] };
  const wanted = new Set(requested.flatMap((s) => (s === READ_ONLY ? READ_SCOPES : [s])));
  return { ok: true, scopes: SCOPES.filter((s) => wanted.has(s) && !(s.endsWith(':read') && wanted.has(`${s.slice(0, -':read'.length)}:write`))) };
}

/**
 * Whether a key holding `held` may do everything `requested` names: `*` holds anything, and only
 * `*` holds `*`. Used to refuse a key that would make a key more powerful than itself.
 */
export function isSubset(requested: readonly string[], held: readonly string[]): boolean {
  if (held.includes(ALL)) return true;
  const holds = new Set(held.flatMap(implied));
  return requested.every((scope) => implied(scope).every((s) => holds.has(s)));
}

/** `/v1/jobs` claims `/v1/jobs` and `/v1/jobs/…`, not `/v1/jobsx`. */
const claims = (prefix: string, path: string) => path === prefix || path.startsWith(`${prefix}/`);

/**
 * The scope a request needs: `<resource>:read` for GET and HEAD, `<resource>:write` for any other
 * method (a resource without writes needs its read whatever the method), `*` for a path no
 * resource claims. `path` is the request's path without its query.
 */
export function requiredScope(method: string, path: string): string {
  const p = path.toLowerCase();
  for (const [resource, r] of Object.entries(RESOURCES) as Array<[Resource, (typeof RESOURCES)[Resource]]>) {
    if (!r.prefixes.some((prefix) => claims(prefix, p))) continue;
    if (!r.writable) return `${resource}:read`;
    const reads = ['GET', 'HEAD'].includes(method.toUpperCase()) && !WRITE_ONLY_PREFIXES.some((prefix) => claims(prefix, p));
    return `${resource}:${reads ? 'read' : 'write'}`;
  }
  return ALL;
}
