/**
 * Postgres is the source of truth for every job; Redis only dispatches work. Every query lives in
 * this package (see the query modules) and is scoped by tenant where a tenant is involved.
 */
import { sql } from 'drizzle-orm';
import { bigserial, boolean, index, integer, jsonb, numeric, pgEnum, pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import {
  type Attempt,
  BATCH_STATUSES,
  DELIVERY_STATUSES,
  EVAL_STATUSES,
  type EvalResultStatus,
  type Grade,
  type GraderDefinition,
  EVENT_SOURCES,
  type Fallback,
  JOB_STATUSES,
  type JobError,
  type PipelineDefinition,
  ROLLOUT_STATUSES,
  type RolloutDefinition,
  type RolloutFigures,
  RUN_STATUSES,
  type RunStepState,
  TERMINAL_ROLLOUT_STATUSES,
  type VersionMetrics,
  TERMINAL_RUN_STATUSES,
  TERMINAL_STATUSES,
  type Usage,
  type RequiredAction,
  type Validation,
} from '@longhaul/core';

export const jobStatusEnum = pgEnum('job_status', JOB_STATUSES);
export const eventSourceEnum = pgEnum('event_source', EVENT_SOURCES);
export const runStatusEnum = pgEnum('run_status', RUN_STATUSES);
export const batchStatusEnum = pgEnum('batch_status', BATCH_STATUSES);
export const evalStatusEnum = pgEnum('eval_status', EVAL_STATUSES);
export const rolloutStatusEnum = pgEnum('rollout_status', ROLLOUT_STATUSES);

const createdAt = () => timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow();

export const tenants = pgTable('tenants', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  /** Signs callbacks to jobs' own `callback_url`s (endpoints have their own secrets). */
  callbackSecret: text('callback_secret'),
  /** API requests per minute; null: the deployment default (API_RPM_LIMIT). */
  rpmLimit: integer('rpm_limit'),
  /** Estimated input tokens per minute submitted to the provider; null: the default (TPM_LIMIT). */
  tpmLimit: integer('tpm_limit'),
  /** Response caching for every job of the tenant that does not say otherwise (seconds); null: off. */
  cacheTtlSeconds: integer('cache_ttl_seconds'),
  /** Days a finished job's content (input, output, events, callback bodies and attempts) is kept; null: the deployment default (RETENTION_DAYS); 0: kept until erased. */
  retentionDays: integer('retention_days'),
  createdAt: createdAt(),
});

/**
 * API keys: only a SHA-256 of the key is stored; `prefix` helps humans tell keys apart. `scopes`
 * say what the key may do (`*`: everything); a key past `expiresAt` or with `revokedAt` set is refused.
 */
export const apiKeys = pgTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    keyHash: text('key_hash').notNull().unique(),
    prefix: text('prefix').notNull(),
    name: text('name'),
    scopes: text('scopes').array().notNull().default(sql`'{*}'::text[]`),
    createdAt: createdAt(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }),
    /** Updated at most once a minute per key (not on every request). */
    lastUsedAt: timestamp('last_used_at', { withTimezone: true, mode: 'date' }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [index('api_keys_tenant_idx').on(t.tenantId, t.createdAt)],
);

