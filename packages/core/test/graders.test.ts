import { describe, expect, it } from 'vitest';
import { checkGraderDefinition, type GraderDefinition, gradeOutput, modelGraderRequest, parseModelGrade, type SchemaCheck, similarity } from '../src/index.ts';

/** A small schema check for the tests: `required` keys and top-level `type: object` only (the real one is ajv, in @longhaul/db). */
const schemaCheck: SchemaCheck = (schema, value) => {
  if (schema.type === 'object' && (typeof value !== 'object' || value === null || Array.isArray(value))) return 'must be object';
  for (const key of (schema.required as string[] | undefined) ?? []) {
    if (!(key in (value as Record<string, unknown>))) return `must have required property '${key}'`;
  }
  return null;
};
const deps = { schemaCheck };

describe('exact', () => {
  it('compares with the expected value, trimmed and case-sensitive by default', () => {
    expect(gradeOutput({ type: 'exact' }, { expected: 'Paris' }, '  Paris\n', deps)).toEqual({ score: 1, pass: true });
    const miss = gradeOutput({ type: 'exact' }, { expected: 'Paris' }, 'paris', deps);
    expect(miss).toMatchObject({ score: 0, pass: false });
    expect(miss.detail).toContain('differs');
  });

  it('honours case_sensitive: false and trim: false', () => {
    expect(gradeOutput({ type: 'exact', case_sensitive: false }, { expected: 'Paris' }, 'PARIS', deps).pass).toBe(true);
    expect(gradeOutput({ type: 'exact', trim: false }, { expected: 'Paris' }, 'Paris ', deps).pass).toBe(false);
  });

  it('compares a non-string expected value as its JSON, and fails without one', () => {
    expect(gradeOutput({ type: 'exact' }, { expected: 42 }, '42', deps).pass).toBe(true);
    expect(gradeOutput({ type: 'exact' }, {}, 'anything', deps)).toEqual({ score: 0, pass: false, detail: 'the item has no expected value' });
  });
});

describe('contains', () => {
  it('looks for value, else the expected value', () => {
    expect(gradeOutput({ type: 'contains', value: 'refund' }, { expected: 'ignored' }, 'We will refund you.', deps).pass).toBe(true);
    expect(gradeOutput({ type: 'contains' }, { expected: 'Paris' }, 'The capital is Paris.', deps).pass).toBe(true);
    expect(gradeOutput({ type: 'contains' }, { expected: 'Paris' }, 'The capital is paris.', deps).pass).toBe(false);
    expect(gradeOutput({ type: 'contains', case_sensitive: false }, { expected: 'Paris' }, 'The capital is paris.', deps).pass).toBe(true);
  });
});

describe('regex', () => {
  it('matches the pattern with its flags', () => {
    expect(gradeOutput({ type: 'regex', pattern: '^order #\\d+$' }, {}, 'order #123', deps).pass).toBe(true);
    expect(gradeOutput({ type: 'regex', pattern: '^order #\\d+$' }, {}, 'Order #123', deps).pass).toBe(false);
    expect(gradeOutput({ type: 'regex', pattern: '^order #\\d+$', flags: 'i' }, {}, 'Order #123', deps).pass).toBe(true);
  });

  it('is the same on every call even with the g flag (a fresh RegExp each time)', () => {
    const def: GraderDefinition = { type: 'regex', pattern: 'a', flags: 'g' };
    expect([1, 2, 3].map(() => gradeOutput(def, {}, 'a', deps).pass)).toEqual([true, true, true]);
  });
});

describe('json_schema', () => {
  const def: GraderDefinition = { type: 'json_schema', schema: { type: 'object', required: ['name'] } };

  it('passes JSON that validates, and says what is wrong otherwise', () => {
    expect(gradeOutput(def, {}, '{"name":"Ada"}', deps)).toEqual({ score: 1, pass: true });
    expect(gradeOutput(def, {}, '{"age":3}', deps)).toEqual({ score: 0, pass: false, detail: "must have required property 'name'" });
    expect(gradeOutput(def, {}, 'Sure! {"name":"Ada"}', deps)).toEqual({ score: 0, pass: false, detail: 'the output is not JSON' });
  });
});

