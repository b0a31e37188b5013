/**
 * The OpenAPI contract as a validator of answers (apps/api/src/openapi): an ajv validator compiled
 * from the document checks an answer's status is declared for its operation, its content type is
 * declared, and its JSON body is valid against the schema. test/harness.ts runs every answer
 * `stack.api()` gets through it, so every test that talks to the API is a contract test too;
 * test/openapi-contract.test.ts adds a tour of every operation and the callbacks' `webhooks`.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { buildOpenApiDocument, type OpenApiDocument } from '@longhaul/api/openapi';

/** One request made with `stack.api()` (test/harness.ts) and its answer. */
export interface ApiExchange {
  method: string;
  path: string;
  status: number;
  contentType: string | null;
  body: unknown;
}

export const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
export const document = buildOpenApiDocument();

/** `/v1/jobs/{id}` → a matcher; literal paths first, so `/rollout/pause` is not taken for a parameter. */
const templates = Object.keys(document.paths)
  .map((path) => ({ path, params: (path.match(/\{/g) ?? []).length, regex: new RegExp(`^${path.replace(/\{\w+\}/g, '[^/]+')}$`) }))
  .sort((a, b) => a.params - b.params);

export const pointer = (...parts: string[]) => `openapi#/${parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`;

/** Validates exchanges against the document; `problems` collects what does not match, `hits` what was exercised. */
export function createContract(doc: OpenApiDocument = document) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(doc as object, 'openapi');
  const compiled = new Map<string, ValidateFunction>();
  const validatorAt = (ref: string) => {
    let fn = compiled.get(ref);
    if (!fn) {
      fn = ajv.compile({ $ref: ref });
      compiled.set(ref, fn);
    }
    return fn;
  };
  const problems: string[] = [];
  const hits = new Set<string>();
  let checked = 0;

  function check(ex: ApiExchange): void {
    checked += 1;
    const method = ex.method.toLowerCase();
    const pathname = ex.path.split('?')[0]!;
    // The document is the /v1 API's; health, admin and the OpenAI webhook receiver are not in it.
    if (!pathname.startsWith('/v1/')) return;
    const label = `${ex.method} ${ex.path} → ${ex.status}`;
    const template = templates.find((t) => t.regex.test(pathname) && doc.paths[t.path]![method]);
    if (!template) {
      // An unknown route: a 404 (or the key check's 401/403, which comes first) in the error shape.
      if (![401, 403, 404].includes(ex.status)) problems.push(`${label}: undocumented route`);
      else validate(label, validatorAt(pointer('components', 'schemas', 'Error')), ex.body);
      return;
    }
    const operation = doc.paths[template.path]![method] as { operationId: string; responses: Record<string, { content?: Record<string, unknown> }> };
    hits.add(`${ex.method.toUpperCase()} ${template.path}`);
    const status = String(ex.status);
    const key = status in operation.responses ? status : ex.status >= 500 ? 'default' : null;
    if (!key) return void problems.push(`${label}: status ${status} not declared for ${operation.operationId}`);
    const content = operation.responses[key]!.content;
    if (!content) {
      if (ex.body !== '') problems.push(`${label}: a body where none is declared`);
      return;
    }
    const type = ex.contentType?.split(';')[0]?.trim() ?? '';
    if (!(type in content)) return void problems.push(`${label}: content type '${type}' not declared (${Object.keys(content).join(', ')})`);
    if (type !== 'application/json') return;
    validate(label, validatorAt(pointer('paths', template.path, method, 'responses', key, 'content', 'application/json', 'schema')), ex.body);
  }

  function validate(label: string, fn: ValidateFunction, body: unknown): void {
    if (fn(body)) return;
    const errors = (fn.errors ?? [])
      .slice(0, 5)
      .map((e) => `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
    problems.push(`${label}: ${errors.join('; ')}`);
  }

  /** A callback's body against the document's webhook. */
  function checkCallback(name: 'jobEvent' | 'runEvent', body: unknown): void {
    hits.add(`WEBHOOK ${name}`);
    validate(`callback ${name} ${(body as { type?: string }).type}`, validatorAt(pointer('webhooks', name, 'post', 'requestBody', 'content', 'application/json', 'schema')), body);
  }

  return { check, checkCallback, problems, hits, checked: () => checked };
}

let shared: ReturnType<typeof createContract> | undefined;

/** The answer checked against the document; a mismatch throws, naming it (the harness's default for every `stack.api()` call). */
export function assertContract(exchange: ApiExchange): void {
  shared ??= createContract();
  const before = shared.problems.length;
  shared.check(exchange);
  if (shared.problems.length > before) throw new Error(`OpenAPI contract: ${shared.problems.slice(before).join('\n')}`);
}
