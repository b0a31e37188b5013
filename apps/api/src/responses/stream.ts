/**
 * A response's event stream as OpenAI sends it (`stream: true` on create, or
 * `GET /v1/responses/{id}?stream=true&starting_after=N`): SSE frames `event: <type>` /
 * `data: <event JSON>` whose `sequence_number`s count from 0, replayable from the first event
 * and resumable after any.
 *
 * The events are the provider's own, stored in the job's event log by the worker as they arrive
 * (a `stream: true` job streams from the provider), with the response told as Longhaul's
 * (its id, and `previous_response_id` when it continues a Longhaul response). Longhaul adds two:
 *
 * - `response.created` at sequence 0 while the provider has not created the response yet (the job
 *   waits for admission): the client learns the response's id at once. The provider's own
 *   `response.created`, the log's sequence 0, takes its place in every later replay.
 * - the end, when the job ended without the provider saying so (it failed before reaching the
 *   provider, or expired): `response.failed` (or `response.incomplete` / `response.completed`)
 *   from the job's row, one past the last stored sequence number. A cancelled response's stream
 *   just ends, as OpenAI's does.
 *
 * Longhaul's lifecycle events (`job.*`) are not OpenAI events and are not sent.
 */
import type { Request, Response } from 'express';
import { isTerminal } from '@longhaul/core';
import { getJobForTenant, type Job } from '@longhaul/db';
import type { ApiContext } from '../context.ts';
import type { FollowedEntry } from '../job-follow.ts';
import { TERMINAL_EVENT_TYPES } from '../job-follow.ts';
import { responseIdOf } from './ids.ts';
import { type ResponseObject, toResponseObject } from './response-object.ts';

/** Events that carry the whole response. */
const CARRIES_RESPONSE = new Set(['response.created', 'response.queued', 'response.in_progress', 'response.completed', 'response.failed', 'response.incomplete']);
/** The provider's events that end a response's stream. */
const PROVIDER_TERMINAL = new Set(['response.completed', 'response.failed', 'response.incomplete']);

/** A provider event with the response told as Longhaul's. */
function asLonghaulEvent(event: Record<string, unknown>, job: Job): Record<string, unknown> {
  const id = responseIdOf(job.id);
  if (typeof event.response_id === 'string') event.response_id = id;
  const response = event.response as Record<string, unknown> | undefined;
  if (response && typeof response === 'object') {
    event.response = {
      ...response,
      id,
      previous_response_id: job.previousJobId ? responseIdOf(job.previousJobId) : (response.previous_response_id ?? null),
      background: job.request.background !== false,
    };
  }
  return event;
}

function finalEventOf(response: ResponseObject, sequence: number): Record<string, unknown> | null {
  const type =
    response.status === 'completed' ? 'response.completed' : response.status === 'incomplete' ? 'response.incomplete' : response.status === 'failed' ? 'response.failed' : null;
  return type ? { type, sequence_number: sequence, response } : null;
}

/**
 * Answer `res` with the response's events after `startingAfter` (null: from the first), live until
 * its end. The caller has checked that the job streams from the provider.
 */
export async function sendResponseEvents(ctx: ApiContext, req: Request, res: Response, job: Job, startingAfter: number | null): Promise<void> {
  const following = ctx.following!;
  const log = req.log.child({ job_id: job.id, tenant_id: job.tenantId, response_id: job.responseId });
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.socket?.setKeepAlive(true, 30_000);

  let lastSequence = -1;
  let ended = false;
  const write = (event: Record<string, unknown>) => {
    const sequence = event.sequence_number as number;
    if (ended || sequence <= lastSequence) return;
    lastSequence = sequence;
    if (startingAfter !== null && sequence <= startingAfter) return;
    res.write(`event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`);
  };

  const lastProvider = await following.streamHub.jobStreams.lastProviderSequence(job.id).catch(() => null);
  // The provider has not created the response yet: say what it is at once.
  if (lastProvider === null && startingAfter === null && !isTerminal(job.status)) {
    write({ type: 'response.created', sequence_number: 0, response: toResponseObject(job) });
  }
  let providerEnded = false;
  /** The job ended without the provider's final event: tell it from the row. */
  const sendFinalFromDatabase = async () => {
    if (providerEnded) return;
    const current = (await getJobForTenant(ctx.db, job.tenantId, job.id)) ?? job;
    const response = toResponseObject(current);
    if (lastSequence < 0)
      write({ type: 'response.created', sequence_number: 0, response: { ...toResponseObject({ ...current, status: 'pending', output: null, usage: null, error: null }) } });
    const final = finalEventOf(response, lastSequence + 1);
    if (final) write(final);
  };

  let pending = Promise.resolve();
  let finished = false;
  const end = () => {
    if (finished) return;
    finished = true;
    // The final event may still be on its way from Postgres: end after it.
    pending.finally(() => {
      ended = true;
      res.end();
    });
  };
  let closed = false;
  let stop = () => {
    closed = true;
  };
  req.on('close', () => {
    ended = true;
    stop();
  });
  const follower = await following.follow(job, {
    cursor: '0-0',
    logger: log,
    send: (entry: FollowedEntry) => {
      if (entry.type.startsWith('job.')) {
        if (TERMINAL_EVENT_TYPES.has(entry.type))
          pending = pending.then(sendFinalFromDatabase).catch((err: unknown) => log.warn({ err, code: 'final_event_failed' }, 'could not tell the final event'));
        return;
      }
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(entry.data) as Record<string, unknown>;
      } catch {
        return;
      }
      if (PROVIDER_TERMINAL.has(String(event.type))) providerEnded = true;
      write(CARRIES_RESPONSE.has(String(event.type)) || 'response_id' in event ? asLonghaulEvent(event, job) : event);
    },
    heartbeat: () => res.write(': keep-alive\n\n'),
    end,
    cork: () => res.cork(),
    uncork: () => res.uncork(),
  });
  stop = follower.stop;
  if (closed) follower.stop();
}
