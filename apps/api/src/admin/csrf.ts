/**
 * Cross-site request refusal for /admin. SameSite=Strict keeps the session cookie off requests
 * from other *sites*, but a page on another port of the same host, or on a sibling subdomain,
 * is the same site: the browser sends the cookie (and cached Basic credentials) with its forms
 * and `no-cors` fetches. So every request that can change something (not GET, HEAD or OPTIONS)
 * must show that it comes from the admin UI's own origin:
 * - `Sec-Fetch-Site: same-origin` (set by the browser, a page cannot forge it), or
 * - `Origin` equal to this API's origin as the request reached it (scheme, Host) or to one of
 *   the configured public origins (ADMIN_PUBLIC_ORIGIN, for a proxy that rewrites either).
 * A request with neither header comes from no current browser (each sends Origin on every
 * non-GET request); one that carries the session cookie is refused all the same. Without the
 * cookie it is a script (`curl -u`, or the login form posted by hand) and goes on to the
 * credential check.
 *
 * A request with `Authorization: Bearer` is let through whatever its Origin: browsers never attach
 * that header by themselves, and a page that sets it must pass a CORS preflight, which this API
 * never grants. Scripts need send nothing more. HTTP Basic gets no such pass: browsers replay
 * cached Basic credentials on cross-site requests, exactly like cookies.
 *
 * bull-board's API (under /admin/queues/api) takes JSON only: a body of any other type (what an
 * HTML form can send: text/plain, urlencoded, multipart) is a 415, before bull-board's JSON parser
 * would silently read it as `{}`. A bodyless request (its UI's retry, clean, promote) needs no type.
 */
import type { Request, RequestHandler } from 'express';
import { LonghaulError } from '@longhaul/core';
import { SESSION_COOKIE } from './sessions.ts';

export class CrossSiteRequestError extends LonghaulError {
  constructor(message: string) {
    super(message, { code: 'csrf_refused', status: 403, type: 'invalid_request_error' });
    this.name = 'CrossSiteRequestError';
  }
}

export class UnsupportedMediaTypeError extends LonghaulError {
  constructor(message: string) {
    super(message, { code: 'unsupported_media_type', status: 415, type: 'invalid_request_error' });
    this.name = 'UnsupportedMediaTypeError';
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Whether the request names the admin session cookie at all (valid or not). */
function hasSessionCookie(req: Request): boolean {
  return (req.headers.cookie ?? '').split(';').some((part) => part.split('=')[0]!.trim() === SESSION_COOKIE);
}

export function refuseCrossSiteRequests(options: { publicOrigins: readonly string[] }): RequestHandler {
  const allowed = new Set(options.publicOrigins);
  return (req, _res, next) => {
    if (SAFE_METHODS.has(req.method)) return next();
    if (/^Bearer\s/i.test(req.headers.authorization ?? '')) return next();
    const site = req.headers['sec-fetch-site'];
    const origin = req.headers.origin;
    if (site === 'same-origin') return next();
    if (origin !== undefined && (origin === `${req.protocol}://${req.host}` || allowed.has(origin))) return next();
    if (site === undefined && origin === undefined && !hasSessionCookie(req)) return next();
    req.log.warn({ code: 'csrf_refused', origin: origin ?? null, sec_fetch_site: site ?? null }, 'admin request from another origin refused');
    next(
      new CrossSiteRequestError(
        origin === undefined && site === undefined
          ? 'A request with the admin session cookie must come from the admin UI (no Origin or Sec-Fetch-Site header).'
          : `Requests from ${origin ?? `a ${site} page`} may not act on the admin UI. Behind a proxy, set ADMIN_PUBLIC_ORIGIN to the address you open the UI at.`,
      ),
    );
  };
}

/** bull-board's API: JSON bodies only. */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  if (SAFE_METHODS.has(req.method)) return next();
  const type = req.headers['content-type'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (type === undefined ? !hasBody : type.split(';')[0]!.trim().toLowerCase() === 'application/json') return next();
  next(new UnsupportedMediaTypeError('The queue board API takes JSON bodies only (Content-Type: application/json).'));
};
