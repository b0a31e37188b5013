/**
 * Authentication of the admin UI (`/admin/*`: bull-board, its assets and API, the job pages and
 * the audit log), and who the admin is: the actor every admin action is recorded under
 * (identities.ts).
 *
 * Credentials come from configuration: an admin token (sent as `Authorization: Bearer`, or
 * exchanged through the login form for a session cookie, see sessions.ts), named admins with
 * passwords (ADMIN_USERS: the login form, or HTTP Basic) and/or one HTTP Basic credential
 * (ADMIN_BASIC_AUTH). Nothing is reachable without one of them, unless authentication is
 * explicitly disabled (local development). With no credential configured the UI answers 503 and
 * says how to configure it, rather than being open by accident.
 *
 * A credential in the `Authorization` header is the one checked when present (the cookie is then
 * ignored); every check of a token or password goes through the credential throttle
 * (throttle.ts), which decides what the caller is told, and every wrong one is written to the
 * audit log (audit.ts). Session cookies are not throttled: their 256-bit ids cannot be guessed,
 * and a browser still sending one after logout must not lock its address out. Redis not
 * answering is a 503 for every kind of credential (fail closed).
 */
import type { Request, RequestHandler, Response } from 'express';
import { LonghaulError, RateLimitedError, ServiceUnavailableError } from '@longhaul/core';
import { type AdminAudit, setAdminActor } from './audit.ts';
import { ANONYMOUS_ACTOR, type AdminIdentities } from './identities.ts';
import type { AdminUser } from './passwords.ts';
import type { CredentialClaim, CredentialThrottle, CredentialVerdict } from './throttle.ts';
import { type AdminSessions, type CookieSecureSetting, clearSessionCookie, sessionCookie } from './sessions.ts';

export interface AdminConfig {
  /** Admin token: `Authorization: Bearer <token>`, or the login form (session cookie). */
  token?: string;
  /** `user:password` for HTTP Basic authentication (actor `basic:<user>`). */
  basicAuth?: string;
  /** Named admins (ADMIN_USERS): the login form or HTTP Basic, each action recorded under the name. */
  users?: AdminUser[];
  /** No authentication at all. Local development only. Default false. */
  authDisabled?: boolean;
  /** bull-board without its mutating actions (retry, promote, clean, ...). Default false. */
  readOnly?: boolean;
  /** How long a login lasts (absolute, from the login). Default 12 h. */
  sessionTtlMs?: number;
  /**
   * `Secure` on the session cookie: `true`, `false`, or `'auto'`: set unless the browser talks plain
   * HTTP to a loopback address (see sessions.ts). Default `'auto'`.
   */
  cookieSecure?: CookieSecureSetting;
  /**
   * Origins (`https://admin.example.com`) the admin UI is opened at besides this API's own as the
   * request reached it: for a proxy that changes the scheme or Host. Non-GET requests with a
   * session cookie or Basic credentials must come from one of them (see csrf.ts). Default none.
   */
  publicOrigins?: string[];
  /** Wrong passwords allowed per user name (from all addresses), and wrong tokens per address, per window before 429. Default 10. */
  maxFailuresPerCredential?: number;
  /** Wrong credentials (any name, the token) allowed per client address per window before 429. Default 50. */
  maxFailuresPerAddress?: number;
  /** Wrong credentials allowed from all addresses together per window; 0: no such cap. Default 1 000. */
  maxFailuresGlobal?: number;
  /** The window those counts are kept for, from the first failure. Default 900 s. */
  failureWindowSeconds?: number;
}

export const DEFAULT_SESSION_TTL_MS = 12 * 3600 * 1000;

export type AdminAuthState = 'disabled' | 'unconfigured' | 'configured';

export function adminAuthState(config: AdminConfig | undefined): AdminAuthState {
  if (config?.authDisabled) return 'disabled';
  return config?.token || config?.basicAuth || config?.users?.length ? 'configured' : 'unconfigured';
}

export class AdminAuthRequiredError extends LonghaulError {
  constructor() {
    super('Admin credentials required.', { code: 'admin_auth_required', status: 401, type: 'authentication_error' });
    this.name = 'AdminAuthRequiredError';
  }
}

/** What a throttle verdict other than `accepted`/`refused` is for an API caller. */
export function verdictError(verdict: Extract<CredentialVerdict, { outcome: 'throttled' | 'unavailable' }>, claim?: CredentialClaim): LonghaulError {
  if (verdict.outcome === 'unavailable') {
    return new ServiceUnavailableError('Admin credentials cannot be checked right now (Redis is unavailable); retry later.', 'admin_auth_unavailable', verdict.error);
  }
  return new RateLimitedError(`${throttledMessage(verdict.scope, claim)}; retry in ${verdict.retryAfterSeconds} s.`, verdict.retryAfterSeconds, 'admin_auth_throttled');
}

/** Which count a 429 is about, in words (a locked user name is said so whether it exists or not). */
export function throttledMessage(scope: 'credential' | 'address' | 'global', claim?: CredentialClaim): string {
  if (scope === 'credential') return claim?.kind === 'user' ? `Too many wrong passwords for ${claim.name}` : 'Too many wrong admin tokens from this address';
  return scope === 'address' ? 'Too many wrong admin credentials from this address' : 'Too many wrong admin credentials from all addresses together';
}

