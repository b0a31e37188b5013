/**
 * The admin UI under /admin: login, the overview dashboard (/admin, overview.ts), bull-board
 * (/admin/queues), the job pages (/admin/jobs), the
 * pipeline runs (/admin/runs), the batches (/admin/batches), the evals (/admin/evals), the prompt
 * rollouts (/admin/rollouts) and the audit log (/admin/audit), all
 * behind `requireAdmin`. A strict Content-Security-Policy keeps every page on this origin
 * (bull-board's template links a web font from the internet: the browser does not even try).
 *
 * In order: security headers; cross-site refusal of every non-GET request (csrf.ts), the login
 * form and logout included; login (throttled like every credential, throttle.ts) and logout
 * (POST only: it revokes the server-side session, sessions.ts), both written to the audit log;
 * then the credential check, which names the actor; then the recording of every change
 * (audit.ts); then bull-board, whose API takes JSON bodies only, the job pages and the log.
 */
import express, { type Request, type Response, Router } from 'express';
import { assertNever } from '@longhaul/core';
import type { ApiContext } from '../context.ts';
import { createAdminAudit } from './audit.ts';
import { auditPageRouter } from './audit-page.ts';
import { DEFAULT_SESSION_TTL_MS, adminAuthState, logVerdict, requireAdmin } from './auth.ts';
import { queueBoardRouter } from './board.ts';
import { refuseCrossSiteRequests, requireJsonBody } from './csrf.ts';
import { type LoginForms, loginPage, logoutPage } from './html.ts';
import { createAdminIdentities } from './identities.ts';
import { adminJobsRouter } from './jobs.ts';
import { adminOverviewRouter } from './overview.ts';
import { adminRunsRouter } from './runs.ts';
import { adminBatchesRouter } from './batches.ts';
import { adminEvalsRouter } from './evals.ts';
import { adminRolloutsRouter } from './rollouts.ts';
import { clearSessionCookie, createAdminSessions, sessionCookie, setSessionCookie } from './sessions.ts';
import { type CredentialClaim, type ThrottleScope, createCredentialThrottle } from './throttle.ts';

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'";
const DEFAULT_MAX_FAILURES_PER_CREDENTIAL = 10;
const DEFAULT_MAX_FAILURES_PER_ADDRESS = 50;
const DEFAULT_MAX_FAILURES_GLOBAL = 1000;
const DEFAULT_FAILURE_WINDOW_S = 15 * 60;
/** What a 503 tells a browser to wait before trying again. */
const UNAVAILABLE_RETRY_S = 5;

/** Only same-site admin paths are valid redirect targets after login. */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/admin(\/[^\\]*)?$/.test(next) && !next.startsWith('//') ? next : '/admin';
}

/** What the login page says about a 429. */
function lockedMessage(scope: ThrottleScope, claim: CredentialClaim, retryAfterSeconds: number): string {
  const where =
    scope === 'credential' ? (claim.kind === 'user' ? ` for ${claim.name}` : ' with the admin token from this address') : scope === 'address' ? ' from this address' : '';
  return `Too many failed attempts${where}; try again in ${Math.ceil(retryAfterSeconds / 60)} min.`;
}

