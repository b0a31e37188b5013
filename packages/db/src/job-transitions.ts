/**
 * The one place a job's state changes.
 *
 * `changeJobState` asks a pure decision function from @longhaul/core (`transition` or
 * `reconcileResponse`) what the next state is, then writes the row, its job_events row and the
 * callback outbox rows (event + deliveries) in one atomic statement. A refused decision (e.g. the
 * job is already terminal) writes nothing, which is what keeps terminal states sticky under
 * duplicate webhooks and late polls.
 *
 * What follows a change (metrics, the lifecycle event on the job's stream, the next work item) is
 * not done here: every caller hands the result to `afterJobChange` in @longhaul/engine
 * (packages/engine/src/job-effects.ts), whose next work item the pure `nextWorkFor` of
 * @longhaul/core chooses.
 */
import { sql } from 'drizzle-orm';
import {
  type EventSource,
  ID_PREFIX,
  type JobEvent,
  JobStatus,
  type PriceTable,
  type ProviderResponse,
  type TransitionError,
  type Usage,
  addUsage,
  attemptModel,
  attemptVerdict,
  clientWork,
  estimateJobCostUsd,
  priceTier,
  hasFallbackLeft,
  isTerminal,
  reconcileResponse,
  transition,
} from '@longhaul/core';
import type { Database } from './client.ts';
import { CALLBACK_NOTIFY_CHANNEL, isAnnounced, isAnnouncedByDefault } from './callback-outbox.ts';
import { newId } from './ids.ts';
import { toJobObject } from './job-object.ts';
import { getJob } from './jobs.ts';
import { checkJsonSchema } from './output-validation.ts';
import { compiledStatement, prefixed, setPlaceholders } from './sql-values.ts';
import { callbackDeliveries, callbackEvents, jobEvents, evals, jobTurns, jobs, pipelineRuns, webhookEndpoints, type Job } from './schema.ts';

/** Delivery ids per notification: a pg_notify payload must stay under 8,000 bytes (an id is 36 characters, 37 with its comma). */
const NOTIFY_IDS_PER_MESSAGE = 200;

type JobColumns = Partial<Omit<typeof jobs.$inferInsert, 'id' | 'tenantId' | 'status'>>;

/**
 * A tool-call loop's turn that the change ends (job_turns): its response, what it asked of the
 * client, and its own usage and cost. The answers are recorded by the change that moves the job
 * past the turn (`requires_action` → `pending`, see writeDecision).
 */
export interface EndedTurn {
  responseId: string;
  /** `requires_action`, or the job's terminal status. */
  status: JobStatus;
  toolCalls: unknown[];
  approvalRequests: unknown[];
  usage: Usage | null;
  costUsd: number | null;
}

/** What a decision function answers: the next status and the columns that go with it. */
export type Decision = { ok: true; status: JobStatus; changed: boolean; fields?: JobColumns; endedTurn?: EndedTurn } | { ok: false; error: TransitionError };

export type ChangeResult =
  | { ok: true; changed: boolean; from: JobStatus; job: Job }
  | { ok: false; error: TransitionError | { code: 'job_not_found'; message: string }; job: Job | null };

export interface ChangeContext {
  source: EventSource;
  now: Date;
  /** Recorded on the event row (provider status, response id, error, ...). */
  details?: Record<string, unknown>;
}

/**
 * Change a job's state. `target` is the job id, or the job row the caller has just read.
 *
 * Optimistic: the decision is taken on the row in hand and written by one statement guarded by
 * that row's status; if the status moved meanwhile, the row is read again and the decision taken
 * again. Statuses only move forward and terminal ones never move, so this converges in a step or
 * two, and "no change" on a slightly stale row is final (a fresher row could only be further
 * along, where the same event changes nothing either).
 */
export async function changeJobState(db: Database, target: string | Job, ctx: ChangeContext, decide: (job: Job) => Decision): Promise<ChangeResult> {
  let job: Job | null = typeof target === 'string' ? await getJob(db, target) : target;
  for (let attempt = 0; ; attempt++) {
    if (!job) return { ok: false, error: { code: 'job_not_found', message: `job ${typeof target === 'string' ? target : target.id} not found` }, job: null };
    const decision = decide(job);
    if (!decision.ok) {
      // A refusal is only trusted on a fresh row.
      if (attempt === 0 && typeof target !== 'string') {
        job = await getJob(db, job.id);
        continue;
      }
      return { ok: false, error: decision.error, job };
    }
    if (!decision.changed && Object.keys(decision.fields ?? {}).length === 0) return { ok: true, changed: false, from: job.status, job };
    const written = await writeDecision(db, job, decision, ctx);
    if (written) return written;
    if (attempt >= 10) throw new Error(`job ${job.id}: state kept changing under concurrent updates`);
    job = await getJob(db, job.id);
  }
}

