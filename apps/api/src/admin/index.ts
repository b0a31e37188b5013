/**
 * The admin UI under /admin: login, bull-board (/admin/queues) and the job pages (/admin/jobs),
 * all behind `requireAdmin`. A strict Content-Security-Policy keeps every page on this origin
 * (bull-board's template links a web font from the internet: the browser does not even try).
 */
import express, { Router } from 'express';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import type { ApiDeps } from '../context.ts';
import { adminAuthState, clearSessionCookie, requireAdmin, safeEqual, sessionCookieValue, setSessionCookie } from './auth.ts';
import { queueBoardRouter } from './board.ts';
import { loginPage } from './html.ts';
import { adminJobsRouter } from './jobs.ts';

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'";
const DEFAULT_SESSION_TTL_MS = 12 * 3600 * 1000;
/** Failed logins allowed per client address per window, before the form answers 429. */
const LOGIN_FAILURES_ALLOWED = 10;
const LOGIN_FAILURE_WINDOW_S = 15 * 60;

/** Only same-site admin paths are valid redirect targets after login. */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/admin(\/[^\\]*)?$/.test(next) && !next.startsWith('//') ? next : '/admin/queues/';
}

export function adminRouter(deps: ApiDeps): Router {
  const config = deps.config.admin;
  const router = Router();
  router.use((_req, res, next) => {
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-store');
    next();
  });

  router.get('/login', (req, res) => {
    res.type('html').send(loginPage({ next: safeNext(req.query.next) }));
  });
  // Guessing the token through the form is throttled per client address (counted in Redis, so
  // across API instances). Redis unavailable: not enforced (the token itself is >= 16 characters).
  const failedLogins = new RateLimiterRedis({
    storeClient: deps.queues.connection,
    keyPrefix: `${deps.queues.prefix}:admin-login-failures`,
    points: LOGIN_FAILURES_ALLOWED,
    duration: LOGIN_FAILURE_WINDOW_S,
    rejectIfRedisNotReady: true,
  });
  router.post('/login', express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(body.next);
    if (adminAuthState(config) !== 'configured' || !config?.token) {
      res.status(503).type('text/plain').send('Login needs ADMIN_TOKEN to be configured.\n');
      return;
    }
    const client = req.ip ?? 'unknown';
    const failures = await failedLogins.get(client).catch(() => null);
    if (failures && failures.consumedPoints >= LOGIN_FAILURES_ALLOWED) {
      const retryAfter = Math.max(1, Math.ceil(failures.msBeforeNext / 1000));
      req.log.warn({ code: 'admin_login_throttled', client }, 'admin login refused: too many failed attempts');
      res
        .status(429)
        .setHeader('Retry-After', String(retryAfter))
        .type('html')
        .send(loginPage({ next, error: `Too many failed attempts from this address; try again in ${Math.ceil(retryAfter / 60)} min.` }));
      return;
    }
    if (typeof body.token !== 'string' || !safeEqual(body.token, config.token)) {
      await failedLogins.penalty(client, 1).catch(() => undefined);
      req.log.warn({ code: 'admin_login_failed', client }, 'admin login failed');
      res
        .status(401)
        .type('html')
        .send(loginPage({ next, error: 'Wrong token.' }));
      return;
    }
    await failedLogins.delete(client).catch(() => undefined);
    const ttl = config.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
    setSessionCookie(res, req, sessionCookieValue(config.token, deps.clock(), ttl), ttl);
    req.log.info({ code: 'admin_login' }, 'admin logged in');
    res.redirect(303, next);
  });
  const logout: express.RequestHandler = (_req, res) => {
    clearSessionCookie(res);
    res.redirect(303, '/admin/login');
  };
  router.post('/logout', logout);
  router.get('/logout', logout);

  router.use(requireAdmin({ config, clock: deps.clock, loginPage: (req, res) => res.type('html').send(loginPage({ next: safeNext(req.originalUrl) })) }));
  router.get('/', (_req, res) => res.redirect(302, '/admin/queues/'));
  router.use('/queues', queueBoardRouter(deps.queues, { readOnly: config?.readOnly ?? false }));
  router.use('/jobs', adminJobsRouter(deps));
  return router;
}
