import { describe, expect, it } from 'vitest';
import { MAX_CACHE_TTL_SECONDS, cacheDecision, responseCacheKey } from '../src/response-cache.ts';

describe('responseCacheKey', () => {
  const base = { model: 'o3', input: [{ role: 'user', content: 'Plan a bridge.' }], reasoning: { effort: 'high', summary: 'auto' } };

  it('does not depend on key order', () => {
    const reordered = { reasoning: { summary: 'auto', effort: 'high' }, input: [{ content: 'Plan a bridge.', role: 'user' }], model: 'o3' };
    expect(responseCacheKey(reordered)).toBe(responseCacheKey(base));
  });

  it('ignores what only changes how the answer is delivered or labelled', () => {
    expect(responseCacheKey({ ...base, metadata: { a: 'b' }, stream: true, stream_options: { include_obfuscation: false }, background: false, store: true })).toBe(
      responseCacheKey(base),
    );
  });

  it('changes with anything the model is asked', () => {
    const key = responseCacheKey(base);
    for (const changed of [
      { ...base, model: 'o4-mini' },
      { ...base, input: [{ role: 'user', content: 'Plan a tunnel.' }] },
      { ...base, reasoning: { effort: 'low', summary: 'auto' } },
      { ...base, instructions: 'Be brief.' },
      { ...base, temperature: 0.5 },
      { ...base, max_output_tokens: 500 },
      { ...base, text: { format: { type: 'json_object' } } },
    ]) {
      expect(responseCacheKey(changed)).not.toBe(key);
    }
  });
});

describe('cacheDecision', () => {
  const params = { model: 'o3', input: 'x' };
  it('caches only when asked, the job first, then the prompt version, then the tenant', () => {
    expect(cacheDecision(params, {})).toEqual({ cache: false, reason: 'not_requested' });
    expect(cacheDecision(params, { tenant: { ttlSeconds: 60 } })).toEqual({ cache: true, ttlSeconds: 60 });
    expect(cacheDecision(params, { prompt: { ttlSeconds: 120 }, tenant: { ttlSeconds: 60 } })).toEqual({ cache: true, ttlSeconds: 120 });
    expect(cacheDecision(params, { job: { ttlSeconds: 30 }, prompt: { ttlSeconds: 120 } })).toEqual({ cache: true, ttlSeconds: 30 });
    expect(cacheDecision(params, { job: false, tenant: { ttlSeconds: 60 } })).toEqual({ cache: false, reason: 'not_requested' });
    expect(cacheDecision(params, { job: { ttlSeconds: 10 * MAX_CACHE_TTL_SECONDS } })).toEqual({ cache: true, ttlSeconds: MAX_CACHE_TTL_SECONDS });
  });

  it('never caches tools, unstored requests, or continuations unless allowed', () => {
    const setting = { job: { ttlSeconds: 60 } };
    expect(cacheDecision({ ...params, tools: [{ type: 'function', name: 'f' }] }, setting)).toEqual({ cache: false, reason: 'tools' });
    expect(cacheDecision({ ...params, tools: [] }, setting)).toEqual({ cache: true, ttlSeconds: 60 });
    expect(cacheDecision({ ...params, store: false }, setting)).toEqual({ cache: false, reason: 'not_stored' });
    expect(cacheDecision({ ...params, previous_response_id: 'resp_1' }, setting)).toEqual({ cache: false, reason: 'continuation' });
    expect(cacheDecision({ ...params, conversation: 'conv_1' }, setting)).toEqual({ cache: false, reason: 'continuation' });
    expect(cacheDecision({ ...params, conversation: 'conv_1' }, { job: { ttlSeconds: 60, continuations: true } })).toEqual({ cache: true, ttlSeconds: 60 });
  });
});
