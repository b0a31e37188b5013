/**
 * The typed catalog of Longhaul's queues: names, payload schemas and retry settings, imported by
 * producers (API, sweeper) and consumers (worker processors) alike. A payload arrives at a
 * processor as `unknown` and is parsed with the schema here first.
 *
 * Every work item's BullMQ job id is the Longhaul job id, so dispatching the same job twice (the
 * API after commit, then the sweeper after a suspected loss) never creates two work items.
 */
import { ID_PREFIX, idPattern } from '@longhaul/core';
import type { JobsOptions } from 'bullmq';
import { z } from 'zod';

export const jobIdSchema = z.string().regex(idPattern(ID_PREFIX.job));
export const runIdSchema = z.string().regex(idPattern(ID_PREFIX.run));

/**
 * The W3C `traceparent` of the span that enqueued a work item (@longhaul/telemetry), so its
 * processing joins the job's trace. Present only while tracing; bounded (the header is 55 bytes).
 */
const traceparent = z.string().max(128).optional();

/**
 * Work items retried on failure with the core retry schedule (the worker's `longhaul` backoff
 * strategy), removed once done, and kept a week when they fail for good (for the admin board).
 */
function retried(attempts: number): JobsOptions {
  return { attempts, backoff: { type: 'longhaul' }, removeOnComplete: true, removeOnFail: { age: 7 * 24 * 3600, count: 10_000 } };
}

/** Far above any SUBMIT_MAX_ATTEMPTS: the submit processor's budget is the one that counts. */
const SUBMIT_WORK_ITEM_ATTEMPTS = 1_000_000;
/** Far above any TOOL_EXECUTOR_ATTEMPTS: the tools processor fails the job after its own last attempt. */
const TOOLS_WORK_ITEM_ATTEMPTS = 1_000_000;

/**
 * The work item id of a turn's tool execution: one per job and turn, so the turn's end and the
 * sweeper dispatch the same item, and the next turn's is a new one.
 */
export function toolsWorkItemId(jobId: string, turn: number): string {
  return `${jobId}_turn_${turn}`;
}

/**
 * The work item id of a pipeline run's advance: one per run and cause (`created`, a step job's
 * id, `cancel`, `sweep_<minute>`), so a step job that ends while another advance of its run is
 * running is never lost to de-duplication (advances of one run serialize on its row lock).
 */
export function runWorkItemId(runId: string, cause: string): string {
  return `${runId}_${cause}`;
}

export const queueCatalog = {
  /** Create the background response at the provider. */
  submit: {
    name: 'submit',
    // `firstAttemptAt` (epoch ms): when the turn's first provider create failed; the retry time
    // budget counts from there, not from job creation (a job may wait long for its token budget).
    payload: z.object({ jobId: jobIdSchema, firstAttemptAt: z.number().int().positive().optional(), traceparent }),
    // The processor alone decides when a failing create has had enough (SUBMIT_MAX_ATTEMPTS,
    // SUBMIT_RETRY_WINDOW_SECONDS) and fails the job with provider_unavailable. BullMQ must never
    // give up first: a work item it failed on its own would leave the job pending, re-dispatched
    // by the sweeper with its attempt count and window restarted, retried forever.
    options: retried(SUBMIT_WORK_ITEM_ATTEMPTS),
  },
  /** Retrieve the response and reconcile it; re-delays itself until the response is terminal. */
  poll: {
    name: 'poll',
    // `job`: the job as the poll last knew it (@longhaul/db toJobSnapshot), so it needs no read
    // before its guarded write; absent (the sweeper, an older item), the poll reads the row.
    payload: z.object({ jobId: jobIdSchema, attempt: z.number().int().nonnegative().default(0), job: z.record(z.string(), z.unknown()).optional(), traceparent }),
    options: retried(50),
  },
  /**
   * Follow a `stream: true` job's provider event stream into the job's event log, resuming from
   * the last stored event after any interruption, and reconcile its final state.
   */
  stream: {
    name: 'stream',
    payload: z.object({ jobId: jobIdSchema, traceparent }),
    options: retried(50),
  },
  /** Ask the provider to cancel a response, then reconcile what it answers. */
  cancel: {
    name: 'cancel',
    payload: z.object({ jobId: jobIdSchema, traceparent }),
    options: retried(20),
  },
  /** Act on a received OpenAI webhook: retrieve the (thin-payload) response and reconcile it. */
  webhook: {
    name: 'webhook',
    // What the receiver knew, so the worker reads neither the inbox row nor the job before its
    // guarded write: the event (`event`) and the job whose response it names (`job`, a
    // toJobSnapshot of @longhaul/db). Absent (the sweeper's, an older item's): both are read.
    payload: z.object({
      inboxId: z.number().int().positive(),
      waits: z.number().int().nonnegative().default(0),
      event: z.object({ webhookId: z.string(), eventType: z.string(), responseId: z.string().nullable() }).optional(),
      job: z.record(z.string(), z.unknown()).optional(),
      traceparent,
    }),
    options: retried(30),
  },
  /**
   * Send a turn's tool calls to the job's tool executor (`tool_executor.url`) and record its
   * outputs as the turn's answer. Keyed by job and turn (`toolsWorkItemId`).
   */
  tools: {
    name: 'tools',
    payload: z.object({ jobId: jobIdSchema, turn: z.number().int().positive(), traceparent }),
    // Retried on the worker's backoff; the processor counts the attempts (TOOL_EXECUTOR_ATTEMPTS)
    // and fails the job after the last, so BullMQ never gives up with the job still waiting.
    options: retried(TOOLS_WORK_ITEM_ATTEMPTS),
  },
  /**
   * Advance a pipeline run (@longhaul/core pipeline-run.ts): plan it from its steps' jobs, create
   * the steps that may start, finish it. Keyed by run and cause (`runWorkItemId`).
   */
  runs: {
    name: 'runs',
    payload: z.object({ runId: runIdSchema, traceparent }),
    options: retried(50),
  },
  /** Send one callback delivery; re-delays itself on the retry schedule until it succeeds or dies. */
  deliver: {
    name: 'deliver',
    payload: z.object({ deliveryId: z.string().regex(idPattern(ID_PREFIX.delivery)), traceparent }),
    options: retried(30),
  },
} as const satisfies Record<string, { name: string; payload: z.ZodType; options: JobsOptions }>;

export type QueueKey = keyof typeof queueCatalog;
export type Payload<K extends QueueKey> = z.infer<(typeof queueCatalog)[K]['payload']>;
/** What a producer passes (defaults may be left out). */
export type PayloadInput<K extends QueueKey> = z.input<(typeof queueCatalog)[K]['payload']>;
export const QUEUE_KEYS = Object.keys(queueCatalog) as QueueKey[];

/** Parse a payload that arrived from Redis; throws a ZodError on a malformed one. */
export function parsePayload<K extends QueueKey>(key: K, data: unknown): Payload<K> {
  return queueCatalog[key].payload.parse(data) as Payload<K>;
}