export const jobs = pgTable(
  'jobs',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    status: jobStatusEnum('status').notNull().default('pending'),
    model: text('model').notNull(),
    /** The Responses create parameters, as validated by the API (without Longhaul's own fields). */
    request: jsonb('request').$type<Record<string, unknown>>().notNull(),
    metadata: jsonb('metadata').$type<Record<string, string>>().notNull().default({}),
    callbackUrl: text('callback_url'),
    responseId: text('response_id').unique(),
    output: jsonb('output').$type<unknown[]>(),
    outputText: text('output_text'),
    usage: jsonb('usage').$type<Usage>(),
    error: jsonb('error').$type<JobError>(),
    incompleteDetails: jsonb('incomplete_details').$type<{ reason?: string }>(),
    /** Provider create attempts: more than one means a create may have been duplicated by a crash. */
    submitAttempts: integer('submit_attempts').notNull().default(0),
    polls: integer('polls').notNull().default(0),
    /** When the worker next expects to look at this job; the sweeper re-dispatches overdue ones. */
    nextCheckAt: timestamp('next_check_at', { withTimezone: true, mode: 'date' }),
    deadlineAt: timestamp('deadline_at', { withTimezone: true, mode: 'date' }).notNull(),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    submittedAt: timestamp('submitted_at', { withTimezone: true, mode: 'date' }),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }),
    cancelRequestedAt: timestamp('cancel_requested_at', { withTimezone: true, mode: 'date' }),
    finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'date' }),
    /** Estimated cost of `usage` at list prices (the worker's price table), USD; null when unpriced. */
    costUsd: numeric('cost_usd', { precision: 20, scale: 9, mode: 'number' }),
    /** The job this one continues (`previous_job_id`); its response is the `previous_response_id`. */
    previousJobId: text('previous_job_id'),
    /** The first job of the chain this job belongs to (its own id when it starts one). */
    threadId: text('thread_id'),
    /** The Longhaul prompt (`prm_…`) and version the request was rendered from. */
    promptId: text('prompt_id'),
    promptVersion: integer('prompt_version'),
    /** Input tokens estimated before submission: what the tenant's tokens-per-minute budget is charged. */
    estimatedInputTokens: integer('estimated_input_tokens'),
    /** The job's completion hint (`expected_duration_seconds`): how long it is expected to take at the provider; shapes its polls. */
    expectedDurationMs: integer('expected_duration_ms'),
    /** The reasoning summary parts of the output (`summary_text` items), kept apart for display. */
    reasoningSummary: jsonb('reasoning_summary').$type<{ type: string; text: string }[]>(),
    /** When the job's content (input, output, metadata, callback bodies) was erased at the tenant's request; what it cost stays. */
    erasedAt: timestamp('erased_at', { withTimezone: true, mode: 'date' }),
    /** Why its content was erased: `request` (DELETE by the tenant), `retention` (the sweeper), `tenant` (the tenant's offboarding). */
    erasedReason: text('erased_reason').$type<'request' | 'retention' | 'tenant'>(),
    /** When the provider confirmed (or reported gone) the deletion of the job's stored response, after an erase that asks for it. */
    providerDeletedAt: timestamp('provider_deleted_at', { withTimezone: true, mode: 'date' }),
    /** The id (never the secret) of the provider key the job's responses were created with (@longhaul/provider keyring). */
    providerKeyId: text('provider_key_id'),
    /**
     * Response caching (@longhaul/core response-cache.ts): the job whose result answers this one.
     * Set while the job waits for that identical job to finish (single flight), and on the hit.
     */
    cachedFrom: text('cached_from'),
    /**
     * Tool-call loops (@longhaul/core tool-loop.ts): the job's current turn (1-based; each turn is
     * one response, `response_id` the current one's), the most turns it may make (null: the job
     * runs no loop, a turn's tool calls are its result), and what it waits for in
     * `requires_action` (with the answers given so far).
     */
    turn: integer('turn').notNull().default(1),
    maxTurns: integer('max_turns'),
    requiredAction: jsonb('required_action').$type<RequiredAction>(),
    /** The tenant's tool executor (`tool_executor.url`): Longhaul runs the loop's tool calls there; null: the tenant answers them. */
    toolExecutorUrl: text('tool_executor_url'),
    /** The cache key this job's request has, when it may be cached: a source settles its entry when it ends. */
    cacheKey: text('cache_key'),
    /** What a cache hit saved: the source's cost (USD). */
    savedUsd: numeric('saved_usd', { precision: 20, scale: 9, mode: 'number' }),
    /**
     * Fallbacks and validation (@longhaul/core fallbacks.ts): what the next attempts change, what
     * an attempt's output must satisfy, the current attempt (1-based; attempt n > 1 runs with
     * fallback n − 1 applied) and the attempts that ended before it.
     */
    fallbacks: jsonb('fallbacks').$type<Fallback[]>(),
    validation: jsonb('validation').$type<Validation>(),
    attempt: integer('attempt').notNull().default(1),
    attempts: jsonb('attempts').$type<Attempt[]>().notNull().default([]),
    /** The pipeline run (`run_…`) whose step this job runs, the step's name and the fan-out element's index (0 for a plain step). */
    runId: text('run_id'),
    runStep: text('run_step'),
    runItem: integer('run_item'),
    /**
     * Cost tiers (@longhaul/core batch.ts, cost.ts): `background` (a background response of its
     * own) or `batch` (a line of a Batch API batch, `batch_id` once collected into one); the tier
     * the final response ran at (its `service_tier`), and what a flex job does when flex stays
     * unavailable (`flex_fallback`: null fails it, `auto` runs it at the standard tier).
     */
    processing: text('processing').$type<'background' | 'batch'>().notNull().default('background'),
    batchId: text('batch_id'),
    serviceTier: text('service_tier'),
    flexFallback: text('flex_fallback').$type<'auto'>(),
    /** The evaluation (`eval_…`) this job answers an item for, or grades one of: admitted at the low lane, after production traffic. */
    evalId: text('eval_id'),
  },
  (t) => [
    index('jobs_tenant_created_idx').on(t.tenantId, t.createdAt.desc(), t.id.desc()),
    index('jobs_tenant_status_created_idx').on(t.tenantId, t.status, t.createdAt.desc(), t.id.desc()),
    index('jobs_active_next_check_idx')
      .on(t.nextCheckAt)
      // Written as "not terminal" (what ACTIVE_STATUSES means): a status added later is in it
      // without naming the new enum value, which Postgres cannot use in the transaction adding it.
      .where(sql.raw(`status not in (${TERMINAL_STATUSES.map((s) => `'${s}'`).join(', ')})`)),
    // Admin search across tenants: newest first, and metadata key/value containment (@>).
    index('jobs_created_idx').on(t.createdAt.desc(), t.id.desc()),
    index('jobs_metadata_idx').using('gin', t.metadata.op('jsonb_path_ops')),
    index('jobs_thread_idx').on(t.threadId, t.createdAt, t.id),
    // A prompt's jobs per version; by creation too: a rollout measures a step's jobs every few seconds.
    index('jobs_prompt_idx').on(t.tenantId, t.promptId, t.promptVersion, t.createdAt),
    index('jobs_cache_waiters_idx').on(t.cachedFrom).where(sql.raw(`status = 'pending' and cached_from is not null`)),
    // Retention: a tenant's finished jobs whose content is still there, oldest first.
    index('jobs_retention_idx').on(t.tenantId, t.finishedAt).where(sql.raw('finished_at is not null and erased_at is null')),
    // Batch jobs waiting for a batch, per tenant and model, oldest first (the collector's scan).
    index('jobs_batch_waiting_idx').on(t.tenantId, t.model, t.createdAt).where(sql.raw(`processing = 'batch' and batch_id is null and status = 'pending'`)),
    index('jobs_batch_idx').on(t.batchId).where(sql.raw('batch_id is not null')),
    // A run's step jobs; one job per (run, step, element): a step's job is created once.
    uniqueIndex('jobs_run_step_idx').on(t.runId, t.runStep, t.runItem).where(sql.raw('run_id is not null')),
    // Erased jobs whose stored response still has to be deleted at the provider.
    index('jobs_provider_delete_idx').on(t.erasedAt).where(sql.raw(`erased_reason in ('request', 'tenant') and provider_deleted_at is null and response_id is not null`)),
  ],
);