const p = sql.placeholder;
/**
 * The job_turns part of writeDecision's statement, for a change that ends a turn (the `t_`
 * values set, answers null) or answers one (answers set): one row per (job, turn), merged.
 */
const turnRecord = sql`tr as (
      insert into ${jobTurns} (job_id, turn, tenant_id, response_id, status, tool_calls, approval_requests, tool_outputs, approvals, usage, cost_usd, ended_at, answered_at, answered_by)
      select upd.id, ${p('t_turn')}::int, ${p('tenantId')}, ${p('t_response_id')}::text, ${p('t_status')}::text, coalesce(${p('t_tool_calls')}::jsonb, '[]'::jsonb),
             coalesce(${p('t_approval_requests')}::jsonb, '[]'::jsonb), ${p('t_tool_outputs')}::jsonb, ${p('t_approvals')}::jsonb, ${p('t_usage')}::jsonb,
             ${p('t_cost_usd')}::numeric, ${p('at')}::timestamptz, ${p('t_answered_at')}::timestamptz, ${p('t_answered_by')}::text
      from upd
      on conflict (job_id, turn) do update set
        response_id = coalesce(excluded.response_id, ${jobTurns.responseId}),
        tool_outputs = coalesce(excluded.tool_outputs, ${jobTurns.toolOutputs}),
        approvals = coalesce(excluded.approvals, ${jobTurns.approvals}),
        answered_at = coalesce(excluded.answered_at, ${jobTurns.answeredAt}),
        answered_by = coalesce(excluded.answered_by, ${jobTurns.answeredBy}),
        status = case when excluded.answered_at is null then excluded.status else ${jobTurns.status} end,
        tool_calls = case when excluded.answered_at is null then excluded.tool_calls else ${jobTurns.toolCalls} end,
        approval_requests = case when excluded.answered_at is null then excluded.approval_requests else ${jobTurns.approvalRequests} end,
        usage = coalesce(excluded.usage, ${jobTurns.usage}),
        cost_usd = coalesce(excluded.cost_usd, ${jobTurns.costUsd}),
        ended_at = case when excluded.answered_at is null then excluded.ended_at else ${jobTurns.endedAt} end
    ), `;

/** The job_turns values of a change (see `turnRecord`); null: the change neither ends nor answers a turn. */
function turnValues(job: Job, decision: Extract<Decision, { ok: true }>, fields: JobColumns, ctx: ChangeContext): Record<string, unknown> | null {
  const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v));
  const ended = decision.changed ? decision.endedTurn : undefined;
  // Answered: the job leaves `requires_action` for its next turn, with the answers on its required action.
  const action = fields.requiredAction;
  const answered = decision.changed && job.status === JobStatus.RequiresAction && decision.status === JobStatus.Pending && action ? action : null;
  if (!ended && !answered) return null;
  return {
    t_turn: job.turn,
    t_response_id: ended?.responseId ?? job.responseId,
    t_status: ended?.status ?? JobStatus.RequiresAction,
    t_tool_calls: json(ended?.toolCalls ?? answered?.tool_calls),
    t_approval_requests: json(ended?.approvalRequests ?? answered?.approval_requests),
    t_tool_outputs: json(answered?.tool_outputs),
    t_approvals: json(answered?.approvals),
    t_usage: json(ended?.usage),
    t_cost_usd: ended?.costUsd ?? null,
    t_answered_at: answered ? ctx.now.toISOString() : null,
    t_answered_by: answered ? ctx.source : null,
  };
}

/**
 * The pipeline part of writeDecision's statement, for a change that ends a run's step job: the
 * run is due for an advance now. The worker that ended the job asks for that advance at once
 * (job-effects.ts); should it die first, the sweeper finds the run overdue, as it would a job.
 */
const runDue = sql`rd as (
      update ${pipelineRuns} set next_check_at = ${p('at')}::timestamptz
      where ${pipelineRuns.id} = ${p('runId')}::text and ${pipelineRuns.nextCheckAt} is not null and exists (select 1 from upd)
    ), `;

