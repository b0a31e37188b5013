/**
 * Authentication of the admin UI (`/admin/*`: bull-board, its assets and API, the job pages).
 *
 * Credentials come from configuration: an admin token (sent as `Authorization: Bearer`, or
 * exchanged once through the login form for an HttpOnly session cookie) and/or HTTP Basic
 * credentials. Nothing is reachable without one of them, unless authentication is explicitly
 * disabled (local development). With no credential configured the UI answers 503 and says how
 * to configure it, rather than being open by accident.
 *
 * The session cookie is stateless, so any API process accepts it: `<expiry>.<HMAC-SHA256 keyed
 * with the token>`. It never contains the token, and changing the token invalidates it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';

export interface AdminConfig {
  /** Admin token: `Authorization: Bearer <token>`, or the login form (session cookie). */
  token?: string;
  /** `user:password` for HTTP Basic authentication. */
  basicAuth?: string;
  /** No authentication at all. Local development only. Default false. */
  authDisabled?: boolean;
  /** bull-board without its mutating actions (retry, promote, clean, ...). Default false. */
  readOnly?: boolean;
  /** How long a login lasts. Default 12 h. */
  sessionTtlMs?: number;
}

export const SESSION_COOKIE = 'longhaul_admin';
const DEFAULT_SESSION_TTL_MS = 12 * 3600 * 1000;

/** Constant-time string comparison (length differences still take the same path). */
export function safeEqual(a: string, b: string): boolean {
  const x = createHmac('sha256', 'longhaul-compare').update(a).digest();
  const y = createHmac('sha256', 'longhaul-compare').update(b).digest();
  return timingSafeEqual(x, y);
}

function sign(token: string, expiresAt: number): string {
  return createHmac('sha256', token).update(`longhaul-admin-session:${expiresAt}`).digest('base64url');
}

export function sessionCookieValue(token: string, now: Date, ttlMs = DEFAULT_SESSION_TTL_MS): string {
  const expiresAt = Math.floor((now.getTime() + ttlMs) / 1000);
  return `${expiresAt}.${sign(token, expiresAt)}`;
}

function validSession(token: string, value: string, now: Date): boolean {
  const [exp, mac] = value.split('.');
  const expiresAt = Number(exp);
  if (!mac || !Number.isInteger(expiresAt) || expiresAt * 1000 <= now.getTime()) return false;
  return safeEqual(mac, sign(token, expiresAt));
}

function cookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined; // malformed %-encoding: no session, not a 500
      }
    }
  }
  return undefined;
}

export function setSessionCookie(res: Response, req: Request, value: string, ttlMs: number): void {
  res.cookie(SESSION_COOKIE, value, { httpOnly: true, sameSite: 'strict', path: '/admin', secure: req.secure, maxAge: ttlMs });
}

export function clearSessionCookie(res: Response): void {
  res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', path: '/admin' });
}

export type AdminAuthState = 'disabled' | 'unconfigured' | 'configured';

export function adminAuthState(config: AdminConfig | undefined): AdminAuthState {
  if (config?.authDisabled) return 'disabled';
  return config?.token || config?.basicAuth ? 'configured' : 'unconfigured';
}

/** Whether the request carries a valid admin credential. */
export function isAdmin(req: Request, config: AdminConfig, now: Date): boolean {
  if (config.authDisabled) return true;
  const header = req.headers.authorization ?? '';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  if (config.token && bearer !== undefined && safeEqual(bearer, config.token)) return true;
  const basic = /^Basic\s+(\S+)\s*$/i.exec(header)?.[1];
  if (config.basicAuth && basic !== undefined && safeEqual(Buffer.from(basic, 'base64').toString('utf8'), config.basicAuth)) return true;
  const session = cookie(req, SESSION_COOKIE);
  return Boolean(config.token && session && validSession(config.token, session, now));
}

export interface RequireAdminOptions {
  config: AdminConfig | undefined;
  clock: () => Date;
  /** The answer for a browser page without credentials (the login form, status 401). */
  loginPage: (req: Request, res: Response) => void;
}

/**
 * Gate every admin route. Without a credential: 401 (the login form for a browser page when a
 * token is configured; a Basic challenge when only Basic auth is; JSON for API calls and assets).
 */
export function requireAdmin({ config, clock, loginPage }: RequireAdminOptions): RequestHandler {
  return (req, res, next) => {
    const state = adminAuthState(config);
    if (state === 'disabled') return next();
    if (state === 'unconfigured') {
      res.status(503).type('text/plain').send('The admin UI is not configured: set ADMIN_TOKEN or ADMIN_BASIC_AUTH (or ADMIN_AUTH_DISABLED=true, for local development only).\n');
      return;
    }
    if (isAdmin(req, config!, clock())) return next();
    const wantsPage = req.method === 'GET' && req.accepts(['json', 'html']) === 'html' && !req.path.startsWith('/queues/api') && !req.path.includes('/static/');
    if (config!.basicAuth && !config!.token) res.setHeader('WWW-Authenticate', 'Basic realm="Longhaul admin", charset="UTF-8"');
    if (wantsPage && config!.token) {
      res.status(401);
      loginPage(req, res);
      return;
    }
    res.status(401).json({ error: { type: 'authentication_error', code: 'admin_auth_required', message: 'Admin credentials required.', param: null, request_id: req.id ?? null } });
  };
}