export type CredentialKind = 'form' | 'bearer' | 'basic';

/** Log what a verdict means for the admin's security (never the credential). */
export function logVerdict(req: Request, kind: CredentialKind, verdict: CredentialVerdict, claim?: CredentialClaim): void {
  const client = req.ip ?? null;
  const user = claim?.kind === 'user' ? claim.name : null;
  if (verdict.outcome === 'refused') {
    req.log.warn({ code: 'admin_auth_failed', client, credential: kind, user }, 'wrong admin credential');
    if (verdict.exhausted)
      req.log.warn(
        { code: 'admin_auth_throttled', client, user, scope: verdict.exhausted.scope, retry_after_s: verdict.exhausted.retryAfterSeconds },
        'too many wrong admin credentials: refusing further attempts',
      );
  } else if (verdict.outcome === 'unavailable') req.log.error({ err: verdict.error, code: 'admin_auth_unavailable' }, 'admin credential check unavailable (Redis)');
}

type HeaderCredential = { kind: 'bearer'; token: string } | { kind: 'basic'; name: string; password: string } | undefined;

function headerCredential(req: Request): HeaderCredential {
  const header = req.headers.authorization ?? '';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  if (bearer !== undefined) return { kind: 'bearer', token: bearer };
  const basic = /^Basic\s+(\S+)\s*$/i.exec(header)?.[1];
  if (basic === undefined) return undefined;
  const decoded = Buffer.from(basic, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return { kind: 'basic', name: colon < 0 ? decoded : decoded.slice(0, colon), password: colon < 0 ? '' : decoded.slice(colon + 1) };
}

export interface RequireAdminOptions {
  config: AdminConfig | undefined;
  identities: AdminIdentities;
  throttle: CredentialThrottle;
  audit: AdminAudit;
  /** Absent when there is no login form (Basic only, or auth disabled): no sessions then. */
  sessions: AdminSessions | undefined;
  /** The answer for a browser page without credentials (the login form, status 401). */
  loginPage: (req: Request, res: Response) => void;
}

/**
 * Gate every admin route and name its actor (`adminActor(res)`). Without a valid credential: 401
 * (the login form for a browser page when there is one; a Basic challenge when only Basic auth
 * is configured; JSON for API calls and assets); too many wrong ones: 429; Redis down: 503.
 */
export function requireAdmin({ config, identities, throttle, audit, sessions, loginPage }: RequireAdminOptions): RequestHandler {
  const cookieSecure = config?.cookieSecure ?? 'auto';
  const unauthorized = (req: Request, res: Response, next: (err?: unknown) => void) => {
    const wantsPage = req.method === 'GET' && req.accepts(['json', 'html']) === 'html' && !req.path.startsWith('/queues/api') && !req.path.includes('/static/');
    if (!sessions) res.setHeader('WWW-Authenticate', 'Basic realm="Longhaul admin", charset="UTF-8"');
    if (wantsPage && sessions) {
      res.status(401);
      loginPage(req, res);
      return;
    }
    next(new AdminAuthRequiredError());
  };

  return async (req, res, next) => {
    const state = adminAuthState(config);
    if (state === 'disabled') {
      setAdminActor(res, ANONYMOUS_ACTOR);
      return next();
    }
    if (state === 'unconfigured') {
      res
        .status(503)
        .type('text/plain')
        .send('The admin UI is not configured: set ADMIN_USERS, ADMIN_TOKEN or ADMIN_BASIC_AUTH (or ADMIN_AUTH_DISABLED=true, for local development only).\n');
      return;
    }
    const credential = headerCredential(req);
    if (credential) {
      let actor: string | undefined;
      const claim: CredentialClaim = credential.kind === 'bearer' ? { kind: 'token' } : { kind: 'user', name: credential.name };
      const verdict = await throttle.attempt(req.ip, claim, async () => {
        actor = credential.kind === 'bearer' ? identities.checkToken(credential.token) : await identities.checkPassword(credential.name, credential.password);
        return actor !== undefined;
      });
      logVerdict(req, credential.kind, verdict, claim);
      if (verdict.outcome === 'accepted') {
        setAdminActor(res, actor!);
        return next();
      }
      if (verdict.outcome === 'refused') {
        await audit.failedCredential(req, credential.kind, claim, verdict);
        return unauthorized(req, res, next);
      }
      return next(verdictError(verdict, claim));
    }
    const cookie = sessionCookie(req);
    if (cookie !== undefined) {
      let actor: string | undefined;
      try {
        actor = sessions ? await sessions.verify(cookie) : undefined;
      } catch (error) {
        return next(verdictError({ outcome: 'unavailable', error }));
      }
      if (actor !== undefined) {
        setAdminActor(res, actor);
        return next();
      }
      clearSessionCookie(res, req, cookieSecure); // expired, revoked, of an old credential, or not one at all
    }
    unauthorized(req, res, next);
  };
}
