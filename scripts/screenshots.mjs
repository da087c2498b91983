#!/usr/bin/env node
// Screenshots of the admin console for the README, from a real run: starts Herald as a user does
// (dist/src/cli/main.js, with API keys configured), makes real traffic (published events,
// subscribers over SSE and WebSocket, signed inbound webhooks, an outbound endpoint against a
// local receiver that fails, then recovers), opens each console page in Debian's Chromium and
// writes docs/images/console-<page>.png.
//
//   npm run build && node scripts/screenshots.mjs
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'docs', 'images');
const CHROMIUM = '/usr/bin/chromium';
const VIEWPORT = { width: 1360, height: 820 };
const ADMIN = 'screenshots-admin-key-000001';
const keys = {
  alice: 'screenshots-alice-key-000001',
  bob: 'screenshots-bob-key-0000000001',
  carol: 'screenshots-carol-key-000001',
  shop: 'screenshots-shop-service-0001',
};
const SHOP_SECRET = 'screenshots-shop-hmac-secret';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(check, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// ---- a receiver that fails (503) until told otherwise ----
let receiverDown = true;
const receiver = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (receiverDown && req.url === '/hooks/orders') res.writeHead(503, { 'content-type': 'text/plain' }).end('upstream maintenance, try later');
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const receiverUrl = `http://127.0.0.1:${receiver.address().port}/hooks/orders`;
const erpUrl = `http://127.0.0.1:${receiver.address().port}/hooks/erp`;

// ---- Herald, as a user starts it ----
const dataDir = mkdtempSync(join(tmpdir(), 'herald-screenshots-'));
const config = {
  auth: {
    apiKeys: [
      { key: ADMIN, name: 'ops', scopes: ['admin'] },
      { key: keys.alice, name: 'alice', scopes: ['subscribe:chat.>', 'publish:chat.>'] },
      { key: keys.bob, name: 'bob', scopes: ['subscribe:chat.>', 'publish:chat.>'] },
      { key: keys.carol, name: 'carol', scopes: ['subscribe:orders.>'] },
      { key: keys.shop, name: 'shop-service', scopes: ['publish:orders.>'] },
    ],
  },
  presence: { channels: ['chat.>'] },
  sources: { shop: { provider: 'hmac', secret: SHOP_SECRET, idHeader: 'x-event-id', channel: 'shop.orders' } },
  outbound: { allowPrivateTargets: true, retryScheduleSeconds: [0, 0.2], retryJitter: 0, sweepIntervalSeconds: 0.1 },
};
writeFileSync(join(dataDir, 'config.json'), JSON.stringify(config));
const child = spawn(process.execPath, [join(ROOT, 'dist/src/cli/main.js'), '--config', join(dataDir, 'config.json')], {
  env: { ...process.env, PORT: '0', HOST: '127.0.0.1', HERALD_DATA_DIR: dataDir },
  stdio: ['ignore', 'pipe', 'inherit'],
});
const base = await new Promise((resolve, reject) => {
  child.once('exit', (code) => reject(new Error(`herald exited with ${code}`)));
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      const rec = JSON.parse(line);
      if (rec.msg === 'herald listening') resolve(rec.url);
    } catch {
      /* not a log line */
    }
  });
});

