/**
 * tools: run a turn's tool calls at the job's tool executor (`tool_executor.url`, issue 15) and
 * record its outputs as the turn's answer.
 *
 * One work item per job and turn (`toolsWorkItemId`), dispatched when the turn ends in
 * `requires_action` with tool calls, and again by the sweeper while the job waits with them
 * unanswered (a lost work item, a crash before the dispatch). Each run:
 * 1. reads the job: a job no longer waiting for this turn's tool calls (cancelled, expired,
 *    answered by the tenant, moved on) sends nothing;
 * 2. POSTs every call of the turn together, `{"type": "tool_calls", "job_id", "turn",
 *    "tool_calls": [{"call_id", "name", "arguments", "type"}]}`, signed as a Standard Webhook
 *    with the tenant's callback secret (as callbacks to a job's own callback_url are), with a
 *    `webhook-id` stable per job and turn so an executor that sees a turn twice (a retry, or a
 *    crash after its answer) can tell; through @longhaul/callbacks `sendCallback`: the SSRF guard
 *    at connect time, no redirects, a timeout, and at most the answer size limit read;
 * 3. expects 2xx with `{"tool_outputs": [{"call_id", "output"}]}` and records them through
 *    @longhaul/engine `recordAnswers`, the API's own path (same checks, the guarded
 *    `tool_outputs_submitted` transition, then the next turn's submit). A turn that also asks for
 *    MCP approvals keeps waiting for the tenant's.
 *
 * A non-2xx answer, a timeout, a network error, a body that is not the expected JSON, or outputs
 * the rules refuse (a call without an output, an unknown call id, too large) fail the attempt:
 * BullMQ runs it again on the worker's backoff, and after the last of `attempts` the job fails
 * with `tool_executor_failed`, its message naming the last problem (a status, a parse problem, a
 * call id), never the executor's body. An address the policy blocks fails the job at once.
 *
 * Races: a job cancelled while its executor works, or answered first by the tenant, refuses the
 * late answer (the write is guarded by the job's status and turn): it is logged and dropped.
 */
import { UnrecoverableError, type Job as QueueJob } from 'bullmq';
import { type JobError, JobStatus, MAX_TOOL_OUTPUTS_TOTAL_BYTES, type ToolOutput, awaitsToolOutputs, transition } from '@longhaul/core';
import { type AttemptResult, sendCallback } from '@longhaul/callbacks';
import { type Job, changeJobState, getJob, tenantCallbackSecret } from '@longhaul/db';
import { recordAnswers } from '@longhaul/engine';
import { parsePayload, toolsWorkItemId } from '@longhaul/queue';
import { jobLogFields } from '@longhaul/runtime';
import { setJobAttributes } from '@longhaul/telemetry';
import { generateWebhookSecret, signWebhook } from '@longhaul/webhooks';
import { z } from 'zod';
import type { ToolExecutorConfig, WorkerContext } from '../deps.ts';

const DEFAULTS: Required<ToolExecutorConfig> = { attempts: 5, timeoutMs: 120_000, concurrency: 50 };

/** The tool executor settings with their defaults. */
export function toolExecutorSettings(config: ToolExecutorConfig | undefined): Required<ToolExecutorConfig> {
  return { ...DEFAULTS, ...config };
}

/** The most of an answer read: the turn's outputs at their limit, and room for the envelope around them. */
const MAX_ANSWER_BYTES = MAX_TOOL_OUTPUTS_TOTAL_BYTES + 65_536;

/** What an executor answers; the outputs as `POST /v1/jobs/{id}/tool_outputs` takes them (extra fields are ignored). */
const answerSchema = z.object({
  tool_outputs: z
    .array(z.object({ call_id: z.string().min(1).max(256), output: z.union([z.string(), z.array(z.looseObject({})).max(64)]) }))
    .min(1)
    .max(128),
});

/** One attempt that got no usable answer; `code` is stable, `message` names the problem without the executor's body. */
class ToolExecutorCallError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'ToolExecutorCallError';
  }
}

type Answer = { ok: true; outputs: ToolOutput[] } | { ok: false; error: ToolExecutorCallError };

const refused = (message: string, code: string): Answer => ({ ok: false, error: new ToolExecutorCallError(message, code) });