describe('numeric', () => {
  it('reads the first number of the output and compares it with the expected number', () => {
    expect(gradeOutput({ type: 'numeric' }, { expected: 42 }, 'The answer is 42.', deps)).toEqual({ score: 1, pass: true });
    expect(gradeOutput({ type: 'numeric' }, { expected: '-3.5' }, 'x = -3.5e0', deps).pass).toBe(true);
  });

  it('accepts a difference within the absolute or the relative tolerance', () => {
    expect(gradeOutput({ type: 'numeric', tolerance: 0.5 }, { expected: 10 }, '10.4', deps).pass).toBe(true);
    expect(gradeOutput({ type: 'numeric', tolerance: 0.5 }, { expected: 10 }, '10.6', deps).pass).toBe(false);
    expect(gradeOutput({ type: 'numeric', relative_tolerance: 0.1 }, { expected: 200 }, '219', deps).pass).toBe(true);
    expect(gradeOutput({ type: 'numeric', relative_tolerance: 0.1 }, { expected: 200 }, '221', deps).pass).toBe(false);
  });

  it('gives partial credit outside tolerance, 1 - |diff| / |expected| (at least 0), that a threshold can accept', () => {
    const near = gradeOutput({ type: 'numeric' }, { expected: 100 }, '90', deps);
    expect(near.score).toBeCloseTo(0.9, 10);
    expect(near.pass).toBe(false);
    expect(gradeOutput({ type: 'numeric', threshold: 0.85 }, { expected: 100 }, '90', deps).pass).toBe(true);
    expect(gradeOutput({ type: 'numeric' }, { expected: 100 }, '350', deps).score).toBe(0);
    // Expected 0: the scale is 1.
    expect(gradeOutput({ type: 'numeric' }, { expected: 0 }, '0.25', deps).score).toBeCloseTo(0.75, 10);
  });

  it('fails without a number in the output or the item', () => {
    expect(gradeOutput({ type: 'numeric' }, { expected: 1 }, 'none', deps)).toEqual({ score: 0, pass: false, detail: 'the output has no number' });
    expect(gradeOutput({ type: 'numeric' }, { expected: 'n/a' }, '1', deps).detail).toBe('the item has no expected number');
  });
});

describe('similarity', () => {
  it('is 1 for identical texts and 1 - 3/7 for kitten/sitting', () => {
    expect(similarity('kitten', 'kitten')).toBe(1);
    expect(similarity('kitten', 'sitting')).toBeCloseTo(1 - 3 / 7, 12);
    expect(similarity('', '')).toBe(1);
    expect(similarity('abc', '')).toBe(0);
  });

  it('ignores case and runs of whitespace', () => {
    expect(similarity('Hello   World\n', 'hello world')).toBe(1);
  });

  it('passes at the threshold, 0.8 by default', () => {
    expect(gradeOutput({ type: 'similarity' }, { expected: 'kitten' }, 'kitten', deps)).toEqual({ score: 1, pass: true });
    const grade = gradeOutput({ type: 'similarity' }, { expected: 'sitting' }, 'kitten', deps);
    expect(grade.score).toBeCloseTo(4 / 7, 12);
    expect(grade.pass).toBe(false);
    expect(gradeOutput({ type: 'similarity', threshold: 0.5 }, { expected: 'sitting' }, 'kitten', deps).pass).toBe(true);
  });
});

