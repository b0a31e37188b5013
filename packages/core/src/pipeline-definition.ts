/**
 * Pipeline definitions (issue 16): the checks a definition passes before it is stored, beyond its
 * shape (which the API checks with the job body's own schemas), and the graph they define. Pure.
 *
 * A step depends on the steps its `depends_on` names and on every step its text refers to
 * (`{{steps.plan.…}}`): a reference is a dependency, so a step never renders before what it reads
 * has finished. The graph must be acyclic; every reference must name a step; `{{item}}` only means
 * something inside a `for_each` step.
 */
import { type PipelineDefinition, type StepDefinition, MAX_PIPELINE_STEPS } from './pipeline.ts';
import { type Reference, TemplateError, parseReferences, wholeReference } from './pipeline-template.ts';

export interface DefinitionProblem {
  message: string;
  /** Where, within the definition: `steps[1].instructions`. */
  param: string;
  code: string;
}

const STEP_NAME = /^[a-z][a-z0-9_]{0,63}$/;

/** Every text of a step that may hold references, with where it is. */
export function stepTexts(step: StepDefinition, index: number): { param: string; text: string }[] {
  const at = `steps[${index}]`;
  const texts: { param: string; text: string }[] = [];
  if (typeof step.instructions === 'string') texts.push({ param: `${at}.instructions`, text: step.instructions });
  if (typeof step.input === 'string') texts.push({ param: `${at}.input`, text: step.input });
  else if (Array.isArray(step.input)) {
    step.input.forEach((item, i) => {
      const content = (item as { content?: unknown })?.content;
      if (typeof content === 'string') texts.push({ param: `${at}.input[${i}].content`, text: content });
      else if (Array.isArray(content))
        content.forEach((part, j) => {
          const text = (part as { text?: unknown })?.text;
          if (typeof text === 'string') texts.push({ param: `${at}.input[${i}].content[${j}].text`, text });
        });
    });
  }
  for (const [name, value] of Object.entries(step.prompt?.variables ?? {})) if (typeof value === 'string') texts.push({ param: `${at}.prompt.variables.${name}`, text: value });
  return texts;
}

/** The steps each step depends on: `depends_on` and the steps its texts and `for_each` refer to. */
export function dependenciesOf(def: PipelineDefinition): Record<string, string[]> {
  const deps: Record<string, string[]> = {};
  def.steps.forEach((step, i) => {
    const named = new Set(step.depends_on ?? []);
    const texts = stepTexts(step, i).map((t) => t.text);
    if (step.for_each) texts.push(step.for_each);
    for (const text of texts) {
      try {
        for (const ref of parseReferences(text)) if (ref.root === 'steps' && ref.step) named.add(ref.step);
      } catch {
        // A malformed reference is checkDefinition's to report.
      }
    }
    deps[step.name] = [...named];
  });
  return deps;
}

/** The steps in an order where each comes after its dependencies (definition order among equals). Assumes no cycle. */
export function stepOrder(def: PipelineDefinition): string[] {
  const deps = dependenciesOf(def);
  const done = new Set<string>();
  const order: string[] = [];
  const visit = (name: string) => {
    if (done.has(name)) return;
    done.add(name);
    for (const d of deps[name] ?? []) if (d in deps) visit(d);
    order.push(name);
  };
  for (const step of def.steps) visit(step.name);
  return order;
}

