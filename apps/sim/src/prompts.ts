/**
 * Hosted prompts (`pmpt_…`), registered by tests with `POST /sim/prompts` and referenced by a
 * create's `prompt: { id, version?, variables? }`. A prompt has numbered versions (the newest is
 * used when none is asked for). Rendering substitutes `{{name}}` in its instructions and input
 * text with the string (or `input_text`) variables; file and image variables become parts of a
 * user message appended to the prompt's input, so they count like any other input part.
 */
import { z } from 'zod';
import { ApiError, invalidRequest } from './errors.ts';

const registrationSchema = z.strictObject({
  id: z.string().min(1),
  version: z.string().min(1).optional(),
  instructions: z.string(),
  input: z.union([z.string(), z.array(z.looseObject({}))]).optional(),
  model: z.string().min(1).optional(),
});

interface PromptVersion {
  version: string;
  instructions: string;
  input: string | Record<string, unknown>[] | null;
  model: string | null;
}

export interface PromptReference {
  id: string;
  version?: string | null;
  variables?: Record<string, unknown> | null;
}

export interface RenderedPrompt {
  /** Echoed on the Response as `prompt`. */
  echo: { id: string; version: string; variables: Record<string, unknown> | null };
  instructions: string;
  input: Record<string, unknown>[];
  model: string | null;
}

const VARIABLE = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;

export class PromptRegistry {
  #prompts = new Map<string, PromptVersion[]>();

  register(body: unknown): { id: string; version: string } {
    const parsed = registrationSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const param = issue?.path.map(String).join('.') || null;
      throw invalidRequest(`Invalid prompt${param ? ` '${param}'` : ''}: ${issue?.message ?? 'invalid'}`, param);
    }
    const { id, instructions, input, model } = parsed.data;
    const versions = this.#prompts.get(id) ?? [];
    const version = parsed.data.version ?? String(versions.length + 1);
    const entry: PromptVersion = { version, instructions, input: input ?? null, model: model ?? null };
    const existing = versions.findIndex((v) => v.version === version);
    if (existing >= 0) versions[existing] = entry;
    else versions.push(entry);
    this.#prompts.set(id, versions);
    return { id, version };
  }

  render(reference: PromptReference): RenderedPrompt {
    const versions = this.#prompts.get(reference.id);
    if (versions === undefined || versions.length === 0) {
      throw promptNotFound(`Prompt with id '${reference.id}' not found.`, 'prompt.id');
    }
    const wanted = reference.version ?? null;
    const chosen = wanted === null ? versions.at(-1) : versions.find((v) => v.version === wanted);
    if (chosen === undefined) {
      throw promptNotFound(`Version '${wanted}' of prompt '${reference.id}' not found.`, 'prompt.version');
    }
    const variables = reference.variables ?? {};
    const texts = new Map<string, string>();
    const parts: Record<string, unknown>[] = [];
    for (const [name, value] of Object.entries(variables)) {
      if (typeof value === 'string') texts.set(name, value);
      else if (isPart(value, 'input_text')) texts.set(name, String(value['text'] ?? ''));
      else if (isPart(value, 'input_file') || isPart(value, 'input_image')) {
        texts.set(name, '');
        parts.push(value);
      }
    }
    const substitute = (text: string): string =>
      text.replace(VARIABLE, (_match, name: string) => {
        const value = texts.get(name);
        if (value === undefined) {
          throw invalidRequest(`Missing prompt variable: '${name}'.`, `prompt.variables.${name}`, 'missing_prompt_variable');
        }
        return value;
      });
    const input: Record<string, unknown>[] = [];
    if (typeof chosen.input === 'string') input.push({ role: 'user', content: substitute(chosen.input) });
    else if (chosen.input !== null) input.push(...(substituteDeep(chosen.input, substitute) as Record<string, unknown>[]));
    if (parts.length > 0) input.push({ role: 'user', content: parts });
    return {
      echo: { id: reference.id, version: chosen.version, variables: reference.variables ?? null },
      instructions: substitute(chosen.instructions),
      input,
      model: chosen.model,
    };
  }

  clear(): void {
    this.#prompts.clear();
  }
}

function isPart(value: unknown, type: string): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && (value as Record<string, unknown>)['type'] === type;
}

function substituteDeep(value: unknown, substitute: (text: string) => string): unknown {
  if (typeof value === 'string') return substitute(value);
  if (Array.isArray(value)) return value.map((v) => substituteDeep(v, substitute));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === 'type' || k === 'role' ? v : substituteDeep(v, substitute)]));
  }
  return value;
}

function promptNotFound(message: string, param: string): ApiError {
  return new ApiError({ status: 404, type: 'invalid_request_error', message, param, code: 'prompt_not_found' });
}
