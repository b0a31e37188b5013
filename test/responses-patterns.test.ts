/**
 * The guide's code, as written for OpenAI, run against Longhaul's OpenAI-compatible surface with
 * the official SDK: manual history, conversations, file inputs (id, url, base64), instructions
 * and developer messages, reasoning summaries, prompt caching, max_output_tokens, a background
 * stream resumed after a cut. Plus what makes the switch safe: Idempotency-Key, tenant scoping,
 * Longhaul's own options as extra body fields or headers, callbacks and usage for every response.
 */
import { createTenant, setTenantLimits } from '@longhaul/db';
import OpenAI, { toFile } from 'openai';
import { specSchemaErrors } from '@longhaul/specs/validation';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';

let stack: Stack;
let client: OpenAI;
let receiver: Receiver;
beforeAll(async () => {
  stack = await startStack();
  client = new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.apiUrl}/v1`, maxRetries: 0 });
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await stack?.stop();
});

const sim = (durationMs: number) => ({ sim_duration_ms: String(durationMs) });

function expectValidResponse(response: unknown) {
  const { output_text: _sdkOnly, ...wire } = response as Record<string, unknown>;
  expect(specSchemaErrors('Response', wire)).toBeNull();
}

/** What Longhaul sent the provider for this response. */
async function sentToProvider(response: OpenAI.Responses.Response) {
  const job = await stack.api('GET', `/v1/jobs/${response.metadata?.longhaul_job_id}`);
  return stack.simApi('GET', `/sim/requests/${job.body.response_id}`);
}

describe('the guide through the OpenAI SDK', () => {
  it('builds conversation history by hand from earlier output items (ids deleted)', async () => {
    let history: OpenAI.Responses.ResponseInputItem[] = [{ role: 'user', content: 'tell me a joke' }];
    const response = await client.responses.create({ model: 'gpt-4o-mini', input: history, store: true, metadata: sim(20) });
    history = [
      ...history,
      ...response.output.map((el) => {
        const copy = { ...el } as Record<string, unknown>;
        delete copy.id;
        return copy as unknown as OpenAI.Responses.ResponseInputItem;
      }),
    ];
    history.push({ role: 'user', content: 'tell me another' });
    const second = await client.responses.create({ model: 'gpt-4o-mini', input: history, store: true, metadata: sim(20) });
    expect(second.status).toBe('completed');
    expect(second.output_text).not.toBe('');
  });

  it('runs responses in a conversation created with no body', async () => {
    const conversation = await client.conversations.create();
    const response = await client.responses.create({
      model: 'gpt-4.1',
      input: [{ role: 'user', content: 'What are the 5 Ds of dodgeball?' }],
      conversation: conversation.id,
      metadata: sim(20),
    });
    expect(response.status).toBe('completed');
    expect(response.conversation?.id).toBe(conversation.id);
    expectValidResponse(response);
  });

  it('takes files by id, by URL and as base64', async () => {
    const pdf = Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n');
    const file = await client.files.create({ file: await toFile(pdf, 'draconomicon.pdf', { type: 'application/pdf' }), purpose: 'user_data' });
    const byId = await client.responses.create({
      model: 'gpt-5',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_file', file_id: file.id },
            { type: 'input_text', text: 'What is the first dragon in the book?' },
          ],
        },
      ],
      metadata: sim(20),
    });
    expect(byId.status).toBe('completed');
    const byUrl = await client.responses.create({
      model: 'gpt-5',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'Analyze the letter and provide a summary of the key points.' },
            { type: 'input_file', file_url: `${receiver.url}/letters/2024ltr.pdf` },
          ],
        },
      ],
      metadata: sim(20),
    });
    expect(byUrl.status).toBe('completed');
    const byData = await client.responses.create({
      model: 'gpt-5',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_file', filename: 'draconomicon.pdf', file_data: `data:application/pdf;base64,${pdf.toString('base64')}` },
            { type: 'input_text', text: 'What is the first dragon in the book?' },
          ],
        },
      ],
      metadata: sim(20),
    });
    expect(byData.status).toBe('completed');
    const sent = await sentToProvider(byData);
    expect(JSON.stringify(sent.input)).toContain('draconomicon.pdf');
  });

  it('passes instructions, developer messages, reasoning summaries and every other create field to the provider', async () => {
    const response = await client.responses.create({
      model: 'o3',
      instructions: 'Answer like a pirate.',
      input: [
        { role: 'developer', content: 'Be brief.' },
        { role: 'user', content: 'Plan a bridge.' },
      ],
      reasoning: { effort: 'high', summary: 'detailed' },
      temperature: 1,
      top_p: 0.9,
      user: 'user-1234',
      include: ['reasoning.encrypted_content'],
      // In OpenAI's document, not in this SDK version's types: extra fields go through as they are.
      ...({ max_tool_calls: 3 } as object),
      prompt_cache_retention: '24h',
      metadata: sim(20),
    });
    expect(response.status).toBe('completed');
    expect(response.instructions).toBe('Answer like a pirate.');
    expect(response.reasoning).toEqual({ effort: 'high', summary: 'detailed' });
    expect(response.top_p).toBe(0.9);
    expect(response.user).toBe('user-1234');
    expect(response.output.some((item) => item.type === 'reasoning' && item.summary.length > 0)).toBe(true);
    expectValidResponse(response);
    const sent = await sentToProvider(response);
    expect(sent).toMatchObject({
      instructions: 'Answer like a pirate.',
      top_p: 0.9,
      user: 'user-1234',
      include: ['reasoning.encrypted_content'],
      max_tool_calls: 3,
      prompt_cache_retention: '24h',
      background: true,
    });
  });

  it('runs OpenAI hosted prompts, with a file as a variable', async () => {
    await stack.simApi('POST', '/sim/prompts', { id: 'pmpt_abc123', version: '2', model: 'gpt-5', instructions: 'Help {{customer_name}} with the {{product}}.' });
    const response = await client.responses.create({
      model: 'gpt-5',
      prompt: { id: 'pmpt_abc123', version: '2', variables: { customer_name: 'Jane Doe', product: '40oz juice box' } },
      metadata: sim(20),
    });
    expect(response.status).toBe('completed');
    expect(response.prompt).toEqual({ id: 'pmpt_abc123', version: '2', variables: { customer_name: 'Jane Doe', product: '40oz juice box' } });
    expectValidResponse(response);
    const file = await client.files.create({ file: await toFile(Buffer.from('%PDF-1.4\n%%EOF\n'), 'draconomicon.pdf', { type: 'application/pdf' }), purpose: 'user_data' });
    await stack.simApi('POST', '/sim/prompts', { id: 'pmpt_dragons', version: '1', model: 'gpt-5', instructions: 'Tell me about {{topic}}, using {{reference_pdf}}.' });
    const withFile = await client.responses.create({
      model: 'gpt-5',
      prompt: { id: 'pmpt_dragons', variables: { topic: 'Dragons', reference_pdf: { type: 'input_file', file_id: file.id } } },
      metadata: sim(20),
    });
    expect(withFile.status).toBe('completed');
  });

  it('reports cached tokens for a repeated prefix with prompt_cache_key', async () => {
    const prefix = 'You are a careful planner. '.repeat(400);
    const ask = () => client.responses.create({ model: 'o3', instructions: prefix, input: 'Plan a bridge.', prompt_cache_key: 'bridge-planner', metadata: sim(20) });
    await ask();
    const second = await ask();
    expect(second.usage?.input_tokens_details.cached_tokens).toBeGreaterThan(0);
  });

  it('ends a response that runs out of output tokens as incomplete', async () => {
    const response = await client.responses.create({ model: 'o3', input: 'Write a long novel.', reasoning: { effort: 'high' }, max_output_tokens: 300, metadata: sim(20) });
    expect(response.status).toBe('incomplete');
    expect(response.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expectValidResponse(response);
  });

  it('resumes a background stream after the connection is cut', async () => {
    const stream = await client.responses.create({ model: 'o3', input: 'Write a very long novel about otters in space.', background: true, stream: true, metadata: sim(500) });
    let id = '';
    let cursor = -1;
    for await (const event of stream) {
      if (event.type === 'response.created') id = event.response.id;
      cursor = event.sequence_number;
      if (cursor >= 3) break; // the SDK aborts the connection
    }
    const resumed = await client.responses.retrieve(id, { stream: true, starting_after: cursor });
    const after: number[] = [];
    let last = '';
    for await (const event of resumed) {
      after.push(event.sequence_number);
      last = event.type;
    }
    expect(after[0]).toBe(cursor + 1);
    expect(after).toEqual(after.map((_, i) => cursor + 1 + i));
    expect(last).toBe('response.completed');
  });
});

describe('what makes the switch safe', () => {
  it('answers a retried create with the same Idempotency-Key with the first response, and no second job', async () => {
    const headers = { 'Idempotency-Key': `retry-${Date.now()}` };
    const body = { model: 'o3', input: 'Plan a bridge.', background: true, metadata: sim(20) };
    const first = await client.responses.create(body, { headers });
    const second = await client.responses.create(body, { headers });
    expect(second.id).toBe(first.id);
    const jobs = await stack.api('GET', '/v1/jobs?limit=100');
    expect(jobs.body.data.filter((j: { id: string }) => j.id === first.metadata?.longhaul_job_id)).toHaveLength(1);
  });

  it("scopes responses to their tenant: another tenant's response id is not found anywhere", async () => {
    const mine = await client.responses.create({ model: 'o3', input: 'Plan a bridge.', metadata: sim(20) });
    const other = await createTenant(stack.db.db, 'other tenant');
    const theirs = new OpenAI({ apiKey: other.apiKey, baseURL: `${stack.apiUrl}/v1`, maxRetries: 0 });
    await expect(theirs.responses.retrieve(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(theirs.responses.cancel(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const job = await stack.api('GET', `/v1/jobs/${mine.metadata?.longhaul_job_id}`);
    await expect(theirs.responses.retrieve(job.body.response_id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(theirs.responses.retrieve(job.body.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(theirs.responses.create({ model: 'o3', input: 'More.', previous_response_id: mine.id })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    // The owner may name it by any of its ids.
    expect((await client.responses.retrieve(job.body.response_id)).id).toBe(mine.id);
    expect((await client.responses.retrieve(job.body.id)).id).toBe(mine.id);
  });

  it('takes callback_url as an extra body field or a Longhaul-Callback-Url header, and delivers the job to it', async () => {
    const viaBody = await client.responses.create({
      model: 'o3',
      input: 'Plan a bridge.',
      metadata: sim(20),
      callback_url: receiver.url,
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    const viaHeader = await client.responses.create({ model: 'o3', input: 'Plan a bridge.', metadata: sim(20) }, { headers: { 'Longhaul-Callback-Url': receiver.url } });
    const jobIds = [viaBody, viaHeader].map((r) => r.metadata?.longhaul_job_id);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !jobIds.every((id) => receiver.received.some((r) => r.body.includes(String(id))))) await new Promise((r) => setTimeout(r, 50));
    for (const id of jobIds) expect(receiver.received.some((r) => r.body.includes(String(id)))).toBe(true);
  });

  it('counts facade responses in usage', async () => {
    const before = await stack.api('GET', '/v1/usage');
    await client.responses.create({ model: 'o3', input: 'Plan a bridge.', metadata: sim(20) });
    const after = await stack.api('GET', '/v1/usage');
    expect(after.body.total.jobs).toBe(before.body.total.jobs + 1);
  });

  it('answers over-limit requests with 429 and Retry-After, which the SDK honours', async () => {
    const limited = await createTenant(stack.db.db, 'limited tenant');
    await setTenantLimits(stack.db.db, limited.tenantId, { rpmLimit: 2 });
    const sdk = new OpenAI({ apiKey: limited.apiKey, baseURL: `${stack.apiUrl}/v1`, maxRetries: 0 });
    await sdk.responses.create({ model: 'o3', input: 'x', background: true, metadata: sim(20) });
    await sdk.responses.create({ model: 'o3', input: 'x', background: true, metadata: sim(20) });
    const over = await sdk.responses.create({ model: 'o3', input: 'x', background: true, metadata: sim(20) }).catch((err: unknown) => err);
    expect(over).toBeInstanceOf(OpenAI.RateLimitError);
    const retryAfter = Number((over as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(
      specSchemaErrors('ErrorResponse', (over as InstanceType<typeof OpenAI.RateLimitError>).error ? { error: (over as InstanceType<typeof OpenAI.RateLimitError>).error } : null),
    ).toBeNull();
  });

  it('runs a Longhaul prompt by its id, with variables', async () => {
    const created = await stack.api('POST', '/v1/prompts', {
      name: 'support-reply',
      template: { model: 'o3', reasoning: { effort: 'low' }, instructions: 'You answer for {{company}}.', input: 'Question: {{question}}' },
    });
    expect(created.status).toBe(201);
    const response = await client.responses.create({ prompt: { id: created.body.id, variables: { company: 'Acme', question: 'Where is my parcel?' } }, metadata: sim(20) });
    expect(response.status).toBe('completed');
    expect(response.model).toBe('o3');
    expect(response.prompt).toEqual({ id: created.body.id, version: '1', variables: null });
    expectValidResponse(response);
    const sent = await sentToProvider(response);
    expect(sent.instructions).toBe('You answer for Acme.');
  });

  it('refuses store: false with a 400 naming it, and a Longhaul option given twice differently', async () => {
    const refused = await client.responses.create({ model: 'o3', input: 'x', store: false }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect((refused as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('store');
    const conflicting = await client.responses
      .create({ model: 'o3', input: 'x', callback_url: receiver.url } as OpenAI.Responses.ResponseCreateParamsNonStreaming, {
        headers: { 'Longhaul-Callback-Url': `${receiver.url}/other` },
      })
      .catch((err: unknown) => err);
    expect(conflicting).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('tells a request the provider refuses as the 400 OpenAI would answer a synchronous create with', async () => {
    const refused = await client.responses.create({ model: 'o3', input: 'x', previous_response_id: 'resp_unknown0123456789' }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
  });
});
