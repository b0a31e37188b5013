import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { specSchemaErrors, startSim, type TestSim } from './helpers.ts';

let sim: TestSim;

beforeEach(async () => {
  sim = await startSim({ time_scale: 0.01, max_file_bytes: 200_000 });
});
afterEach(async () => {
  await sim.close();
});

/** The documented rule: text is ceil(chars / 4) of instructions + JSON input with parts stubbed. */
function textTokens(instructions: string, input: unknown): number {
  return Math.ceil((instructions + JSON.stringify(input)).length / 4);
}
const pages = (bytes: number): number => Math.max(1, Math.ceil(bytes / 50_000));

async function upload(bytes: number, filename = 'doc.pdf'): Promise<OpenAI.Files.FileObject> {
  return sim.client.files.create({ file: await OpenAI.toFile(Buffer.alloc(bytes, 7), filename), purpose: 'user_data' });
}

describe('Files API', () => {
  test('upload, retrieve, download, list and delete with the SDK, in the spec shapes', async () => {
    const content = Buffer.from('%PDF-1.4 the otter report');
    const file = await sim.client.files.create({ file: await OpenAI.toFile(content, 'report.pdf', { type: 'application/pdf' }), purpose: 'user_data' });
    expect(file.id).toMatch(/^file-[A-Za-z0-9]{22}$/);
    expect(file).toMatchObject({ object: 'file', bytes: content.length, filename: 'report.pdf', purpose: 'user_data', status: 'processed' });
    expect(specSchemaErrors('OpenAIFile', file)).toBeNull();

    expect(await sim.client.files.retrieve(file.id)).toEqual(file);
    const downloaded = await sim.client.files.content(file.id);
    expect(Buffer.from(await downloaded.arrayBuffer())).toEqual(content);

    const other = await upload(10, 'other.txt');
    const list = await sim.api('/files');
    expect(specSchemaErrors('ListFilesResponse', list.json)).toBeNull();
    expect(list.json.data.map((f: any) => f.id)).toEqual([other.id, file.id]);

    const deleted = await sim.client.files.delete(file.id);
    expect(deleted).toEqual({ id: file.id, object: 'file', deleted: true });
    expect(specSchemaErrors('DeleteFileResponse', deleted)).toBeNull();
    const gone = await sim.client.files.retrieve(file.id).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(OpenAI.NotFoundError);
  });

  test('an upload over max_file_bytes is refused with file_too_large and not stored', async () => {
    const error = await upload(200_001).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(413);
    expect((error as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({ param: 'file', code: 'file_too_large' });
    expect((await sim.api('/files')).json.data).toEqual([]);
    expect((await upload(200_000)).bytes).toBe(200_000);
  });
});

describe('file and image input tokens', () => {
  test('file_id counts the stored bytes, file_data its decoded bytes, file_url 4 pages, images 85 or 765', async () => {
    const stored = await upload(120_000);
    const data = Buffer.alloc(50_001, 1).toString('base64');
    const input = [
      {
        role: 'user',
        content: [
          { type: 'input_text', text: 'Compare these.' },
          { type: 'input_file', file_id: stored.id },
          { type: 'input_file', filename: 'b.pdf', file_data: `data:application/pdf;base64,${data}` },
          { type: 'input_file', file_url: 'https://example.com/c.pdf' },
          { type: 'input_image', image_url: 'https://example.com/d.png', detail: 'low' },
          { type: 'input_image', image_url: 'https://example.com/e.png', detail: 'high' },
        ],
      },
    ];
    const stubbed = [
      {
        role: 'user',
        content: [
          { type: 'input_text', text: 'Compare these.' },
          { type: 'input_file' },
          { type: 'input_file' },
          { type: 'input_file' },
          { type: 'input_image' },
          { type: 'input_image' },
        ],
      },
    ];
    const response = await sim.client.responses.create({ model: 'gpt-5', instructions: 'Be exact.', input: input as never });
    const expected = textTokens('Be exact.', stubbed) + pages(120_000) * 1000 + pages(50_001) * 1000 + 4 * 1000 + 85 + 765;
    expect(response.usage!.input_tokens).toBe(expected);
    expect(response.usage!.input_tokens).toBe(textTokens('Be exact.', stubbed) + 3000 + 2000 + 4000 + 850);
  });

  test('a file is part of the cacheable prefix: sending it again hits the cache', async () => {
    const stored = await upload(100_000);
    const ask = (question: string) =>
      sim.client.responses.create({
        model: 'gpt-5',
        input: [
          {
            role: 'user',
            content: [
              { type: 'input_file', file_id: stored.id },
              { type: 'input_text', text: question },
            ],
          },
        ],
      });
    const first = await ask('What is on page 1?');
    const second = await ask('And on page 2?');
    expect(first.usage!.input_tokens_details.cached_tokens).toBe(0);
    expect(second.usage!.input_tokens_details.cached_tokens).toBeGreaterThanOrEqual(1024);
    expect(second.usage!.input_tokens_details.cached_tokens).toBeLessThanOrEqual(second.usage!.input_tokens);
  });

  test('an unknown file_id is a 404 file_not_found naming the part', async () => {
    const res = await sim.api('/responses', {
      body: {
        model: 'gpt-5',
        input: [
          {
            role: 'user',
            content: [
              { type: 'input_text', text: 'x' },
              { type: 'input_file', file_id: 'file-missing' },
            ],
          },
        ],
      },
    });
    expect(res.status).toBe(404);
    expect(res.json.error).toMatchObject({ type: 'invalid_request_error', code: 'file_not_found', param: 'input[0].content[1].file_id' });
  });
});

describe('hosted prompts', () => {
  test('a registered prompt is rendered with its variables, echoed, and counted', async () => {
    const registered = await sim.sim('/prompts', { id: 'pmpt_otters', instructions: 'You write about {{animal}}.', input: 'Tell me about {{animal}} in {{place}}.' });
    expect(registered).toEqual({ id: 'pmpt_otters', version: '1' });
    const variables = { animal: 'otters', place: { type: 'input_text', text: 'space' } };
    const response = await sim.client.responses.create({ model: 'gpt-5', prompt: { id: 'pmpt_otters', variables: variables as never } });
    expect(response.prompt).toEqual({ id: 'pmpt_otters', version: '1', variables });
    expect(response.instructions).toBe('You write about otters.');
    expect(response.usage!.input_tokens).toBe(textTokens('You write about otters.', [{ role: 'user', content: 'Tell me about otters in space.' }]));

    // The body as the simulator received it.
    expect(await sim.sim(`/requests/${response.id}`)).toEqual({ model: 'gpt-5', prompt: { id: 'pmpt_otters', variables } });
  });

  test('versions: the newest by default, an older one on request; a file variable counts as a file', async () => {
    await sim.sim('/prompts', { id: 'pmpt_v', instructions: 'First {{x}}.' });
    await sim.sim('/prompts', { id: 'pmpt_v', instructions: 'Second {{x}}.' });
    const newest = await sim.client.responses.create({ model: 'gpt-5', prompt: { id: 'pmpt_v', variables: { x: 'one' } } });
    expect(newest.instructions).toBe('Second one.');
    expect(newest.prompt?.version).toBe('2');
    const older = await sim.client.responses.create({ model: 'gpt-5', prompt: { id: 'pmpt_v', version: '1', variables: { x: 'one' } } });
    expect(older.instructions).toBe('First one.');

    const withFile = await sim.client.responses.create({
      model: 'gpt-5',
      prompt: { id: 'pmpt_v', variables: { x: { type: 'input_file', file_url: 'https://example.com/x.pdf' } } },
    });
    expect(withFile.usage!.input_tokens).toBe(textTokens('Second .', [{ role: 'user', content: [{ type: 'input_file' }] }]) + 4000);
  });

  test('unknown prompt, unknown version and a missing variable are refused', async () => {
    const unknown = await sim.api('/responses', { body: { model: 'gpt-5', prompt: { id: 'pmpt_nope' } } });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toMatchObject({ code: 'prompt_not_found', param: 'prompt.id' });
    await sim.sim('/prompts', { id: 'pmpt_a', instructions: 'Hi {{name}}.' });
    const version = await sim.api('/responses', { body: { model: 'gpt-5', prompt: { id: 'pmpt_a', version: '9', variables: { name: 'x' } } } });
    expect(version.status).toBe(404);
    expect(version.json.error).toMatchObject({ code: 'prompt_not_found', param: 'prompt.version' });
    const missing = await sim.api('/responses', { body: { model: 'gpt-5', prompt: { id: 'pmpt_a' } } });
    expect(missing.status).toBe(400);
    expect(missing.json.error).toMatchObject({ param: 'prompt.variables.name' });
  });
});

describe('reasoning options', () => {
  test('summary yields summary_text items and reasoning tokens; minimal effort is accepted for gpt-5', async () => {
    const summarised = await sim.client.responses.create({ model: 'gpt-5', input: 'Plan.', reasoning: { effort: 'high', summary: 'detailed' } });
    const reasoning = summarised.output.find((item) => item.type === 'reasoning') as OpenAI.Responses.ResponseReasoningItem;
    expect(reasoning.summary.length).toBeGreaterThan(0);
    expect(reasoning.summary.every((part) => part.type === 'summary_text' && part.text.length > 0)).toBe(true);
    expect(summarised.usage!.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
    expect(summarised.reasoning).toEqual({ effort: 'high', summary: 'detailed' });

    const minimal = await sim.client.responses.create({ model: 'gpt-5', input: 'Quick.', reasoning: { effort: 'minimal' } });
    expect(minimal.status).toBe('completed');
    expect(minimal.reasoning?.effort).toBe('minimal');
  });

  test('max_output_tokens below what the run needs ends incomplete with reason max_output_tokens', async () => {
    const response = await sim.client.responses.create({ model: 'gpt-5', input: 'Write a lot.', reasoning: { effort: 'medium' }, max_output_tokens: 100 });
    expect(response.status).toBe('incomplete');
    expect(response.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(response.usage!.output_tokens).toBeLessThanOrEqual(100);
    expect(response.usage!.output_tokens_details.reasoning_tokens).toBe(100);
  });
});
