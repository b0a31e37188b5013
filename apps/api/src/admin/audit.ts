/**
 * The admin audit trail (the `admin_actions` table, packages/db/src/admin-actions.ts): who did
 * what, from which address, answered with which status. Shown at /admin/audit (audit-page.ts).
 *
 * What is recorded:
 * - every request that can change something (any method but GET, HEAD, OPTIONS) that passed the
 *   credential check: bull-board's actions (retry, clean, promote, pause, ...) and ours (a job's
 *   cancel), named by `describeAdminAction`;
 * - logins, logouts and wrong credentials (form, Bearer, Basic). A throttled attempt (429) is
 *   not: the throttle bounds how many rows guessing can write.
 *
 * Invariant: no change is made that the log does not show. A change is written before it runs
 * (Postgres unavailable: 503 `admin_audit_unavailable`, and it does not run), and the response
 * is held until its row has the status it is answered with, so whatever an admin has seen
 * answered is already in the log. Logins and wrong credentials are written on a best-effort
 * basis (an error is logged): refusing a login because the log is down would lock admins out
 * of the UI that shows what is wrong.
 */
import type { Request, RequestHandler, Response } from 'express';
import { ServiceUnavailableError } from '@longhaul/core';
import { type AdminActionRecord, type Database, recordAdminAction, settleAdminAction } from '@longhaul/db';
import type { CredentialClaim, CredentialVerdict } from './throttle.ts';

const ACTOR = 'longhaulAdminActor';
const DETAILS = 'longhaulAdminActionDetails';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function setAdminActor(res: Response, actor: string): void {
  res.locals[ACTOR] = actor;
}

/** Who is acting, once `requireAdmin` has let the request in. */
export function adminActor(res: Response): string {
  const actor = res.locals[ACTOR];
  if (typeof actor !== 'string') throw new Error('adminActor() before requireAdmin');
  return actor;
}

/** What a handler adds to the audit row of the action it carries out (e.g. the job's tenant, its state before and after). */
export function addAuditDetails(res: Response, details: Record<string, unknown>): void {
  res.locals[DETAILS] = { ...(res.locals[DETAILS] as Record<string, unknown> | undefined), ...details };
}

interface DescribedAction {
  action: string;
  target: string | null;
  details: Record<string, unknown>;
}

type Describe = (m: string[]) => Omit<DescribedAction, 'action'>;
const queue: Describe = ([q]) => ({ target: q!, details: {} });
const queueStatus: Describe = ([q, status]) => ({ target: q!, details: { status } });
const item: Describe = ([q, id]) => ({ target: `${q}/${id}`, details: {} });
const all: Describe = () => ({ target: null, details: {} });

/**
 * bull-board's mutating API (its routes.ts), under /queues/api/queues. Queue-wide routes first:
 * `/:queue/clean/:status` and `/:queue/:workItem/clean` have the same shape, and bull-board
 * matches them in this order too.
 */
const BOARD_ACTIONS: [method: string, path: RegExp, action: string, describe: Describe][] = [
  ['PUT', /^\/pause$/, 'queues.pause', all],
  ['PUT', /^\/resume$/, 'queues.resume', all],
  ['POST', /^\/([^/]+)\/add$/, 'queue.add', queue],
  ['PUT', /^\/([^/]+)\/retry\/([^/]+)$/, 'queue.retry', queueStatus],
  ['PUT', /^\/([^/]+)\/promote$/, 'queue.promote', queue],
  ['PUT', /^\/([^/]+)\/clean\/([^/]+)$/, 'queue.clean', queueStatus],
  ['PUT', /^\/([^/]+)\/pause$/, 'queue.pause', queue],
  ['PUT', /^\/([^/]+)\/resume$/, 'queue.resume', queue],
  ['PUT', /^\/([^/]+)\/concurrency$/, 'queue.concurrency', queue],
  ['PUT', /^\/([^/]+)\/rate-limit$/, 'queue.rate_limit', queue],
  ['PUT', /^\/([^/]+)\/rate-limit\/release$/, 'queue.rate_limit_release', queue],
  ['PUT', /^\/([^/]+)\/empty$/, 'queue.empty', queue],
  ['PUT', /^\/([^/]+)\/obliterate$/, 'queue.obliterate', queue],
  ['PUT', /^\/([^/]+)\/job-schedulers\/([^/]+)\/remove$/, 'scheduler.remove', item],
  ['PUT', /^\/([^/]+)\/job-schedulers\/([^/]+)\/run$/, 'scheduler.run', item],
  ['PATCH', /^\/([^/]+)\/job-schedulers\/([^/]+)$/, 'scheduler.update', item],
  ['PUT', /^\/([^/]+)\/([^/]+)\/retry$/, 'work_item.retry', item],
  ['PUT', /^\/([^/]+)\/([^/]+)\/clean$/, 'work_item.clean', item],
  ['PUT', /^\/([^/]+)\/([^/]+)\/promote$/, 'work_item.promote', item],
  ['PATCH', /^\/([^/]+)\/([^/]+)\/update-data$/, 'work_item.update_data', item],
  ['PATCH', /^\/([^/]+)\/([^/]+)\/delay$/, 'work_item.delay', item],
  ['PATCH', /^\/([^/]+)\/([^/]+)\/priority$/, 'work_item.priority', item],
  ['PUT', /^\/([^/]+)\/([^/]+)\/remove-unprocessed-children$/, 'work_item.remove_children', item],
];
const BOARD_API = '/queues/api/queues';
const JOB_CANCEL = /^\/jobs\/([^/]+)\/cancel$/;
const JOB_ACTION = /^\/jobs\/([^/]+)\/(rerun|resend-callbacks)$/;
const OTHER = 'admin.other';

