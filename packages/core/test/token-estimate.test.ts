import { describe, expect, it } from 'vitest';
import { base64DecodedBytes, estimateInputTokens, filePages } from '../src/index.ts';

const pdf = (bytes: number) => `data:application/pdf;base64,${Buffer.alloc(bytes, 7).toString('base64')}`;

describe('estimateInputTokens', () => {
  it('counts ceil(chars / 4) of instructions followed by a string input', () => {
    expect(estimateInputTokens({ model: 'm', input: 'abcde' })).toBe(2);
    expect(estimateInputTokens({ model: 'm', instructions: 'abc', input: 'abcde' })).toBe(2);
    expect(estimateInputTokens({ model: 'm', instructions: 'abcd', input: 'abcde' })).toBe(3);
    expect(estimateInputTokens({ model: 'm', input: '' })).toBe(0);
  });

  it('counts an item list as its JSON serialization', () => {
    const input = [{ role: 'user', content: 'hello there' }];
    expect(estimateInputTokens({ model: 'm', input })).toBe(Math.ceil(JSON.stringify(input).length / 4));
  });

  it('ignores everything but instructions and input (max_output_tokens, tools, metadata)', () => {
    const base = { model: 'm', input: 'x'.repeat(40) };
    expect(estimateInputTokens({ ...base, max_output_tokens: 100_000, tools: [{ type: 'web_search' }], metadata: { a: 'b'.repeat(500) } })).toBe(10);
  });

  it('counts files in 50 000-byte pages of 1 000 tokens, each part standing in the text as a stub', () => {
    const withFile = (part: Record<string, unknown>) => ({
      model: 'm',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'summarize' },
            { type: 'input_file', filename: 'a.pdf', ...part },
          ],
        },
      ],
    });
    const stubbed = [{ role: 'user', content: [{ type: 'input_text', text: 'summarize' }, { type: 'input_file' }] }];
    const text = Math.ceil(JSON.stringify(stubbed).length / 4);
    expect(estimateInputTokens(withFile({ file_data: pdf(10) }))).toBe(text + 1_000);
    expect(estimateInputTokens(withFile({ file_data: pdf(50_000) }))).toBe(text + 1_000);
    expect(estimateInputTokens(withFile({ file_data: pdf(50_001) }))).toBe(text + 2_000);
    expect(estimateInputTokens(withFile({ file_data: pdf(260_000) }))).toBe(text + 6_000);
    expect(estimateInputTokens(withFile({ file_url: 'https://example.com/a.pdf' }))).toBe(text + 4_000);
    expect(estimateInputTokens(withFile({ file_id: 'file-unknown' }))).toBe(text + 1_000);
    const sizes: Record<string, number> = { 'file-big': 120_000 };
    expect(estimateInputTokens(withFile({ file_id: 'file-big' }), { fileBytes: (id) => sizes[id] })).toBe(text + 3_000);
  });

  it('counts images as 85 tokens at low detail and 765 otherwise', () => {
    const image = (detail?: string) => ({ type: 'input_image', image_url: 'https://example.com/a.png', ...(detail ? { detail } : {}) });
    const text = (n: number) => Math.ceil(JSON.stringify([{ role: 'user', content: Array.from({ length: n }, () => ({ type: 'input_image' })) }]).length / 4);
    expect(estimateInputTokens({ model: 'm', input: [{ role: 'user', content: [image('low')] }] })).toBe(text(1) + 85);
    expect(estimateInputTokens({ model: 'm', input: [{ role: 'user', content: [image('high')] }] })).toBe(text(1) + 765);
    expect(estimateInputTokens({ model: 'm', input: [{ role: 'user', content: [image(), image('auto'), image('low')] }] })).toBe(text(3) + 765 * 2 + 85);
  });

  it('counts a part given as an item of its own, and instructions before an item list', () => {
    const input = [{ type: 'input_image', image_url: 'https://example.com/a.png', detail: 'low' }];
    expect(estimateInputTokens({ model: 'm', instructions: 'abcd', input })).toBe(Math.ceil(`abcd${JSON.stringify([{ type: 'input_image' }])}`.length / 4) + 85);
  });

  it('grows with the input', () => {
    const small = estimateInputTokens({ model: 'm', input: 'a'.repeat(100) });
    const large = estimateInputTokens({ model: 'm', input: 'a'.repeat(10_000) });
    expect(small).toBe(25);
    expect(large).toBe(2_500);
  });
});

describe('file sizes', () => {
  it('decodes base64 lengths, with or without a data URL, with padding', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 1000, 1001]) {
      const b64 = Buffer.alloc(n, 1).toString('base64');
      expect(base64DecodedBytes(b64)).toBe(n);
      expect(base64DecodedBytes(`data:application/pdf;base64,${b64}`)).toBe(n);
    }
  });

  it('counts at least one page', () => {
    expect(filePages(0)).toBe(1);
    expect(filePages(50_000)).toBe(1);
    expect(filePages(100_001)).toBe(3);
  });
});
