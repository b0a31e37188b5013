import { describe, expect, it } from 'vitest';
import { type SchemaCheck, attemptModel, attemptParams, attemptVerdict, hasFallbackLeft, refusalOf, truncateHalf, validationProblem } from '../src/index.ts';

/** A stand-in schema check: the schema names the one key the object must have. */
const check: SchemaCheck = (schema, value) => (typeof value === 'object' && value !== null && String(schema.required) in value ? null : `must have ${String(schema.required)}`);
const message = (...content: unknown[]) => [{ type: 'message', role: 'assistant', content }];

describe('attemptVerdict', () => {
  it('retries retryable provider errors and max_output_tokens, not the rest', () => {
    for (const code of ['context_length_exceeded', 'server_error', 'rate_limit_exceeded', 'provider_unavailable']) {
      expect(attemptVerdict({ status: 'failed', error: { code, message: 'x' } }, null, check)).toMatchObject({ kind: 'retryable', error: { code }, rejected: false });
    }
    expect(attemptVerdict({ status: 'failed', error: { code: 'invalid_prompt', message: 'x' } }, null, check)).toEqual({ kind: 'final' });
    expect(attemptVerdict({ status: 'incomplete', incompleteDetails: { reason: 'max_output_tokens' } }, null, check)).toMatchObject({
      kind: 'retryable',
      error: { code: 'max_output_tokens' },
    });
    for (const reason of ['max_turns', 'content_filter']) expect(attemptVerdict({ status: 'incomplete', incompleteDetails: { reason } }, null, check)).toEqual({ kind: 'final' });
    for (const status of ['cancelled', 'expired']) expect(attemptVerdict({ status }, null, check)).toEqual({ kind: 'final' });
  });

  it('retries a refusal', () => {
    const output = message({ type: 'refusal', refusal: 'I cannot help with that.' });
    expect(refusalOf(output)).toBe('I cannot help with that.');
    expect(attemptVerdict({ status: 'completed', output, outputText: '' }, null, check)).toMatchObject({ kind: 'retryable', error: { code: 'refusal' }, rejected: false });
  });

  it('passes a completed output that passes validate, and rejects one that does not', () => {
    const v = { min_output_chars: 5, must_include: ['a', 'b'], json_schema: { required: 'a' } };
    const output = message({ type: 'output_text', text: '{"a":"b"}' });
    expect(attemptVerdict({ status: 'completed', output, outputText: '{"a":"b"}' }, v, check)).toEqual({ kind: 'passed' });
    expect(attemptVerdict({ status: 'completed', output, outputText: '{"b":"a"}' }, v, check)).toMatchObject({
      kind: 'retryable',
      rejected: true,
      error: { code: 'validation_failed', message: 'validate.json_schema: must have a' },
    });
    expect(attemptVerdict({ status: 'completed', output: [], outputText: 'ok' }, null, check)).toEqual({ kind: 'passed' });
  });
});

describe('validationProblem', () => {
  it('names the check that fails', () => {
    expect(validationProblem('abc', { min_output_chars: 4 }, check)).toMatch(/^validate\.min_output_chars: .*3 characters/);
    expect(validationProblem('abc', { must_include: ['a', 'x', 'y'] }, check)).toBe('validate.must_include: the output does not include "x", "y"');
    expect(validationProblem('not json', { json_schema: { required: 'a' } }, check)).toBe('validate.json_schema: the output is not JSON');
    expect(validationProblem('anything', {}, check)).toBeNull();
  });
});

describe('attempts', () => {
  const fallbacks = [
    { model: 'gpt-4.1', max_output_tokens: 100 },
    { instructions: 'Be brief.', input: 'truncate_half' as const, reasoning: { effort: 'low' } },
  ];
  const request = { model: 'o3', input: 'abcdef', reasoning: { effort: 'high' }, instructions: 'Think.' };

  it('builds attempt n from the job request and fallback n - 1', () => {
    expect(attemptParams(request, fallbacks, 1)).toBe(request);
    expect(attemptParams(request, fallbacks, 2)).toEqual({ ...request, model: 'gpt-4.1', max_output_tokens: 100 });
    // Fallbacks do not accumulate: attempt 3 runs the job's model with fallback 2's changes.
    expect(attemptParams(request, fallbacks, 3)).toEqual({ model: 'o3', input: 'abc', reasoning: { effort: 'low' }, instructions: 'Be brief.' });
    expect(attemptModel('o3', fallbacks, 1)).toBe('o3');
    expect(attemptModel('o3', fallbacks, 2)).toBe('gpt-4.1');
    expect(attemptModel('o3', fallbacks, 3)).toBe('o3');
  });

  it('has a fallback left while attempt <= fallbacks', () => {
    expect(hasFallbackLeft({ attempt: 1, fallbacks })).toBe(true);
    expect(hasFallbackLeft({ attempt: 2, fallbacks })).toBe(true);
    expect(hasFallbackLeft({ attempt: 3, fallbacks })).toBe(false);
    expect(hasFallbackLeft({ attempt: 1, fallbacks: null })).toBe(false);
  });

  it('keeps the first half of the input text', () => {
    expect(truncateHalf('abcde')).toBe('abc');
    const items = [
      { role: 'system', content: 'aaaa' },
      { type: 'function_call_output', call_id: 'c', output: 'x' },
      {
        role: 'user',
        content: [
          { type: 'input_text', text: 'bbbb' },
          { type: 'input_image', image_url: 'u' },
          { type: 'input_text', text: 'cccc' },
        ],
      },
      { role: 'user', content: 'dddd' },
    ];
    expect(truncateHalf(items)).toEqual([
      { role: 'system', content: 'aaaa' },
      { type: 'function_call_output', call_id: 'c', output: 'x' },
      {
        role: 'user',
        content: [
          { type: 'input_text', text: 'bbbb' },
          { type: 'input_image', image_url: 'u' },
        ],
      },
    ]);
  });
});
