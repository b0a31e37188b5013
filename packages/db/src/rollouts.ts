/**
 * Gradual rollouts of a prompt version (@longhaul/core rollout.ts), scoped by tenant. A rollout's
 * state changes only in `applyRolloutEvent`, with the rollout's row locked, through the core's
 * `rolloutTransition`; the same transaction writes the prompt's routing (`rolloutRouting`: its
 * current version and traffic split) and the prompt_events row that records the change with the
 * figures it was taken on. So the routing jobs see, the rollout's state and its history never
 * disagree. One active (running or paused) rollout per prompt, held by a unique index; while it
 * is active the prompt's routing is the rollout's (the API refuses manual traffic changes).
 */
import {
  ID_PREFIX,
  type RolloutDefinition,
  type RolloutEvent,
  type RolloutFigures,
  type RolloutProblem,
  type RolloutState,
  TERMINAL_ROLLOUT_STATUSES,
  type VersionMetrics,
  checkRolloutDefinition,
  isTerminalRollout,
  rolloutRouting,
  rolloutTransition,
  startRollout,
} from '@longhaul/core';
import { and, asc, desc, eq, gt, isNotNull, lte, notInArray, sql } from 'drizzle-orm';
import type { Database } from './client.ts';
import { newId } from './ids.ts';
import { type Prompt, type PromptEventRow, type Rollout, promptEvents, prompts, rollouts } from './schema.ts';

type Tx = Parameters<Parameters<Database['transaction']>[0]>[0];

export type StartRolloutResult =
  | { ok: true; rollout: Rollout; prompt: Prompt }
  | { ok: false; reason: 'not_found' }
  | { ok: false; reason: 'in_progress'; rolloutId: string }
  | { ok: false; reason: 'invalid'; problem: RolloutProblem };

/** Start a rollout of `def.candidate_version` on a tenant's prompt, under the prompt's row lock. */
export async function createRollout(db: Database, tenantId: string, promptId: string, def: RolloutDefinition, now: Date): Promise<StartRolloutResult> {
  return db.transaction(async (tx) => {
    const [prompt] = await tx
      .select()
      .from(prompts)
      .where(and(eq(prompts.id, promptId), eq(prompts.tenantId, tenantId)))
      .for('update');
    if (!prompt) return { ok: false, reason: 'not_found' };
    const active = await activeRollout(tx, promptId);
    if (active) return { ok: false, reason: 'in_progress', rolloutId: active.id };
    const problem = checkRolloutDefinition(def, prompt);
    if (problem) return { ok: false, reason: 'invalid', problem };
    const state = startRollout(def, prompt, now);
    const [row] = await tx
      .insert(rollouts)
      .values({
        id: newId(ID_PREFIX.rollout),
        tenantId,
        promptId,
        definition: def,
        status: state.status,
        stepIndex: state.stepIndex,
        stepStartedAt: state.stepStartedAt,
        candidateVersion: state.candidateVersion,
        baselineVersion: state.baselineVersion,
        baselineReference: null,
        nextCheckAt: now,
        createdAt: now,
        updatedAt: now,
      })
      .returning();
    const routed = await route(tx, row!, state, now, { type: 'started', details: { definition: def } });
    return { ok: true, rollout: row!, prompt: routed };
  });
}

async function activeRollout(tx: Tx, promptId: string): Promise<Rollout | null> {
  const [row] = await tx
    .select()
    .from(rollouts)
    .where(and(eq(rollouts.promptId, promptId), notInArray(rollouts.status, [...TERMINAL_ROLLOUT_STATUSES])));
  return row ?? null;
}

/** The prompt's active rollout, else its latest one; null when it never had one (or is not the tenant's). */
export async function getPromptRollout(db: Database, tenantId: string, promptId: string): Promise<Rollout | null> {
  const [row] = await db
    .select()
    .from(rollouts)
    .where(and(eq(rollouts.promptId, promptId), eq(rollouts.tenantId, tenantId)))
    .orderBy(desc(rollouts.createdAt), desc(rollouts.id))
    .limit(1);
  return row ?? null;
}

