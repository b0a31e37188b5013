/**
 * Bad input never reaches Postgres: every path parameter, query parameter and JSON body string of
 * every route, given a NUL byte, an over-long id, a malformed cursor or filter, or text that is
 * not valid Unicode, is a 400 or 404 in the API's error shape, never a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signWebhook } from '@longhaul/webhooks';
import { type Stack, jobBody, startStack } from './harness.ts';

const ADMIN_TOKEN = 'admin-token-for-bad-input-tests';

let stack: Stack;
let promptId: string;
let endpointId: string;
beforeAll(async () => {
  stack = await startStack({ startWorker: false, webhooks: true, api: { admin: { token: ADMIN_TOKEN } } });
  const prompt = await stack.api('POST', '/v1/prompts', { name: 'p', template: { model: 'o3', instructions: 'Answer {{question}}' } });
  promptId = prompt.body.id;
  const endpoint = await stack.api('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hook' });
  endpointId = endpoint.body.id;
});
afterAll(async () => {
  await stack?.stop();
});

type Answer = Awaited<ReturnType<Stack['api']>>;

/** A 4xx in the error shape; `param` named when given (a 400 names what was wrong). */
function expectRefused(res: Answer, what: string, param?: string | null): void {
  expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBeGreaterThanOrEqual(400);
  expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBeLessThan(500);
  expect(Object.keys(res.body.error).sort(), what).toEqual(['code', 'message', 'param', 'request_id', 'type']);
  expect(res.body.error.request_id, what).toBe(res.headers.get('x-request-id'));
  if (res.status === 400) {
    expect(res.body.error.type, what).toBe('invalid_request_error');
    if (param !== undefined) expect(res.body.error.param, what).toBe(param);
  } else {
    expect(res.status, what).toBe(404);
    expect(res.body.error.type, what).toBe('not_found_error');
  }
}

const LONG = 'a'.repeat(300);
/** Ids that are not ids: a NUL byte (alone, inside, at the end), 300 characters, a space, non-ASCII. */
const badIds = (prefix: string) => ['%00', `${prefix}abc%00def`, `${prefix}${'0'.repeat(24)}%00`, `${prefix}${LONG}`, LONG, `${prefix}a%20b`, `${prefix}%C3%A9t%C3%A9`];

/** Every route with an id in its path: [method, path with `{id}`, id prefix, unknown but well-formed id]. */
const ID_ROUTES: Array<[string, string, string, string]> = [
  ['GET', '/v1/jobs/{id}', 'job_', 'job_000000000000000000000000'],
  ['GET', '/v1/jobs/{id}/events', 'job_', 'job_000000000000000000000000'],
  ['POST', '/v1/jobs/{id}/cancel', 'job_', 'job_000000000000000000000000'],
  ['GET', '/v1/jobs/{id}/stream', 'job_', 'job_000000000000000000000000'],
  ['GET', '/v1/files/{id}', 'file-', 'file-000000000000000000000'],
  ['DELETE', '/v1/files/{id}', 'file-', 'file-000000000000000000000'],
  ['GET', '/v1/conversations/{id}', 'conv_', 'conv_000000000000000000000000'],
  ['GET', '/v1/conversations/{id}/items', 'conv_', 'conv_000000000000000000000000'],
  ['DELETE', '/v1/conversations/{id}', 'conv_', 'conv_000000000000000000000000'],
  ['GET', '/v1/prompts/{id}', 'prm_', 'prm_000000000000000000000000'],
  ['POST', '/v1/prompts/{id}', 'prm_', 'prm_000000000000000000000000'],
  ['POST', '/v1/prompts/{id}/versions', 'prm_', 'prm_000000000000000000000000'],
  ['GET', '/v1/prompts/{id}/versions', 'prm_', 'prm_000000000000000000000000'],
  ['GET', '/v1/prompts/{id}/versions/1', 'prm_', 'prm_000000000000000000000000'],
  ['GET', '/v1/webhook-endpoints/{id}', 'we_', 'we_00000000000000000000'],
  ['PATCH', '/v1/webhook-endpoints/{id}', 'we_', 'we_00000000000000000000'],
  ['DELETE', '/v1/webhook-endpoints/{id}', 'we_', 'we_00000000000000000000'],
  ['POST', '/v1/webhook-endpoints/{id}/rotate-secret', 'we_', 'we_00000000000000000000'],
  ['POST', '/v1/webhook-endpoints/{id}/recover', 'we_', 'we_00000000000000000000'],
  ['GET', '/v1/deliveries/{id}', 'dlv_', 'dlv_00000000000000000000000000000000'],
  ['POST', '/v1/deliveries/{id}/retry', 'dlv_', 'dlv_00000000000000000000000000000000'],
  ['GET', '/v1/api-keys/{id}', 'key_', 'key_0000000000000000'],
  ['DELETE', '/v1/api-keys/{id}', 'key_', 'key_0000000000000000'],
];

