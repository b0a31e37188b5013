/**
 * GET /v1/jobs/{id}/stream: Server-Sent Events of a job's event log. `id:` is the provider's
 * `sequence_number` (`s.k` for Longhaul's lifecycle events in between), `event:` the event type,
 * `data:` the event JSON. `Last-Event-ID` (or `?starting_after=`) resumes after that event; no
 * cursor replays from the first event. A finished job replays and closes; a running one is
 * followed live until its terminal lifecycle event (../job-follow.ts). Comment lines every few
 * seconds keep idle proxies from cutting the connection.
 */
import { type Request, type Response, Router } from 'express';
import { NotFoundError, ValidationError, isTerminal } from '@longhaul/core';
import { getJobForTenant } from '@longhaul/db';
import { fromEventId } from '@longhaul/queue';
import type { ApiContext } from '../context.ts';
import { FINAL_FROM_DATABASE_ENTRY, type FollowedEntry, TERMINAL_EVENT_TYPES } from '../job-follow.ts';
import { checkPathIds, ids } from '../request-input.ts';
import { compareEntryIds } from '../stream-hub.ts';

function cursorOf(req: Request): string {
  const raw = req.get('last-event-id') ?? (typeof req.query.starting_after === 'string' ? req.query.starting_after : undefined);
  if (raw === undefined || raw === '') return '0-0';
  const entryId = fromEventId(raw);
  if (!entryId)
    throw new ValidationError(`Invalid event cursor '${raw}': use an event id from this stream.`, req.get('last-event-id') ? 'Last-Event-ID' : 'starting_after', 'invalid_cursor');
  return entryId;
}

/** An entry's SSE frame, encoded once however many watchers it goes to (the hub hands each of them the same entry). */
const frames = new WeakMap<object, Buffer>();
function frameOf(entry: FollowedEntry): Buffer {
  let frame = frames.get(entry);
  if (!frame) {
    frame = Buffer.from(`id: ${entry.eventId}\nevent: ${entry.type}\ndata: ${entry.data}\n\n`);
    frames.set(entry, frame);
  }
  return frame;
}

export function jobStreamRouter(deps: ApiContext): Router {
  const router = Router();
  checkPathIds(router, { id: ids.job });
  const { db, following } = deps;

  router.get('/:id/stream', async (req: Request, res: Response) => {
    if (!following) throw new NotFoundError('Job streams are not enabled on this server.');
    const cursor = cursorOf(req);
    const job = await getJobForTenant(db, req.tenantId!, String(req.params.id));
    if (!job) throw new NotFoundError(`No job with id '${req.params.id}'.`, 'id');
    const log = req.log.child({ job_id: job.id, tenant_id: job.tenantId, response_id: job.responseId });

    const lastStored = await following.streamHub.jobStreams.last(job.id).catch(() => null);
    // Nothing after the cursor, ever: 204 tells EventSource clients to stop reconnecting. A
    // finished job without a log (never watched, or lost with Redis) is told as one event, -1.1.
    const pastEnd = lastStored
      ? TERMINAL_EVENT_TYPES.has(lastStored.type) && compareEntryIds(cursor, lastStored.entryId) >= 0
      : compareEntryIds(cursor, FINAL_FROM_DATABASE_ENTRY) === 0;
    if (isTerminal(job.status) && pastEnd) {
      res.status(204).end();
      return;
    }

    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`: stream of ${job.id}\n\n`);
    let closed = false;
    let stop = () => {
      closed = true;
    };
    req.on('close', () => stop());
    const follower = await following.follow(job, {
      cursor,
      lastStored,
      logger: log,
      send: (entry) => res.write(frameOf(entry)),
      heartbeat: () => res.write(': keep-alive\n\n'),
      end: () => res.end(),
      cork: () => res.cork(),
      uncork: () => res.uncork(),
    });
    stop = follower.stop;
    if (closed) follower.stop();
  });

  return router;
}
