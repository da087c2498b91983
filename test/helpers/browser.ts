import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { packageRoot } from '../../src/http/routes/pages.js';
import { needService } from './service.js';

/** Debian's Chromium (`apt-get install chromium`). The tests never download a browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** How CI and the install hint refer to the browser when it is missing. */
export const CHROMIUM_HOW = 'apt-get install -y chromium (bash .ci/run does it)';

/**
 * Headless, no sandbox (CI runs as root), and quiet: no update checks, sync or QUIC probes, so
 * the only network traffic is the test's own, all on loopback.
 */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** milliseconds: longest the browser may take to start on a busy 2-core machine. */
const LAUNCH_TIMEOUT_MS = 60_000;

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM_PATH);
}

/**
 * Starts Debian's Chromium through playwright-core. `launch()` gives every browser a fresh,
 * temporary user-data-dir that it deletes on close, so no state leaks between runs. `extraArgs`
 * go after the usual ones (`--ignore-certificate-errors` for a self-signed certificate).
 */
export function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    timeout: LAUNCH_TIMEOUT_MS,
  });
}

/** One Chromium for a test file's pages, started on first use; `close()` in the file's `after`. */
export class SharedChromium {
  #browser: Browser | undefined;

  /** A context of its own (storage, cookies: another person's browser); undefined where Chromium is missing (skipped). */
  async context(t: TestContext): Promise<BrowserContext | undefined> {
    if (!needService(t, chromiumAvailable(), 'Chromium', CHROMIUM_HOW)) return undefined;
    this.#browser ??= await launchChromium();
    return this.#browser.newContext();
  }

  async close(): Promise<void> {
    await this.#browser?.close();
  }
}

/** A new page of `context` whose waits last up to `waitMs`, with its uncaught errors collected. */
export async function watchedPage(context: BrowserContext, waitMs: number): Promise<{ page: Page; errors: string[] }> {
  const page = await context.newPage();
  page.setDefaultTimeout(waitMs);
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  return { page, errors };
}

/**
 * A second web server that serves Herald's seed client pages from another origin (another
 * port), the way a customer's own site would host them; the pages then talk to the Herald named
 * in their `?server=` parameter, across origins.
 */
export async function serveSeedPagesElsewhere(): Promise<{ origin: string; close: () => Promise<void> }> {
  const root = packageRoot();
  const pages = new Map<string, Buffer>(
    ['sse.html', 'websocket.html'].map((f) => [`/client/${f}`, readFileSync(join(root, 'web/client', f))]),
  );
  const server: Server = createServer((req, res) => {
    const page = pages.get((req.url ?? '/').split('?')[0]!);
    if (!page) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
