import { chromium, type Browser, type BrowserContext } from 'playwright-core';

/** Debian's Chromium (apt-get install chromium), driven by playwright-core; no browser download. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 390, height: 844 };
/** Addresses a page may reach: this machine only. */
export const LOCAL = /^(https?|wss?):\/\/(127\.0\.0\.1|\[::1\]|localhost)(:\d+)?\//;

export interface TestBrowser {
  browser: Browser;
  context: BrowserContext;
  /** Every request to another host the page attempted (each was aborted). */
  blocked: string[];
}

/**
 * Headless Chromium whose context aborts every request to a host other than this machine (no CDN,
 * no fonts, no telemetry: blocked, and remembered in `blocked` for the test to assert on).
 */
export async function launchTestBrowser(viewport = DESKTOP): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport });
  const blocked: string[] = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (LOCAL.test(url)) return route.continue();
    blocked.push(url);
    return route.abort('blockedbyclient');
  });
  return { browser, context, blocked };
}
