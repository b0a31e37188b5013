/**
 * The rendered reference at /docs (Swagger UI from the swagger-ui-dist package, served by the API):
 * it loads in headless Chromium with nothing from another origin, no Content-Security-Policy
 * violation and no script error, and shows the document's operations. The screenshot is kept for
 * a person to look at (its folder is printed).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { CHROMIUM, SKIP_BROWSER, launchChromium } from './browser.ts';
import { type Stack, startStack } from './harness.ts';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ startWorker: false });
});
afterAll(async () => {
  await stack?.stop();
});

describe('/docs over HTTP', () => {
  it('serves the page with a CSP that allows only its own origin', async () => {
    const res = await fetch(`${stack.apiUrl}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:|\*/);
    const html = await res.text();
    expect(html).not.toMatch(/<script>(?!<\/script>)|https?:\/\//);
  });

  it('serves only the renderer files it names, without an API key', async () => {
    for (const file of ['swagger-ui.css', 'swagger-ui-bundle.js']) {
      const res = await fetch(`${stack.apiUrl}/docs/assets/${file}`);
      expect(res.status, file).toBe(200);
      expect(res.headers.get('cache-control')).toMatch(/max-age=\d+/);
    }
    expect((await fetch(`${stack.apiUrl}/docs/assets/package.json`)).status).toBe(404);
    expect((await fetch(`${stack.apiUrl}/docs/assets/..%2Fpackage.json`)).status).toBe(404);
    expect((await fetch(`${stack.apiUrl}/docs/init.js`)).headers.get('content-type')).toMatch(/javascript/);
  });
});

describe.skipIf(SKIP_BROWSER)(`/docs in headless Chromium${SKIP_BROWSER ? ` (skipped: ${CHROMIUM} is missing)` : ''}`, () => {
  let browser: Browser;
  let screenshots: string;
  beforeAll(async () => {
    screenshots = mkdtempSync(join(tmpdir(), 'longhaul-openapi-docs-'));
    console.info(`openapi docs screenshots: ${screenshots}`);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('renders every tag and operation from same-origin requests only', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    page.on('request', (req) => {
      requests.push(req.url());
    });
    page.on('console', (msg) => {
      if (msg.type() === 'error' || /Content Security Policy|Refused to/.test(msg.text())) problems.push(msg.text());
    });
    page.on('pageerror', (err) => problems.push(String(err)));
    try {
      const res = await page.goto(`${stack.apiUrl}/docs`);
      expect(res?.status()).toBe(200);
      await page.waitForSelector('.opblock-tag-section', { timeout: 20_000 });
      await page.waitForSelector('.opblock', { timeout: 20_000 });
      expect(await page.locator('.info .title').first().textContent()).toContain('Longhaul API');
      const tags = await page.locator('.opblock-tag-section h3').allTextContents();
      for (const tag of ['Jobs', 'Prompts', 'Datasets', 'Evals', 'Pipelines', 'Files', 'Webhooks', 'API keys']) expect(tags.join('|')).toContain(tag);
      expect(await page.locator('.opblock').count()).toBeGreaterThan(70);

      // One operation opened: its parameters and answers render from the document.
      await page.locator('#operations-Jobs-createJob .opblock-summary').click();
      await page.waitForSelector('#operations-Jobs-createJob .responses-table');
      expect(await page.locator('#operations-Jobs-createJob .response-col_status').allTextContents()).toEqual(expect.arrayContaining(['202', '400', '401']));
      await page.screenshot({ path: join(screenshots, 'docs.png'), fullPage: false });
      await page.locator('#operations-Jobs-createJob').screenshot({ path: join(screenshots, 'docs-create-job.png') });

      const origin = new URL(stack.apiUrl).origin;
      expect(requests.length).toBeGreaterThanOrEqual(4);
      expect(requests.filter((url) => !url.startsWith('data:') && new URL(url).origin !== origin)).toEqual([]);
      expect(requests).toContain(`${origin}/openapi.json`);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