/** The outputs in an executor's answer, or what is wrong with it. */
function readAnswer(sent: AttemptResult): Answer {
  if (sent.outcome !== 'success') {
    const code = sent.outcome === 'timeout' ? 'tool_executor_timeout' : sent.statusCode !== null ? 'tool_executor_status' : `tool_executor_${sent.outcome}`;
    return refused(sent.statusCode !== null ? `the executor answered HTTP ${sent.statusCode}` : `${sent.outcome}: ${sent.error}`, code);
  }
  const body = sent.responseSnippet ?? '';
  if (Buffer.byteLength(body) > MAX_ANSWER_BYTES) return refused(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`, 'tool_executor_answer_too_large');
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    // JSON.parse's message quotes the body: only say what it is not.
    return refused(`the answer (HTTP ${sent.statusCode}) is not JSON`, 'tool_executor_malformed_answer');
  }
  const parsed = answerSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.length > 0 ? issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('') : '';
    return refused(`the answer is not {"tool_outputs": [{"call_id", "output"}]}: ${path.replace(/^\./, '') || 'body'}: ${issue.message}`, 'tool_executor_malformed_answer');
  }
  return { ok: true, outputs: parsed.data.tool_outputs };
}

/** The job waits for turn `turn`'s tool calls from its executor. */
const waitsForExecutor = (job: Job, turn: number): boolean =>
  job.toolExecutorUrl !== null && job.status === JobStatus.RequiresAction && job.turn === turn && awaitsToolOutputs(job.requiredAction);

export function executeToolsProcessor(deps: WorkerContext) {
  const { db, clock, config, jobEffects } = deps;
  const settings = toolExecutorSettings(config.toolExecutor);

  /** Fail the job after its executor's last attempt (guarded: only while it still waits for this turn). */
  async function failJob(job: Job, turn: number, attempts: number, problem: ToolExecutorCallError): Promise<boolean> {
    const error: JobError = {
      code: 'tool_executor_failed',
      message: `The tool executor gave no usable answer to turn ${turn} in ${attempts} attempt${attempts === 1 ? '' : 's'}; the last: ${problem.message}.`,
    };
    const failed = await changeJobState(db.db, job, { source: 'tool_executor', now: clock(), details: { turn, attempts, code: problem.code } }, (current) => {
      if (current.turn !== turn) return { ok: false, error: { code: 'illegal_transition', message: `job is at turn ${current.turn}` } };
      const decided = transition(current, { type: 'tool_executor_failed', error });
      return decided.ok ? { ...decided, fields: { error } } : decided;
    });
    await jobEffects.afterJobChange(failed, { type: 'tool_executor_failed' });
    return failed.ok && failed.changed;
  }

  return async (work: QueueJob): Promise<void> => {
    const { jobId, turn } = parsePayload('tools', work.data);
    const job = await getJob(db.db, jobId);
    if (!job) throw new UnrecoverableError(`job ${jobId} does not exist`);
    setJobAttributes(job);
    const log = deps.logger.child({ ...jobLogFields(job), turn });
    if (!waitsForExecutor(job, turn)) {
      log.debug({ status: job.status, job_turn: job.turn }, 'tool executor work skipped: the turn no longer waits for its tool calls');
      return;
    }
    const attempt = work.attemptsMade + 1;
    const calls = job.requiredAction!.tool_calls;
    const body = JSON.stringify({
      type: 'tool_calls',
      job_id: job.id,
      turn,
      tool_calls: calls.map((c) => ({ call_id: c.call_id, name: c.name, arguments: c.arguments, type: c.kind })),
    });
    const secret = await tenantCallbackSecret(db.db, job.tenantId, generateWebhookSecret);
    const sent = await sendCallback({
      url: job.toolExecutorUrl!,
      body,
      // The same webhook-id for every attempt at this turn: the executor's key to deduplicate.
      headers: signWebhook({ secrets: [secret], webhookId: toolsWorkItemId(job.id, turn), payload: body, now: clock() }),
      policy: config.callbacks.policy,
      timeoutMs: settings.timeoutMs,
      // One byte over the limit tells a complete answer at the limit from a larger one.
      maxResponseBytes: MAX_ANSWER_BYTES + 1,
      now: clock,
    });
    const answer = readAnswer(sent);
    // Read again: a cancel, an expiry or the tenant's own answer may have come while the executor worked.
    const current = await getJob(db.db, jobId);
    if (!current) throw new UnrecoverableError(`job ${jobId} does not exist`);
    let problem: ToolExecutorCallError;
    if (answer.ok) {
      const recorded = await recordAnswers(
        { db: db.db, jobEffects },
        current,
        { kind: 'tool_outputs', tool_outputs: answer.outputs },
        { source: 'tool_executor', now: clock(), logger: log, turn },
      );
      if (recorded.ok) {
        log.info({ attempt, calls: calls.length, latency_ms: sent.latencyMs, status: recorded.job.status }, 'tool executor answered the turn');
        return;
      }
      if (recorded.problem.status === 409) {
        log.info(
          { attempt, status: current.status, reason: recorded.problem.code, code: 'tool_executor_answer_dropped' },
          'tool executor answered a turn no longer waiting for it: dropped',
        );
        return;
      }
      problem = new ToolExecutorCallError(`its outputs were refused (${recorded.problem.code}): ${recorded.problem.message}`, 'tool_executor_outputs_refused');
    } else {
      problem = answer.error;
      // Nothing to retry for a job that stopped waiting meanwhile (cancelled while the call was in flight).
      if (!waitsForExecutor(current, turn)) {
        log.info({ attempt, status: current.status, reason: problem.code }, 'tool executor call failed, and the turn no longer waits for it');
        return;
      }
    }

    const fields = { attempt, attempts: settings.attempts, reason: problem.code, status_code: sent.statusCode, latency_ms: sent.latencyMs, error: problem.message };
    if (attempt >= settings.attempts || sent.outcome === 'blocked') {
      const changed = await failJob(current, turn, attempt, problem);
      log.warn({ ...fields, changed, code: 'tool_executor_failed' }, 'tool executor failed for good: job failed');
      return;
    }
    log.warn({ ...fields, code: 'tool_executor_call_failed' }, 'tool executor call failed, will retry');
    throw problem;
  };
}