/** Likewise for an eval's job: its eval is due for a tick now (the eval runner's loop finds it). */
const evalDue = sql`ed as (
      update ${evals} set next_check_at = ${p('at')}::timestamptz
      where ${evals.id} = ${p('evalId')}::text and ${evals.nextCheckAt} is not null and exists (select 1 from upd)
    ), `;

/** writeDecision's statement; its shape is the columns the change sets (a few per kind of change). */
const writeDecisionStatement = compiledStatement<{ updated: number; deliveries: string | null }>((shape) => {
  const [columns = '', turn, run, evalPart] = shape.split('|');
  return sql`
    with upd as (
      update ${jobs} set ${setPlaceholders(jobs, columns.split(','), 'f_')}
      where ${jobs.id} = ${p('jobId')} and ${jobs.status} = ${p('fromStatus')}
        and ${jobs.turn} = ${p('fromTurn')}::int and ${jobs.attempt} = ${p('fromAttempt')}::int
      returning ${jobs.id}
    ), ${turn === 'turn' ? turnRecord : sql``}${run === 'run' ? runDue : sql``}${evalPart === 'eval' ? evalDue : sql``}ev as (
      insert into ${jobEvents} (job_id, tenant_id, from_status, to_status, source, at, details)
      select upd.id, ${p('tenantId')}, ${p('fromStatus')}, ${p('toStatus')}, ${p('source')}, ${p('at')}::timestamptz, ${p('details')}::jsonb
      from upd where ${p('changed')}
    ), targets as (
      select e.id as endpoint_id, e.url, e.thin_payload from ${webhookEndpoints} e join upd on true
      where ${p('announce')} and e.tenant_id = ${p('tenantId')} and e.enabled and e.deleted_at is null
        and case when cardinality(e.event_types) > 0 then ${p('type')} = any(e.event_types) else ${p('byDefault')} end
      union all
      select null, ${p('callbackUrl')}::text, false from upd where ${p('announceCallbackUrl')}
    ), cev as (
      insert into ${callbackEvents} (id, tenant_id, job_id, type, sequence, payload, created_at)
      select ${p('eventId')}, ${p('tenantId')}, ${p('jobId')}, ${p('type')}, s.n, jsonb_set(${p('payload')}::jsonb, '{sequence}', to_jsonb(s.n)), ${p('at')}::timestamptz
      from (select coalesce(max(sequence), 0)::int + 1 as n from ${callbackEvents} where job_id = ${p('jobId')}) s
      where exists (select 1 from targets)
      returning id
    ), dlv as (
      insert into ${callbackDeliveries} (id, tenant_id, event_id, job_id, endpoint_id, url, thin_payload, next_attempt_at, created_at, updated_at)
      select ${sql.raw(`'${ID_PREFIX.delivery}_'`)} || replace(gen_random_uuid()::text, '-', ''), ${p('tenantId')}, cev.id, ${p('jobId')}, t.endpoint_id, t.url, t.thin_payload, ${p('at')}::timestamptz, ${p('at')}::timestamptz, ${p('at')}::timestamptz
      from targets t cross join cev
      returning id
    )
    select (select count(*) from upd)::int as updated,
           (select string_agg(id, ',') from dlv) as deliveries,
           (select count(pg_notify(${CALLBACK_NOTIFY_CHANNEL}, ids)) from (
              select string_agg(id, ',') as ids from (select id, (row_number() over ()) / ${sql.raw(String(NOTIFY_IDS_PER_MESSAGE))} as chunk from dlv) c group by chunk
           ) n) as notified`;
});

/**
 * Write a decision taken on `job` in ONE statement (so one round trip, and atomic): the guarded
 * update of the row, its job_events row, and the callback outbox: the event and one delivery per
 * interested destination (the tenant's endpoints subscribed to this event type, and the job's own
 * callback_url for terminal events and requires_action), with pg_notify of the delivery ids (up to 200 per
 * notification, a payload's limit being 8,000 bytes) delivered on commit.
 * Returns null when the row was no longer as `job` had it (its status, turn or attempt).
 */