/**
 * Reusable prompt templates. `currentVersion` is what a job without an explicit version renders
 * (rolling back points it at an older version); `traffic`, when set, splits such jobs between
 * versions by weight (A/B tests).
 */
export const prompts = pgTable(
  'prompts',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    name: text('name').notNull(),
    description: text('description'),
    currentVersion: integer('current_version').notNull(),
    latestVersion: integer('latest_version').notNull(),
    traffic: jsonb('traffic').$type<{ version: number; weight: number }[]>(),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('prompts_tenant_idx').on(t.tenantId, t.createdAt.desc(), t.id.desc())],
);

/** One immutable version of a prompt: its template and default request settings. */
export const promptVersions = pgTable(
  'prompt_versions',
  {
    promptId: text('prompt_id')
      .notNull()
      .references(() => prompts.id),
    version: integer('version').notNull(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    /** `{ instructions?, input?, model?, reasoning?, max_output_tokens?, text? }` with `{{variable}}` placeholders. */
    template: jsonb('template').$type<Record<string, unknown>>().notNull(),
    /** The variable names the template uses, in order of first appearance. */
    variables: text('variables').array().notNull(),
    note: text('note'),
    /** Response caching for the version's jobs that do not say otherwise: `{ttl_seconds, continuations?}`; null: the tenant's. */
    cache: jsonb('cache').$type<{ ttl_seconds: number; continuations?: boolean }>(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.promptId, t.version] })],
);

/**
 * Gradual rollouts of a prompt version (@longhaul/core rollout.ts). Status and step change only
 * through the core's `rolloutTransition`, under the row's lock, in the transaction that writes
 * the prompt's routing and its prompt_events row. At most one active (running or paused) per prompt.
 */
export const rollouts = pgTable(
  'rollouts',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    promptId: text('prompt_id')
      .notNull()
      .references(() => prompts.id),
    definition: jsonb('definition').$type<RolloutDefinition>().notNull(),
    status: rolloutStatusEnum('status').notNull(),
    stepIndex: integer('step_index').notNull().default(0),
    stepStartedAt: timestamp('step_started_at', { withTimezone: true, mode: 'date' }).notNull(),
    candidateVersion: integer('candidate_version').notNull(),
    baselineVersion: integer('baseline_version').notNull(),
    baselineReference: jsonb('baseline_reference').$type<VersionMetrics>(),
    /** The figures of the latest look, whatever it decided (a wait is not an event, but the admin page shows where the step stands). */
    lastFigures: jsonb('last_figures').$type<RolloutFigures>(),
    /** When a worker next looks at it; null once finished. */
    nextCheckAt: timestamp('next_check_at', { withTimezone: true, mode: 'date' }),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    index('rollouts_prompt_idx').on(t.promptId, t.createdAt.desc()),
    uniqueIndex('rollouts_active_prompt_idx')
      .on(t.promptId)
      .where(sql.raw(`status not in (${TERMINAL_ROLLOUT_STATUSES.map((s) => `'${s}'`).join(', ')})`)),
    index('rollouts_due_idx').on(t.nextCheckAt).where(sql.raw('next_check_at is not null')),
  ],
);