/** A body the route would accept, so only the id decides the answer. */
function bodyFor(method: string, path: string): unknown {
  if (method === 'GET' || method === 'DELETE') return undefined;
  if (path.endsWith('/recover')) return { since: 0 };
  if (path.endsWith('/versions')) return { template: { instructions: 'x' } };
  return {};
}

describe('path parameters', () => {
  it.each(ID_ROUTES)('%s %s: malformed ids are refused, a well-formed unknown id is a 404', async (method, template, prefix, unknown) => {
    for (const id of badIds(prefix)) {
      const path = template.replace('{id}', id);
      expectRefused(await stack.api(method, path, bodyFor(method, template)), `${method} ${path}`);
    }
    const res = await stack.api(method, template.replace('{id}', unknown), bodyFor(method, template));
    expect(res.status, `${method} ${template} ${unknown}`).toBe(404);
    expectRefused(res, `${method} ${template} ${unknown}`);
  });

  it('a malformed id names the parameter', async () => {
    for (const path of ['/v1/jobs/%00', `/v1/jobs/job_${LONG}`, '/v1/prompts/prm_%00', '/v1/deliveries/dlv_x%00']) {
      const res = await stack.api('GET', path);
      expectRefused(res, path, 'id');
      expect(res.status, path).toBe(400);
    }
  });

  it('a value of the wrong type is an invalid value, and only an absent one is missing', async () => {
    const wrongType = await stack.api('POST', '/v1/jobs', jobBody({ metadata: 5 }));
    expect(wrongType.status).toBe(400);
    expect(wrongType.body.error).toMatchObject({ code: 'invalid_value', param: 'metadata' });
    expect(wrongType.body.error.message).not.toMatch(/missing/i);
    const absent = await stack.api('POST', '/v1/webhook-endpoints', {});
    expect(absent.status).toBe(400);
    expect(absent.body.error).toMatchObject({ code: 'missing_required_parameter', param: 'url' });
  });

  it("a prompt's version must be a version number", async () => {
    for (const version of ['%00', LONG, '1%00', '99999999999999999999', '-1', '1.5']) {
      expectRefused(await stack.api('GET', `/v1/prompts/${promptId}/versions/${version}`), `version ${version}`);
    }
  });

  it('a NUL byte anywhere in the path is refused, matched route or not', async () => {
    for (const path of ['/v1/%00', '/v1/jobs%00', '/v1/nothing/%00/here']) expectRefused(await stack.api('GET', path), path);
  });
});

/** Every list route's query parameters: [path, parameter, bad values]. */
const QUERY_CASES: Array<[string, string, string[]]> = [
  ['/v1/jobs', 'after', ['%00', 'job_abc%00', `job_${LONG}`, 'not-a-cursor', '%C3%A9']],
  ['/v1/jobs', 'status', ['%00', 'done', LONG]],
  ['/v1/jobs', 'limit', ['%00', 'abc', '0', '101', '1e3', '-1']],
  ['/v1/jobs', 'thread', ['%00', `job_${LONG}`, 'not-a-job']],
  ['/v1/files', 'limit', ['%00', 'abc', '0']],
  ['/v1/conversations/{conv}/items', 'after', ['%00', LONG]],
  ['/v1/conversations/{conv}/items', 'order', ['%00', 'sideways']],
  ['/v1/conversations/{conv}/items', 'limit', ['%00', 'many']],
  ['/v1/prompts', 'after', ['%00', `prm_${LONG}`, 'not-a-cursor']],
  ['/v1/prompts', 'limit', ['%00', '0']],
  ['/v1/prompts/{prompt}/versions', 'after', ['%00', 'one', '0', LONG]],
  ['/v1/prompts/{prompt}/versions', 'limit', ['%00', '1000']],
  ['/v1/deliveries', 'after', ['%00', `dlv_${LONG}`, 'not-a-cursor']],
  ['/v1/deliveries', 'status', ['%00', 'lost']],
  ['/v1/deliveries', 'limit', ['%00', 'x']],
  ['/v1/deliveries', 'endpoint_id', ['%00', `we_${LONG}`, 'not-an-endpoint']],
  ['/v1/deliveries', 'job_id', ['%00', `job_${LONG}`, 'not-a-job']],
  ['/v1/api-keys', 'after', ['%00', `key_${LONG}`, 'not-a-cursor']],
  ['/v1/api-keys', 'limit', ['%00', '0', '101']],
  ['/v1/usage', 'group_by', ['%00', 'tenant']],
  ['/v1/usage', 'from', ['%00', 'yesterday', LONG]],
  ['/v1/usage', 'to', ['%00', 'tomorrow']],
  ['/v1/jobs/{job}/stream', 'starting_after', ['%00', 'not-a-cursor', LONG]],
];

