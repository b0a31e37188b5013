import { describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_PRICES, type Usage, estimateCostUsd, estimateJobCostUsd, parsePriceTable, priceForModel } from '../src/index.ts';

const usage = (input: number, cached: number, output: number, reasoning: number): Usage => ({
  input_tokens: input,
  input_tokens_details: { cached_tokens: cached },
  output_tokens: output,
  output_tokens_details: { reasoning_tokens: reasoning },
  total_tokens: input + output,
});

describe('cost estimates', () => {
  it('prices uncached input, cached input and output (reasoning included) per 1M tokens', () => {
    // o3: $2 input, $0.50 cached input, $8 output per 1M tokens.
    const cost = estimateCostUsd(usage(1_000_000, 400_000, 500_000, 300_000), DEFAULT_MODEL_PRICES.o3!);
    expect(cost).toBeCloseTo(0.6 * 2 + 0.4 * 0.5 + 0.5 * 8, 9);
  });

  it('bills reasoning tokens as output once (they are already part of output_tokens)', () => {
    const withReasoning = estimateCostUsd(usage(0, 0, 1000, 900), DEFAULT_MODEL_PRICES['gpt-5']!);
    const without = estimateCostUsd(usage(0, 0, 1000, 0), DEFAULT_MODEL_PRICES['gpt-5']!);
    expect(withReasoning).toBe(without);
    expect(withReasoning).toBeCloseTo(0.01, 12);
  });

  it('rounds to the nano-dollar and keeps tiny amounts', () => {
    // gpt-5-nano cached input: $0.005 per 1M = 5 nano-dollars per token.
    expect(estimateCostUsd(usage(3, 3, 0, 0), DEFAULT_MODEL_PRICES['gpt-5-nano']!)).toBe(15e-9);
    expect(estimateCostUsd(usage(0, 0, 0, 0), DEFAULT_MODEL_PRICES.o3!)).toBe(0);
  });

  it('never counts more cached tokens than input tokens, nor negative counts', () => {
    const price = { input: 1, cachedInput: 0.1, output: 1 };
    expect(estimateCostUsd(usage(100, 500, -5, 0), price)).toBeCloseTo(100 * 0.1e-6, 12);
  });

  it('has a price for every model of the guide', () => {
    for (const model of ['gpt-5', 'gpt-5-mini', 'gpt-5-nano', 'o3', 'o4-mini', 'gpt-4.1', 'gpt-4o', 'gpt-4o-mini']) {
      const price = priceForModel(DEFAULT_MODEL_PRICES, model);
      expect(price, model).not.toBeNull();
      expect(price!.cachedInput).toBeLessThanOrEqual(price!.input);
    }
  });

  it('prices a dated snapshot as its model, and nothing else by prefix', () => {
    expect(priceForModel(DEFAULT_MODEL_PRICES, 'o3-2025-04-16')).toBe(DEFAULT_MODEL_PRICES.o3);
    expect(priceForModel(DEFAULT_MODEL_PRICES, 'gpt-5-mini-2025-08-07')).toBe(DEFAULT_MODEL_PRICES['gpt-5-mini']);
    expect(priceForModel(DEFAULT_MODEL_PRICES, 'o3-pro')).toBeNull();
    expect(priceForModel(DEFAULT_MODEL_PRICES, 'toString')).toBeNull();
  });

  it('estimates a job: null without usage or without a price', () => {
    expect(estimateJobCostUsd(DEFAULT_MODEL_PRICES, 'o3', null)).toBeNull();
    expect(estimateJobCostUsd(DEFAULT_MODEL_PRICES, 'unknown-model', usage(10, 0, 10, 0))).toBeNull();
    expect(estimateJobCostUsd({ custom: { input: 1, cachedInput: 1, output: 1 } }, 'custom', usage(10, 0, 10, 0))).toBeCloseTo(20e-6, 12);
  });
});

describe('MODEL_PRICES', () => {
  it('defaults to the built-in table', () => {
    expect(parsePriceTable(undefined)).toEqual({ ok: true, prices: DEFAULT_MODEL_PRICES });
    expect(parsePriceTable('  ')).toEqual({ ok: true, prices: DEFAULT_MODEL_PRICES });
  });

  it('overrides and extends the defaults; cached_input defaults to input', () => {
    const parsed = parsePriceTable('{"o3": {"input": 1, "cached_input": 0.25, "output": 4}, "my-model": {"input": 3, "output": 12}}');
    expect(parsed.ok && parsed.prices.o3).toEqual({ input: 1, cachedInput: 0.25, output: 4 });
    expect(parsed.ok && parsed.prices['my-model']).toEqual({ input: 3, cachedInput: 3, output: 12 });
    expect(parsed.ok && parsed.prices['gpt-5']).toEqual(DEFAULT_MODEL_PRICES['gpt-5']);
  });

  it('refuses malformed tables with a readable reason', () => {
    expect(parsePriceTable('{')).toEqual({ ok: false, error: 'not valid JSON' });
    expect(parsePriceTable('[]').ok).toBe(false);
    expect(parsePriceTable('{"o3": {"input": -1, "output": 1}}')).toMatchObject({ ok: false, error: expect.stringContaining('o3') });
    expect(parsePriceTable('{"o3": {"input": 1, "output": 1, "cached": 1}}')).toMatchObject({ ok: false, error: "o3: unknown key 'cached'" });
  });
});
