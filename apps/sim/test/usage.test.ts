import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { cacheablePrefix, PromptCache } from '../src/usage.ts';
import { promptOfTokens, startSim, type TestSim } from './helpers.ts';

let sim: TestSim;

beforeEach(async () => {
  sim = await startSim();
});
afterEach(async () => {
  await sim.close();
});

async function usageOf(body: Record<string, unknown>) {
  const res = await sim.api('/responses', { body: { model: 'gpt-5', ...body } });
  expect(res.status).toBe(200);
  return res.json.usage;
}

describe('prompt caching', () => {
  test('a repeated 1,100-token prefix caches 1024 tokens; 1,300 caches 1280; the first request caches nothing', async () => {
    const short = promptOfTokens(1100, 'alpha');
    const first = await usageOf({ input: `${short} first question` });
    expect(first.input_tokens_details.cached_tokens).toBe(0);
    expect(first.input_tokens).toBe(Math.ceil(`${short} first question`.length / 4));
    const second = await usageOf({ input: `${short} second question` });
    expect(second.input_tokens_details.cached_tokens).toBe(1024);

    const long = promptOfTokens(1300, 'beta');
    expect((await usageOf({ input: `${long} one` })).input_tokens_details.cached_tokens).toBe(0);
    expect((await usageOf({ input: `${long} two` })).input_tokens_details.cached_tokens).toBe(1280);
  });

  test('instructions are part of the prefix', async () => {
    const instructions = promptOfTokens(1200, 'sys');
    await usageOf({ instructions, input: 'a' });
    const usage = await usageOf({ instructions, input: 'b' });
    expect(usage.input_tokens_details.cached_tokens).toBe(1152);
  });

  test('cache is scoped by model and prompt_cache_key; short prefixes never cache', async () => {
    const prompt = promptOfTokens(1500, 'gamma');
    await usageOf({ input: `${prompt}1`, prompt_cache_key: 'tenant-a' });
    expect((await usageOf({ input: `${prompt}2`, prompt_cache_key: 'tenant-b' })).input_tokens_details.cached_tokens).toBe(0);
    expect((await usageOf({ input: `${prompt}3`, prompt_cache_key: 'tenant-a' })).input_tokens_details.cached_tokens).toBe(1408);
    expect((await usageOf({ model: 'o3', input: `${prompt}4`, prompt_cache_key: 'tenant-a' })).input_tokens_details.cached_tokens).toBe(0);

    const small = promptOfTokens(1000, 'delta');
    await usageOf({ input: small });
    expect((await usageOf({ input: small })).input_tokens_details.cached_tokens).toBe(0);
  });

  test('previous_response_id counts the earlier turn as input and as cached prefix', async () => {
    const first = await sim.client.responses.create({ model: 'gpt-5', input: promptOfTokens(2000, 'conv') });
    const next = await sim.client.responses.create({ model: 'gpt-5', input: 'and then?', previous_response_id: first.id });
    const context = first.usage!.input_tokens + (first.usage!.output_tokens - first.usage!.output_tokens_details.reasoning_tokens);
    expect(next.usage!.input_tokens).toBe(context + 3);
    expect(next.usage!.input_tokens_details.cached_tokens).toBe(cacheablePrefix(context));
    expect(next.previous_response_id).toBe(first.id);
  });

  test('PromptCache rounds down to 128-token steps from 1024', () => {
    const cache = new PromptCache();
    const prompt = promptOfTokens(3000, 'unit');
    expect(cache.lookupAndStore('m', prompt)).toEqual({ cachedTokens: 0, writtenTokens: 2944 });
    expect(cache.lookupAndStore('m', prompt.slice(0, 1279 * 4))).toEqual({ cachedTokens: 1152, writtenTokens: 0 });
    expect(cacheablePrefix(1023)).toBe(0);
    expect(cacheablePrefix(1024)).toBe(1024);
    expect(cacheablePrefix(1407)).toBe(1280);
  });
});

describe('reasoning tokens', () => {
  test('grow with effort and are included in output_tokens', async () => {
    const efforts = ['minimal', 'low', 'medium', 'high'] as const;
    const usages = [];
    for (const effort of efforts) {
      const response = await sim.client.responses.create({ model: 'gpt-5', input: 'same prompt', reasoning: { effort } });
      usages.push(response.usage!);
    }
    const reasoning = usages.map((u) => u.output_tokens_details.reasoning_tokens);
    expect(reasoning[0]).toBe(0);
    expect(reasoning[1]!).toBeGreaterThan(reasoning[0]!);
    expect(reasoning[2]!).toBeGreaterThan(reasoning[1]!);
    expect(reasoning[3]!).toBeGreaterThan(reasoning[2]!);
    for (const usage of usages) {
      expect(usage.output_tokens).toBeGreaterThan(usage.output_tokens_details.reasoning_tokens);
      expect(usage.total_tokens).toBe(usage.input_tokens + usage.output_tokens);
    }
  });
});