describe('checkGraderDefinition', () => {
  it('accepts valid definitions', () => {
    const defs: GraderDefinition[] = [
      { type: 'exact', case_sensitive: false },
      { type: 'contains', value: 'x' },
      { type: 'regex', pattern: '\\d+', flags: 'i' },
      { type: 'json_schema', schema: { type: 'object' } },
      { type: 'numeric', tolerance: 0.1, relative_tolerance: 0.01, threshold: 0.9 },
      { type: 'similarity', threshold: 0.7 },
      { type: 'model', model: 'gpt-4.1-mini', rubric: 'Is it polite?' },
    ];
    for (const [i, def] of defs.entries()) expect(checkGraderDefinition(def, i)).toBeNull();
  });

  it('refuses an invalid regular expression, naming the param', () => {
    const problem = checkGraderDefinition({ type: 'regex', pattern: '([a-z' }, 0);
    expect(problem?.param).toBe('graders[0].pattern');
    expect(problem?.message).toMatch(/^invalid regular expression/);
    expect(checkGraderDefinition({ type: 'regex', pattern: 'a', flags: 'q' }, 2)?.param).toBe('graders[2].flags');
  });

  it('names the first wrong field of other kinds', () => {
    expect(checkGraderDefinition(null, 1)).toEqual({ param: 'graders[1]', message: 'a grader is an object' });
    expect(checkGraderDefinition({ type: 'fuzzy' }, 0)?.param).toBe('graders[0].type');
    expect(checkGraderDefinition({ type: 'similarity', threshold: 1.5 }, 0)?.param).toBe('graders[0].threshold');
    expect(checkGraderDefinition({ type: 'numeric', tolerance: -1 }, 0)?.param).toBe('graders[0].tolerance');
    expect(checkGraderDefinition({ type: 'json_schema', schema: 'object' }, 0)?.param).toBe('graders[0].schema');
    expect(checkGraderDefinition({ type: 'exact', trim: 'yes' }, 0)?.param).toBe('graders[0].trim');
    expect(checkGraderDefinition({ type: 'model', rubric: 'Polite?' }, 3)?.param).toBe('graders[3].model');
    expect(checkGraderDefinition({ type: 'model', model: 'gpt-4.1-mini', rubric: ' ' }, 3)?.param).toBe('graders[3].rubric');
  });
});

describe('model grader', () => {
  const def = { type: 'model', model: 'gpt-4.1-mini', rubric: 'The reply apologises and offers a refund.' } as const;

  it('builds a Responses request with the rubric as instructions and a strict score schema', () => {
    const request = modelGraderRequest(def, { expected: 'A refund', variables: { customer: 'Ada' } }, 'Sorry Ada, here is a refund.');
    expect(request.model).toBe('gpt-4.1-mini');
    expect(request.instructions).toContain('The reply apologises and offers a refund.');
    expect(request.input).toContain('<output>\nSorry Ada, here is a refund.\n</output>');
    expect(request.input).toContain('<expected>\nA refund\n</expected>');
    expect(request.input).toContain('"customer": "Ada"');
    const format = (request.text as { format: { type: string; strict: boolean; schema: { required: string[]; properties: Record<string, unknown> } } }).format;
    expect(format.type).toBe('json_schema');
    expect(format.strict).toBe(true);
    expect(format.schema.required).toEqual(['score', 'reasoning']);
    expect(format.schema.properties.score).toMatchObject({ type: 'number', minimum: 0, maximum: 1 });
  });

  it('leaves out what the item does not have', () => {
    const request = modelGraderRequest(def, {}, 'ok');
    expect(request.input).toBe('<output>\nok\n</output>');
  });

  it('parses the grader answer against the threshold (0.5 by default)', () => {
    expect(parseModelGrade('{"score":0.75,"reasoning":"apologises, no refund"}')).toEqual({ score: 0.75, pass: true, detail: 'apologises, no refund' });
    expect(parseModelGrade('{"score":0.75,"reasoning":"x"}', 0.8).pass).toBe(false);
    expect(parseModelGrade('{"score":0.5,"reasoning":""}')).toEqual({ score: 0.5, pass: true });
  });

  it('grades an invalid answer 0, failing, saying why', () => {
    expect(parseModelGrade(null)).toEqual({ score: 0, pass: false, detail: 'the grader model returned no output' });
    expect(parseModelGrade('I think 0.9')).toEqual({ score: 0, pass: false, detail: 'the grader model output is not JSON' });
    expect(parseModelGrade('{"score":1.2,"reasoning":"great"}')).toEqual({ score: 0, pass: false, detail: 'the grader model output has no score from 0 to 1' });
    expect(parseModelGrade('{"reasoning":"great"}').pass).toBe(false);
  });
});