/** Append-only log of a prompt's routing changes: a rollout's start, every decision with its figures, pause, resume, abort. */
export const promptEvents = pgTable(
  'prompt_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    promptId: text('prompt_id')
      .notNull()
      .references(() => prompts.id),
    tenantId: text('tenant_id').notNull(),
    rolloutId: text('rollout_id'),
    type: text('type').notNull(),
    /** The traffic split after the event (null: none), and the version jobs without one run. */
    traffic: jsonb('traffic').$type<{ version: number; weight: number }[]>(),
    currentVersion: integer('current_version').notNull(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('prompt_events_prompt_idx').on(t.promptId, t.id)],
);

/** Evaluation datasets, with immutable versions numbered 1..latest_version like prompts'. */
export const datasets = pgTable(
  'datasets',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    name: text('name').notNull(),
    description: text('description'),
    latestVersion: integer('latest_version').notNull(),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('datasets_tenant_idx').on(t.tenantId, t.createdAt.desc(), t.id.desc())],
);

export const datasetVersions = pgTable(
  'dataset_versions',
  {
    datasetId: text('dataset_id')
      .notNull()
      .references(() => datasets.id, { onDelete: 'cascade' }),
    version: integer('version').notNull(),
    tenantId: text('tenant_id').notNull(),
    itemCount: integer('item_count').notNull(),
    note: text('note'),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.datasetId, t.version] })],
);

/** One item of a dataset version: the prompt's variables, what a good answer is, and the caller's labels. */
export const datasetItems = pgTable(
  'dataset_items',
  {
    datasetId: text('dataset_id').notNull(),
    version: integer('version').notNull(),
    index: integer('index').notNull(),
    variables: jsonb('variables').$type<Record<string, string>>().notNull(),
    expected: jsonb('expected').$type<unknown>(),
    metadata: jsonb('metadata').$type<Record<string, string>>().notNull().default({}),
  },
  (t) => [primaryKey({ columns: [t.datasetId, t.version, t.index] })],
);

/**
 * Evaluation runs (@longhaul/core eval-run.ts). Status changes only through the core's
 * `evalTransition`, in the transaction that writes its eval_events row. The dataset version is
 * copied in as the eval's items would be needed again to re-run it; `dataset_id` is kept as
 * given (no foreign key: a dataset may be deleted once no eval runs on it, the results stay).
 */
export const evals = pgTable(
  'evals',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    promptId: text('prompt_id')
      .notNull()
      .references(() => prompts.id),
    versions: integer('versions').array().notNull(),
    datasetId: text('dataset_id').notNull(),
    datasetVersion: integer('dataset_version').notNull(),
    graders: jsonb('graders').$type<GraderDefinition[]>().notNull(),
    repeats: integer('repeats').notNull(),
    concurrency: integer('concurrency').notNull(),
    status: evalStatusEnum('status').notNull().default('running'),
    error: jsonb('error').$type<JobError>(),
    metadata: jsonb('metadata').$type<Record<string, string>>().notNull().default({}),
    /** The eval this one re-runs (same inputs), if any. */
    rerunOf: text('rerun_of'),
    /** When a worker next ticks it: now when one of its jobs ended, a little later otherwise; null once finished. */
    nextCheckAt: timestamp('next_check_at', { withTimezone: true, mode: 'date' }),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    index('evals_tenant_idx').on(t.tenantId, t.createdAt.desc(), t.id.desc()),
    index('evals_created_idx').on(t.createdAt.desc(), t.id.desc()),
    index('evals_due_idx').on(t.nextCheckAt).where(sql.raw('next_check_at is not null')),
  ],
);

export const evalEvents = pgTable(
  'eval_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    evalId: text('eval_id')
      .notNull()
      .references(() => evals.id),
    tenantId: text('tenant_id').notNull(),
    fromStatus: evalStatusEnum('from_status'),
    toStatus: evalStatusEnum('to_status').notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [index('eval_events_eval_idx').on(t.evalId, t.id)],
);

/**
 * One (version, item, repeat) of an eval: its job, its grader jobs and the output's grades. The
 * output itself is the job's (read through `job_id`), so erasing the job erases it from the eval.
 */