/** Whether a prompt has a running or paused rollout (its routing is then the rollout's). */
export async function hasActiveRollout(db: Database, promptId: string): Promise<boolean> {
  const [row] = await db
    .select({ id: rollouts.id })
    .from(rollouts)
    .where(and(eq(rollouts.promptId, promptId), notInArray(rollouts.status, [...TERMINAL_ROLLOUT_STATUSES])))
    .limit(1);
  return row !== undefined;
}

/** The core's view of a rollout row. */
export function rolloutState(row: Rollout): RolloutState {
  return {
    status: row.status,
    stepIndex: row.stepIndex,
    stepStartedAt: row.stepStartedAt,
    candidateVersion: row.candidateVersion,
    baselineVersion: row.baselineVersion,
    baselineReference: row.baselineReference,
  };
}

/** The prompt's routing for `state` written to its row, and the event recording it. */
async function route(tx: Tx, row: Rollout, state: RolloutState, now: Date, event: { type: string; details: Record<string, unknown> }): Promise<Prompt> {
  const routing = rolloutRouting(state, row.definition);
  const [prompt] = await tx
    .update(prompts)
    .set({ currentVersion: routing.currentVersion, traffic: routing.traffic, updatedAt: now })
    .where(eq(prompts.id, row.promptId))
    .returning();
  await tx.insert(promptEvents).values({
    promptId: row.promptId,
    tenantId: row.tenantId,
    rolloutId: row.id,
    type: event.type,
    traffic: routing.traffic,
    currentVersion: routing.currentVersion,
    details: { step_index: state.stepIndex, percent: row.definition.steps[state.stepIndex], status: state.status, ...event.details },
    at: now,
  });
  return prompt!;
}

export type RolloutEventResult = { ok: true; rollout: Rollout; changed: boolean } | { ok: false; code: string; message: string };

/**
 * Apply an event to a locked rollout: the core's transition, then (when it changed anything) the
 * row, the prompt's routing and the prompt event, whose type is the decision's kind (`advance`,
 * `complete`, `rollback`) or the event's (`paused`, `resumed`, `aborted`). A wait only records
 * its figures on the row. An unfinished rollout is looked at again `nextCheckMs` from now.
 */
export async function applyRolloutEvent(
  tx: Tx,
  row: Rollout,
  event: RolloutEvent,
  now: Date,
  options: { nextCheckMs?: number; details?: Record<string, unknown> } = {},
): Promise<RolloutEventResult> {
  const details = options.details ?? {};
  const result = rolloutTransition(rolloutState(row), event, now);
  if (!result.ok) return { ok: false, code: result.error.code, message: result.error.message };
  const figures: RolloutFigures | undefined = event.type === 'decided' ? event.decision.figures : undefined;
  const next = result.next;
  const finished = isTerminalRollout(next.status);
  const [updated] = await tx
    .update(rollouts)
    .set({
      status: next.status,
      stepIndex: next.stepIndex,
      stepStartedAt: next.stepStartedAt,
      baselineReference: next.baselineReference,
      lastFigures: figures ?? row.lastFigures,
      nextCheckAt: finished ? null : new Date(now.getTime() + (options.nextCheckMs ?? 0)),
      finishedAt: finished ? now : null,
      updatedAt: now,
    })
    .where(eq(rollouts.id, row.id))
    .returning();
  if (result.changed) {
    const type = event.type === 'decided' ? event.decision.kind : event.type;
    const decided = event.type === 'decided' ? event.decision : null;
    await route(tx, updated!, next, now, {
      type,
      details: {
        ...details,
        ...(figures ? { figures } : {}),
        ...(decided?.kind === 'rollback' ? { breaches: decided.breaches } : {}),
        ...(decided?.kind === 'advance' ? { from_step: row.stepIndex } : {}),
      },
    });
  }
  return { ok: true, rollout: updated!, changed: result.changed };
}

/** Run `fn` with a tenant's prompt's active rollout locked (the API's pause, resume, abort); null when it has none. */
export async function withPromptRollout<T>(db: Database, tenantId: string, promptId: string, fn: (tx: Tx, row: Rollout) => Promise<T>): Promise<T | null> {
  return db.transaction(async (tx) => {
    const [latest] = await tx
      .select()
      .from(rollouts)
      .where(and(eq(rollouts.promptId, promptId), eq(rollouts.tenantId, tenantId)))
      .orderBy(desc(rollouts.createdAt), desc(rollouts.id))
      .limit(1)
      .for('update');
    if (!latest) return null;
    return fn(tx, latest);
  });
}

