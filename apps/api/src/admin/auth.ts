/**
 * Authentication of the admin UI (`/admin/*`: bull-board, its assets and API, the job pages).
 *
 * Credentials come from configuration: an admin token (sent as `Authorization: Bearer`, or
 * exchanged through the login form for a session cookie, see sessions.ts) and/or HTTP Basic
 * credentials. Nothing is reachable without one of them, unless authentication is explicitly
 * disabled (local development). With no credential configured the UI answers 503 and says how
 * to configure it, rather than being open by accident.
 *
 * A credential in the `Authorization` header is the one checked when present (the cookie is then
 * ignored); every check of a token or password goes through the credential throttle
 * (throttle.ts), which decides what the caller is told. Session cookies are not throttled: their
 * 256-bit ids cannot be guessed, and a browser still sending one after logout must not lock its
 * address out. Redis not answering is a 503 for every kind of credential (fail closed).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { LonghaulError, RateLimitedError, ServiceUnavailableError } from '@longhaul/core';
import type { CredentialThrottle, CredentialVerdict } from './throttle.ts';
import { type AdminSessions, type CookieSecureSetting, clearSessionCookie, sessionCookie } from './sessions.ts';

export interface AdminConfig {
  /** Admin token: `Authorization: Bearer <token>`, or the login form (session cookie). */
  token?: string;
  /** `user:password` for HTTP Basic authentication. */
  basicAuth?: string;
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
  /** Wrong credentials (token, Bearer, Basic) allowed per client address per window before 429. Default 10. */
  maxFailuresPerAddress?: number;
  /** Wrong credentials allowed from all addresses together per window; 0: no such cap. Default 1 000. */
  maxFailuresGlobal?: number;
  /** The window those counts are kept for, from the first failure. Default 900 s. */
  failureWindowSeconds?: number;
}

export const DEFAULT_SESSION_TTL_MS = 12 * 3600 * 1000;

/** Constant-time string comparison (length differences still take the same path). */
export function safeEqual(a: string, b: string): boolean {
  const x = createHmac('sha256', 'longhaul-compare').update(a).digest();
  const y = createHmac('sha256', 'longhaul-compare').update(b).digest();
  return timingSafeEqual(x, y);
}

export type AdminAuthState = 'disabled' | 'unconfigured' | 'configured';

export function adminAuthState(config: AdminConfig | undefined): AdminAuthState {
  if (config?.authDisabled) return 'disabled';
  return config?.token || config?.basicAuth ? 'configured' : 'unconfigured';
}

export class AdminAuthRequiredError extends LonghaulError {
  constructor() {
    super('Admin credentials required.', { code: 'admin_auth_required', status: 401, type: 'authentication_error' });
    this.name = 'AdminAuthRequiredError';
  }
}

/** What a throttle verdict other than `accepted`/`refused` is for an API caller. */
export function verdictError(verdict: Extract<CredentialVerdict, { outcome: 'throttled' | 'unavailable' }>): LonghaulError {
  if (verdict.outcome === 'unavailable') {
    return new ServiceUnavailableError('Admin credentials cannot be checked right now (Redis is unavailable); retry later.', 'admin_auth_unavailable', verdict.error);
  }
  const who = verdict.scope === 'address' ? 'from this address' : 'from all addresses together';
  return new RateLimitedError(`Too many wrong admin credentials ${who}; retry in ${verdict.retryAfterSeconds} s.`, verdict.retryAfterSeconds, 'admin_auth_throttled');
}

/** Log what a verdict means for the admin's security (never the credential). */
export function logVerdict(req: Request, kind: 'form' | 'bearer' | 'basic', verdict: CredentialVerdict): void {
  const client = req.ip ?? null;
  if (verdict.outcome === 'refused') {
    req.log.warn({ code: 'admin_auth_failed', client, credential: kind }, 'wrong admin credential');
    if (verdict.exhausted)
      req.log.warn(
        { code: 'admin_auth_throttled', client, scope: verdict.exhausted.scope, retry_after_s: verdict.exhausted.retryAfterSeconds },
        'too many wrong admin credentials: refusing further attempts',
      );
  } else if (verdict.outcome === 'unavailable') req.log.error({ err: verdict.error, code: 'admin_auth_unavailable' }, 'admin credential check unavailable (Redis)');
}

type HeaderCredential = { kind: 'bearer' | 'basic'; value: string } | undefined;

function headerCredential(req: Request): HeaderCredential {
  const header = req.headers.authorization ?? '';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  if (bearer !== undefined) return { kind: 'bearer', value: bearer };
  const basic = /^Basic\s+(\S+)\s*$/i.exec(header)?.[1];
  if (basic !== undefined) return { kind: 'basic', value: Buffer.from(basic, 'base64').toString('utf8') };
  return undefined;
}

export interface RequireAdminOptions {
  config: AdminConfig | undefined;
  throttle: CredentialThrottle;
  /** Absent when no token is configured (Basic only): no sessions then. */
  sessions: AdminSessions | undefined;
  /** The answer for a browser page without credentials (the login form, status 401). */
  loginPage: (req: Request, res: Response) => void;
}

/**
 * Gate every admin route. Without a valid credential: 401 (the login form for a browser page when
 * a token is configured; a Basic challenge when only Basic auth is; JSON for API calls and
 * assets); too many wrong ones: 429; Redis down: 503.
 */
export function requireAdmin({ config, throttle, sessions, loginPage }: RequireAdminOptions): RequestHandler {
  const cookieSecure = config?.cookieSecure ?? 'auto';
  const unauthorized = (req: Request, res: Response, next: (err?: unknown) => void) => {
    const wantsPage = req.method === 'GET' && req.accepts(['json', 'html']) === 'html' && !req.path.startsWith('/queues/api') && !req.path.includes('/static/');
    if (config!.basicAuth && !config!.token) res.setHeader('WWW-Authenticate', 'Basic realm="Longhaul admin", charset="UTF-8"');
    if (wantsPage && config!.token) {
      res.status(401);
      loginPage(req, res);
      return;
    }
    next(new AdminAuthRequiredError());
  };

  return async (req, res, next) => {
    const state = adminAuthState(config);
    if (state === 'disabled') return next();
    if (state === 'unconfigured') {
      res.status(503).type('text/plain').send('The admin UI is not configured: set ADMIN_TOKEN or ADMIN_BASIC_AUTH (or ADMIN_AUTH_DISABLED=true, for local development only).\n');
      return;
    }
    const credential = headerCredential(req);
    if (credential) {
      const expected = credential.kind === 'bearer' ? config!.token : config!.basicAuth;
      const verdict = await throttle.attempt(req.ip, () => expected !== undefined && safeEqual(credential.value, expected));
      logVerdict(req, credential.kind, verdict);
      if (verdict.outcome === 'accepted') return next();
      if (verdict.outcome === 'refused') return unauthorized(req, res, next);
      return next(verdictError(verdict));
    }
    const cookie = sessionCookie(req);
    if (cookie !== undefined) {
      let valid = false;
      try {
        valid = sessions !== undefined && (await sessions.verify(cookie));
      } catch (error) {
        return next(verdictError({ outcome: 'unavailable', error }));
      }
      if (valid) return next();
      clearSessionCookie(res, req, cookieSecure); // expired, revoked, of an old token, or not one at all
    }
    unauthorized(req, res, next);
  };
}
