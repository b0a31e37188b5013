/**
 * `buildOpenApiDocument()`: Longhaul's OpenAPI 3.1 document, made from the operation table
 * (./operations.ts) with zod's own JSON Schema output (draft 2020-12, which OpenAPI 3.1 schemas
 * are): request bodies and queries as the routes take them (`io: 'input'`: defaults optional,
 * coerced query numbers as numbers), answers as the routes build them (`io: 'output'`).
 *
 * zod puts named schemas (`.meta({ id })`) and recursive ones in `$defs` with refs to
 * `#/$defs/…`; inside an OpenAPI document those refs would resolve against the document root,
 * so every `$defs` entry is hoisted into `components.schemas` and its refs rewritten. Anonymous
 * entries (zod's `__schema0`) get the name of the schema they came from as a prefix.
 */
import { z } from 'zod';
import { type Answer, type Operation, OPERATIONS } from './operations.ts';
import * as S from './schemas.ts';

type JsonSchema = Record<string, unknown>;
export type OpenApiDocument = Record<string, unknown> & {
  openapi: string;
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes?: Record<string, unknown> };
};

/** Statuses every authenticated route may answer with the error shape. */
const COMMON_ERRORS: Record<number, string> = {
  400: 'Invalid request: `error.param` names the field',
  401: 'Missing, unknown, revoked or expired API key',
  403: "The API key's scopes do not allow this",
  404: "No such object (or another tenant's)",
  409: "Conflict with the object's state",
  413: 'Request body too large',
  415: 'Unsupported content encoding or charset',
  422: 'The Idempotency-Key was used with a different body',
  429: 'Rate limited or over a tenant limit (see Retry-After)',
  502: 'The provider failed',
  503: 'A dependency is unavailable; retry later (see Retry-After)',
};
const ALWAYS = [401, 403, 429, 503];

class Components {
  readonly schemas: Record<string, JsonSchema> = {};

  /** `schema` as an OpenAPI schema object, its `$defs` hoisted here. */
  add(schema: z.ZodType, io: 'input' | 'output', context: string): JsonSchema {
    const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any', reused: 'inline' }) as JsonSchema;
    const { $schema: _s, $defs, ...root } = json as JsonSchema & { $defs?: Record<string, JsonSchema> };
    const names = new Map<string, string>();
    for (const key of Object.keys($defs ?? {})) names.set(key, key.startsWith('__') ? `${context}${key.replace(/^_+schema/, '_')}` : key);
    const rewrite = (node: unknown): unknown => {
      if (Array.isArray(node)) return node.map(rewrite);
      if (!node || typeof node !== 'object') return node;
      const out: JsonSchema = {};
      for (const [k, v] of Object.entries(node)) {
        if (k === '$ref' && typeof v === 'string' && v.startsWith('#/$defs/')) out[k] = `#/components/schemas/${names.get(v.slice(8)) ?? v.slice(8)}`;
        else if (k === 'id' && typeof v === 'string') continue;
        else out[k] = rewrite(v);
      }
      return out;
    };
    for (const [key, def] of Object.entries($defs ?? {})) this.schemas[names.get(key)!] = rewrite(def) as JsonSchema;
    return rewrite(root) as JsonSchema;
  }
}

const pascal = (id: string) => id.charAt(0).toUpperCase() + id.slice(1);
const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

function answerObject(answer: Answer, components: Components, context: string): JsonSchema {
  const content: JsonSchema = {};
  if (answer.schema) content['application/json'] = { schema: components.add(answer.schema, 'output', context) };
  if (answer.sse) content['text/event-stream'] = { schema: { type: 'string', description: 'Server-Sent Events: `id:`, `event:` and `data:` lines' } };
  return {
    description: answer.description,
    ...(answer.headers ? { headers: Object.fromEntries(Object.entries(answer.headers).map(([name, description]) => [name, { description, schema: { type: 'string' } }])) } : {}),
    ...(Object.keys(content).length ? { content } : {}),
  };
}

function parametersOf(op: Operation, components: Components): JsonSchema[] {
  const context = pascal(op.operationId);
  const params: JsonSchema[] = [];
  for (const [name, schema] of Object.entries(op.params ?? {})) {
    params.push({ name, in: 'path', required: true, schema: components.add(schema, 'input', `${context}_${name}`) });
  }
  if (op.query) {
    const query = components.add(op.query, 'input', `${context}Query`) as { properties?: Record<string, JsonSchema>; required?: string[] };
    for (const [name, schema] of Object.entries(query.properties ?? {})) {
      const { description, ...rest } = schema;
      params.push({ name, in: 'query', required: query.required?.includes(name) ?? false, ...(description ? { description } : {}), schema: rest });
    }
  }
  for (const [name, description] of Object.entries(op.headers ?? {})) params.push({ name, in: 'header', required: false, description, schema: { type: 'string' } });
  return params;
}

