/**
 * The server spans of the requests that create jobs (`POST /v1/jobs`, `POST /v1/responses`): the
 * root of each job's trace (@longhaul/telemetry), the child of the client's W3C `traceparent`
 * when the request carries one. Other routes are not traced: a client polling a job would
 * otherwise add a span to nothing. Not tracing, the middleware is `next()`.
 */
import type { RequestHandler } from 'express';
import { SpanKind, SpanStatusCode, tracingEnabled, withSpan } from '@longhaul/telemetry';

/** Routes (method and path, as mounted) whose requests start a job's trace. */
const TRACED_ROUTES = new Set(['POST /v1/jobs', 'POST /v1/responses']);

export function traceJobRequests(): RequestHandler {
  return (req, res, next) => {
    if (!tracingEnabled()) return next();
    // Mounted on the /v1 router: the path as the client sent it is the mount point's and the router's.
    const path = `${req.baseUrl}${req.path}`.replace(/\/+$/, '');
    const route = `${req.method} ${path}`;
    if (!TRACED_ROUTES.has(route)) return next();
    void withSpan(
      route,
      {
        kind: SpanKind.SERVER,
        parent: req.get('traceparent'),
        attributes: { 'http.request.method': req.method, 'http.route': path, 'url.path': path, 'url.scheme': req.protocol },
      },
      (span) =>
        new Promise<void>((resolve) => {
          res.once('close', () => {
            span?.setAttribute('http.response.status_code', res.statusCode);
            if (res.statusCode >= 500) span?.setStatus({ code: SpanStatusCode.ERROR });
            resolve();
          });
          next();
        }),
    );
  };
}
