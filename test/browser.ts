/**
 * Headless Chromium for the browser tests (the machine's /usr/bin/chromium, driven by
 * playwright-core; never a downloaded browser), and what every page test watches: requests to
 * other origins (the admin UI and /docs load nothing from elsewhere) and dialogs.
 */
import { existsSync } from 'node:fs';
import { type Browser, type Page, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** A missing browser skips the browser tests on a developer's machine; in CI (`CI` set) they fail instead. */
export const SKIP_BROWSER = !existsSync(CHROMIUM) && ['', 'false', '0'].includes(process.env.CI ?? '');

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}

/** Collects the page's requests that leave `origin` (data: URLs aside) and the dialogs it opens (dismissed). */
export function watchPage(page: Page, origin: string): { foreign: string[]; dialogs: string[] } {
  const foreign: string[] = [];
  const dialogs: string[] = [];
  page.on('request', (req) => {
    if (!req.url().startsWith(origin) && !req.url().startsWith('data:')) foreign.push(req.url());
  });
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  return { foreign, dialogs };
}
