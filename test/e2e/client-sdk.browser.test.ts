import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { packageRoot } from '../../src/http/routes/pages.js';
import { CHROMIUM_HOW, chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { cutProxy } from '../helpers/cut-proxy.js';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';
import { needService } from '../helpers/service.js';
import { sign, TEST_SECRET, userToken } from '../helpers/tokens.js';

// @herald/client's browser bundle in Debian's Chromium against a real Herald: subscribe and
// publish with ack, a dropped network resumed with no gap, a reset, token renewal, and two tabs
// of one origin sharing one connection, the second resuming with no gap when the first closes.
// The page comes from its own origin, as an app's would, and talks to Herald across origins.

/** milliseconds: longest any browser-side wait may take on a busy 2-core machine. */
const WAIT_MS = 20_000;
const PUBLISHER = 'sdk-browser-publisher-0123456789abcdef';
const BUNDLE = join(packageRoot(), 'packages', 'client', 'dist', 'herald-client.min.js');

/** The test page: it loads the bundle as an app would and leaves `connect` on window. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>sdk</title>
<script type="module">
  import { connect } from '/sdk/herald-client.min.js';
  window.got = []; window.statuses = []; window.resets = []; window.errors = [];
  window.start = (transport, extra = {}) => {
    window.client = connect({
      url: new URLSearchParams(location.search).get('herald'), transport, backoffBaseMs: 20, backoffMaxMs: 200,
      getToken: () => window.mintToken(),
      onStatus: (s) => window.statuses.push(s),
      onReset: (c, r) => window.resets.push(c + ':' + r),
      onError: (e) => window.errors.push(e.code),
      ...extra,
    });
    window.client.subscribe('room.live', (e) => window.got.push(e.data.n));
  };
  window.ready = true;
</script>`;

let h: Awaited<ReturnType<typeof startInProcess>>;
let site: { origin: string; close: () => Promise<void> };
let proxy: Awaited<ReturnType<typeof cutProxy>>;
let browser: Browser | undefined;
/** seconds: the life of the tokens the pages get (long unless a test asks for short ones). */
let tokenLifeS = 3600;
let minted = 0;

const publish = (n: number) =>
  postJson(`${h.url}/v1/publish`, { channel: 'room.live', data: { n }, type: 'chat' }, { authorization: `Bearer ${PUBLISHER}` });

/** The app's own web server: the test page and the SDK bundle, on another loopback port. */
async function serveApp(): Promise<typeof site> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/sdk-test.html') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    else if (path === '/sdk/herald-client.min.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(BUNDLE));
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

before(async () => {
  site = await serveApp();
  h = await startInProcess({
    store: { type: 'memory' },
    cors: { origins: [site.origin] },
    metrics: { public: true },
    auth: { apiKeys: [{ key: PUBLISHER, scopes: ['publish:>'] }], jwt: { secret: TEST_SECRET, clockToleranceSeconds: 0 } },
  });
  proxy = await cutProxy(h.url);
});
after(async () => {
  await browser?.close();
  await proxy.close();
  await h.close();
  await site.close();
});

async function newContext(t: TestContext): Promise<BrowserContext | undefined> {
  if (!needService(t, chromiumAvailable(), 'Chromium', CHROMIUM_HOW)) return undefined;
  assert.ok(existsSync(BUNDLE), `${BUNDLE} is missing: npm run build makes it`);
  browser ??= await launchChromium();
  const context = await browser.newContext();
  await context.exposeFunction('mintToken', () => {
    minted++;
    return sign({ sub: 'u1', exp: Math.floor(Date.now() / 1000) + tokenLifeS, herald: { subscribe: ['room.>'], publish: ['room.>'] } });
  });
  t.after(() => context.close());
  return context;
}

async function openTab(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  await page.goto(`${site.origin}/sdk-test.html?herald=${encodeURIComponent(proxy.url)}`);
  await page.waitForFunction(() => (globalThis as any).ready === true);
  return page;
}

const got = (p: Page) => p.evaluate(() => (globalThis as any).got as number[]);
const statusOf = (p: Page) => p.evaluate(() => (globalThis as any).client.status as string);
const wsConnections = async () => {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  return Number(/herald_connections\{transport="ws"\} (\d+)/.exec(text)?.[1] ?? 0);
};

