/**
 * Tenant file isolation: tenants share one provider account, so the provider would serve any
 * tenant's file id to any other. Every place a create body (or a conversation's seed items) can
 * name a file, a vector store, a container or a skill is checked before anything reaches the
 * provider: another tenant's file is a 404 naming the exact path, and ids of account resources
 * Longhaul does not track per tenant are a 400.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '@longhaul/db';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';

let stack: Stack;
let tenantB: { authorization: string };
/** Tenant A (the stack's own tenant) uploaded it. */
let fileA: string;

beforeAll(async () => {
  stack = await startStack();
  const other = await createTenant(stack.db.db, 'tenant B');
  tenantB = { authorization: `Bearer ${other.apiKey}` };
  const data = Buffer.alloc(2_000, 1);
  data.write('%PDF-1.7\n');
  const form = new FormData();
  form.append('purpose', 'user_data');
  form.append('file', new Blob([new Uint8Array(data)], { type: 'application/pdf' }), 'a.pdf');
  const res = await fetch(`${stack.apiUrl}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${stack.apiKey}` }, body: form });
  const body = (await res.json()) as any;
  expect(res.status, JSON.stringify(body)).toBe(200);
  fileA = body.id;
  await stack.simApi('POST', '/sim/prompts', { id: 'pmpt_isolation1', version: '1', model: 'o3', instructions: 'Summarise the document.' });
});
afterAll(async () => {
  await stack?.stop();
});

const text = { type: 'input_text', text: 'Summarise the attached document.' };
const call = { type: 'function_call', call_id: 'call_1', name: 'fetch_document', arguments: '{}' };
const customCall = { type: 'custom_tool_call', call_id: 'call_2', name: 'fetch_document', input: 'a.pdf' };
const body = (overrides: Record<string, unknown>) => jobBody({ reasoning: { effort: 'low' }, ...overrides }, 50);

/** The shapes that can carry a file id, each with the param an unknown id is reported at. */
const shapes = (fileId: string): [string, Record<string, unknown>, string][] => [
  ['message input_file', body({ input: [{ role: 'user', content: [text, { type: 'input_file', file_id: fileId }] }] }), 'input[0].content[1].file_id'],
  ['message input_image', body({ input: [{ role: 'user', content: [text, { type: 'input_image', file_id: fileId }] }] }), 'input[0].content[1].file_id'],
  [
    'function_call_output input_file',
    body({ input: [call, { type: 'function_call_output', call_id: 'call_1', output: [{ type: 'input_file', file_id: fileId }] }] }),
    'input[1].output[0].file_id',
  ],
  [
    'function_call_output input_image',
    body({ input: [call, { type: 'function_call_output', call_id: 'call_1', output: [{ type: 'input_image', file_id: fileId, detail: 'low' }] }] }),
    'input[1].output[0].file_id',
  ],
  [
    'custom_tool_call_output input_file',
    body({ input: [customCall, { type: 'custom_tool_call_output', call_id: 'call_2', output: [{ type: 'input_file', file_id: fileId }] }] }),
    'input[1].output[0].file_id',
  ],
  [
    'code_interpreter container file_ids',
    body({ input: 'Plot the data in the file.', tools: [{ type: 'code_interpreter', container: { type: 'auto', file_ids: [fileId] } }] }),
    'tools[0].container.file_ids[0]',
  ],
  [
    'hosted prompt variable',
    body({ input: undefined, prompt: { id: 'pmpt_isolation1', variables: { document: { type: 'input_file', file_id: fileId } } } }),
    'prompt.variables.document.file_id',
  ],
];

async function jobsOf(headers: Record<string, string>) {
  return (await stack.api('GET', '/v1/jobs', undefined, headers)).body.data as unknown[];
}

