import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { CHROMIUM_HOW, chromiumAvailable, launchChromium, serveSeedPagesElsewhere } from '../helpers/browser.js';
import { postJson, spawnHerald, type SpawnedHerald } from '../helpers/herald.js';
import { needService } from '../helpers/service.js';

// The seed client pages in a real browser (Debian's Chromium), against Herald running as a user
// runs it. The pages are the contract: each message is appended as a <p> under #messages, and
// #status starts with "connected" once the stream or socket is open.

/** milliseconds: longest any browser-side wait may take on a busy 2-core machine. */
const BROWSER_WAIT_MS = 20_000;
/**
 * milliseconds: longest the browser may take to reconnect on its own. Chromium waits the
 * stream's `retry:` hint (3 s) between attempts and keeps trying while the port is closed.
 */
const RECONNECT_WAIT_MS = 45_000;
/** Go's time.RFC3339, as the seed prints it. */
const NEW_ORDER = /^New Order received at \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$/;
const WS_TEXT = '🔔 New message at server!';

let browser: Browser | undefined;
async function getBrowser(): Promise<Browser> {
  browser ??= await launchChromium();
  return browser;
}

function haveChromium(t: TestContext): boolean {
  return needService(t, chromiumAvailable(), 'Chromium', CHROMIUM_HOW);
}

/** Opens `url` in a fresh browser context; page errors are collected so a test can assert none. */
async function openPage(url: string): Promise<{ page: Page; errors: string[]; close: () => Promise<void> }> {
  const context = await (await getBrowser()).newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(BROWSER_WAIT_MS);
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(url);
  return { page, errors, close: () => context.close() };
}

const waitConnected = (page: Page) =>
  page.waitForFunction("document.getElementById('status').textContent.startsWith('connected')");

/** Waits until the page shows `n` paragraphs, then returns all of their texts. */
async function waitParagraphs(page: Page, n: number, timeout = BROWSER_WAIT_MS): Promise<string[]> {
  await page.waitForFunction(`document.querySelectorAll('#messages p').length >= ${n}`, undefined, { timeout });
  return page.locator('#messages p').allTextContents();
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}

/** The SSE page's checks, whichever origin served the page. */
async function checkSsePage(page: Page, herald: string): Promise<void> {
  await waitConnected(page);
  assert.deepEqual(await get(`${herald}/sse/send`), { status: 200, text: 'Message broadcasted' });
  const [first] = await waitParagraphs(page, 1);
  assert.match(first!, NEW_ORDER);

  const body = { event: 'order.paid', data: { order: 'A-1001', amount: 42 } };
  const res = await postJson(`${herald}/webhook`, body);
  assert.equal(res.status, 200);
  const texts = await waitParagraphs(page, 2);
  assert.equal(texts.length, 2);
  assert.deepEqual(JSON.parse(texts[1]!), body);
}

/** The WebSocket page's checks, whichever origin served the page. */
async function checkWebSocketPage(page: Page, herald: string): Promise<void> {
  await waitConnected(page);
  assert.deepEqual(await get(`${herald}/ws/send`), { status: 200, text: 'Message broadcasted' });
  assert.deepEqual(await waitParagraphs(page, 1), [WS_TEXT]);
  assert.deepEqual(await get(`${herald}/ws/send`), { status: 200, text: 'Message broadcasted' });
  assert.deepEqual(await waitParagraphs(page, 2), [WS_TEXT, WS_TEXT]);
}

