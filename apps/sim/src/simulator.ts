/**
 * The simulator's application layer: owns configuration, stored responses, the prompt cache,
 * stats, the scheduler and the webhook sender, and implements create / retrieve / cancel with
 * OpenAI's semantics. HTTP concerns (auth, fault injection, JSON) live in routes.ts.
 *
 * Invariant: the only scheduled work is (a) one "settled" check per background response at its
 * terminal time, which emits the terminal webhook at most once, (b) webhook sends and (c) the
 * wake-up of each open SSE stream at its next event (streaming.ts).
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { configPatchSchema, resolveConfig, type SimConfig, type SimOptions } from './config.ts';
import { invalidRequest, responseNotFound, responseNotStreamable, streamExpired, type ApiError } from './errors.ts';
import { effortProfile, generate } from './generation.ts';
import { newId } from './ids.ts';
import { createRandom, type Random } from './random.ts';
import { parseCreateRequest, parseDirectives, promptText, type CreateRequest, type Directives } from './request.ts';
import {
  abandonResponse,
  cancelResponse,
  isTerminal,
  renderResponse,
  statusAt,
  terminalAt,
  type SettledOutcome,
  type SimResponse,
} from './responses.ts';
import { Scheduler, type Clock } from './scheduler.ts';
import { countCancel, countCreate, countRetrieve, emptyStats, type SimStats } from './stats.ts';
import { StreamHub } from './streaming.ts';
import { cacheablePrefix, countTokens, PromptCache } from './usage.ts';
import { WebhookSender } from './webhooks.ts';

/** Share of a background response's duration spent `queued`, and its floor in real ms. */
const QUEUED_SHARE = 0.1;
const MIN_QUEUED_MS = 3;
/** Oldest responses are forgotten beyond this many, bounding a long-running dev simulator. */
const MAX_STORED_RESPONSES = 200_000;
export const JOB_ID_METADATA_KEY = 'longhaul_job_id';

/** What a create answers: the Response as JSON, or (stream=true) its event stream. */
export type Created = { kind: 'json'; body: Record<string, unknown> } | { kind: 'stream'; response: SimResponse };

export interface SimulatorDeps {
  clock: Clock;
  logger: Logger;
}

export class Simulator {
  readonly scheduler: Scheduler;
  readonly webhooks: WebhookSender;
  readonly #streams: StreamHub;
  readonly #initial: SimConfig;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #config: SimConfig;
  #stats: SimStats = emptyStats();
  #random: Random;
  #responses = new Map<string, SimResponse>();
  #cache = new PromptCache();

  constructor(options: SimOptions, deps: SimulatorDeps) {
    this.#initial = resolveConfig(options);
    this.#config = structuredClone(this.#initial);
    this.#random = createRandom(this.#config.seed);
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.scheduler = new Scheduler(deps.clock, (error) => this.#logger.error({ err: error }, 'scheduled task failed'));
    this.webhooks = new WebhookSender({
      clock: deps.clock,
      scheduler: this.scheduler,
      logger: deps.logger,
      config: () => this.#config,
      random: () => this.#random,
      stats: () => this.#stats.webhooks,
    });
    this.#streams = new StreamHub({
      clock: deps.clock,
      scheduler: this.scheduler,
      config: () => this.#config,
      random: () => this.#random,
      stats: () => this.#stats.streams,
      onAbandoned: (response) => abandonResponse(response, this.#clock()),
    });
  }

  get config(): SimConfig {
    return this.#config;
  }

  get stats(): SimStats {
    return this.#stats;
  }

  get random(): Random {
    return this.#random;
  }

  now(): number {
    return this.#clock();
  }