function requestBodyOf(op: Operation, components: Components): JsonSchema | undefined {
  if (!op.body) return undefined;
  const context = pascal(op.operationId);
  const schema = components.add(op.body, 'input', `${context}Request`);
  if (op.bodyAs === 'multipart') {
    const multipart = { ...schema, properties: { ...(schema.properties as object), file: { type: 'string', contentMediaType: 'application/octet-stream' } } };
    return { required: true, content: { 'multipart/form-data': { schema: multipart } } };
  }
  const content: JsonSchema = { 'application/json': { schema } };
  if (op.bodyAs === 'jsonl') {
    const line = { $ref: '#/components/schemas/DatasetItemInput' };
    const item = components.add(
      z.object({ variables: z.record(z.string(), z.string()), expected: z.json().optional(), metadata: z.record(z.string(), z.string()).optional() }),
      'input',
      'DatasetItemInput',
    );
    components.schemas.DatasetItemInput = item;
    // OpenAPI 3.1 has no schema for a line of a stream (3.2's itemSchema): an extension names it.
    const jsonl = { schema: { type: 'string', description: 'One DatasetItemInput (a JSON object) per line; line n is `items[n - 1]`' }, 'x-item-schema': line };
    content['application/x-ndjson'] = jsonl;
    content['application/jsonl'] = jsonl;
  }
  return { required: true, content };
}

function operationObject(op: Operation, components: Components): JsonSchema {
  const context = pascal(op.operationId);
  const responses: JsonSchema = {};
  for (const [status, answer] of Object.entries(op.ok)) responses[status] = answerObject(answer, components, `${context}${status}`);
  for (const status of [...new Set([...(op.errors ?? []), ...ALWAYS])].sort()) responses[status] = errorResponse(COMMON_ERRORS[status] ?? 'Error');
  responses.default = errorResponse('Unexpected error (500: internal_error)');
  const parameters = parametersOf(op, components);
  const requestBody = requestBodyOf(op, components);
  return {
    operationId: op.operationId,
    tags: [op.tag],
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    ...(parameters.length ? { parameters } : {}),
    ...(requestBody ? { requestBody } : {}),
    responses,
  };
}

const CALLBACK_HEADERS = {
  'webhook-id': { description: 'The event id (the same on every retry): deduplicate on it', required: true, schema: { type: 'string' } },
  'webhook-timestamp': { description: 'Unix seconds of this attempt', required: true, schema: { type: 'string' } },
  'webhook-signature': { description: '`v1,<base64 HMAC-SHA256>` of `id.timestamp.body` with the secret (Standard Webhooks)', required: true, schema: { type: 'string' } },
};

function callbackObject(summary: string, description: string, schema: JsonSchema): JsonSchema {
  return {
    post: {
      tags: ['Callbacks'],
      summary,
      description,
      parameters: Object.entries(CALLBACK_HEADERS).map(([name, h]) => ({ name, in: 'header', ...h })),
      requestBody: {
        required: true,
        content: { 'application/json': { schema: { oneOf: [schema, { $ref: '#/components/schemas/ThinCallbackEvent' }] } } },
      },
      responses: { '2XX': { description: 'Received: any 2xx ends the delivery; anything else (or no answer within the timeout) is retried with backoff' } },
    },
  };
}

/** The OpenAPI 3.1 document of Longhaul's /v1 API and of the callbacks it sends. */
export function buildOpenApiDocument(options: { version?: string; serverUrl?: string } = {}): OpenApiDocument {
  const components = new Components();
  components.add(S.ErrorObject, 'output', 'Error');
  components.add(S.ThinEvent, 'output', 'ThinCallbackEvent');
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    paths[op.path] ??= {};
    paths[op.path]![op.method] = operationObject(op, components);
  }
  const jobEvent = components.add(S.JobCallbackEvent, 'output', 'JobCallbackEvent');
  const runEvent = components.add(S.RunCallbackEvent, 'output', 'RunCallbackEvent');
  const tags = [...new Set(OPERATIONS.map((op) => op.tag)), 'Callbacks'];
  return {
    openapi: '3.1.1',
    info: {
      title: 'Longhaul API',
      version: options.version ?? '0.1.0',
      summary: 'Durable runner for long OpenAI background reasoning jobs',
      description:
        'Every `/v1` route takes an API key as `Authorization: Bearer lh_sk_…`. Errors have one shape, `{"error": {"type", "code", "message", "param", "request_id"}}`. Lists are `{"object": "list", "data", "has_more"}`, paged with `after` (the last id seen) and `limit`.',
      license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    servers: [{ url: options.serverUrl ?? '/' }],
    security: [{ apiKey: [] }],
    tags: tags.map((name) => ({ name })),
    paths,
    webhooks: {
      jobEvent: callbackObject(
        'A job event (`job.completed`, `job.failed`, …)',
        "POSTed to the job's `callback_url` (its end, and a tool-call loop waiting for answers; signed with GET /v1/callback-secret) and to every webhook endpoint that chose the type (or, without `event_types`, the same default events), signed with the endpoint's secret.",
        jobEvent,
      ),
      runEvent: callbackObject(
        'A pipeline run event (`run.running`, `run.completed`, …)',
        "POSTed to webhook endpoints that name the type, and a run's end to the run's `callback_url`.",
        runEvent,
      ),
    },
    components: {
      schemas: components.schemas,
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', bearerFormat: 'lh_sk_…', description: 'A Longhaul API key (`lh_sk_…`)' } },
    },
  };
}
