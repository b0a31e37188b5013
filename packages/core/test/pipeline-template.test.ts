import { describe, expect, it } from 'vitest';
import { TemplateError, parseReferences, renderTemplate, resolveReference } from '../src/index.ts';

const scope = {
  input: { task: 'Oslo', trip: { days: 3 } },
  steps: {
    plan: { output_text: '{"steps":["a","b"]}', output: { steps: ['a', 'b'] } },
    execute: { output_text: ['A', null], output: [null, null] },
    skipped: { output_text: null, output: null },
  },
};

describe('pipeline templates', () => {
  it('parses references with their roots and paths', () => {
    expect(parseReferences('Do {{ input.task }} in {{steps.plan.output.steps.0}} for {{item.title}}')).toEqual([
      { raw: '{{ input.task }}', root: 'input', path: ['task'] },
      { raw: '{{steps.plan.output.steps.0}}', root: 'steps', step: 'plan', path: ['output', 'steps', '0'] },
      { raw: '{{item.title}}', root: 'item', path: ['title'] },
    ]);
    expect(() => parseReferences('{{steps.plan}}')).toThrow(TemplateError);
    expect(() => parseReferences('{{nope.x}}')).toThrow(TemplateError);
    expect(() => parseReferences('{{}}')).toThrow(TemplateError);
  });

  it('renders strings as they are, other values as JSON, null as empty', () => {
    expect(renderTemplate('Task {{input.task}}, {{input.trip.days}} days', scope)).toBe('Task Oslo, 3 days');
    expect(renderTemplate('{{steps.plan.output.steps}} / {{steps.execute.output_text}}', scope)).toBe('["a","b"] / ["A",null]');
    expect(renderTemplate('[{{steps.skipped.output_text}}]', scope)).toBe('[]');
    expect(renderTemplate('{{item}}', { ...scope, item: 'b' })).toBe('b');
  });

  it('resolves one reference to its value, and names what is missing', () => {
    expect(resolveReference('{{steps.plan.output.steps}}', scope)).toEqual(['a', 'b']);
    expect(() => resolveReference('{{input.missing}}', scope)).toThrow(/input.missing|missing/);
    expect(() => resolveReference('{{steps.other.output_text}}', scope)).toThrow(TemplateError);
    expect(() => renderTemplate('{{item}}', scope)).toThrow(/for_each/);
    expect(() => resolveReference('text {{input.task}}', scope)).toThrow(TemplateError);
  });
});