export const evalResults = pgTable(
  'eval_results',
  {
    evalId: text('eval_id')
      .notNull()
      .references(() => evals.id),
    version: integer('version').notNull(),
    itemIndex: integer('item_index').notNull(),
    repeat: integer('repeat').notNull(),
    status: text('status').$type<EvalResultStatus>().notNull().default('pending'),
    jobId: text('job_id'),
    /** The model graders' jobs, by grader index (null for the other graders). */
    graderJobIds: jsonb('grader_job_ids').$type<(string | null)[]>(),
    grades: jsonb('grades').$type<(Grade | null)[]>(),
    error: jsonb('error').$type<JobError>(),
    inputTokens: integer('input_tokens'),
    outputTokens: integer('output_tokens'),
    /** The answer's cost plus its model graders' (USD). */
    costUsd: numeric('cost_usd', { precision: 20, scale: 9, mode: 'number' }),
    graderCostUsd: numeric('grader_cost_usd', { precision: 20, scale: 9, mode: 'number' }),
    /** The answer job's creation to its end. */
    latencyMs: integer('latency_ms'),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.evalId, t.version, t.itemIndex, t.repeat] }),
    index('eval_results_active_idx').on(t.evalId).where(sql.raw(`status in ('running', 'grading')`)),
    // The next results to start, in the order they start.
    index('eval_results_pending_idx').on(t.evalId, t.itemIndex, t.repeat, t.version).where(sql.raw(`status = 'pending'`)),
  ],
);

/**
 * Pipelines (@longhaul/core pipeline.ts): named graphs of job templates, with immutable versions
 * numbered 1..latest_version like prompts'.
 */
export const pipelines = pgTable(
  'pipelines',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    name: text('name').notNull(),
    description: text('description'),
    latestVersion: integer('latest_version').notNull(),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('pipelines_tenant_idx').on(t.tenantId, t.createdAt.desc(), t.id.desc())],
);

export const pipelineVersions = pgTable(
  'pipeline_versions',
  {
    pipelineId: text('pipeline_id')
      .notNull()
      .references(() => pipelines.id),
    version: integer('version').notNull(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    definition: jsonb('definition').$type<PipelineDefinition>().notNull(),
    note: text('note'),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.pipelineId, t.version] })],
);

/**
 * Runs of a pipeline version. Status changes only through the core's `runTransition`, in the
 * transaction that writes the run's event (run_events); its steps' jobs carry `run_id`.
 */
export const pipelineRuns = pgTable(
  'pipeline_runs',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    pipelineId: text('pipeline_id')
      .notNull()
      .references(() => pipelines.id),
    pipelineVersion: integer('pipeline_version').notNull(),
    status: runStatusEnum('status').notNull().default('pending'),
    inputs: jsonb('inputs').$type<Record<string, unknown>>().notNull(),
    steps: jsonb('steps').$type<Record<string, RunStepState>>().notNull().default({}),
    output: jsonb('output').$type<unknown>(),
    error: jsonb('error').$type<JobError>(),
    callbackUrl: text('callback_url'),
    metadata: jsonb('metadata').$type<Record<string, string>>().notNull().default({}),
    /** When a worker next expects to advance the run; the sweeper re-dispatches overdue ones. */
    nextCheckAt: timestamp('next_check_at', { withTimezone: true, mode: 'date' }),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }),
    cancelRequestedAt: timestamp('cancel_requested_at', { withTimezone: true, mode: 'date' }),
    finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    index('pipeline_runs_tenant_idx').on(t.tenantId, t.createdAt.desc(), t.id.desc()),
    index('pipeline_runs_pipeline_idx').on(t.tenantId, t.pipelineId, t.createdAt.desc(), t.id.desc()),
    // The admin UI's runs across tenants, newest first.
    index('pipeline_runs_created_idx').on(t.createdAt.desc(), t.id.desc()),
    index('pipeline_runs_active_next_check_idx')
      .on(t.nextCheckAt)
      .where(sql.raw(`status not in (${TERMINAL_RUN_STATUSES.map((s) => `'${s}'`).join(', ')})`)),
  ],
);

/**
 * Batch API batches (@longhaul/core batch.ts): one tenant's batch jobs of one model, sent as one
 * provider batch. Status changes only through the core's `batchTransition`, in the transaction
 * that writes its batch_events row. `reconciled_at`: every job's line has been applied (or the
 * job failed or re-queued for want of one).
 */
export const batches = pgTable(
  'batches',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    model: text('model').notNull(),
    status: batchStatusEnum('status').notNull().default('building'),
    providerBatchId: text('provider_batch_id').unique(),
    inputFileId: text('input_file_id'),
    /** The provider key the input file was uploaded with: the batch is created, read and cancelled with it. */
    providerKeyId: text('provider_key_id'),
    outputFileId: text('output_file_id'),
    errorFileId: text('error_file_id'),
    jobCount: integer('job_count').notNull(),
    bytes: integer('bytes').notNull(),
    /** The provider's `request_counts` as last read. */
    requestCounts: jsonb('request_counts').$type<{ total: number; completed: number; failed: number }>(),
    /** Why it failed (the provider's `errors`, or Longhaul's own when it could not be sent). */
    error: jsonb('error').$type<JobError>(),
    /** Provider create attempts: more than one means a crash may have left a batch behind (see the README). */
    createAttempts: integer('create_attempts').notNull().default(0),
    /** When a worker next looks at it (send it, poll it, reconcile it). */
    nextCheckAt: timestamp('next_check_at', { withTimezone: true, mode: 'date' }),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    submittedAt: timestamp('submitted_at', { withTimezone: true, mode: 'date' }),
    finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'date' }),
    reconciledAt: timestamp('reconciled_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    index('batches_tenant_idx').on(t.tenantId, t.createdAt.desc(), t.id.desc()),
    index('batches_created_idx').on(t.createdAt.desc(), t.id.desc()),
    index('batches_due_idx').on(t.nextCheckAt).where(sql.raw('reconciled_at is null')),
  ],
);

