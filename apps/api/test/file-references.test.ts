import { describe, expect, test } from 'vitest';
import { collectFileReferences } from '../src/job-preparation/file-references.ts';

const files = (body: unknown, root?: string) =>
  collectFileReferences(body, root)
    .filter((r) => r.kind === 'file')
    .map((r) => [r.path, r.id]);

describe('collectFileReferences', () => {
  test('finds file ids in message content, tool outputs, prompt variables and tools, in request order', () => {
    const body = {
      model: 'o3',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'hi' },
            { type: 'input_file', file_id: 'file-1' },
            { type: 'input_image', file_id: 'file-2' },
          ],
        },
        { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{"file_id":"file-in-arguments"}' },
        {
          type: 'function_call_output',
          call_id: 'c1',
          output: [
            { type: 'input_file', file_id: 'file-3' },
            { type: 'input_image', file_id: 'file-4' },
          ],
        },
        { type: 'custom_tool_call_output', call_id: 'c2', output: [{ type: 'input_file', file_id: 'file-5' }] },
        { role: 'assistant', id: 'msg_1', content: [{ type: 'output_text', text: 'x', annotations: [{ type: 'file_citation', file_id: 'file-6', index: 0 }] }] },
      ],
      prompt: { id: 'pmpt_1', variables: { doc: { type: 'input_file', file_id: 'file-7' }, name: 'Jane' } },
      tools: [
        { type: 'code_interpreter', container: { type: 'auto', file_ids: ['file-8', 'file-9'] } },
        { type: 'image_generation', input_image_mask: { file_id: 'file-10' } },
        { type: 'shell', environment: { type: 'container_auto', file_ids: ['file-11'] } },
      ],
    };
    expect(files(body)).toEqual([
      ['input[0].content[1].file_id', 'file-1'],
      ['input[0].content[2].file_id', 'file-2'],
      ['input[2].output[0].file_id', 'file-3'],
      ['input[2].output[1].file_id', 'file-4'],
      ['input[3].output[0].file_id', 'file-5'],
      ['input[4].content[0].annotations[0].file_id', 'file-6'],
      ['prompt.variables.doc.file_id', 'file-7'],
      ['tools[0].container.file_ids[0]', 'file-8'],
      ['tools[0].container.file_ids[1]', 'file-9'],
      ['tools[1].input_image_mask.file_id', 'file-10'],
      ['tools[2].environment.file_ids[0]', 'file-11'],
    ]);
    expect(collectFileReferences(body).every((r) => r.kind === 'file')).toBe(true);
  });

  test('finds a file id at any depth, under any key the schema lets through loosely', () => {
    const body = { input: [{ type: 'function_call_output', call_id: 'c', output: [{ type: 'something_new', nested: [{ deeper: { file_id: 'file-x' } }] }] }] };
    expect(files(body)).toEqual([['input[0].output[0].nested[0].deeper.file_id', 'file-x']]);
  });

  test('names paths under a root, for bodies that are part of a request', () => {
    expect(files([{ type: 'message', role: 'user', content: [{ type: 'input_file', file_id: 'file-1' }] }], 'items')).toEqual([['items[0].content[0].file_id', 'file-1']]);
  });

  test('reports vector stores, containers and skills named by id, which Longhaul does not track per tenant', () => {
    const body = {
      tools: [
        { type: 'file_search', vector_store_ids: ['vs_1'] },
        { type: 'code_interpreter', container: 'cntr_1' },
        { type: 'shell', environment: { type: 'container_reference', container_id: 'cntr_2' } },
        { type: 'shell', environment: { type: 'container_auto', skills: [{ type: 'skill_reference', skill_id: 'skill_1' }] } },
      ],
    };
    expect(collectFileReferences(body)).toEqual([
      { kind: 'untracked', resource: 'vector_store', path: 'tools[0].vector_store_ids' },
      { kind: 'untracked', resource: 'container', path: 'tools[1].container' },
      { kind: 'untracked', resource: 'container', path: 'tools[2].environment.container_id' },
      { kind: 'untracked', resource: 'skill', path: 'tools[3].environment.skills[0].skill_id' },
    ]);
  });

  test('an empty vector store list names nothing; null ids are absent', () => {
    expect(collectFileReferences({ tools: [{ type: 'file_search', vector_store_ids: [] }], input: [{ role: 'user', content: [{ type: 'input_file', file_id: null }] }] })).toEqual(
      [],
    );
  });

  test('a file id that is not a string is refused rather than skipped', () => {
    expect(collectFileReferences({ tools: [{ type: 'code_interpreter', container: { type: 'auto', file_ids: ['file-1', 7] } }] })).toEqual([
      { kind: 'file', id: 'file-1', path: 'tools[0].container.file_ids[0]' },
      { kind: 'invalid', path: 'tools[0].container.file_ids[1]' },
    ]);
    expect(collectFileReferences({ input: [{ type: 'function_call_output', output: [{ type: 'input_file', file_id: { id: 'file-1' } }] }] })).toEqual([
      { kind: 'invalid', path: 'input[0].output[0].file_id' },
    ]);
    expect(collectFileReferences({ tools: [{ type: 'code_interpreter', container: { type: 'auto', file_ids: 'file-1' } }] })).toEqual([
      { kind: 'invalid', path: 'tools[0].container.file_ids' },
    ]);
  });

  test('does not read names chosen by the caller as references: JSON schemas, string prompt variables, headers, metadata', () => {
    const body = {
      tools: [
        {
          type: 'function',
          name: 'read',
          parameters: { type: 'object', properties: { file_id: { type: 'string' } }, examples: [{ file_id: 'file-example' }] },
        },
        { type: 'mcp', server_label: 'docs', server_url: 'https://example.com/mcp', headers: { file_id: 'file-header' } },
      ],
      text: { format: { type: 'json_schema', name: 'out', schema: { type: 'object', default: { file_id: 'file-default', container: 'x' } } } },
      prompt: { id: 'pmpt_1', variables: { file_id: 'file-text', container: 'text too' } },
      metadata: { file_id: 'file-meta' },
    };
    expect(collectFileReferences(body)).toEqual([]);
  });

  test('walks the values of caller-named records that are objects', () => {
    expect(files({ prompt: { id: 'pmpt_1', variables: { file_id: { type: 'input_file', file_id: 'file-1' } } } })).toEqual([['prompt.variables.file_id.file_id', 'file-1']]);
  });
});