for (const transport of ['websocket', 'sse'] as const) {
  describe(`@herald/client in Chromium over ${transport}`, () => {
    test('subscribe, publish with ack, a dropped network resumed with no gap, then a reset', async (t) => {
      const context = await newContext(t);
      if (!context) return;
      const page = await openTab(context);
      await page.evaluate((tr) => (globalThis as any).start(tr, { shareAcrossTabs: false }), transport);
      await page.waitForFunction(() => (globalThis as any).client.status === 'open');
      const id = await page.evaluate(() => (globalThis as any).client.publish('room.live', { n: 1 }, { type: 'chat' }));
      assert.match(id, /^[0-9a-z]+-\d+$/);
      await waitFor(async () => (await got(page)).length === 1, WAIT_MS, 'the published event');

      proxy.refuse = true;
      proxy.cut();
      await page.waitForFunction(() => (globalThis as any).statuses.includes('reconnecting'));
      for (let n = 2; n <= 5; n++) await publish(n);
      proxy.refuse = false;
      await publish(6);
      await waitFor(async () => (await got(page)).length >= 6, WAIT_MS, 'six events');
      assert.deepEqual(await got(page), [1, 2, 3, 4, 5, 6]);
      const saved = await page.evaluate(() => (globalThis as any).client.position);
      assert.match(saved['room.live'], /^[0-9a-z]+-\d+$/, 'a position the page can keep');

      // The page is reloaded with a saved position that a lost log issued: onReset, then live.
      const lost = await startInProcess({ store: { type: 'memory' } });
      const oldId = (await postJson(`${lost.url}/v1/publish`, { channel: 'room.live', data: 1 })).json.id;
      await lost.close();
      await page.reload();
      await page.waitForFunction(() => (globalThis as any).ready === true);
      await page.evaluate(([tr, p]) => (globalThis as any).start(tr, { shareAcrossTabs: false, position: { 'room.live': p } }), [transport, oldId]);
      await page.waitForFunction(() => (globalThis as any).resets.length === 1);
      assert.deepEqual(await page.evaluate(() => (globalThis as any).resets), ['room.live:epoch_changed']);
      await publish(8);
      await waitFor(async () => (await got(page)).includes(8), WAIT_MS, 'a live event after the reset');
    });

    test('a short-lived token is renewed through getToken: no reconnect, no event lost', async (t) => {
      const context = await newContext(t);
      if (!context) return;
      // Renewed at half its life: 3 s of slack for the renewal's round trips on a busy machine
      // (with 3 s of life, a renewal that took over 1.5 s once met the expiry close).
      tokenLifeS = 6;
      t.after(() => void (tokenLifeS = 3600));
      const page = await openTab(context);
      minted = 0;
      await page.evaluate((tr) => (globalThis as any).start(tr, { shareAcrossTabs: false }), transport);
      await page.waitForFunction(() => (globalThis as any).client.status === 'open');
      const firstExpiry = Date.now() + tokenLifeS * 1000;
      await publish(1);
      await waitFor(() => minted >= 2, WAIT_MS, 'a renewal');
      await waitFor(() => Date.now() > firstExpiry + 1_000, WAIT_MS, 'the first token expired');
      await publish(2);
      await waitFor(async () => (await got(page)).length === 2, WAIT_MS, 'the event after the first token expired');
      assert.deepEqual(await got(page), [1, 2]);
      assert.deepEqual(await page.evaluate(() => (globalThis as any).statuses), ['open']);
    });
  });
}

test('two tabs share one connection; when the leader tab closes the other resumes with no gap', async (t) => {
  const context = await newContext(t);
  if (!context) return;
  await waitFor(async () => (await wsConnections()) === 0, WAIT_MS, 'no connection left from earlier tests');
  const leader = await openTab(context);
  await leader.evaluate(() => (globalThis as any).start('websocket'));
  await leader.waitForFunction(() => (globalThis as any).client.status === 'open');
  const follower = await openTab(context);
  await follower.evaluate(() => (globalThis as any).start('websocket'));
  await follower.waitForFunction(() => (globalThis as any).client.status === 'open');
  assert.equal(await wsConnections(), 1, 'the server counts one connection for two tabs');

  await publish(1);
  const id = await follower.evaluate(() => (globalThis as any).client.publish('room.live', { n: 2 }, { type: 'chat' }));
  assert.match(id, /^[0-9a-z]+-\d+$/, 'a publish from the tab without the connection is acknowledged');
  await waitFor(async () => (await got(follower)).length === 2 && (await got(leader)).length === 2, WAIT_MS, 'both tabs');
  assert.deepEqual(await got(leader), [1, 2]);

  await leader.close();
  for (let n = 3; n <= 6; n++) await publish(n);
  await waitFor(async () => (await got(follower)).length >= 6, WAIT_MS, 'the rest in the remaining tab');
  assert.deepEqual(await got(follower), [1, 2, 3, 4, 5, 6]);
  await waitFor(async () => (await wsConnections()) === 1, WAIT_MS, 'one connection, now the second tab');
});