describe('query parameters', () => {
  it.each(QUERY_CASES)('%s?%s= with bad values is a 400 naming it', async (template, param, values) => {
    const path = template.replace('{conv}', 'conv_000000000000000000000000').replace('{prompt}', promptId).replace('{job}', 'job_000000000000000000000000');
    for (const value of values) {
      const res = await stack.api('GET', `${path}?${param}=${value}`);
      expectRefused(res, `${path}?${param}=${value}`, param);
      expect(res.status, `${path}?${param}=${value}`).toBe(400);
    }
  });

  it('a NUL byte in an unknown or repeated parameter is still a 400', async () => {
    for (const query of ['%00=1', 'x%00=1', 'limit=1&limit=%00']) expectRefused(await stack.api('GET', `/v1/jobs?${query}`), query);
  });
});

/** Bodies with a NUL byte or a lone surrogate in one string: [method, path, body, param]. */
function bodyCases(bad: string): Array<[string, string, unknown, string]> {
  return [
    ['POST', '/v1/jobs', jobBody({ input: `hello${bad}` }), 'input'],
    ['POST', '/v1/jobs', jobBody({ instructions: bad }), 'instructions'],
    ['POST', '/v1/jobs', jobBody({ input: [{ role: 'user', content: [{ type: 'input_text', text: `a${bad}` }] }] }), 'input[0].content[0].text'],
    ['POST', '/v1/jobs', jobBody({ metadata: { note: `v${bad}` } }), 'metadata.note'],
    ['POST', '/v1/jobs', jobBody({ metadata: { [`k${bad}`]: 'v' } }), `metadata.k${bad}`],
    ['POST', '/v1/jobs', jobBody({ model: `o3${bad}` }), 'model'],
    ['POST', '/v1/jobs', jobBody({ previous_response_id: `resp_${bad}` }), 'previous_response_id'],
    ['POST', '/v1/jobs', jobBody({ conversation: `conv_${bad}` }), 'conversation'],
    ['POST', '/v1/jobs', jobBody({ tools: [{ type: 'function', name: `f${bad}` }] }), 'tools[0].name'],
    ['POST', '/v1/jobs', { prompt: { id: `prm_${bad}` } }, 'prompt.id'],
    ['POST', '/v1/jobs', jobBody({ input: [{ role: 'user', content: [{ type: 'input_file', file_id: `file-${bad}` }] }] }), 'input[0].content[0].file_id'],
    ['POST', '/v1/conversations', { metadata: { topic: `a${bad}` } }, 'metadata.topic'],
    ['POST', '/v1/conversations', { items: [{ type: 'message', role: 'user', content: `a${bad}` }] }, 'items[0].content'],
    ['POST', '/v1/prompts', { name: `n${bad}`, template: { instructions: 'x' } }, 'name'],
    ['POST', '/v1/prompts', { name: 'n', description: bad, template: { instructions: 'x' } }, 'description'],
    ['POST', '/v1/prompts', { name: 'n', template: { instructions: `x${bad}` } }, 'template.instructions'],
    ['POST', '/v1/prompts/{prompt}', { name: `n${bad}` }, 'name'],
    ['POST', '/v1/prompts/{prompt}/versions', { note: bad, template: { instructions: 'x' } }, 'note'],
    ['POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hook', description: `d${bad}` }, 'description'],
    ['POST', '/v1/webhook-endpoints', { url: `http://127.0.0.1:9/${bad}` }, 'url'],
    ['PATCH', '/v1/webhook-endpoints/{endpoint}', { description: `d${bad}` }, 'description'],
    ['POST', '/v1/api-keys', { name: `n${bad}` }, 'name'],
    ['POST', '/v1/api-keys', { name: 'n', scopes: [`jobs:read${bad}`] }, 'scopes[0]'],
  ];
}

