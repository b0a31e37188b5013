/**
 * The simulator's application layer: owns configuration, stored responses, the prompt cache,
 * stats, the scheduler and the webhook sender, and implements create / retrieve / cancel / delete with
 * OpenAI's semantics. HTTP concerns (auth, fault injection, JSON) live in routes.ts.
 *
 * Invariant: the only scheduled work is (a) one "settled" check per background response at its
 * terminal time, which emits the terminal webhook at most once, (b) webhook sends and (c) the
 * wake-up of each open SSE stream at its next event (streaming.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { JOB_ID_METADATA_KEY } from '@longhaul/core';
import { configPatchSchema, resolveConfig, type SimConfig, type SimOptions } from './config.ts';
import { concatContexts, EMPTY_CONTEXT, inputContext, textContext } from './context.ts';
import { ConversationStore, listItems, normalizeInput, renderConversation, type Conversation, type Item, type ListQuery } from './conversations.ts';
import { BatchStore } from './batches.ts';
import { ApiError, flexResourceUnavailable, invalidRequest, responseNotFound, responseNotStreamable, streamExpired } from './errors.ts';
import { FileStore, readUpload, renderFile } from './files.ts';
import { arithmeticAnswer } from './arithmetic.ts';
import { effortProfile, generate, type Generation, type ReasoningEffort } from './generation.ts';
import { newId } from './ids.ts';
import { InputItemStore, type InputItemsQuery } from './input-items.ts';
import { PromptRegistry, type RenderedPrompt } from './prompts.ts';
import { chance, createRandom, type Random } from './random.ts';
import { RequestLog } from './request-log.ts';
import { outcomeFor, parseCreateRequest, parseDirectives, promptText, type CreateRequest, type Directives, type Outcome } from './request.ts';
import { abandonResponse, cancelResponse, isTerminal, renderResponse, statusAt, terminalAt, type SettledOutcome, type SimResponse } from './responses.ts';
import type { RequestValidator, ValidatedOperation } from './spec-validation.ts';
import { Scheduler, type Clock } from './scheduler.ts';
import { countCancel, countCreate, countRetrieve, emptyStats, type SimStats } from './stats.ts';
import { StreamHub } from './streaming.ts';
import { structuredText } from './structured-output.ts';
import { applyToolTurn, planToolTurn, toolContextText, type ToolPlan } from './tools.ts';
import { countTokens, PromptCache } from './usage.ts';
import { WebhookSender } from './webhooks.ts';

/** Share of a background response's duration spent `queued`, and its floor in real ms. */
const QUEUED_SHARE = 0.1;
const MIN_QUEUED_MS = 3;
/** Oldest responses are forgotten beyond this many, bounding a long-running dev simulator. */
const MAX_STORED_RESPONSES = 200_000;
/** Create bodies kept for `GET /sim/requests/{id}`: the newest this many, and this many characters. */
const MAX_LOGGED_REQUESTS = 10_000;
const MAX_LOGGED_REQUEST_CHARS = 256 * 1024 * 1024;

/** What a create answers: the Response as JSON, or (stream=true) its event stream. */
export type Created = { kind: 'json'; body: Record<string, unknown> } | { kind: 'stream'; response: SimResponse };

export interface SimulatorDeps {
  clock: Clock;
  logger: Logger;
  /** Validates request bodies against OpenAI's spec; null skips that (zod parsing still applies). */
  validator?: RequestValidator | null;
}

export class Simulator {
  readonly scheduler: Scheduler;
  readonly webhooks: WebhookSender;
  /** The Batch API (`/v1/batches`), whose lines are answered by `create`. */
  readonly batches: BatchStore;
  /** Every `/v1` request received (`GET /sim/request-log`). */
  readonly requests = new RequestLog();
  readonly #streams: StreamHub;
  readonly #initial: SimConfig;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #config: SimConfig;
  #stats: SimStats = emptyStats();
  #random: Random;
  #responses = new Map<string, SimResponse>();
  #cache = new PromptCache();
  #files = new FileStore();
  #conversations = new ConversationStore();
  #inputItems = new InputItemStore();
  #prompts = new PromptRegistry();
  #requestLog = new Map<string, { body: unknown; chars: number }>();
  #requestLogChars = 0;
  readonly #validator: RequestValidator | null;