async function writeDecision(db: Database, job: Job, decision: Extract<Decision, { ok: true }>, ctx: ChangeContext): Promise<ChangeResult | null> {
  const fields: JobColumns = { ...decision.fields };
  if (decision.changed) {
    fields.updatedAt = ctx.now;
    if (decision.status === JobStatus.InProgress && !job.startedAt) fields.startedAt = ctx.now;
    if (decision.status === JobStatus.Cancelling) fields.cancelRequestedAt ??= ctx.now;
    if (isTerminal(decision.status)) {
      fields.finishedAt = ctx.now;
      fields.nextCheckAt = null;
    }
  }
  const updated = { ...job, ...fields, status: decision.status } as Job;
  const at = ctx.now.toISOString();
  const announce = decision.changed && isAnnounced(decision.status);
  const type = `job.${decision.status}`;
  // Ends (and a loop waiting for answers) go to endpoints without event types and the job's callback_url.
  const byDefault = isAnnouncedByDefault(decision.status, updated);
  const eventId = newId(ID_PREFIX.event);
  const payload = announce ? { id: eventId, type, created_at: Math.floor(ctx.now.getTime() / 1000), sequence: 0, data: toJobObject(updated) } : null;

  const set = { ...fields, status: decision.status };
  const turn = turnValues(job, decision, fields, ctx);
  const columns = Object.keys(set)
    .filter((k) => set[k as keyof typeof set] !== undefined)
    .join(',');
  const endsRunStep = decision.changed && isTerminal(decision.status) && job.runId !== null;
  const endsEvalJob = decision.changed && isTerminal(decision.status) && job.evalId !== null;
  const rows = await writeDecisionStatement(db, `${columns}|${turn ? 'turn' : ''}|${endsRunStep ? 'run' : ''}|${endsEvalJob ? 'eval' : ''}`, {
    ...turn,
    ...(endsRunStep ? { runId: job.runId } : {}),
    ...(endsEvalJob ? { evalId: job.evalId } : {}),
    ...prefixed(set, 'f_'),
    jobId: job.id,
    // The decision holds only for the row it was taken on: a loop's turn and a job's attempt pass
    // through the same statuses again, so a stale copy of the job (an old work item's snapshot)
    // could otherwise match a later turn's row by status alone.
    fromStatus: job.status,
    fromTurn: job.turn,
    fromAttempt: job.attempt,
    toStatus: decision.status,
    tenantId: job.tenantId,
    source: ctx.source,
    at,
    details: JSON.stringify(ctx.details ?? {}),
    changed: decision.changed,
    announce,
    type,
    byDefault,
    callbackUrl: updated.callbackUrl,
    announceCallbackUrl: announce && byDefault && updated.callbackUrl !== null,
    eventId,
    payload: JSON.stringify(payload),
  });
  if (rows[0]?.updated !== 1) return null;
  return { ok: true, changed: decision.changed, from: job.status, job: updated };
}

function turnEnded(response: ProviderResponse, status: JobStatus, cost: ((usage: Usage) => number | null) | null): EndedTurn {
  const { toolCalls, approvalRequests } = clientWork(response.output as unknown[] | null | undefined);
  const usage = (response.usage as Usage | null | undefined) ?? null;
  return { responseId: response.id, status, toolCalls, approvalRequests, usage, costUsd: usage && cost ? cost(usage) : null };
}

/** Apply a job event (submitted, cancel requested, submit failed, expired). */
export function applyJobEvent(db: Database, jobId: string | Job, event: JobEvent, ctx: ChangeContext, fields: JobColumns = {}): Promise<ChangeResult> {
  return changeJobState(db, jobId, ctx, (job) => {
    const result = transition(job, event);
    return result.ok ? { ...result, fields } : result;
  });
}

/**
 * Reconcile: the one path that applies a provider Response to a job (status, output, usage and
 * its cost estimate at `prices`, error, incomplete details). Idempotent: applying the same
 * terminal response twice changes nothing the second time.
 */