describe('body strings', () => {
  for (const [name, bad] of [
    ['a NUL byte', '\u0000'],
    ['a lone surrogate', '\ud800'],
  ] as const) {
    it.each(bodyCases(bad).map(([method, path, body, param]) => [`${method} ${path} ${param}`, method, path, body, param] as const))(
      `${name}: %s is a 400 naming the param`,
      async (_name, method, template, body, param) => {
        const path = template.replace('{prompt}', promptId).replace('{endpoint}', endpointId);
        const res = await stack.api(method, path, body);
        expectRefused(res, `${method} ${path}`, param);
        expect(res.status, `${method} ${path}`).toBe(400);
      },
    );
  }

  it('a body nested deeper than 64 levels is a 400 naming where, not a stack overflow', async () => {
    const depth = 20_000;
    const tools = `[{"type":"function","name":"f","parameters":${'['.repeat(depth)}${']'.repeat(depth)}}]`;
    const body = JSON.stringify(jobBody({ tools: 'TOOLS' })).replace('"TOOLS"', tools);
    const res = await stack.api('POST', '/v1/jobs', body, { 'idempotency-key': 'deep-body' });
    expectRefused(res, 'deep body');
    expect(res.status).toBe(400);
    expect(res.body.error.param).toMatch(/^tools\[0\]\.parameters(\[0\])+$/);
  });

  it('a NUL byte in an upload filename is refused', async () => {
    // RFC 5987 `filename*` is percent-decoded by the multipart parser, so a NUL can arrive this way.
    const boundary = 'bad-input-boundary';
    const body = [
      `--${boundary}`,
      'Content-Disposition: form-data; name="purpose"',
      '',
      'user_data',
      `--${boundary}`,
      `Content-Disposition: form-data; name="file"; filename*=UTF-8''a%00b.txt`,
      'Content-Type: text/plain',
      '',
      'hello',
      `--${boundary}--`,
      '',
    ].join('\r\n');
    const res = await fetch(`${stack.apiUrl}/v1/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
      body,
    });
    expectRefused({ status: res.status, body: await res.json(), headers: res.headers }, 'upload', 'file');
    expect(res.status).toBe(400);
  });
});

describe('the OpenAI webhook receiver', () => {
  it('refuses a signed event whose strings hold a NUL byte', async () => {
    for (const event of [
      { id: 'evt_\u0000', object: 'event', type: 'response.completed', created_at: 1, data: { id: 'resp_1' } },
      { id: 'evt_1', object: 'event', type: 'response.completed\u0000', created_at: 1, data: { id: 'resp_1' } },
      { id: 'evt_2', object: 'event', type: 'response.completed', created_at: 1, data: { id: 'resp_\u0000' } },
      { id: 'evt_3', object: 'event', type: 'response.completed', created_at: 1, data: { id: 'resp_1', note: '\ud800' } },
    ]) {
      const payload = JSON.stringify(event);
      const headers = signWebhook({ secrets: [stack.webhookSecret], webhookId: `wh_${Math.random().toString(36).slice(2)}`, payload, now: new Date() });
      const res = await fetch(`${stack.apiUrl}/webhooks/openai`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: payload });
      const body = await res.json();
      expectRefused({ status: res.status, body, headers: res.headers }, payload);
      expect(res.status).toBe(400);
    }
  });
});

describe('the admin job pages', () => {
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, accept: 'text/html' };
  it('answer malformed ids with 404 and bad search fields with 400, never 500', async () => {
    for (const id of badIds('job_')) {
      const res = await fetch(`${stack.apiUrl}/admin/jobs/${id}`, { headers: admin });
      expect(res.status, id).toBe(404);
    }
    for (const field of ['tenant', 'status', 'model', 'meta_key', 'meta_value', 'from', 'to', 'response_id', 'job_id', 'after']) {
      for (const value of ['%00', `x%00`, 'a'.repeat(1000)]) {
        const res = await fetch(`${stack.apiUrl}/admin/jobs?${field}=${value}`, { headers: admin });
        expect(res.status, `${field}=${value}`).toBe(400);
      }
    }
    expect((await fetch(`${stack.apiUrl}/admin/jobs?after=not-a-cursor`, { headers: admin })).status).toBe(400);
    expect((await fetch(`${stack.apiUrl}/admin/login?next=%00`)).status).toBe(200);
    // A session cookie that is not valid %-encoding is no session, not an error.
    const cookie = await fetch(`${stack.apiUrl}/admin/jobs`, { headers: { accept: 'text/html', cookie: 'longhaul_admin=%E0%A4%A' } });
    expect(cookie.status).toBeGreaterThanOrEqual(300);
    expect(cookie.status).toBeLessThan(500);
  });
});
