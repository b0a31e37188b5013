/**
 * `GET /openapi.json` (the document, no auth, cacheable: it changes only with a deploy) and
 * `/docs`, the reference rendered by Swagger UI from the `swagger-ui-dist` package, served from
 * here. Nothing comes from another origin: the page, its script and styles are ours, the
 * initialiser is a file (no inline script), and the Content-Security-Policy allows only 'self'
 * (plus `data:` images: Swagger UI's stylesheet draws its icons as data-URI SVGs).
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Router } from 'express';
import { buildOpenApiDocument, type OpenApiDocument } from './document.ts';

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Swagger UI's files, the only ones of the package served. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Longhaul API reference</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

// validatorUrl null: Swagger UI would otherwise ask validator.swagger.io for a badge.
const INIT = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  persistAuthorization: false,
  defaultModelsExpandDepth: 0,
  docExpansion: 'list',
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
`;

function swaggerUiDir(): string {
  return dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
}

export function openApiRouter(options: { version?: string } = {}): Router {
  const router = Router();
  let document: OpenApiDocument | null = null;
  const assets = swaggerUiDir();

  router.get('/openapi.json', (_req, res) => {
    document ??= buildOpenApiDocument({ version: options.version });
    // express sets a (weak) ETag and answers a matching If-None-Match with 304.
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.json(document);
  });

  const secure = (res: import('express').Response) => {
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
  };

  router.get('/docs', (_req, res) => {
    secure(res);
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(PAGE);
  });
  router.get('/docs/init.js', (_req, res) => {
    secure(res);
    res.setHeader('Cache-Control', 'no-cache');
    res.type('text/javascript').send(INIT);
  });
  router.get('/docs/assets/:file', (req, res, next) => {
    const type = ASSETS[req.params.file];
    if (!type) return next();
    secure(res);
    // `root`: send's dotfile rule then looks only below it (pnpm's store path has a `.pnpm`).
    res.sendFile(req.params.file, { root: assets, headers: { 'Content-Type': type }, maxAge: '1d' });
  });
  return router;
}
