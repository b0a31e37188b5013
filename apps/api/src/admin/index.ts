/**
 * The admin UI under /admin: login, bull-board (/admin/queues) and the job pages (/admin/jobs),
 * all behind `requireAdmin`. A strict Content-Security-Policy keeps every page on this origin
 * (bull-board's template links a web font from the internet: the browser does not even try).
 *
 * In order: security headers; cross-site refusal of every non-GET request (csrf.ts), the login
 * form and logout included; login (throttled like every credential, throttle.ts) and logout
 * (POST only: it revokes the server-side session, sessions.ts); then the credential check; then
 * bull-board, whose API takes JSON bodies only, and the job pages.
 */
import express, { type Request, type Response, Router } from 'express';
import { assertNever } from '@longhaul/core';
import type { ApiDeps } from '../context.ts';
import { DEFAULT_SESSION_TTL_MS, adminAuthState, logVerdict, requireAdmin, safeEqual } from './auth.ts';
import { queueBoardRouter } from './board.ts';
import { refuseCrossSiteRequests, requireJsonBody } from './csrf.ts';
import { loginPage, logoutPage } from './html.ts';
import { adminJobsRouter } from './jobs.ts';
import { clearSessionCookie, createAdminSessions, sessionCookie, setSessionCookie } from './sessions.ts';
import { createCredentialThrottle } from './throttle.ts';

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'";
const DEFAULT_MAX_FAILURES_PER_ADDRESS = 10;
const DEFAULT_MAX_FAILURES_GLOBAL = 1000;
const DEFAULT_FAILURE_WINDOW_S = 15 * 60;
/** What a 503 tells a browser to wait before trying again. */
const UNAVAILABLE_RETRY_S = 5;

/** Only same-site admin paths are valid redirect targets after login. */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/admin(\/[^\\]*)?$/.test(next) && !next.startsWith('//') ? next : '/admin/queues/';
}

export function adminRouter(deps: ApiDeps): Router {
  const config = deps.config.admin;
  const cookieSecure = config?.cookieSecure ?? 'auto';
  const sessionTtlMs = config?.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  const redis = deps.queues.connection;
  const prefix = deps.queues.prefix;
  const throttle = createCredentialThrottle({
    redis,
    prefix,
    perAddress: config?.maxFailuresPerAddress ?? DEFAULT_MAX_FAILURES_PER_ADDRESS,
    global: config?.maxFailuresGlobal ?? DEFAULT_MAX_FAILURES_GLOBAL,
    windowSeconds: config?.failureWindowSeconds ?? DEFAULT_FAILURE_WINDOW_S,
  });
  const sessions = config?.token && !config.authDisabled ? createAdminSessions({ redis, prefix, token: config.token, ttlMs: sessionTtlMs }) : undefined;

  const router = Router();
  router.use((_req, res, next) => {
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  router.use(refuseCrossSiteRequests({ publicOrigins: config?.publicOrigins ?? [] }));

  router.get('/login', (req, res) => {
    res.type('html').send(loginPage({ next: safeNext(req.query.next) }));
  });
  router.post('/login', express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(body.next);
    if (adminAuthState(config) !== 'configured' || !config?.token || !sessions) {
      res.status(503).type('text/plain').send('Login needs ADMIN_TOKEN to be configured.\n');
      return;
    }
    const token = config.token;
    const page = (status: number, error: string) => res.status(status).type('html').send(loginPage({ next, error }));
    const verdict = await throttle.attempt(req.ip, () => typeof body.token === 'string' && safeEqual(body.token, token));
    logVerdict(req, 'form', verdict);
    switch (verdict.outcome) {
      case 'refused':
        page(401, 'Wrong token.');
        return;
      case 'throttled': {
        const from = verdict.scope === 'address' ? ' from this address' : '';
        res.setHeader('Retry-After', String(verdict.retryAfterSeconds));
        page(429, `Too many failed attempts${from}; try again in ${Math.ceil(verdict.retryAfterSeconds / 60)} min.`);
        return;
      }
      case 'unavailable':
        res.setHeader('Retry-After', String(UNAVAILABLE_RETRY_S));
        page(503, 'Logging in is not possible right now (Redis does not answer); try again shortly.');
        return;
      case 'accepted':
        break;
      default:
        assertNever(verdict);
    }
    let session: string;
    try {
      const previous = sessionCookie(req);
      if (previous !== undefined) await sessions.revoke(previous);
      session = await sessions.create(deps.clock());
    } catch (error) {
      logVerdict(req, 'form', { outcome: 'unavailable', error });
      res.setHeader('Retry-After', String(UNAVAILABLE_RETRY_S));
      page(503, 'Logging in is not possible right now (Redis does not answer); try again shortly.');
      return;
    }
    setSessionCookie(res, req, session, { ttlMs: sessionTtlMs, secure: cookieSecure });
    req.log.info({ code: 'admin_login' }, 'admin logged in');
    res.redirect(303, next);
  });

  // Logging out changes state, so it is a POST (covered by the cross-site check); the GET, where
  // bull-board's "Log out" link leads, shows the button that posts it.
  router.get('/logout', (_req, res) => {
    res.type('html').send(logoutPage());
  });
  router.post('/logout', async (req: Request, res: Response) => {
    const session = sessionCookie(req);
    if (session !== undefined && sessions) {
      try {
        await sessions.revoke(session);
      } catch (error) {
        logVerdict(req, 'form', { outcome: 'unavailable', error });
        res
          .status(503)
          .setHeader('Retry-After', String(UNAVAILABLE_RETRY_S))
          .type('html')
          .send(logoutPage({ error: 'The session could not be ended (Redis does not answer); try again shortly.' }));
        return;
      }
      req.log.info({ code: 'admin_logout' }, 'admin logged out');
    }
    clearSessionCookie(res, req, cookieSecure);
    res.redirect(303, '/admin/login');
  });

  router.use(requireAdmin({ config, throttle, sessions, loginPage: (req, res) => res.type('html').send(loginPage({ next: safeNext(req.originalUrl) })) }));
  router.get('/', (_req, res) => res.redirect(302, '/admin/queues/'));
  router.use('/queues/api', requireJsonBody);
  router.use('/queues', queueBoardRouter(deps.queues, { readOnly: config?.readOnly ?? false }));
  router.use('/jobs', adminJobsRouter(deps));
  return router;
}
