/**
 * Reusable prompts, rendered into a request: step 1 of a job's preparation in the API
 * (apps/api job-preparation/index.ts), and a pipeline step's prompt in the worker. A Longhaul prompt (`prm_…`) is rendered here: the
 * version is the one the job names, else one drawn from the prompt's A/B traffic split, else the
 * current one; the rendered request gets the version's `prompt_cache_key` (see
 * @longhaul/core prompts.ts for why). An OpenAI hosted prompt (`pmpt_…`) is passed through.
 */
import {
  type CacheSetting,
  NotFoundError,
  ValidationError,
  choosePromptVersion,
  composePromptRequest,
  promptCacheKey,
  renderPromptTemplate,
  type PromptTemplate,
  type PromptVariableValue,
} from '@longhaul/core';
import { type Database, getPromptForTenant, getPromptVersion } from '@longhaul/db';

export interface PromptStep {
  params: Record<string, unknown>;
  promptId: string | null;
  promptVersion: number | null;
  /** The version's response-cache default, if it has one. */
  cache: CacheSetting | null;
}

interface PromptReference {
  id: string;
  version?: string | number | null;
  variables?: Record<string, PromptVariableValue>;
}

const LONGHAUL_PROMPT = /^prm_/;
const HOSTED_PROMPT = /^pmpt_/;

/** `random`: uniform in [0, 1), for the A/B draw (tests may pass a fixed sequence). */
export async function applyPrompt(db: Database, tenantId: string, params: Record<string, unknown>, random: () => number = Math.random): Promise<PromptStep> {
  const ref = params.prompt as PromptReference | undefined;
  if (ref === undefined) return { params, promptId: null, promptVersion: null, cache: null };
  if (HOSTED_PROMPT.test(ref.id)) {
    // OpenAI's create body takes the version as a string; everything else goes as given.
    const hosted = typeof ref.version === 'number' ? { ...ref, version: String(ref.version) } : ref;
    return { params: { ...params, prompt: hosted }, promptId: null, promptVersion: null, cache: null };
  }
  if (!LONGHAUL_PROMPT.test(ref.id)) {
    throw new NotFoundError(`No prompt found with id '${ref.id}' (Longhaul prompts are prm_…, OpenAI hosted prompts pmpt_…).`, 'prompt.id', 'prompt_not_found');
  }
  const prompt = await getPromptForTenant(db, tenantId, ref.id);
  if (!prompt) throw new NotFoundError(`No prompt found with id '${ref.id}'.`, 'prompt.id', 'prompt_not_found');

  let version: number;
  if (ref.version !== undefined && ref.version !== null) version = Number(ref.version);
  else if (prompt.traffic && prompt.traffic.length > 0) version = choosePromptVersion(prompt.traffic, random());
  else version = prompt.currentVersion;
  const row = version >= 1 && version <= prompt.latestVersion ? await getPromptVersion(db, tenantId, prompt.id, version) : null;
  if (!row) throw new NotFoundError(`Prompt '${prompt.id}' has no version ${ref.version} (versions 1 to ${prompt.latestVersion}).`, 'prompt.version', 'prompt_version_not_found');

  const rendered = renderPromptTemplate(row.template as PromptTemplate, ref.variables ?? {});
  if (!rendered.ok) throw new ValidationError(rendered.error.message, `prompt.variables.${rendered.error.variable}`, rendered.error.code);
  return {
    params: composePromptRequest(rendered.value, params, promptCacheKey(prompt.id, version)),
    promptId: prompt.id,
    promptVersion: version,
    cache: row.cache ? { ttlSeconds: row.cache.ttl_seconds, continuations: row.cache.continuations } : null,
  };
}
