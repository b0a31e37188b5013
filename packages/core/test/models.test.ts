import { describe, expect, it } from 'vitest';
import { checkReasoningEffort, supportedReasoningEfforts } from '../src/index.ts';

describe('reasoning effort by model', () => {
  it('allows minimal on the GPT-5 family only', () => {
    for (const model of ['gpt-5', 'gpt-5-mini', 'gpt-5-nano', 'gpt-5-2025-08-07']) expect(checkReasoningEffort(model, 'minimal')).toEqual({ ok: true });
    for (const model of ['o3', 'o4-mini', 'o3-pro', 'o1', 'o3-2025-04-16']) {
      const result = checkReasoningEffort(model, 'minimal');
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.message).toBe(`Unsupported value: 'minimal' is not supported with the '${model}' model. Supported values are: 'low', 'medium', 'high'.`);
    }
  });

  it('accepts low, medium and high on every known reasoning model', () => {
    for (const model of ['o3', 'o4-mini', 'gpt-5', 'gpt-5-nano']) for (const effort of ['low', 'medium', 'high']) expect(checkReasoningEffort(model, effort).ok).toBe(true);
  });

  it('leaves models it does not know to the provider', () => {
    expect(supportedReasoningEfforts('gpt-5.1')).toBeNull();
    expect(supportedReasoningEfforts('my-compatible-model')).toBeNull();
    expect(checkReasoningEffort('gpt-5.1', 'none')).toEqual({ ok: true });
    expect(checkReasoningEffort('o3-deep-research-custom', 'minimal')).toEqual({ ok: true });
  });
});