/** Append-only log of every state change of a batch. */
export const batchEvents = pgTable(
  'batch_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    batchId: text('batch_id')
      .notNull()
      .references(() => batches.id),
    fromStatus: batchStatusEnum('from_status'),
    toStatus: batchStatusEnum('to_status').notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [index('batch_events_batch_idx').on(t.batchId, t.id)],
);

/** Append-only log of every state change of a run (and its steps'). */
export const runEvents = pgTable(
  'run_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    runId: text('run_id')
      .notNull()
      .references(() => pipelineRuns.id),
    tenantId: text('tenant_id').notNull(),
    fromStatus: runStatusEnum('from_status'),
    toStatus: runStatusEnum('to_status').notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [index('run_events_run_idx').on(t.runId, t.id)],
);

/** Files a tenant uploaded through Longhaul to the provider's Files API (id = the provider's id). */
export const files = pgTable(
  'files',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    filename: text('filename').notNull(),
    bytes: integer('bytes').notNull(),
    purpose: text('purpose').notNull(),
    /** The job whose inline file was uploaded automatically, if any. */
    jobId: text('job_id'),
    /** The provider key (its id) the file was uploaded with. */
    providerKeyId: text('provider_key_id'),
    createdAt: createdAt(),
    deletedAt: timestamp('deleted_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [index('files_tenant_idx').on(t.tenantId, t.createdAt.desc(), t.id.desc())],
);

/** Conversations created through Longhaul at the provider (id = the provider's `conv_…`). */
export const conversations = pgTable(
  'conversations',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    metadata: jsonb('metadata').$type<Record<string, string>>().notNull().default({}),
    /** The provider key (its id) the conversation was created with. */
    providerKeyId: text('provider_key_id'),
    createdAt: createdAt(),
    deletedAt: timestamp('deleted_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [index('conversations_tenant_idx').on(t.tenantId, t.createdAt.desc())],
);

/** Append-only log of every state change (and other notable facts) of a job. */
export const jobEvents = pgTable(
  'job_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    jobId: text('job_id')
      .notNull()
      .references(() => jobs.id),
    tenantId: text('tenant_id').notNull(),
    fromStatus: jobStatusEnum('from_status'),
    toStatus: jobStatusEnum('to_status').notNull(),
    source: eventSourceEnum('source').notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [index('job_events_job_idx').on(t.jobId, t.id)],
);

/**
 * The turns of a job's tool-call loop (@longhaul/core tool-loop.ts), one row per turn that ended:
 * its response, what it asked of the client and the answers, and its own usage and cost (the
 * job's row holds their sum). Written by the same statement as the job's change that ends or
 * answers the turn (job-transitions.ts), so a turn is on record exactly when the job moved past it.
 */
export const jobTurns = pgTable(
  'job_turns',
  {
    jobId: text('job_id')
      .notNull()
      .references(() => jobs.id),
    turn: integer('turn').notNull(),
    tenantId: text('tenant_id').notNull(),
    responseId: text('response_id'),
    /** How the turn ended: `requires_action` (it asked for work), or the job's terminal status. */
    status: text('status').notNull(),
    toolCalls: jsonb('tool_calls').$type<unknown[]>().notNull().default([]),
    approvalRequests: jsonb('approval_requests').$type<unknown[]>().notNull().default([]),
    toolOutputs: jsonb('tool_outputs').$type<unknown[]>(),
    approvals: jsonb('approvals').$type<unknown[]>(),
    usage: jsonb('usage').$type<Usage>(),
    costUsd: numeric('cost_usd', { precision: 20, scale: 9, mode: 'number' }),
    endedAt: timestamp('ended_at', { withTimezone: true, mode: 'date' }).notNull(),
    /** When the answers came in, and from whom (`api`: the tenant; `tool_executor`). */
    answeredAt: timestamp('answered_at', { withTimezone: true, mode: 'date' }),
    answeredBy: text('answered_by'),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.turn] })],
);