  constructor(options: SimOptions, deps: SimulatorDeps) {
    this.#initial = resolveConfig(options);
    this.#config = structuredClone(this.#initial);
    this.#random = createRandom(this.#config.seed);
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#validator = deps.validator ?? null;
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
    this.batches = new BatchStore({
      clock: deps.clock,
      scheduler: this.scheduler,
      webhooks: this.webhooks,
      config: () => this.#config,
      random: () => this.#random,
      stats: () => this.#stats.batches,
      validate: (body) => this.validate('createBatch', body),
      findFile: (id) => this.#files.find(id, this.#clock()),
      addFile: (file) => this.#files.add(file, this.#config.files_max_total_bytes),
      answerLine: (body) => this.#answerBatchLine(body),
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

  /**
   * `POST /v1/responses`, or (origin `batch`) one line of a batch: not counted as a create and never
   * refused for flex capacity, since a batch line is not a flex request.
   */
  create(body: unknown, origin: 'api' | 'batch' = 'api'): Created {
    this.validate('createResponse', body);
    const request = unwrap(parseCreateRequest(body));
    // Refused before anything is stored, as OpenAI does not bill (or keep) a flex 429.
    if (origin === 'api' && request.service_tier === 'flex' && chance(this.#random, this.#config.flex_unavailable_rate)) {
      this.#stats.flex_unavailable++;
      throw flexResourceUnavailable();
    }
    const background = request.background === true;
    if (background && request.store === false) {
      throw invalidRequest('Background mode requires store=true.', 'store', 'invalid_value');
    }
    if (isSet(request.previous_response_id) && isSet(request.conversation)) {
      throw invalidRequest(
        "Mutually exclusive parameters: Ensure you are only providing one of: 'previous_response_id' or 'conversation'.",
        'conversation',
        'mutually_exclusive_parameters',
      );
    }
    const directives = unwrap(parseDirectives(request.metadata));
    const prompt = isSet(request.prompt) ? this.#prompts.render(request.prompt) : null;
    const model = request.model ?? prompt?.model;
    if (model === undefined || model === null) {
      throw invalidRequest("Missing required parameter: 'model'.", 'model', 'missing_required_parameter');
    }
    const previous = this.#previous(request.previous_response_id);
    const conversation = this.#conversationOf(request.conversation);
    const now = this.#clock();
    const input = effectiveInput(prompt, request.input ?? null);
    const previousOutput = previous && (renderResponse(previous, now)['output'] as Item[]);
    const tools = unwrap(planToolTurn(request, input, { previousOutput, previousHistory: previous?.toolHistory ?? null, conversationItems: conversation?.items ?? null }));
    const response = this.#build(request, { model, prompt, previous, conversation, input, tools }, directives, now);

    if (response.store) this.#remember(response, request.input ?? null);
    this.#logRequest(response.id, body);
    if (origin === 'api') countCreate(this.#stats, response.id, request.metadata?.[JOB_ID_METADATA_KEY]);
    if (background) this.scheduler.schedule(response.endsAtMs, () => this.#settle(response));
    else if (response.conversationTurn !== null) this.scheduler.schedule(response.endsAtMs, () => this.#finishTurn(response));
    if (!background && response.endsAtMs <= now) this.#finishTurn(response);
    return response.stream ? { kind: 'stream', response } : { kind: 'json', body: renderResponse(response, now) };
  }

  /** Throws OpenAI's 400 when `body` does not satisfy the operation's schema in the spec. */
  validate(operation: ValidatedOperation, body: unknown): void {
    const error = this.#validator?.validate(operation, body) ?? null;
    if (error !== null) {
      this.#stats.invalid_requests++;
      throw error;
    }
  }

  /** The create body received for a response, as received (`GET /sim/requests/{id}`). */
  receivedRequest(id: string): unknown {
    const entry = this.#requestLog.get(id);
    if (entry === undefined) throw responseNotFound(id);
    return entry.body;
  }

  registerPrompt(body: unknown): { id: string; version: string } {
    return this.#prompts.register(body);
  }

  createConversation(body: unknown): Record<string, unknown> {
    const payload = (body ?? {}) as { items?: unknown[] | null; metadata?: Record<string, string> | null };
    this.validate('createConversation', payload);
    const metadata = unwrap(parseCreateRequest({ model: 'conversation', metadata: payload.metadata ?? null })).metadata ?? {};
    const rawItems = payload.items ?? [];
    const context = rawItems.length === 0 ? EMPTY_CONTEXT : inputContext(null, rawItems, this.#fileBytes, ['items']);
    const conversation = this.#conversations.create(normalizeInput(rawItems), context, metadata, this.#clock());
    this.#stats.conversations.created++;
    return renderConversation(conversation);
  }

  retrieveConversation(id: string): Record<string, unknown> {
    return renderConversation(this.#conversations.get(id));
  }

  updateConversation(id: string, body: unknown): Record<string, unknown> {
    const conversation = this.#conversations.get(id);
    this.validate('updateConversation', body ?? {});
    const metadata = unwrap(parseCreateRequest({ model: 'conversation', metadata: (body as { metadata: Record<string, string> }).metadata })).metadata;
    conversation.metadata = metadata ?? {};
    return renderConversation(conversation);
  }

  deleteConversation(id: string): Record<string, unknown> {
    this.#conversations.delete(id);
    this.#stats.conversations.deleted++;
    return { id, object: 'conversation.deleted', deleted: true };
  }

  listConversationItems(id: string, query: ListQuery): Record<string, unknown> {
    return listItems(this.#conversations.get(id), query);
  }

  /** `POST /v1/files`: reads the multipart upload, validates its fields and keeps the bytes. */
  async createFile(req: IncomingMessage): Promise<Record<string, unknown>> {
    const upload = await readUpload(req, this.#config.max_file_bytes);
    const fields = upload.fields;
    this.validate('createFile', upload.file === null ? fields : { ...fields, file: upload.file.filename });
    const file = upload.file as NonNullable<typeof upload.file>;
    const now = this.#clock();
    const expiresAfter = fields['expires_after'] as { seconds: number } | undefined;
    const stored = this.#files.add(
      {
        filename: file.filename,
        purpose: fields['purpose'] as string,
        createdAtMs: now,
        expiresAtMs: expiresAfter === undefined ? null : now + expiresAfter.seconds * 1000,
        contentType: file.contentType,
        data: file.data,
      },
      this.#config.files_max_total_bytes,
    );
    this.#stats.files.created++;
    return renderFile(stored);
  }

  retrieveFile(id: string): Record<string, unknown> {
    return renderFile(this.#files.get(id, this.#clock()));
  }

  fileContent(id: string): { data: Buffer; contentType: string; filename: string } {
    const file = this.#files.get(id, this.#clock());
    return { data: file.data, contentType: file.contentType, filename: file.filename };
  }

  deleteFile(id: string): Record<string, unknown> {
    this.#files.delete(id, this.#clock());
    this.#stats.files.deleted++;
    return { id, object: 'file', deleted: true };
  }

  listFiles(query: Record<string, unknown>): Record<string, unknown> {
    return this.#files.list(query, this.#clock());
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

  /**
   * `GET /sim/responses/{id}/timing`: when the simulator took a response's create and when it ends
   * (and, once terminal, when it became so), on its own clock, with the response it continues.
   * Benchmarks time a client's gap between turns from here; it is not a retrieve and is not counted.
   */
  responseTiming(id: string): ResponseTiming {
    const response = this.#find(id);
    return {
      id,
      created_at_ms: response.createdAtMs,
      ends_at_ms: response.endsAtMs,
      terminal_at_ms: this.#stats.terminal_at_ms[id] ?? null,
      previous_response_id: response.request.previousResponseId,
    };
  }

  retrieve(id: string): Record<string, unknown> {
    const response = this.#find(id);
    countRetrieve(this.#stats, id);
    return renderResponse(response, this.#clock());
  }

  /** `DELETE /v1/responses/{id}`: afterwards the response is unknown to every endpoint (its create body stays in `/sim/requests`). */
  deleteResponse(id: string): Record<string, unknown> {
    this.#find(id);
    this.#responses.delete(id);
    this.#inputItems.forget(id);
    return { id, object: 'response.deleted', deleted: true };
  }

  listInputItems(id: string, query: InputItemsQuery): Record<string, unknown> {
    this.#find(id);
    return this.#inputItems.list(id, query);
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
    this.#files.clear();
    this.#conversations.clear();
    this.#inputItems.clear();
    this.#prompts.clear();
    this.batches.clear();
    this.#requestLog.clear();
    this.#requestLogChars = 0;
    this.requests.clear();
    this.#stats = emptyStats();
  }

  async close(): Promise<void> {
    this.#streams.close();
    this.scheduler.close();
    await this.webhooks.close();
  }

  #build(request: CreateRequest, refs: BuildRefs, directives: Directives, now: number): SimResponse {
    const { model, prompt, previous, conversation, input, tools } = refs;
    const background = request.background === true;
    const stream = request.stream === true;
    const effort = request.reasoning?.effort ?? 'medium';
    const summary = request.reasoning?.summary ?? request.reasoning?.generate_summary ?? null;
    const instructions = joinInstructions(prompt?.instructions ?? null, request.instructions ?? null);
    const asked = outcomeFor(directives, model);
    const generation = answerFor(generate(promptText({ ...request, instructions, input }), effort, summary !== null), asked, {
      request,
      input,
      directives,
      turn: tools.turn,
      instructions,
      effort,
    });

    // Context from the previous turn or the conversation comes first, as it does at OpenAI; the
    // prompt cache sees the whole of it, scoped by model and prompt_cache_key.
    const own = inputContext(instructions, input, this.#fileBytes);
    const inherited = previous?.followUp ?? conversation?.context ?? EMPTY_CONTEXT;
    const full = concatContexts(inherited, own);
    if (asked === 'context_length_exceeded' || (directives.contextTokens !== null && full.tokens > directives.contextTokens)) throw contextLengthExceeded();
    const scope = `${model}\u0000${request.prompt_cache_key ?? ''}`;
    const lookup = this.#cache.lookupAndStore(scope, full.text);

    const needed = generation.reasoningTokens + generation.textTokens;
    const maxOutput = request.max_output_tokens ?? null;
    const overBudget = maxOutput !== null && maxOutput < needed;
    let outcome: SettledOutcome = asked === 'failed' ? 'failed' : asked === 'incomplete' ? 'incomplete' : 'completed';
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

    const response: SimResponse = {
      id: newId('resp'),
      background,
      stream,
      store: request.store !== false,
      createdAtMs: now,
      startsAtMs,
      endsAtMs,
      outcome,
      refusal: asked === 'refusal',
      cancelledAtMs: null,
      request: {
        model,
        instructions,
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
        conversationId: conversation?.id ?? null,
        prompt: prompt?.echo ?? null,
        promptCacheKey: request.prompt_cache_key ?? null,
        truncation: request.truncation ?? 'disabled',
        serviceTier: request.service_tier === 'flex' || request.service_tier === 'priority' ? request.service_tier : 'default',
        user: request.user,
        safetyIdentifier: request.safety_identifier ?? null,
      },
      generation,
      incompleteBudget,
      itemIds: { reasoning: newId('rs'), message: newId('msg') },
      inputTokens: full.tokens,
      cachedTokens: Math.min(lookup.cachedTokens, full.tokens),
      cacheWriteTokens: lookup.writtenTokens,
      followUp: full,
      conversationTurn: null,
      terminalEventEmitted: false,
      toolTurn: tools.turn,
      toolHistory: tools.history,
    };

    // What a follow-up turn sees: this context, then the visible answer. It is cached now, so the
    // next turn of a chain or conversation hits it (as OpenAI's cache does after a turn).
    const settled = renderResponse(response, endsAtMs);
    const answer = textContext(String(settled['output_text'] ?? '') + toolContextText(tools.turn));
    response.followUp = concatContexts(full, answer);
    this.#cache.lookupAndStore(scope, response.followUp.text);
    if (conversation !== null) {
      response.conversationTurn = {
        conversationId: conversation.id,
        items: [...normalizeInput(input), ...(settled['output'] as Item[])],
        context: concatContexts(own, answer),
      };
    }
    return response;
  }

  /** Appends a finished response's turn to its conversation, once (completed or incomplete only). */
  #finishTurn(response: SimResponse): void {
    const turn = response.conversationTurn;
    if (turn === null) return;
    const status = statusAt(response, this.#clock());
    if (!isTerminal(status)) return;
    response.conversationTurn = null;
    if (status === 'completed' || status === 'incomplete') this.#conversations.append(turn.conversationId, turn.items, turn.context);
  }

  /** A batch line as a plain create answers it: the Response, or the error it was refused with. */
  #answerBatchLine(body: Record<string, unknown>): { statusCode: number; body: Record<string, unknown> } {
    try {
      const created = this.create(body, 'batch');
      return { statusCode: 200, body: created.kind === 'json' ? created.body : renderResponse(created.response, this.#clock()) };
    } catch (error) {
      if (error instanceof ApiError) return { statusCode: error.status, body: error.toBody() };
      throw error;
    }
  }

  readonly #fileBytes = (fileId: string): number | undefined => this.#files.find(fileId, this.#clock())?.data.length;

  #conversationOf(reference: CreateRequest['conversation']): Conversation | null {
    if (reference === null || reference === undefined) return null;
    return this.#conversations.get(typeof reference === 'string' ? reference : reference.id, 'conversation');
  }

  #logRequest(id: string, body: unknown): void {
    const chars = JSON.stringify(body).length;
    this.#requestLog.set(id, { body, chars });
    this.#requestLogChars += chars;
    for (const [oldId, entry] of this.#requestLog) {
      if (this.#requestLog.size <= MAX_LOGGED_REQUESTS && this.#requestLogChars <= MAX_LOGGED_REQUEST_CHARS) break;
      if (oldId === id) break;
      this.#requestLog.delete(oldId);
      this.#requestLogChars -= entry.chars;
    }
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
    this.#finishTurn(response);
    this.#stats.terminal_at_ms[response.id] = terminalAt(response);
    this.webhooks.emit(status, response.id, terminalAt(response));
  }

  #previous(id: string | null | undefined): SimResponse | null {
    if (id === null || id === undefined) return null;
    const previous = this.#responses.get(id);
    if (previous === undefined) {
      throw new ApiError({
        status: 404,
        type: 'invalid_request_error',
        message: `Previous response with id '${id}' not found.`,
        param: 'previous_response_id',
        code: 'previous_response_not_found',
      });
    }
    return previous;
  }

  #find(id: string): SimResponse {
    const response = this.#responses.get(id);
    if (response === undefined) throw responseNotFound(id);
    return response;
  }

  #remember(response: SimResponse, input: CreateRequest['input']): void {
    this.#responses.set(response.id, response);
    this.#inputItems.remember(response.id, input ?? null);
    if (this.#responses.size > MAX_STORED_RESPONSES) {
      const oldest = this.#responses.keys().next().value;
      if (oldest !== undefined) {
        this.#responses.delete(oldest);
        this.#inputItems.forget(oldest);
      }
    }
  }
}

/** A response's times (ms since the epoch, simulator clock). */
export interface ResponseTiming {
  id: string;
  /** When its create was taken (after its body was read and validated). */
  created_at_ms: number;
  /** When it is (or was) due to end; a cancel ends it earlier. */
  ends_at_ms: number;
  /** When a background response became terminal (its webhook's moment), else null. */
  terminal_at_ms: number | null;
  previous_response_id: string | null;
}

/**
 * A too-long input (`sim_outcome(s)` context_length_exceeded, or more input tokens than
 * `sim_context_tokens`, counting a previous turn's or conversation's context) is refused at create
 * with a 400, background or not, and nothing is stored. That is what OpenAI does: the Responses
 * API's `ResponseErrorCode` (the codes a failed response can carry) has no context_length_exceeded,
 * while create answers `invalid_request_error` / `context_length_exceeded` / param `input` with
 * this message.
 */
function contextLengthExceeded(): ApiError {
  return new ApiError({
    status: 400,
    type: 'invalid_request_error',
    message: 'Your input exceeds the context window of this model. Please adjust your input and try again.',
    param: 'input',
    code: 'context_length_exceeded',
  });
}

/** What a refusal says (as OpenAI's models word it). */
const REFUSAL_TEXT = "I'm sorry, I can't help with that.";
/** A `short` answer: a few characters, for `min_output_chars` validation. */
const SHORT_TEXT = 'Ok.';

/**
 * The generated answer as the tool turn, the outcome and `text.format` shape it. A refusal, a short
 * answer or structured JSON replaces the text whole (no tool-results preamble, which would break the
 * JSON); a turn that only calls tools still writes no message. Otherwise, outside tool turns, an
 * arithmetic question gets just a number (arithmetic.ts).
 */
function answerFor(
  generation: Generation,
  asked: Outcome,
  refs: { request: CreateRequest; input: BuildRefs['input']; directives: Directives; turn: ToolPlan['turn']; instructions: string | null; effort: ReasoningEffort },
): Generation {
  const format = (refs.request.text as { format?: unknown } | null | undefined)?.format;
  const arithmetic = () =>
    refs.turn === null ? arithmeticAnswer({ input: refs.input, instructions: refs.instructions, effort: refs.effort, accuracy: refs.directives.accuracy }) : null;
  const text = asked === 'refusal' ? REFUSAL_TEXT : asked === 'short' ? SHORT_TEXT : (structuredText(format, refs.input, refs.directives.arrayItems) ?? arithmetic());
  if (text === null || (refs.turn !== null && !refs.turn.answers)) return applyToolTurn(generation, refs.turn);
  return { ...generation, text, textTokens: countTokens(text) };
}

interface BuildRefs {
  model: string;
  prompt: RenderedPrompt | null;
  previous: SimResponse | null;
  conversation: Conversation | null;
  /** The request's input after a hosted prompt's. */
  input: string | Record<string, unknown>[] | null;
  tools: ToolPlan;
}

function isSet<T>(value: T | null | undefined): value is T {
  return value !== null && value !== undefined;
}

function joinInstructions(fromPrompt: string | null, fromRequest: string | null): string | null {
  if (fromPrompt === null || fromPrompt === '') return fromRequest;
  return fromRequest === null ? fromPrompt : `${fromPrompt}\n\n${fromRequest}`;
}

/** A hosted prompt's rendered input comes before the request's own. */
function effectiveInput(prompt: RenderedPrompt | null, input: string | Record<string, unknown>[] | null): string | Record<string, unknown>[] | null {
  if (prompt === null || prompt.input.length === 0) return input;
  const own = input === null ? [] : typeof input === 'string' ? [{ role: 'user', content: input }] : input;
  return [...prompt.input, ...own];
}

function unwrap<T>(result: { ok: true; value: T } | { ok: false; error: ApiError }): T {
  if (!result.ok) throw result.error;
  return result.value;
}