/** Run `fn` with a rollout locked, skipping one another worker holds (the rollout loop). */
export async function withLockedRollout<T>(db: Database, rolloutId: string, fn: (tx: Tx, row: Rollout) => Promise<T>): Promise<T | null> {
  return db.transaction(async (tx) => {
    const [row] = await tx.select().from(rollouts).where(eq(rollouts.id, rolloutId)).for('update', { skipLocked: true });
    if (!row) return null;
    return fn(tx, row);
  });
}

/** Running or paused rollouts due for a look. */
export async function findDueRollouts(db: Database, now: Date, limit: number): Promise<string[]> {
  const rows = await db
    .select({ id: rollouts.id })
    .from(rollouts)
    .where(and(isNotNull(rollouts.nextCheckAt), lte(rollouts.nextCheckAt, now)))
    .orderBy(asc(rollouts.nextCheckAt))
    .limit(limit);
  return rows.map((r) => r.id);
}

/** Record a wait's figures and the next look, `nextCheckMs` from now (under the lock). */
export async function recordRolloutLook(tx: Tx, row: Rollout, figures: RolloutFigures, now: Date, nextCheckMs: number): Promise<void> {
  await tx
    .update(rollouts)
    .set({ lastFigures: figures, nextCheckAt: new Date(now.getTime() + nextCheckMs), updatedAt: now })
    .where(eq(rollouts.id, row.id));
}

/**
 * The baseline's and the candidate's live metrics in the rollout's current step: the prompt's
 * jobs of either version created since the step started that have finished, without evaluation
 * jobs and without jobs their client cancelled (core VersionMetrics). `failed` counts expired
 * jobs; a job with a `validate` was checked by it when it completed (it passed) or failed with
 * `validation_failed`.
 */
export async function rolloutMetrics(tx: Tx | Database, row: Rollout): Promise<{ baseline: VersionMetrics; candidate: VersionMetrics }> {
  const result = await tx.execute<{ version: number; jobs: number; failed: number; incomplete: number; cost: string | null; checked: number; passed: number }>(sql`
    select prompt_version as version,
           count(*)::int as jobs,
           count(*) filter (where status in ('failed', 'expired'))::int as failed,
           count(*) filter (where status = 'incomplete')::int as incomplete,
           coalesce(sum(cost_usd), 0)::text as cost,
           count(*) filter (where validation is not null and (status = 'completed' or error->>'code' = 'validation_failed'))::int as checked,
           count(*) filter (where validation is not null and status = 'completed')::int as passed
    from jobs
    where tenant_id = ${row.tenantId} and prompt_id = ${row.promptId}
      and prompt_version in (${row.baselineVersion}, ${row.candidateVersion})
      and created_at >= ${row.stepStartedAt.toISOString()}::timestamptz
      and eval_id is null
      and status in ('completed', 'failed', 'expired', 'incomplete')
    group by prompt_version`);
  const of = (version: number): VersionMetrics => {
    const r = result.rows.find((x) => Number(x.version) === version);
    return r
      ? { jobs: r.jobs, failed: r.failed, incomplete: r.incomplete, costUsd: Number(r.cost ?? 0), validatorChecked: r.checked, validatorPassed: r.passed }
      : { jobs: 0, failed: 0, incomplete: 0, costUsd: 0, validatorChecked: 0, validatorPassed: 0 };
  };
  return { baseline: of(row.baselineVersion), candidate: of(row.candidateVersion) };
}

/** A tenant's prompt's events, oldest first, after the event id `after`. */
export async function listPromptEvents(
  db: Database,
  tenantId: string,
  promptId: string,
  options: { limit: number; after?: number },
): Promise<{ data: PromptEventRow[]; hasMore: boolean }> {
  const conditions = [eq(promptEvents.promptId, promptId), eq(promptEvents.tenantId, tenantId)];
  if (options.after !== undefined) conditions.push(gt(promptEvents.id, options.after));
  const rows = await db
    .select()
    .from(promptEvents)
    .where(and(...conditions))
    .orderBy(asc(promptEvents.id))
    .limit(options.limit + 1);
  return { data: rows.slice(0, options.limit), hasMore: rows.length > options.limit };
}
