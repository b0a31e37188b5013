/**
 * The `MODEL_PRICES` setting: JSON of USD per 1M tokens per model, snake case like the rest of
 * the configuration, merged over `DEFAULT_MODEL_PRICES`:
 *   {"o3": {"input": 2, "cached_input": 0.5, "output": 8}, "my-finetune": {"input": 3, "output": 12}}
 * `cached_input` defaults to `input` (no caching discount). Pure: returns a result union.
 */
import { DEFAULT_MODEL_PRICES, type ModelPrice, type PriceTable } from './cost.ts';

export type PriceTableParse = { ok: true; prices: PriceTable } | { ok: false; error: string };

const isPrice = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0;

export function parsePriceTable(json: string | undefined, defaults: PriceTable = DEFAULT_MODEL_PRICES): PriceTableParse {
  if (json === undefined || json.trim() === '') return { ok: true, prices: defaults };
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return { ok: false, error: 'not valid JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, error: 'expected an object of model → {input, cached_input, output}' };
  const prices: Record<string, ModelPrice> = { ...defaults };
  for (const [model, entry] of Object.entries(raw)) {
    const e = entry as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null) return { ok: false, error: `${model}: expected {input, cached_input, output}` };
    const unknownKey = Object.keys(e).find((k) => !['input', 'cached_input', 'output'].includes(k));
    if (unknownKey) return { ok: false, error: `${model}: unknown key '${unknownKey}'` };
    if (!isPrice(e.input) || !isPrice(e.output)) return { ok: false, error: `${model}: input and output must be non-negative numbers (USD per 1M tokens)` };
    if (e.cached_input !== undefined && !isPrice(e.cached_input)) return { ok: false, error: `${model}: cached_input must be a non-negative number` };
    prices[model] = { input: e.input, cachedInput: (e.cached_input as number | undefined) ?? e.input, output: e.output };
  }
  return { ok: true, prices };
}