/** Every action name the log can hold (the audit page's filter). */
export const ADMIN_ACTION_NAMES: readonly string[] = [
  'login',
  'login_failed',
  'logout',
  'job.cancel',
  'job.rerun',
  'job.resend_callbacks',
  ...BOARD_ACTIONS.map(([, , action]) => action),
  OTHER,
];

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** What a mutating request under /admin (`path` relative to it) does, for the log. */
export function describeAdminAction(method: string, path: string): DescribedAction {
  const job = JOB_CANCEL.exec(path);
  if (method === 'POST' && job) return { action: 'job.cancel', target: decode(job[1]!), details: {} };
  const jobAction = JOB_ACTION.exec(path);
  if (method === 'POST' && jobAction) return { action: jobAction[2] === 'rerun' ? 'job.rerun' : 'job.resend_callbacks', target: decode(jobAction[1]!), details: {} };
  if (path.startsWith(`${BOARD_API}/`)) {
    const rest = path.slice(BOARD_API.length);
    for (const [m, pattern, action, describe] of BOARD_ACTIONS) {
      const match = m === method ? pattern.exec(rest) : null;
      if (match) return { action, ...describe(match.slice(1).map(decode)) };
    }
  }
  return { action: OTHER, target: path.slice(0, 200), details: { method } };
}

export interface AdminAudit {
  /** Write a login, a logout or another event that is not itself a change (best effort). */
  note(req: Request, entry: Omit<AdminActionRecord, 'at' | 'address'>): Promise<void>;
  /** A wrong credential (a `refused` verdict), under the name it claimed. */
  failedCredential(req: Request, kind: 'form' | 'bearer' | 'basic', claim: CredentialClaim, verdict: Extract<CredentialVerdict, { outcome: 'refused' }>): Promise<void>;
  /** The middleware that records every change (after `requireAdmin`). */
  recordChanges: RequestHandler;
}

/** Call `settle` once the handler has answered, and only send the answer when it is done. */
function holdResponseUntil(res: Response, settle: () => Promise<void>): void {
  const end = res.end;
  let held = false;
  res.end = function (this: Response, ...args: unknown[]) {
    if (held) return this;
    held = true;
    void settle().finally(() => end.apply(this, args as Parameters<typeof end>));
    return this;
  } as typeof res.end;
}

export function createAdminAudit(deps: { db: Database; clock: () => Date }): AdminAudit {
  const { db, clock } = deps;
  const note: AdminAudit['note'] = async (req, entry) => {
    try {
      await recordAdminAction(db, { ...entry, at: clock(), address: req.ip ?? null });
    } catch (err) {
      req.log.error({ err, code: 'admin_audit_failed', action: entry.action, actor: entry.actor }, 'could not write the admin audit log');
    }
  };
  return {
    note,
    failedCredential(req, kind, claim, verdict) {
      const locked = verdict.exhausted ? { locked: verdict.exhausted.scope, retry_after_s: verdict.exhausted.retryAfterSeconds } : {};
      return note(req, { actor: claim.kind === 'user' ? claim.name.slice(0, 128) : 'admin', action: 'login_failed', statusCode: 401, details: { credential: kind, ...locked } });
    },
    recordChanges: async (req, res, next) => {
      if (SAFE_METHODS.has(req.method)) return next();
      const { action, target, details } = describeAdminAction(req.method, req.path);
      let id: number;
      try {
        id = await recordAdminAction(db, { at: clock(), actor: adminActor(res), action, target, address: req.ip ?? null, details });
      } catch (err) {
        req.log.error({ err, code: 'admin_audit_unavailable', action }, 'admin action refused: the audit log cannot be written');
        return next(
          new ServiceUnavailableError('The admin action cannot be recorded (the database is unavailable), so it was not carried out; retry later.', 'admin_audit_unavailable', err),
        );
      }
      holdResponseUntil(res, async () => {
        try {
          await settleAdminAction(db, id, { statusCode: res.statusCode, details: res.locals[DETAILS] as Record<string, unknown> | undefined });
        } catch (err) {
          req.log.error({ err, code: 'admin_audit_failed', action, audit_id: id }, 'could not write the outcome of an admin action');
        }
      });
      next();
    },
  };
}
