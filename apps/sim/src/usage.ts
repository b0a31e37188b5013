/**
 * Token accounting and prompt caching.
 *
 * Tokens are approximated as ceil(chars / 4) of the prompt text (instructions followed by the
 * serialized input). Prompt caching follows OpenAI's rules: prefixes of at least 1024 tokens are
 * cached in 128-token steps, so `cached_tokens` is the longest previously seen prefix rounded down
 * to 1024, 1152, 1280, … Only SHA-256 digests of the prefixes at each 128-token boundary are kept
 * (one Set), never the prompts themselves. Cache entries are scoped by model and prompt_cache_key.
 */
import { createHash } from 'node:crypto';

export const CHARS_PER_TOKEN = 4;
export const CACHE_MIN_TOKENS = 1024;
export const CACHE_STEP_TOKENS = 128;
/** Bounds memory: once this many prefixes are stored, the oldest half is forgotten. */
const MAX_CACHE_ENTRIES = 1_000_000;

export interface ResponseUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number; cache_write_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export function countTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}

/** Rounds a token count down to a cacheable prefix length (0 below the 1024-token minimum). */
export function cacheablePrefix(tokens: number): number {
  if (tokens < CACHE_MIN_TOKENS) return 0;
  return Math.floor(tokens / CACHE_STEP_TOKENS) * CACHE_STEP_TOKENS;
}

export interface CacheLookup {
  cachedTokens: number;
  /** Tokens newly written to the cache by this request. */
  writtenTokens: number;
}

export class PromptCache {
  #entries = new Set<string>();

  /** Finds the longest cached prefix of `prompt` and records all of its cacheable prefixes. */
  lookupAndStore(scope: string, prompt: string): CacheLookup {
    const boundaryChars = CACHE_STEP_TOKENS * CHARS_PER_TOKEN;
    const boundaries = Math.floor(prompt.length / boundaryChars);
    const minBoundary = CACHE_MIN_TOKENS / CACHE_STEP_TOKENS;
    if (boundaries < minBoundary) return { cachedTokens: 0, writtenTokens: 0 };

    const hash = createHash('sha256').update(scope).update('\u0000');
    let cachedTokens = 0;
    let writtenTokens = 0;
    let hitsContiguous = true;
    for (let step = 1; step <= boundaries; step++) {
      hash.update(prompt.slice((step - 1) * boundaryChars, step * boundaryChars));
      if (step < minBoundary) continue;
      const key = hash.copy().digest('base64');
      const tokens = step * CACHE_STEP_TOKENS;
      if (hitsContiguous && this.#entries.has(key)) {
        cachedTokens = tokens;
      } else {
        hitsContiguous = false;
        this.#add(key);
        writtenTokens = tokens - cachedTokens;
      }
    }
    return { cachedTokens, writtenTokens };
  }

  clear(): void {
    this.#entries.clear();
  }

  #add(key: string): void {
    if (this.#entries.size >= MAX_CACHE_ENTRIES) {
      let drop = this.#entries.size / 2;
      for (const old of this.#entries) {
        if (drop-- <= 0) break;
        this.#entries.delete(old);
      }
    }
    this.#entries.add(key);
  }
}

export function buildUsage(init: { inputTokens: number; cachedTokens: number; cacheWriteTokens: number; reasoningTokens: number; textTokens: number }): ResponseUsage {
  const outputTokens = init.reasoningTokens + init.textTokens;
  return {
    input_tokens: init.inputTokens,
    input_tokens_details: { cached_tokens: init.cachedTokens, cache_write_tokens: init.cacheWriteTokens },
    output_tokens: outputTokens,
    output_tokens_details: { reasoning_tokens: init.reasoningTokens },
    total_tokens: init.inputTokens + outputTokens,
  };
}