  create(body: unknown): Created {
    const request = unwrap(parseCreateRequest(body));
    const background = request.background === true;
    if (background && request.store === false) {
      throw invalidRequest('Background mode requires store=true.', 'store', 'invalid_value');
    }
    const directives = unwrap(parseDirectives(request.metadata));
    const previous = this.#previous(request.previous_response_id);
    const now = this.#clock();
    const response = this.#build(request, directives, previous, now);

    if (response.store) this.#remember(response);
    countCreate(this.#stats, response.id, request.metadata?.[JOB_ID_METADATA_KEY]);
    if (background) this.scheduler.schedule(response.endsAtMs, () => this.#settle(response));
    return response.stream ? { kind: 'stream', response } : { kind: 'json', body: renderResponse(response, now) };
  }

  /** Answers a create with stream=true: the whole event log, live. */
  streamCreated(res: ServerResponse, response: SimResponse): void {
    this.#streams.serve(res, response, null, false);
  }

  /**
   * `GET /v1/responses/{id}?stream=true[&starting_after=N]`: replays the event log after N (from
   * the first event without a cursor), then the live tail. Throws, before writing anything, for a
   * response not created with background=true and stream=true, or older than the resume window.
   */
  resumeStream(res: ServerResponse, id: string, startingAfter: number | null): void {
    const response = this.#find(id);
    if (!response.background || !response.stream) throw responseNotStreamable();
    const windowMs = this.#config.stream_resume_window_ms;
    if (this.#clock() - response.createdAtMs > windowMs) {
      this.#stats.streams.expired++;
      throw streamExpired(windowMs);
    }
    this.#streams.serve(res, response, startingAfter, true);
  }

  retrieve(id: string): Record<string, unknown> {
    const response = this.#find(id);
    countRetrieve(this.#stats, id);
    return renderResponse(response, this.#clock());
  }

  cancel(id: string): Record<string, unknown> {
    const response = this.#find(id);
    const now = this.#clock();
    const wasTerminal = isTerminal(statusAt(response, now));
    const result = cancelResponse(response, now);
    if (!result.ok) {
      throw result.reason === 'not_background'
        ? invalidRequest('Only responses created with background=true can be cancelled.', null, null)
        : invalidRequest(`Cannot cancel a ${result.status} response.`, null, null);
    }
    countCancel(this.#stats, id);
    if (!wasTerminal) {
      this.#settle(response);
      this.#streams.poke(id);
    }
    return renderResponse(response, now);
  }

  updateConfig(patch: unknown): SimConfig {
    const parsed = configPatchSchema.safeParse(patch);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const param = issue?.path.map(String).join('.') || null;
      throw invalidRequest(`Invalid simulator config${param ? ` '${param}'` : ''}: ${issue?.message ?? 'invalid'}`, param);
    }
    const next = { ...this.#config };
    for (const [key, value] of Object.entries(parsed.data)) {
      if (value !== undefined) (next as Record<string, unknown>)[key] = value;
    }
    this.#config = next;
    if (parsed.data.seed !== undefined) this.#random = createRandom(next.seed);
    return this.#config;
  }

  /** Back to the starting configuration with no responses, cache entries, stats or pending sends. */
  reset(): void {
    this.#streams.cutAll();
    this.scheduler.clear();
    this.webhooks.reset();
    this.#config = structuredClone(this.#initial);
    this.#random = createRandom(this.#config.seed);
    this.#responses.clear();
    this.#cache.clear();
    this.#stats = emptyStats();
  }

  async close(): Promise<void> {
    this.#streams.close();
    this.scheduler.close();
    await this.webhooks.close();
  }

  #build(
    request: CreateRequest,
    directives: Directives,
    previous: SimResponse | null,
    now: number,
  ): SimResponse {
    const background = request.background === true;
    const stream = request.stream === true;
    const effort = request.reasoning?.effort ?? 'medium';
    const summary = request.reasoning?.summary ?? request.reasoning?.generate_summary ?? null;
    const prompt = promptText(request);
    const generation = generate(prompt, effort, summary !== null);

    const ownTokens = countTokens(prompt);
    let inputTokens = ownTokens;
    let cachedTokens: number;
    let cacheWriteTokens: number;
    if (previous !== null) {
      // The previous turn (its input and visible answer) is an exact prefix of this one.
      const context = previous.inputTokens + previous.generation.textTokens;
      inputTokens += context;
      cachedTokens = previous.request.model === request.model ? cacheablePrefix(context) : 0;
      cacheWriteTokens = Math.max(0, cacheablePrefix(inputTokens) - cachedTokens);
    } else {
      const scope = `${request.model}\u0000${request.prompt_cache_key ?? ''}`;
      const lookup = this.#cache.lookupAndStore(scope, prompt);
      cachedTokens = lookup.cachedTokens;
      cacheWriteTokens = lookup.writtenTokens;
    }

    const needed = generation.reasoningTokens + generation.textTokens;
    const maxOutput = request.max_output_tokens ?? null;
    const overBudget = maxOutput !== null && maxOutput < needed;
    let outcome: SettledOutcome = directives.outcome;
    if (outcome === 'completed' && overBudget) outcome = 'incomplete';
    // Cut off by max_output_tokens: the whole budget is spent. Forced by sim_outcome: half the answer.
    const incompleteBudget = overBudget ? maxOutput : Math.floor(needed / 2);

    // A synchronous response is done when created, unless streamed: then it is in progress for
    // its duration (without a queued phase) while the events flow.
    let startsAtMs = now;
    let endsAtMs = now;
    if (background || stream) {
      const simulated = directives.durationMs ?? this.#config.default_duration_ms * effortProfile(effort).durationFactor;
      const real = simulated * this.#config.time_scale;
      const queued = background ? Math.max(real * QUEUED_SHARE, MIN_QUEUED_MS) : 0;
      startsAtMs = now + queued;
      endsAtMs = background ? now + Math.max(real, queued + 1) : now + real;
    }

    return {
      id: newId('resp'),
      background,
      stream,
      store: request.store !== false,
      createdAtMs: now,
      startsAtMs,
      endsAtMs,
      outcome,
      cancelledAtMs: null,
      request: {
        model: request.model,
        instructions: request.instructions ?? null,
        metadata: request.metadata ?? {},
        effort,
        summary,
        maxOutputTokens: maxOutput,
        text: request.text ?? { format: { type: 'text' }, verbosity: 'medium' },
        tools: request.tools ?? [],
        toolChoice: request.tool_choice ?? 'auto',
        temperature: request.temperature ?? 1,
        topP: request.top_p ?? 1,
        parallelToolCalls: request.parallel_tool_calls ?? true,
        previousResponseId: request.previous_response_id ?? null,
        promptCacheKey: request.prompt_cache_key ?? null,
        truncation: request.truncation ?? 'disabled',
        serviceTier: request.service_tier === 'flex' || request.service_tier === 'priority' ? request.service_tier : 'default',
        user: request.user,
        safetyIdentifier: request.safety_identifier ?? null,
      },
      generation,
      incompleteBudget,
      itemIds: { reasoning: newId('rs'), message: newId('msg') },
      inputTokens,
      cachedTokens,
      cacheWriteTokens,
      terminalEventEmitted: false,
    };
  }

  /** Emits the terminal webhook once the response is terminal (called at its end time or on cancel). */
  #settle(response: SimResponse): void {
    if (response.terminalEventEmitted) return;
    const status = statusAt(response, this.#clock());
    if (!isTerminal(status)) {
      this.scheduler.schedule(response.endsAtMs, () => this.#settle(response));
      return;
    }
    response.terminalEventEmitted = true;
    this.#stats.terminal_at_ms[response.id] = terminalAt(response);
    this.webhooks.emit(status, response.id, terminalAt(response));
  }

  #previous(id: string | null | undefined): SimResponse | null {
    if (id === null || id === undefined) return null;
    const previous = this.#responses.get(id);
    if (previous === undefined) {
      throw invalidRequest(`Previous response with id '${id}' not found.`, 'previous_response_id', 'previous_response_not_found');
    }
    return previous;
  }

  #find(id: string): SimResponse {
    const response = this.#responses.get(id);
    if (response === undefined) throw responseNotFound(id);
    return response;
  }

  #remember(response: SimResponse): void {
    this.#responses.set(response.id, response);
    if (this.#responses.size > MAX_STORED_RESPONSES) {
      const oldest = this.#responses.keys().next().value;
      if (oldest !== undefined) this.#responses.delete(oldest);
    }
  }
}

function unwrap<T>(result: { ok: true; value: T } | { ok: false; error: ApiError }): T {
  if (!result.ok) throw result.error;
  return result.value;
}