export function reconcileJob(
  db: Database,
  jobId: string | Job,
  response: ProviderResponse,
  ctx: ChangeContext & { prices?: PriceTable; via?: 'response' | 'batch_line' },
): Promise<ChangeResult> {
  return changeJobState(db, jobId, { ...ctx, details: { response_id: response.id, response_status: response.status, ...ctx.details } }, (job) => {
    const loop = job.maxTurns === null ? undefined : { turn: job.turn, maxTurns: job.maxTurns };
    // A tool-call loop's earlier turn, or an earlier attempt, reported late (a poll or webhook of a
    // response the job has moved on from): it says nothing about the response running now.
    if ((loop || job.attempt > 1) && job.responseId !== null && response.id !== job.responseId) return { ok: true, status: job.status, changed: false };
    const result = reconcileResponse(job, response, loop, ctx.via);
    if (!result.ok) return result;
    const p = result.patch;
    const model = attemptModel(job.model, job.fallbacks, job.attempt);
    // Priced at the tier it ran at: a batch line at batch prices, a response that ran at flex at flex's.
    const tier = priceTier(job.processing, response.service_tier);
    const costOf = (usage: Usage | null | undefined) => (ctx.prices && usage ? estimateJobCostUsd(ctx.prices, model, usage, tier) : null);
    const fields: JobColumns = {};
    if (p.output !== undefined) fields.output = p.output;
    if (p.outputText !== undefined) fields.outputText = p.outputText;
    if (p.reasoningSummary !== undefined) fields.reasoningSummary = p.reasoningSummary;
    if (p.requiredAction !== undefined) fields.requiredAction = p.requiredAction;
    if (p.usage !== undefined) {
      // A loop's usage (and cost) is the sum over its turns: the row holds the earlier turns'.
      // A job's later attempt adds its own to the earlier attempts' (each at its own model's prices).
      const usage = (loop && job.turn > 1) || job.attempt > 1 ? addUsage(job.usage, p.usage) : p.usage;
      fields.usage = usage;
      fields.costUsd = job.attempt > 1 ? sumCost(job.costUsd, costOf(p.usage)) : ctx.prices ? estimateJobCostUsd(ctx.prices, job.model, usage, tier) : null;
      // What the cheaper tier saved: the same tokens at standard prices, minus the cost.
      if (tier !== 'standard' && ctx.prices && isTerminal(p.status)) {
        const standard = estimateJobCostUsd(ctx.prices, model, usage);
        if (standard !== null && fields.costUsd !== null) fields.savedUsd = Math.round((standard - Number(fields.costUsd)) * 1e9) / 1e9;
      }
    }
    if (isTerminal(p.status) && response.service_tier) fields.serviceTier = response.service_tier;
    if (p.error !== undefined) fields.error = p.error;
    if (p.incompleteDetails !== undefined) fields.incompleteDetails = p.incompleteDetails;
    if (!job.responseId) fields.responseId = response.id;
    // A job with fallbacks or `validate` (fallbacks.ts): the attempt that ended is judged, and may
    // be followed by the next (back to pending) or, an output `validate` rejects, fail the job.
    // A cancelling job is never retried: it ends with what the provider says.
    if (!loop && result.changed && isTerminal(p.status) && job.status !== JobStatus.Cancelling && (job.fallbacks !== null || job.validation !== null)) {
      const verdict = attemptVerdict({ ...p, status: p.status }, job.validation, checkJsonSchema);
      const retry = verdict.kind === 'retryable' && hasFallbackLeft(job);
      const ended = {
        attempt: job.attempt,
        model,
        response_id: response.id,
        status: p.status as string,
        error: verdict.kind === 'retryable' ? verdict.error : (p.error ?? null),
        usage: (p.usage ?? null) as Record<string, unknown> | null,
      };
      if (verdict.kind === 'retryable' && (retry || verdict.rejected)) {
        const decision = transition(job, { type: 'attempt_failed', retry, error: verdict.error });
        if (!decision.ok) return decision;
        if (retry) {
          // The next attempt starts afresh: only usage and cost carry over (summed), and the attempts on record.
          const next: JobColumns = {
            attempt: job.attempt + 1,
            attempts: [...job.attempts, ended],
            usage: addUsage(job.usage, p.usage),
            costUsd: sumCost(job.costUsd, costOf(p.usage)),
            responseId: null,
            output: null,
            outputText: null,
            reasoningSummary: null,
            error: null,
            incompleteDetails: null,
          };
          return { ok: true, status: decision.status, changed: decision.changed, fields: next };
        }
        return { ok: true, status: decision.status, changed: decision.changed, fields: { ...fields, attempts: [...job.attempts, ended], error: verdict.error } };
      }
      fields.attempts = [...job.attempts, ended];
    }
    // A loop's turn ends when its response does: on record with its own usage (job_turns).
    const endsTurn = loop && result.changed && (p.status === JobStatus.RequiresAction || isTerminal(p.status));
    const endedTurn = endsTurn ? turnEnded(response, p.status, ctx.prices ? (usage) => estimateJobCostUsd(ctx.prices!, job.model, usage) : null) : undefined;
    return { ok: true, status: p.status, changed: result.changed, fields: result.changed ? fields : {}, endedTurn };
  });
}

/** Two costs added up; null (no prices) counts as nothing, and two nulls stay null. */
function sumCost(a: number | string | null, b: number | null): number | null {
  if (a === null && b === null) return null;
  return Number(a ?? 0) + (b ?? 0);
}