describe('seed client pages in a browser', () => {
  let herald: SpawnedHerald | undefined;
  let elsewhere: Awaited<ReturnType<typeof serveSeedPagesElsewhere>> | undefined;

  before(async () => {
    if (!chromiumAvailable()) return;
    herald = await spawnHerald();
    elsewhere = await serveSeedPagesElsewhere();
  });
  after(async () => {
    await browser?.close();
    browser = undefined;
    await elsewhere?.close();
    await herald?.stop();
    if (herald) rmSync(herald.dataDir, { recursive: true, force: true });
  });

  test('the SSE page served by Herald shows /sse/send and /webhook messages as paragraphs', async (t) => {
    if (!haveChromium(t)) return;
    const { page, errors, close } = await openPage(`${herald!.url}/client/sse.html`);
    try {
      await checkSsePage(page, herald!.url);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  test('the WebSocket page served by Herald shows /ws/send messages as paragraphs', async (t) => {
    if (!haveChromium(t)) return;
    const { page, errors, close } = await openPage(`${herald!.url}/client/websocket.html`);
    try {
      await checkWebSocketPage(page, herald!.url);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  test('the SSE page opened from another origin receives messages (CORS on /sse)', async (t) => {
    if (!haveChromium(t)) return;
    const url = `${elsewhere!.origin}/client/sse.html?server=${encodeURIComponent(herald!.url)}`;
    const { page, errors, close } = await openPage(url);
    try {
      assert.notEqual(await page.evaluate('location.origin'), new URL(herald!.url).origin);
      await checkSsePage(page, herald!.url);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  test('the WebSocket page opened from another origin receives messages', async (t) => {
    if (!haveChromium(t)) return;
    const url = `${elsewhere!.origin}/client/websocket.html?server=${encodeURIComponent(herald!.url)}`;
    const { page, errors, close } = await openPage(url);
    try {
      await checkWebSocketPage(page, herald!.url);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  test('an origin that cors.origins does not list cannot read /sse (the browser enforces CORS)', async (t) => {
    if (!haveChromium(t)) return;
    // The same cross-origin page as above against a Herald that allows only another origin: the
    // EventSource must fail for good. This shows the test above passes because of CORS headers,
    // not because the browser let the stream through anyway.
    const strict = await spawnHerald({ cors: { origins: ['https://app.example.com'] } });
    const url = `${elsewhere!.origin}/client/sse.html?server=${encodeURIComponent(strict.url)}`;
    const { page, close } = await openPage(url);
    try {
      await page.waitForFunction('source.readyState === EventSource.CLOSED');
      assert.equal(await page.locator('#messages p').count(), 0);
    } finally {
      await close();
      await strict.stop();
      rmSync(strict.dataDir, { recursive: true, force: true });
    }
  });
});

describe('the SSE page across a server restart', () => {
  after(async () => {
    await browser?.close();
    browser = undefined;
  });

  test('resumes after the stream is cut and shows every message exactly once, including those published while it was away', async (t) => {
    if (!haveChromium(t)) return;
    const order = (n: number) => ({ event: 'order.created', data: { n } });
    const publish = async (url: string, n: number) => assert.equal((await postJson(`${url}/webhook`, order(n))).status, 200);
    const shown = async (page: Page, count: number, timeout?: number) =>
      (await waitParagraphs(page, count, timeout)).map((text) => (JSON.parse(text) as ReturnType<typeof order>).data.n);

    const first = await spawnHerald();
    const { dataDir } = first;
    const port = new URL(first.url).port;
    const running: SpawnedHerald[] = [first];
    const { page, errors, close } = await openPage(`${first.url}/client/sse.html`);
    try {
      await waitConnected(page);
      await publish(first.url, 1);
      await publish(first.url, 2);
      assert.deepEqual(await shown(page, 2), [1, 2]);

      // Cut the stream the hard way: the process dies without ending it. The browser's
      // EventSource keeps retrying its URL, carrying the last id it saw in Last-Event-ID.
      await first.kill();
      running.shift();

      // While the page's port is closed, another Herald on the same log (another port) takes
      // two messages: the page cannot have seen them live.
      const meanwhile = await spawnHerald({}, { dataDir });
      running.push(meanwhile);
      await publish(meanwhile.url, 3);
      await publish(meanwhile.url, 4);
      await meanwhile.stop();
      running.pop();

      // Herald back on the page's port and data folder: the browser reconnects by itself.
      const back = await spawnHerald({}, { dataDir, env: { PORT: port } });
      running.push(back);
      assert.deepEqual(await shown(page, 4, RECONNECT_WAIT_MS), [1, 2, 3, 4]);
      await publish(back.url, 5);
      // Events arrive in log order, so a repeated 3 or 4 would show before 5.
      assert.deepEqual(await shown(page, 5), [1, 2, 3, 4, 5]);
      assert.deepEqual(errors, []);
    } finally {
      await close();
      for (const h of running) await h.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