/** What is wrong with a definition whose shape is valid, or null. */
export function checkDefinition(def: PipelineDefinition): DefinitionProblem | null {
  if (def.steps.length === 0 || def.steps.length > MAX_PIPELINE_STEPS) {
    return { message: `A pipeline has 1 to ${MAX_PIPELINE_STEPS} steps, not ${def.steps.length}.`, param: 'steps', code: 'invalid_value' };
  }
  const index = new Map<string, number>();
  for (const [i, step] of def.steps.entries()) {
    if (!STEP_NAME.test(step.name)) {
      return {
        message: `Invalid step name '${step.name}': lowercase letters, digits and '_', starting with a letter, at most 64.`,
        param: `steps[${i}].name`,
        code: 'invalid_value',
      };
    }
    if (index.has(step.name)) return { message: `Two steps are named '${step.name}'.`, param: `steps[${i}].name`, code: 'duplicate_step' };
    index.set(step.name, i);
  }
  for (const [i, step] of def.steps.entries()) {
    if (step.model === undefined && step.prompt === undefined) {
      return { message: `Step '${step.name}' needs a model (or a prompt that sets one).`, param: `steps[${i}].model`, code: 'missing_required_parameter' };
    }
    for (const [j, name] of (step.depends_on ?? []).entries()) {
      if (!index.has(name))
        return { message: `Step '${step.name}' depends on '${name}', which is not a step of this pipeline.`, param: `steps[${i}].depends_on[${j}]`, code: 'unknown_step' };
      if (name === step.name) return { message: `Step '${step.name}' depends on itself.`, param: `steps[${i}].depends_on[${j}]`, code: 'pipeline_cycle' };
    }
    const texts = stepTexts(step, i);
    if (step.for_each !== undefined) {
      const problem = checkForEach(step, i, index);
      if (problem) return problem;
    }
    for (const { param, text } of texts) {
      const problem = checkReferences(text, param, step, index, step.for_each !== undefined);
      if (problem) return problem;
    }
  }
  const cycle = findCycle(def);
  if (cycle) {
    const i = index.get(cycle[0]!)!;
    return { message: `The steps form a cycle: ${cycle.join(' -> ')}.`, param: `steps[${i}].depends_on`, code: 'pipeline_cycle' };
  }
  return checkOutput(def, index);
}

function parsed(text: string, param: string): Reference[] | DefinitionProblem {
  try {
    return parseReferences(text);
  } catch (err) {
    if (err instanceof TemplateError) return { message: err.message, param, code: 'invalid_reference' };
    throw err;
  }
}

function checkReferences(text: string, param: string, step: StepDefinition, index: Map<string, number>, inForEach: boolean): DefinitionProblem | null {
  const refs = parsed(text, param);
  if (!Array.isArray(refs)) return refs;
  for (const ref of refs) {
    if (ref.root === 'item' && !inForEach) return { message: `${ref.raw} is only defined in a for_each step.`, param, code: 'invalid_reference' };
    if (ref.root !== 'steps') continue;
    if (!index.has(ref.step!)) return { message: `${ref.raw} refers to a step '${ref.step}' this pipeline does not have.`, param, code: 'unknown_reference' };
    if (ref.step === step.name) return { message: `${ref.raw}: step '${step.name}' cannot refer to its own output.`, param, code: 'pipeline_cycle' };
  }
  return null;
}

function checkForEach(step: StepDefinition, i: number, index: Map<string, number>): DefinitionProblem | null {
  const param = `steps[${i}].for_each`;
  let ref: Reference | null;
  try {
    ref = wholeReference(step.for_each!);
  } catch (err) {
    if (err instanceof TemplateError) return { message: err.message, param, code: 'invalid_reference' };
    throw err;
  }
  if (!ref || ref.root === 'item') {
    return { message: `for_each is one reference to an array: {{steps.<name>.output.<field>}} or {{input.<name>}}, not '${step.for_each}'.`, param, code: 'invalid_reference' };
  }
  return checkReferences(step.for_each!, param, step, index, false);
}

function checkOutput(def: PipelineDefinition, index: Map<string, number>): DefinitionProblem | null {
  if (def.output === undefined) return null;
  const entries = typeof def.output === 'string' ? [['', def.output] as const] : Object.entries(def.output);
  for (const [key, text] of entries) {
    const param = key === '' ? 'output' : `output.${key}`;
    const refs = parsed(text, param);
    if (!Array.isArray(refs)) return refs;
    for (const ref of refs) {
      if (ref.root === 'item') return { message: `${ref.raw} is only defined in a for_each step.`, param, code: 'invalid_reference' };
      if (ref.root === 'steps' && !index.has(ref.step!))
        return { message: `${ref.raw} refers to a step '${ref.step}' this pipeline does not have.`, param, code: 'unknown_reference' };
    }
  }
  return null;
}

/** A cycle of the dependency graph (its steps, the first repeated at the end), or null. */
function findCycle(def: PipelineDefinition): string[] | null {
  const deps = dependenciesOf(def);
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (name: string): string[] | null => {
    if (state.get(name) === 'done') return null;
    if (state.get(name) === 'visiting') return [...path.slice(path.indexOf(name)), name];
    state.set(name, 'visiting');
    path.push(name);
    for (const d of deps[name] ?? []) {
      const found = visit(d);
      if (found) return found;
    }
    path.pop();
    state.set(name, 'done');
    return null;
  };
  for (const step of def.steps) {
    const found = visit(step.name);
    if (found) return found;
  }
  return null;
}