/**
 * Idempotency keys (IETF draft semantics): one row per (tenant, key), holding a hash of the
 * request that first used it and the job it created. Rows expire after 24 h.
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    key: text('key').notNull(),
    requestHash: text('request_hash').notNull(),
    jobId: text('job_id')
      .notNull()
      .references(() => jobs.id),
    createdAt: createdAt(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.key] }), index('idempotency_keys_expires_idx').on(t.expiresAt)],
);

export const WEBHOOK_INBOX_STATUSES = ['received', 'waiting', 'applied', 'orphan', 'ignored'] as const;
export type WebhookInboxStatus = (typeof WEBHOOK_INBOX_STATUSES)[number];
export const webhookInboxStatusEnum = pgEnum('webhook_inbox_status', WEBHOOK_INBOX_STATUSES);

/**
 * Response cache entries (@longhaul/core response-cache.ts): per tenant and request key, the job
 * whose result answers identical requests. `running` while that job runs (identical requests wait
 * for it: single flight), `ready` once it completed, until `expires_at`. A source that ends any
 * other way removes its entry. The result itself stays on the source job's row.
 */
export const responseCache = pgTable(
  'response_cache',
  {
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    key: text('key').notNull(),
    sourceJobId: text('source_job_id')
      .notNull()
      .references(() => jobs.id),
    status: text('status').$type<'running' | 'ready'>().notNull(),
    ttlSeconds: integer('ttl_seconds').notNull(),
    promptId: text('prompt_id'),
    promptVersion: integer('prompt_version'),
    createdAt: createdAt(),
    /** Null while running; a ready entry answers until then. */
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.key] }), index('response_cache_source_idx').on(t.sourceJobId), index('response_cache_expires_idx').on(t.expiresAt)],
);

/**
 * Inbox of OpenAI webhooks: one row per `webhook-id` (the unique key makes redeliveries
 * no-ops). `received` rows wait for the worker; `waiting` rows name a response whose job has not
 * committed its response id yet; `applied`, `orphan` (not a Longhaul response, or a superseded
 * duplicate) and `ignored` (an event type Longhaul does not act on) are final.
 */
export const webhookInbox = pgTable(
  'webhook_inbox',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    webhookId: text('webhook_id').notNull().unique(),
    eventId: text('event_id'),
    eventType: text('event_type').notNull(),
    responseId: text('response_id'),
    status: webhookInboxStatusEnum('status').notNull().default('received'),
    jobId: text('job_id'),
    note: text('note'),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    processedAt: timestamp('processed_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [index('webhook_inbox_response_idx').on(t.responseId), index('webhook_inbox_open_idx').on(t.status, t.receivedAt).where(sql`status in ('received', 'waiting')`)],
);

/** A `whsec_` signing secret; during a rotation the old one keeps signing until `expiresAt`. */
export interface SigningSecret {
  secret: string;
  createdAt: string;
  expiresAt: string | null;
}

/**
 * Tenant-level callback endpoints (outgoing, Standard Webhooks signed). `eventTypes` empty means
 * every terminal job event. `failingSince` is set by the first failed attempt after a success and
 * disables the endpoint once it is older than the configured period.
 */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    url: text('url').notNull(),
    description: text('description'),
    eventTypes: text('event_types').array().notNull().default(sql`'{}'::text[]`),
    enabled: boolean('enabled').notNull().default(true),
    thinPayload: boolean('thin_payload').notNull().default(false),
    secrets: jsonb('secrets').$type<SigningSecret[]>().notNull(),
    disabledReason: text('disabled_reason'),
    failingSince: timestamp('failing_since', { withTimezone: true, mode: 'date' }),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    deletedAt: timestamp('deleted_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [index('webhook_endpoints_tenant_idx').on(t.tenantId)],
);

/**
 * The callback outbox: one row per event, written in the same transaction as the state change it
 * announces (see changeJobState). `sequence` orders a job's events for receivers.
 */
export const callbackEvents = pgTable(
  'callback_events',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    jobId: text('job_id').references(() => jobs.id),
    /** A pipeline run's event (`run.completed`, …): the run it is about (job_id is null). */
    runId: text('run_id'),
    endpointId: text('endpoint_id'),
    type: text('type').notNull(),
    sequence: integer('sequence').notNull(),
    /** The full payload `{id, type, created_at, sequence, data}`; thin endpoints get `data: {id}`. */
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('callback_events_job_idx').on(t.jobId, t.sequence)],
);

/** Delivery statuses are the core state machine's (`deliveryTransition`). */
export const callbackDeliveryStatusEnum = pgEnum('callback_delivery_status', DELIVERY_STATUSES);

/** One event to one destination (a tenant endpoint, or the job's own `callback_url`). */
export const callbackDeliveries = pgTable(
  'callback_deliveries',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    eventId: text('event_id')
      .notNull()
      .references(() => callbackEvents.id),
    jobId: text('job_id'),
    endpointId: text('endpoint_id').references(() => webhookEndpoints.id),
    url: text('url').notNull(),
    thinPayload: boolean('thin_payload').notNull().default(false),
    status: callbackDeliveryStatusEnum('status').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true, mode: 'date' }),
    lastStatusCode: integer('last_status_code'),
    lastError: text('last_error'),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    index('callback_deliveries_tenant_status_idx').on(t.tenantId, t.status, t.createdAt.desc(), t.id.desc()),
    index('callback_deliveries_endpoint_idx').on(t.endpointId, t.status, t.finishedAt),
    index('callback_deliveries_job_idx').on(t.jobId),
    index('callback_deliveries_pending_idx').on(t.nextAttemptAt).where(sql`status = 'pending'`),
  ],
);