describe("another tenant's file", () => {
  it.each(shapes('placeholder').map(([name]) => name))('is a 404 naming its path and never reaches the provider: %s', async (name) => {
    const [, request, param] = shapes(fileA).find(([n]) => n === name)!;
    const before = { creates: (await stack.simApi('GET', '/sim/stats')).creates, jobs: (await jobsOf(tenantB)).length };
    const res = await stack.api('POST', '/v1/jobs', request, tenantB);
    expect(res.status, JSON.stringify(res.body)).toBe(404);
    expect(res.body.error).toMatchObject({ type: 'not_found_error', code: 'file_not_found', param });
    expect(res.body.error.message).toContain(fileA);
    // No job was made, so nothing will ever send it; and nothing was sent meanwhile.
    expect((await jobsOf(tenantB)).length).toBe(before.jobs);
    expect((await stack.simApi('GET', '/sim/stats')).creates).toBe(before.creates);
  });

  it('is a 404 as a Longhaul prompt variable, named where the job gave it', async () => {
    const created = await stack.api(
      'POST',
      '/v1/prompts',
      { name: 'summary', template: { model: 'o3', input: [{ role: 'user', content: [text, { type: 'input_text', text: '{{document}}' }] }] } },
      tenantB,
    );
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const res = await stack.api(
      'POST',
      '/v1/jobs',
      body({ input: undefined, prompt: { id: created.body.id, variables: { document: { type: 'input_file', file_id: fileA } } } }),
      tenantB,
    );
    expect(res.status, JSON.stringify(res.body)).toBe(404);
    expect(res.body.error).toMatchObject({ code: 'file_not_found', param: 'prompt.variables.document.file_id' });
  });

  it("is a 404 in a Longhaul prompt's template", async () => {
    const created = await stack.api(
      'POST',
      '/v1/prompts',
      { name: 'with a file', template: { model: 'o3', input: [{ role: 'user', content: [text, { type: 'input_file', file_id: fileA }] }] } },
      tenantB,
    );
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const res = await stack.api('POST', '/v1/jobs', body({ input: undefined, prompt: { id: created.body.id } }), tenantB);
    expect(res.status, JSON.stringify(res.body)).toBe(404);
    expect(res.body.error).toMatchObject({ code: 'file_not_found', param: 'input[0].content[1].file_id' });
  });

  it("is a 404 in a conversation's seed items, and no conversation is created", async () => {
    const before = (await stack.simApi('GET', '/sim/stats')).conversations.created;
    const res = await stack.api('POST', '/v1/conversations', { items: [{ type: 'message', role: 'user', content: [text, { type: 'input_file', file_id: fileA }] }] }, tenantB);
    expect(res.status, JSON.stringify(res.body)).toBe(404);
    expect(res.body.error).toMatchObject({ code: 'file_not_found', param: 'items[0].content[1].file_id' });
    expect((await stack.simApi('GET', '/sim/stats')).conversations.created).toBe(before);
  });
});

describe('account resources Longhaul does not track per tenant', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['a container by id', { tools: [{ type: 'code_interpreter', container: 'cntr_abc123' }] }, 'tools[0].container'],
    ['vector stores', { tools: [{ type: 'file_search', vector_store_ids: ['vs_abc123'] }] }, 'tools[0].vector_store_ids'],
    ['a shell container by id', { tools: [{ type: 'shell', environment: { type: 'container_reference', container_id: 'cntr_abc123' } }] }, 'tools[0].environment.container_id'],
  ];
  it.each(cases)('refuses %s with a 400 naming it, for every tenant', async (_name, overrides, param) => {
    for (const headers of [{}, tenantB]) {
      const res = await stack.api('POST', '/v1/jobs', body({ input: 'Look it up.', ...overrides }), headers);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code: 'unsupported_parameter', param });
      expect(res.body.error.message).toContain('share one provider account');
    }
  });
});

describe("a tenant's own file", () => {
  it.each(shapes('placeholder').map(([name]) => name))('is accepted and reaches the provider: %s', async (name) => {
    const [, request] = shapes(fileA).find(([n]) => n === name)!;
    const res = await stack.api('POST', '/v1/jobs', request);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const done = await stack.waitForJob(res.body.id, isTerminalJob);
    expect(done.status, JSON.stringify(done.error)).toBe('completed');
    expect(JSON.stringify(await stack.simApi('GET', `/sim/requests/${done.response_id}`))).toContain(fileA);
  });

  it("seeds the tenant's conversation", async () => {
    const res = await stack.api('POST', '/v1/conversations', { items: [{ type: 'message', role: 'user', content: [text, { type: 'input_file', file_id: fileA }] }] });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  });
});
