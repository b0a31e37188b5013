/**
 * Cost estimates: what a job's token usage costs at list prices. Pure; the price table is
 * configuration the worker passes in (`MODEL_PRICES` merged over `DEFAULT_MODEL_PRICES`).
 *
 * OpenAI's usage already counts reasoning tokens inside `output_tokens` (they are billed as
 * output), and cached input tokens inside `input_tokens`; so the estimate is
 *   (input − cached) × input price + cached × cached-input price + output × output price.
 * Amounts are rounded to the nano-dollar, the precision of the `jobs.cost_usd` column.
 */
import type { Usage } from './reconcile.ts';

/** US dollars per 1M tokens. */
export interface ModelPrice {
  input: number;
  cachedInput: number;
  output: number;
}

export type PriceTable = Readonly<Record<string, ModelPrice>>;

/** OpenAI's standard-tier list prices (USD per 1M tokens) for the models in the guide. */
export const DEFAULT_MODEL_PRICES: PriceTable = {
  'gpt-5': { input: 1.25, cachedInput: 0.125, output: 10 },
  'gpt-5-mini': { input: 0.25, cachedInput: 0.025, output: 2 },
  'gpt-5-nano': { input: 0.05, cachedInput: 0.005, output: 0.4 },
  o3: { input: 2, cachedInput: 0.5, output: 8 },
  'o4-mini': { input: 1.1, cachedInput: 0.275, output: 4.4 },
  'gpt-4.1': { input: 2, cachedInput: 0.5, output: 8 },
  'gpt-4o': { input: 2.5, cachedInput: 1.25, output: 10 },
  'gpt-4o-mini': { input: 0.15, cachedInput: 0.075, output: 0.6 },
};

/** A dated snapshot (`o3-2025-04-16`) is priced as its model (`o3`). */
const SNAPSHOT_SUFFIX = /-\d{4}-\d{2}-\d{2}$/;

/** The price of `model`: an exact entry, else the entry of the model a dated snapshot belongs to. */
export function priceForModel(prices: PriceTable, model: string): ModelPrice | null {
  if (Object.hasOwn(prices, model)) return prices[model]!;
  const base = model.replace(SNAPSHOT_SUFFIX, '');
  return base !== model && Object.hasOwn(prices, base) ? prices[base]! : null;
}

/** Estimated cost in USD of one response's usage, rounded to the nano-dollar. */
export function estimateCostUsd(usage: Usage, price: ModelPrice): number {
  const input = Math.max(0, usage.input_tokens);
  const cached = Math.min(input, Math.max(0, usage.input_tokens_details?.cached_tokens ?? 0));
  const output = Math.max(0, usage.output_tokens);
  // Prices are per 1M tokens, so tokens × price × 1000 is nano-dollars.
  const nanos = Math.round((input - cached) * price.input * 1000) + Math.round(cached * price.cachedInput * 1000) + Math.round(output * price.output * 1000);
  return nanos / 1e9;
}

/**
 * What a processing tier costs against the standard price: the Batch API and flex processing are
 * half price (OpenAI's pricing page lists them at 50 %).
 */
export const TIER_PRICE_FACTOR = { standard: 1, batch: 0.5, flex: 0.5 } as const;
export type PriceTier = keyof typeof TIER_PRICE_FACTOR;

/** The tier a job's response is priced at: a batch job's line at batch prices, a response that ran at flex at flex's. */
export function priceTier(processing: string, serviceTier: string | null | undefined): PriceTier {
  if (processing === 'batch') return 'batch';
  return serviceTier === 'flex' ? 'flex' : 'standard';
}

/** A job's estimated cost at `tier`, or null when its model has no price (or there is no usage). */
export function estimateJobCostUsd(prices: PriceTable, model: string, usage: Usage | null | undefined, tier: PriceTier = 'standard'): number | null {
  if (!usage) return null;
  const price = priceForModel(prices, model);
  if (!price) return null;
  const standard = estimateCostUsd(usage, price);
  return tier === 'standard' ? standard : Math.round(standard * TIER_PRICE_FACTOR[tier] * 1e9) / 1e9;
}