/** Every delivery attempt, as it happened. */
export const callbackAttempts = pgTable(
  'callback_attempts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    deliveryId: text('delivery_id')
      .notNull()
      .references(() => callbackDeliveries.id),
    attempt: integer('attempt').notNull(),
    statusCode: integer('status_code'),
    latencyMs: integer('latency_ms').notNull(),
    error: text('error'),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [index('callback_attempts_delivery_idx').on(t.deliveryId, t.attempt)],
);

/**
 * Provider requests made for a job (create, retrieve, cancel), for the admin timeline. Written by
 * the worker in batches (a crash may lose the last second of rows: this is an observability log,
 * not a source of truth), hence no foreign key.
 */
export const providerCalls = pgTable(
  'provider_calls',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    jobId: text('job_id').notNull(),
    operation: text('operation').notNull(),
    /** The HTTP status; null when the provider did not answer (see `error`). */
    statusCode: integer('status_code'),
    /** `timeout` or `network_error` when there was no answer. */
    error: text('error'),
    latencyMs: integer('latency_ms').notNull(),
    requestId: text('request_id'),
    responseId: text('response_id'),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull(),
  },
  (t) => [index('provider_calls_job_idx').on(t.jobId, t.at)],
);

export interface TenantErasureCounts {
  jobsCancelled: number;
  jobsErased: number;
  providerDeletes: number;
  providerDeleteFailures: number;
  filesDeleted: number;
  /** Conversations deleted at the provider. */
  conversationsDeleted: number;
  keysRevoked: number;
  endpointsDisabled: number;
}

/**
 * A tenant's offboarding erase: requested once, worked through by the sweeper in batches
 * (`cursor`: the last job id done) so a crash resumes where it stopped; `counts` is its report.
 */
export const tenantErasures = pgTable('tenant_erasures', {
  id: text('id').primaryKey(),
  tenantId: text('tenant_id')
    .notNull()
    .references(() => tenants.id),
  status: text('status').$type<'running' | 'completed'>().notNull().default('running'),
  requestedBy: text('requested_by').notNull(),
  cursor: text('cursor'),
  counts: jsonb('counts').$type<TenantErasureCounts>().notNull(),
  createdAt: createdAt(),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'date' }),
});

/** Every admin action (UI or bull-board: retry, cancel, clean, ...): who, what, on what, from where. */
export const adminActions = pgTable(
  'admin_actions',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /** The admin identity: a named user (ADMIN_USERS), `admin` (the ADMIN_TOKEN), `basic:<user>`, or `anonymous` with auth disabled. */
    actor: text('actor').notNull(),
    action: text('action').notNull(),
    target: text('target'),
    address: text('address'),
    /** The HTTP status the action was answered with. */
    statusCode: integer('status_code'),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [index('admin_actions_at_idx').on(t.at.desc())],
);

export type Job = typeof jobs.$inferSelect;
export type JobTurn = typeof jobTurns.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
export type TenantErasure = typeof tenantErasures.$inferSelect;
export type AdminAction = typeof adminActions.$inferSelect;
export type ProviderCall = typeof providerCalls.$inferSelect;
export type WebhookEndpoint = typeof webhookEndpoints.$inferSelect;
export type CallbackEvent = typeof callbackEvents.$inferSelect;
export type CallbackDelivery = typeof callbackDeliveries.$inferSelect;
export type CallbackAttempt = typeof callbackAttempts.$inferSelect;
export type WebhookInboxRow = typeof webhookInbox.$inferSelect;
export type JobEventRow = typeof jobEvents.$inferSelect;
export type Tenant = typeof tenants.$inferSelect;
export type Prompt = typeof prompts.$inferSelect;
export type PromptVersion = typeof promptVersions.$inferSelect;
export type FileRow = typeof files.$inferSelect;
export type ConversationRow = typeof conversations.$inferSelect;
export type Pipeline = typeof pipelines.$inferSelect;
export type PipelineVersion = typeof pipelineVersions.$inferSelect;
export type PipelineRun = typeof pipelineRuns.$inferSelect;
export type Batch = typeof batches.$inferSelect;
export type Rollout = typeof rollouts.$inferSelect;
export type PromptEventRow = typeof promptEvents.$inferSelect;
export type Dataset = typeof datasets.$inferSelect;
export type DatasetVersion = typeof datasetVersions.$inferSelect;
export type DatasetItem = typeof datasetItems.$inferSelect;
export type Eval = typeof evals.$inferSelect;
export type EvalResult = typeof evalResults.$inferSelect;