export function adminRouter(deps: ApiContext): Router {
  const config = deps.config.admin;
  const cookieSecure = config?.cookieSecure ?? 'auto';
  const sessionTtlMs = config?.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  const redis = deps.queues.connection;
  const prefix = deps.queues.prefix;
  const identities = createAdminIdentities(config);
  const audit = createAdminAudit({ db: deps.db, clock: deps.clock });
  const throttle = createCredentialThrottle({
    redis,
    prefix,
    perCredential: config?.maxFailuresPerCredential ?? DEFAULT_MAX_FAILURES_PER_CREDENTIAL,
    perAddress: config?.maxFailuresPerAddress ?? DEFAULT_MAX_FAILURES_PER_ADDRESS,
    global: config?.maxFailuresGlobal ?? DEFAULT_MAX_FAILURES_GLOBAL,
    windowSeconds: config?.failureWindowSeconds ?? DEFAULT_FAILURE_WINDOW_S,
  });
  const forms: LoginForms = { token: Boolean(config?.token), users: identities.hasUsers };
  const sessions =
    (forms.token || forms.users) && !config?.authDisabled ? createAdminSessions({ redis, prefix, ttlMs: sessionTtlMs, secretOf: identities.sessionSecret }) : undefined;

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
    res.type('html').send(loginPage({ next: safeNext(req.query.next), forms }));
  });
  router.post('/login', express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(body.next);
    if (adminAuthState(config) !== 'configured' || !sessions) {
      res.status(503).type('text/plain').send('Login needs ADMIN_USERS or ADMIN_TOKEN to be configured.\n');
      return;
    }
    const page = (status: number, error: string) => res.status(status).type('html').send(loginPage({ next, error, forms }));
    // A user name: that admin's password. None: the admin token (the `token` field, or the password field).
    const name = typeof body.username === 'string' ? body.username.trim() : '';
    const secret = typeof body.password === 'string' && body.password !== '' ? body.password : body.token;
    const claim: CredentialClaim = name ? { kind: 'user', name } : { kind: 'token' };
    let actor: string | undefined;
    const verdict = await throttle.attempt(req.ip, claim, async () => {
      if (typeof secret !== 'string') return false;
      actor = claim.kind === 'user' ? await identities.checkPassword(name, secret) : identities.checkToken(secret);
      return actor !== undefined;
    });
    logVerdict(req, 'form', verdict, claim);
    switch (verdict.outcome) {
      case 'refused':
        await audit.failedCredential(req, 'form', claim, verdict);
        page(401, claim.kind === 'user' ? 'Wrong user or password.' : 'Wrong token.');
        return;
      case 'throttled':
        res.setHeader('Retry-After', String(verdict.retryAfterSeconds));
        page(429, lockedMessage(verdict.scope, claim, verdict.retryAfterSeconds));
        return;
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
      session = await sessions.create(actor!, deps.clock());
    } catch (error) {
      logVerdict(req, 'form', { outcome: 'unavailable', error });
      res.setHeader('Retry-After', String(UNAVAILABLE_RETRY_S));
      page(503, 'Logging in is not possible right now (Redis does not answer); try again shortly.');
      return;
    }
    setSessionCookie(res, req, session, { ttlMs: sessionTtlMs, secure: cookieSecure });
    await audit.note(req, { actor: actor!, action: 'login', statusCode: 303, details: { credential: 'form' } });
    req.log.info({ code: 'admin_login', actor }, 'admin logged in');
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
      let actor: string | undefined;
      try {
        actor = await sessions.revoke(session);
      } catch (error) {
        logVerdict(req, 'form', { outcome: 'unavailable', error });
        res
          .status(503)
          .setHeader('Retry-After', String(UNAVAILABLE_RETRY_S))
          .type('html')
          .send(logoutPage({ error: 'The session could not be ended (Redis does not answer); try again shortly.' }));
        return;
      }
      if (actor !== undefined) {
        await audit.note(req, { actor, action: 'logout', statusCode: 303 });
        req.log.info({ code: 'admin_logout', actor }, 'admin logged out');
      }
    }
    clearSessionCookie(res, req, cookieSecure);
    res.redirect(303, '/admin/login');
  });

  router.use(
    requireAdmin({ config, identities, throttle, audit, sessions, loginPage: (req, res) => res.type('html').send(loginPage({ next: safeNext(req.originalUrl), forms })) }),
  );
  router.use(audit.recordChanges);
  router.use(adminOverviewRouter(deps));
  router.use('/queues/api', requireJsonBody);
  router.use('/queues', queueBoardRouter(deps.queues, { readOnly: config?.readOnly ?? false }));
  router.use('/jobs', adminJobsRouter(deps, { readOnly: config?.readOnly ?? false }));
  router.use('/runs', adminRunsRouter(deps));
  router.use('/batches', adminBatchesRouter(deps));
  router.use('/evals', adminEvalsRouter(deps));
  router.use('/rollouts', adminRolloutsRouter(deps));
  router.use('/audit', auditPageRouter(deps));
  return router;
}
