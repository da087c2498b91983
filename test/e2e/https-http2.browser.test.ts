import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { Agent, fetch as undiciFetch } from 'undici';
import { CHROMIUM_HOW, chromiumAvailable, launchChromium } from '../helpers/browser.js';
import { selfSignedCertificate, type SelfSigned } from '../helpers/certificate.js';
import { spawnHerald, type SpawnedHerald } from '../helpers/herald.js';
import { hasOpenssl } from '../helpers/nginx.js';
import { needService } from '../helpers/service.js';

// Herald serving HTTPS itself (`tls` in config) to Debian's Chromium, which speaks HTTP/2 to it:
// the reason to have it is that one page may hold more SSE streams than HTTP/1.1's six
// connections per origin, all live at once on one connection.

/** milliseconds: longest any browser-side wait may take on a busy 2-core machine. */
const BROWSER_WAIT_MS = 20_000;
/** More streams than a browser opens HTTP/1.1 connections to one origin (six). */
const STREAMS = 10;

const available = chromiumAvailable() && hasOpenssl();
const HOW = `${CHROMIUM_HOW}; apt-get install -y openssl`;

function haveTools(t: TestContext): boolean {
  return needService(t, available, 'Chromium and openssl', HOW);
}

describe('HTTPS and HTTP/2 in a browser', () => {
  let dir: string;
  let cert: SelfSigned;
  let herald: SpawnedHerald | undefined;
  let browser: Browser | undefined;
  let agent: Agent | undefined;

  /** Publishes over HTTP/1.1 (undici) to the same port, trusting the test's certificate. */
  const publish = async (channel: string, data: unknown): Promise<string> => {
    const res = await undiciFetch(`${herald!.url}/v1/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ channel, type: 'tick', data }),
      dispatcher: agent,
    });
    assert.equal(res.status, 201, await res.clone().text());
    return ((await res.json()) as { id: string }).id;
  };

  const openPage = async (url: string) => {
    const context = await browser!.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(BROWSER_WAIT_MS);
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    // What the browser's network stack saw for each response: the protocol and the connection.
    const cdp = await context.newCDPSession(page);
    const responses: { url: string; protocol: string; connectionId: number }[] = [];
    cdp.on('Network.responseReceived', (e) => {
      responses.push({ url: e.response.url, protocol: e.response.protocol ?? '', connectionId: e.response.connectionId ?? -1 });
    });
    await cdp.send('Network.enable');
    await page.goto(url);
    return { page, errors, responses, close: () => context.close() };
  };

  before(async () => {
    if (!available) return; // each test says so (skip, or fail in CI)
    dir = mkdtempSync(join(tmpdir(), 'herald-tls-'));
    cert = selfSignedCertificate(dir);
    agent = new Agent({ connect: { ca: cert.ca } });
    herald = await spawnHerald({ tls: { cert: cert.certFile, key: cert.keyFile } });
    browser = await launchChromium(['--ignore-certificate-errors']);
  });
  after(async () => {
    await browser?.close();
    await herald?.stop();
    await agent?.close();
    if (herald) rmSync(herald.dataDir, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test(`one page holds ${STREAMS} SSE streams at once over one HTTP/2 connection, each live`, async (t) => {
    if (!haveTools(t)) return;
    assert.match(herald!.url, /^https:\/\//);
    // Streams resume after this event: the one published once all are open reaches each stream
    // whether or not its subscription had finished starting when it was published.
    const marker = await publish('h2.live', { marker: true });
    const { page, errors, responses, close } = await openPage(`${herald!.url}/healthz`);
    try {
      // Each stream records `<id> <data>` of every `tick` it gets.
      await page.evaluate(`
        window.received = [];
        window.opened = 0;
        window.sources = [];
        for (let i = 0; i < ${STREAMS}; i++) {
          const got = [];
          window.received.push(got);
          const es = new EventSource('/v1/stream?channel=h2.live&lastEventId=${encodeURIComponent(marker)}&n=' + i);
          es.addEventListener('open', () => window.opened++);
          es.addEventListener('tick', (e) => got.push(e.lastEventId + ' ' + e.data));
          window.sources.push(es);
        }
      `);
      // Over HTTP/1.1 the seventh stream would wait for one of the first six to end: never.
      await page.waitForFunction(`window.opened === ${STREAMS}`);
      const id = await publish('h2.live', { after: 'all open' });
      await page.waitForFunction(`window.received.every((r) => r.length >= 1)`);
      const received = (await page.evaluate('window.received')) as string[][];
      assert.deepEqual(received, Array.from({ length: STREAMS }, () => [`${id} {"after":"all open"}`]));

      const streams = responses.filter((r) => r.url.includes('/v1/stream?'));
      assert.equal(streams.length, STREAMS);
      assert.deepEqual(new Set(streams.map((r) => r.protocol)), new Set(['h2']));
      const page0 = responses.find((r) => r.url.endsWith('/healthz'))!;
      assert.equal(page0.protocol, 'h2');
      assert.deepEqual(new Set(streams.map((r) => r.connectionId)), new Set([page0.connectionId]), 'one connection for the page and its streams');
      // The page's own entry, as a page script would check it.
      assert.equal(await page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol"), 'h2');
      await page.evaluate('window.sources.forEach((s) => s.close())');
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  test('the seed SSE page over HTTPS (HTTP/2) and the WebSocket page over wss (HTTP/1.1 upgrade)', async (t) => {
    if (!haveTools(t)) return;
    const sse = await openPage(`${herald!.url}/client/sse.html`);
    const ws = await openPage(`${herald!.url}/client/websocket.html`);
    const connected = (page: Page) => page.waitForFunction("document.getElementById('status').textContent.startsWith('connected')");
    const paragraphs = async (page: Page, n: number) => {
      await page.waitForFunction(`document.querySelectorAll('#messages p').length >= ${n}`);
      return page.locator('#messages p').allTextContents();
    };
    try {
      await connected(sse.page);
      await connected(ws.page);
      assert.match((await ws.page.textContent('#status'))!, /wss:\/\//);
      for (const path of ['/sse/send', '/ws/send']) {
        const res = await undiciFetch(`${herald!.url}${path}`, { dispatcher: agent });
        assert.equal(await res.text(), 'Message broadcasted');
      }
      assert.match((await paragraphs(sse.page, 1))[0]!, /^New Order received at /);
      assert.deepEqual(await paragraphs(ws.page, 1), ['🔔 New message at server!']);
      assert.equal(sse.responses.find((r) => r.url.endsWith('/sse'))?.protocol, 'h2');
      assert.deepEqual([...sse.errors, ...ws.errors], []);
    } finally {
      await sse.close();
      await ws.close();
    }
  });
});