const auth = (key) => ({ authorization: `Bearer ${key}` });
async function call(method, path, body, key = ADMIN) {
  const res = await fetch(base + path, {
    method,
    headers: { ...auth(key), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}
const publish = (channel, type, data, key = ADMIN) => call('POST', '/v1/publish', { channel, type, data }, key);

const closers = [];
try {
  // Subscribers: chat members over WebSocket (presence), an orders dashboard over SSE.
  for (const who of ['alice', 'bob']) {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/ws`, { headers: auth(keys[who]) });
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    ws.send(JSON.stringify({ op: 'subscribe', channel: 'chat.room-1', ref: '1' }));
    closers.push(() => ws.close());
  }
  for (const channel of ['orders.>', 'orders.eu']) {
    const abort = new AbortController();
    const res = await fetch(`${base}/v1/stream?channel=${encodeURIComponent(channel)}`, { headers: auth(keys.carol), signal: abort.signal });
    res.body.pipeTo(new WritableStream()).catch(() => {});
    closers.push(() => abort.abort());
  }

  // Outbound: an endpoint whose receiver fails, so the first deliveries die.
  await call('POST', '/v1/endpoints', { url: erpUrl, channels: ['shop.>'], description: 'ERP' });
  const ep = await call('POST', '/v1/endpoints', { url: receiverUrl, channels: ['orders.>'], description: 'fulfilment service' });
  const orders = [
    ['orders.eu', 'order.created', { order: 'EU-1042', customer: 'Ada', total: 129.5, currency: 'EUR' }],
    ['orders.us', 'order.created', { order: 'US-2210', customer: 'Grace', total: 48, currency: 'USD' }],
    ['orders.eu', 'order.paid', { order: 'EU-1042', method: 'card' }],
  ];
  for (const [c, t, d] of orders) await publish(c, t, d, keys.shop);
  await waitFor(async () => (await call('GET', `/v1/endpoints/${ep.id}/deliveries?status=dead`)).deliveries.length === 3, 15_000, 'dead deliveries');
  receiverDown = false;
  await publish('orders.us', 'order.shipped', { order: 'US-2210', carrier: 'UPS' }, keys.shop);
  await publish('orders.eu', 'order.shipped', { order: 'EU-1042', carrier: 'DHL' }, keys.shop);
  await waitFor(async () => (await call('GET', `/v1/endpoints/${ep.id}/deliveries?status=delivered`)).deliveries.length === 2, 15_000, 'delivered');

  // Inbound: accepted, a provider retry (duplicate), a forged one (rejected).
  const signed = (payload, secret, id) => {
    const body = JSON.stringify(payload);
    return { body, headers: { 'content-type': 'application/json', 'x-event-id': id, 'x-signature': createHmac('sha256', secret).update(body).digest('hex') } };
  };
  const post = (req) => fetch(`${base}/v1/webhooks/shop`, { method: 'POST', ...req });
  await post(signed({ type: 'order.created', order: 'WEB-311', items: [{ sku: 'MUG-01', qty: 2 }], total: 24 }, SHOP_SECRET, 'evt_311'));
  await post(signed({ type: 'order.created', order: 'WEB-311', items: [{ sku: 'MUG-01', qty: 2 }], total: 24 }, SHOP_SECRET, 'evt_311'));
  await post(signed({ type: 'order.refunded', order: 'WEB-298', amount: 18 }, SHOP_SECRET, 'evt_298'));
  await post(signed({ type: 'order.created', order: 'FAKE-1', total: 9999 }, 'a-guessed-secret', 'evt_fake'));

  for (const [who, text] of [['alice', 'Morning! Deploy is done.'], ['bob', 'Great, checking the dashboards.']]) {
    await publish('chat.room-1', 'message', { from: who, text }, keys[who]);
  }

  // ---- the pages ----
  mkdirSync(OUT, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
  closers.push(() => browser.close());
  const page = await browser.newPage({ viewport: VIEWPORT });
  page.setDefaultTimeout(20_000);
  page.on('dialog', (d) => void d.accept());
  const shot = async (name) => {
    await page.screenshot({ path: join(OUT, `console-${name}.png`) });
    console.log(`wrote docs/images/console-${name}.png`);
  };

  await page.goto(`${base}/console#live`);
  await page.locator('#gate').waitFor();
  await shot('key');
  await page.fill('#api-key', ADMIN);
  await page.click('#gate button[type=submit]');
  await page.locator('#live-status.open').waitFor();

  // Outbound first: the live traffic below adds many deliveries to this endpoint.
  await page.goto(`${base}/console#outbound`);
  await page.locator(`#endpoints tr[data-endpoint="${ep.id}"] a.endpoint-url`).click();
  await page.locator(`#endpoints tr.selected[data-endpoint="${ep.id}"]`).waitFor();
  await page.locator('#deliveries tr.delivery[data-status="dead"]').first().waitFor();
  await page.locator('#deliveries tr.delivery[data-status="dead"] a').first().click();
  await shot('outbound');


  await page.goto(`${base}/console#live`);
  await page.locator('#live-status.open').waitFor();
  // Live: steady traffic for the chart, then one event opened.
  let live = true;
  const traffic = (async () => {
    const kinds = [
      ['orders.eu', 'order.created', () => ({ order: `EU-${1100 + Math.floor(Math.random() * 900)}`, total: Math.round(Math.random() * 20000) / 100 })],
      ['orders.us', 'order.paid', () => ({ order: `US-${2300 + Math.floor(Math.random() * 600)}`, method: 'card' })],
      ['chat.room-1', 'typing', () => ({ from: 'bob' })],
      ['metrics.cpu', 'sample', () => ({ host: 'web-2', cpu: Math.round(Math.random() * 100) })],
    ];
    for (let i = 0; live; i++) {
      const burst = 1 + Math.floor(Math.random() * 6) + (i % 20 > 12 ? 8 : 0);
      for (let j = 0; j < burst; j++) {
        const [c, t, d] = kinds[(i + j) % kinds.length];
        await publish(c, t, d());
      }
      await sleep(250);
    }
  })();
  await sleep(12_000);
  await page.locator('#live-events tr.event', { hasText: 'order.created' }).first().click();
  await shot('live');
  live = false;
  await traffic;

  await page.goto(`${base}/console#inbound`);
  await page.locator('#received tr.receipt[data-status="accepted"]').first().click();
  await shot('inbound');

  await page.goto(`${base}/console#channels`);
  await page.locator('#channels tr[data-channel="chat.room-1"] a.channel').click();
  await page.locator('#presence li').first().waitFor();
  await shot('channels');

  await page.goto(`${base}/console#nodes`);
  await page.locator('#nodes tr.node').waitFor();
  await shot('nodes');
} finally {
  for (const c of closers.reverse()) await c();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  receiver.close();
  rmSync(dataDir, { recursive: true, force: true });
}
