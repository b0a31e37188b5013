import { describe, expect, it } from 'vitest';
import {
  checkPromptTraffic,
  choosePromptVersion,
  composePromptRequest,
  extractPromptVariables,
  promptCacheKey,
  renderPromptTemplate,
  staticPrefixChars,
  type PromptTemplate,
} from '../src/index.ts';

/** mulberry32: a small seeded PRNG, so the statistical tests are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const template: PromptTemplate = {
  model: 'o3',
  reasoning: { effort: 'high' },
  instructions: 'You answer for {{company}}. Be brief.',
  input: [
    { role: 'developer', content: 'Examples follow.' },
    {
      role: 'user',
      content: [
        { type: 'input_text', text: 'Customer {{ customer }} asks: {{question}}' },
        { type: 'input_text', text: '{{reference}}' },
      ],
    },
    { role: 'assistant', content: [{ type: 'output_text', text: 'Noted, {{customer}}.' }] },
  ],
};

describe('extractPromptVariables', () => {
  it('finds placeholders in instructions and input text, in order of first appearance, once each', () => {
    expect(extractPromptVariables(template)).toEqual(['company', 'customer', 'question', 'reference']);
  });

  it('ignores text that only looks like a placeholder', () => {
    expect(extractPromptVariables({ instructions: 'Use {{ 1x }}, { {a} }, {{a b}} and {b} as written; {{ok_1-2}} is one.' })).toEqual(['ok_1-2']);
    expect(extractPromptVariables({ input: 'No variables here.' })).toEqual([]);
  });
});

describe('renderPromptTemplate', () => {
  const variables = { company: 'Acme', customer: 'Jane', question: 'Where is my order?', reference: 'Order 42' };

  it('substitutes text variables everywhere and keeps the settings', () => {
    const r = renderPromptTemplate(template, variables);
    expect(r).toEqual({
      ok: true,
      value: {
        model: 'o3',
        reasoning: { effort: 'high' },
        instructions: 'You answer for Acme. Be brief.',
        input: [
          { role: 'developer', content: 'Examples follow.' },
          {
            role: 'user',
            content: [
              { type: 'input_text', text: 'Customer Jane asks: Where is my order?' },
              { type: 'input_text', text: 'Order 42' },
            ],
          },
          { role: 'assistant', content: [{ type: 'output_text', text: 'Noted, Jane.' }] },
        ],
      },
    });
  });

  it('a file or image variable replaces a part whose whole text is its placeholder', () => {
    const file = { type: 'input_file' as const, file_id: 'file_abc' };
    const r = renderPromptTemplate(template, { ...variables, reference: file });
    expect(r.ok && (r.value.input as any)[1].content[1]).toEqual(file);
    const image = { type: 'input_image' as const, image_url: 'https://example.com/a.png', detail: 'auto' };
    const whole = renderPromptTemplate({ input: [{ role: 'user', content: ' {{img}} ' }] }, { img: image });
    expect(whole).toEqual({ ok: true, value: { input: [{ role: 'user', content: [image] }] } });
  });

  it('an input_text variable fills text like a string', () => {
    const r = renderPromptTemplate({ instructions: 'Hi {{name}}' }, { name: { type: 'input_text', text: 'Bo' } });
    expect(r).toEqual({ ok: true, value: { instructions: 'Hi Bo' } });
  });

  it('refuses a file variable inside text', () => {
    const r = renderPromptTemplate(template, { ...variables, company: { type: 'input_file', file_id: 'file_x' } });
    expect(r).toMatchObject({ ok: false, error: { code: 'invalid_prompt_variable', variable: 'company' } });
  });

  it('names the first missing variable, then any unknown one', () => {
    const { question: _q, ...missing } = variables;
    expect(renderPromptTemplate(template, missing)).toMatchObject({ ok: false, error: { code: 'missing_prompt_variable', variable: 'question' } });
    expect(renderPromptTemplate(template, { ...variables, colour: 'red' })).toMatchObject({ ok: false, error: { code: 'unknown_prompt_variable', variable: 'colour' } });
    expect(renderPromptTemplate({ input: 'static' }, { x: '1' })).toMatchObject({ ok: false, error: { code: 'unknown_prompt_variable', variable: 'x' } });
  });

  it('sends a string input as a one-message array, so its serialization never depends on the job', () => {
    expect(renderPromptTemplate({ input: 'Summarise {{doc}}' }, { doc: 'this' })).toEqual({ ok: true, value: { input: [{ role: 'user', content: 'Summarise this' }] } });
  });

  it('does not treat $-patterns in values specially', () => {
    const r = renderPromptTemplate({ instructions: 'Say {{x}}' }, { x: "$& $1 $' costs $5" });
    expect(r).toEqual({ ok: true, value: { instructions: "Say $& $1 $' costs $5" } });
  });
});

describe('composePromptRequest', () => {
  const rendered = { model: 'o3', reasoning: { effort: 'high' }, instructions: 'Static.', input: [{ role: 'user', content: 'T' }] };

  it('lets the job override settings, appends its input after the template, and adds the cache key', () => {
    const out = composePromptRequest(rendered, { prompt: { id: 'prm_1' }, model: 'gpt-5', reasoning: { effort: 'low' }, input: 'Mine', stream: undefined }, 'k');
    expect(out).toEqual({
      model: 'gpt-5',
      reasoning: { effort: 'low' },
      instructions: 'Static.',
      input: [
        { role: 'user', content: 'T' },
        { role: 'user', content: 'Mine' },
      ],
      prompt_cache_key: 'k',
    });
  });

  it('keeps a caller’s cache key and array input', () => {
    const items = [{ role: 'user', content: 'a' }];
    const out = composePromptRequest({ instructions: 'I' }, { prompt_cache_key: 'mine', input: items }, 'k');
    expect(out).toEqual({ instructions: 'I', input: items, prompt_cache_key: 'mine' });
    expect(composePromptRequest({ instructions: 'I' }, {}, 'k')).toEqual({ instructions: 'I', prompt_cache_key: 'k' });
  });
});

describe('caching helpers', () => {
  it('derives a short key, stable per version and distinct across versions', () => {
    expect(promptCacheKey('prm_abc', 2)).toBe(promptCacheKey('prm_abc', 2));
    expect(promptCacheKey('prm_abc', 2)).not.toBe(promptCacheKey('prm_abc', 3));
    expect(promptCacheKey('prm_abc', 2)).not.toBe(promptCacheKey('prm_abd', 2));
    expect(promptCacheKey('prm_0123456789abcdefghijklmn', 123).length).toBeLessThanOrEqual(64);
  });

  it('measures the static head before the first placeholder', () => {
    expect(staticPrefixChars({ instructions: 'abc{{x}}' })).toBe(3);
    expect(staticPrefixChars({ instructions: 'abcd' })).toBe(4);
    expect(staticPrefixChars({ instructions: '{{x}} late' })).toBe(0);
    const t = { instructions: 'I', input: [{ role: 'user', content: 'q={{q}}' }] };
    expect(staticPrefixChars(t)).toBe(`I${JSON.stringify(t.input)}`.indexOf('{{'));
    // Stateless across calls (the global regex must not carry lastIndex over).
    expect(staticPrefixChars({ instructions: 'abc{{x}}' })).toBe(3);
  });
});

describe('A/B traffic', () => {
  it('checks that versions exist, are distinct and weigh something', () => {
    expect(
      checkPromptTraffic(
        [
          { version: 1, weight: 90 },
          { version: 2, weight: 10 },
        ],
        2,
      ),
    ).toMatchObject({ ok: true });
    expect(checkPromptTraffic([{ version: 3, weight: 1 }], 2)).toMatchObject({ ok: false, error: { index: 0 } });
    expect(
      checkPromptTraffic(
        [
          { version: 1, weight: 1 },
          { version: 1, weight: 1 },
        ],
        2,
      ),
    ).toMatchObject({ ok: false, error: { index: 1 } });
    expect(checkPromptTraffic([{ version: 1, weight: 0 }], 2)).toMatchObject({ ok: false });
    expect(
      checkPromptTraffic(
        [
          { version: 1, weight: -1 },
          { version: 2, weight: 5 },
        ],
        2,
      ),
    ).toMatchObject({ ok: false });
  });

  it('maps the random number onto the cumulative weights', () => {
    const split = [
      { version: 1, weight: 90 },
      { version: 2, weight: 10 },
    ];
    expect(choosePromptVersion(split, 0)).toBe(1);
    expect(choosePromptVersion(split, 0.8999)).toBe(1);
    expect(choosePromptVersion(split, 0.9)).toBe(2);
    expect(choosePromptVersion(split, 0.999999)).toBe(2);
    expect(
      choosePromptVersion(
        [
          { version: 1, weight: 0 },
          { version: 4, weight: 3 },
        ],
        0,
      ),
    ).toBe(4);
    expect(
      choosePromptVersion(
        [
          { version: 4, weight: 3 },
          { version: 1, weight: 0 },
        ],
        0.99999,
      ),
    ).toBe(4);
  });

  it('splits traffic in proportion to the weights (seeded sequence)', () => {
    const random = seeded(42);
    const split = [
      { version: 1, weight: 70 },
      { version: 2, weight: 20 },
      { version: 5, weight: 10 },
    ];
    const draws = 20_000;
    const counts = new Map<number, number>();
    for (let i = 0; i < draws; i++) {
      const v = choosePromptVersion(split, random());
      counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([1, 2, 5]);
    for (const { version, weight } of split) {
      const p = weight / 100;
      const sd = Math.sqrt(draws * p * (1 - p));
      // Within 4 standard deviations of the expectation.
      expect(Math.abs(counts.get(version)! - draws * p)).toBeLessThan(4 * sd);
    }
  });
});
