import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import { SharedChromium, watchedPage } from '../helpers/browser.js';
import { postJson, spawnHerald, startInProcess, waitFor, type SpawnedHerald } from '../helpers/herald.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';
import { hmacRequest, send } from '../helpers/webhook-signers.js';

// The admin console in Debian's Chromium, against a real Herald with real data: events
// published over HTTP, signed inbound webhooks, an outbound endpoint failing against a local
// receiver, and SSE subscribers. Every check is what an operator sees and clicks.

/** milliseconds: longest any browser-side wait may take on a busy 2-core machine. */
const BROWSER_WAIT_MS = 20_000;
const SOURCE_SECRET = 'console-browser-hmac-secret';

const chromium = new SharedChromium();
after(async () => {
  await chromium.close();
});

async function open(t: TestContext, url: string): Promise<{ page: Page; errors: string[]; urls: string[]; close: () => Promise<void> } | undefined> {
  const context = await chromium.context(t);
  if (!context) return undefined;
  const { page, errors } = await watchedPage(context, BROWSER_WAIT_MS);
  const urls: string[] = [];
  page.on('request', (req) => urls.push(req.url()));
  page.on('dialog', (d) => void d.accept());
  await page.goto(url);
  return { page, errors, urls, close: () => context.close() };
}

describe('admin console, dev mode (loopback, no key)', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  let rx: Receiver;
  before(async () => {
    rx = await startReceiver();
    h = await startInProcess({
      sources: { shop: { provider: 'hmac', secret: SOURCE_SECRET, idHeader: 'x-event-id', channel: 'shop' } },
      outbound: { allowPrivateTargets: true, retryScheduleSeconds: [0], retryJitter: 0, sweepIntervalSeconds: 0.05 },
    });
  });
  after(async () => {
    await h.close();
    await rx.close();
  });

  const publish = async (channel: string, type: string, data: unknown) => {
    const r = await postJson(`${h.url}/v1/publish`, { channel, type, data });
    assert.equal(r.status, 201, r.text);
    return r.json.id as string;
  };

  test('Live tails a pattern with pause, type and text filters, shows an event’s JSON, and charts the rates', async (t) => {
    const c = await open(t, `${h.url}/console#live`);
    if (!c) return;
    const { page } = c;
    try {
      await page.fill('#live-pattern', 'orders.>');
      await page.click('#live-tail');
      await page.locator('#live-status.open').waitFor();
      await publish('orders.eu', 'order.created', { order: 'A-1', total: 12 });
      await publish('orders.us', 'order.paid', { order: 'B-2', total: 30 });
      await publish('billing.eu', 'invoice.sent', { invoice: 'I-9' }); // outside the pattern
      await waitFor(async () => (await page.locator('#live-events tr.event').count()) === 2, BROWSER_WAIT_MS, 'two events listed');
      assert.deepEqual(await page.locator('#live-events td.channel').allInnerTexts(), ['orders.us', 'orders.eu']);

      await page.fill('#live-type', 'order.created');
      assert.deepEqual(await page.locator('#live-events td.channel').allInnerTexts(), ['orders.eu']);
      await page.fill('#live-type', '');
      await page.fill('#live-text', 'B-2');
      assert.deepEqual(await page.locator('#live-events td.type').allInnerTexts(), ['order.paid']);
      await page.fill('#live-text', '');

      await page.locator('#live-events tr.event', { hasText: 'orders.eu' }).click();
      const json = JSON.parse(await page.locator('#live-detail pre.json').innerText()) as Record<string, unknown>;
      assert.equal(json.channel, 'orders.eu');
      assert.equal(json.type, 'order.created');
      assert.deepEqual(json.data, { order: 'A-1', total: 12 });
      assert.match(String(json.id), /-\d+$/);

      await page.click('#live-pause');
      await publish('orders.eu', 'order.created', { order: 'C-3' });
      await page.locator('#live-count', { hasText: '1 held while paused' }).waitFor();
      assert.equal(await page.locator('#live-events tr.event').count(), 2, 'nothing added while paused');
      await page.click('#live-pause');
      await waitFor(async () => (await page.locator('#live-events tr.event').count()) === 3, BROWSER_WAIT_MS, 'the held event shown on resume');

      // The chart's "in" rate moves while events are published.
      await waitFor(async () => {
        await publish('orders.eu', 'tick', {});
        return (await page.locator('.legend b.in').innerText()) !== '0.0';
      }, BROWSER_WAIT_MS, 'a non-zero publish rate on the chart');
      assert.ok((await page.locator('.chart polyline.in').getAttribute('points'))!.length > 0);
      assert.deepEqual(c.errors, []);
    } finally {
      await c.close();
    }
  });

  test('Outbound shows a failing endpoint’s attempts, resends one to the receiver, bulk-retries the dead, pauses, resumes, rotates and replays', async (t) => {
    let failing = true;
    rx.handle(() => (failing ? { status: 503, body: 'receiver down' } : { status: 200, body: 'thanks' }));
    const ep = await postJson(`${h.url}/v1/endpoints`, { url: rx.url, channels: ['payments.>'] });
    assert.equal(ep.status, 201, ep.text);
    for (const n of [1, 2, 3]) await publish('payments.eu', 'payment.settled', { n });
    const dead = async () => (await (await fetch(`${h.url}/v1/endpoints/${ep.json.id}/deliveries?status=dead`)).json()) as { deliveries: any[] };
    await waitFor(async () => (await dead()).deliveries.length === 3, BROWSER_WAIT_MS, 'three dead deliveries');

    const c = await open(t, `${h.url}/console#outbound`);
    if (!c) return;
    const { page } = c;
    try {
      const row = page.locator(`#endpoints tr[data-endpoint="${ep.json.id}"]`);
      await row.waitFor();
      assert.match(await row.innerText(), /failing since/);
      await row.locator('a.endpoint-url').click();
      await waitFor(async () => (await page.locator('#deliveries tr.delivery[data-status="dead"]').count()) === 3, BROWSER_WAIT_MS, 'three dead rows');

      // Each attempt: its status, duration and the receiver's answer.
      const first = page.locator('#deliveries tr.delivery').first();
      await first.locator('a').click();
      const attempts = page.locator('#deliveries tr.attempts:not([hidden])');
      assert.match(await attempts.innerText(), /503/);
      assert.match(await attempts.innerText(), /receiver down/);
      assert.match(await attempts.innerText(), /\d+ ms/);

      // Resend one from the console: it reaches the receiver with that delivery's webhook-id.
      failing = false;
      const id = (await first.getAttribute('data-delivery'))!;
      const webhookId = ((await (await fetch(`${h.url}/v1/deliveries/${id}`)).json()) as any).webhookId;
      await first.locator('button.resend').click();
      await waitFor(() => rx.requests.some((r) => r.headers['webhook-id'] === webhookId && r.at > 0) && rx.requests.filter((r) => r.headers['webhook-id'] === webhookId).length === 2, BROWSER_WAIT_MS, 'the resend at the receiver');
      await waitFor(async () => (await dead()).deliveries.length === 2, BROWSER_WAIT_MS, 'two still dead');

      // Bulk retry: the other two dead deliveries go out.
      await row.locator('button.retry-dead').click();
      await page.locator('#notice', { hasText: '2 dead deliveries sent again' }).waitFor();
      await waitFor(async () => (await dead()).deliveries.length === 0, BROWSER_WAIT_MS, 'no dead delivery left');
      const delivered = new Set(rx.requests.filter((r) => r.headers['webhook-id'] !== undefined).map((r) => JSON.parse(r.body).data.n));
      assert.deepEqual([...delivered].sort(), [1, 2, 3]);

      await row.locator('button.toggle', { hasText: 'Pause' }).click();
      await page.locator(`#endpoints tr[data-endpoint="${ep.json.id}"] .badge`, { hasText: 'paused' }).waitFor();
      assert.equal(((await (await fetch(`${h.url}/v1/endpoints/${ep.json.id}`)).json()) as any).enabled, false);
      await page.locator(`#endpoints tr[data-endpoint="${ep.json.id}"] button.toggle`, { hasText: 'Resume' }).click();
      await page.locator(`#endpoints tr[data-endpoint="${ep.json.id}"] button.toggle`, { hasText: 'Pause' }).waitFor();

      await page.locator(`#endpoints tr[data-endpoint="${ep.json.id}"] button.rotate`).click();
      const secret = await page.locator('#new-secret').innerText();
      assert.match(secret, /^whsec_/);
      assert.notEqual(secret, ep.json.secret);

      // Replay from the start of the log: the three events are queued again, and sent.
      const sent = rx.requests.length;
      await page.fill('#replay-after', '0');
      await page.click('#replay');
      await page.locator('#notice', { hasText: '3 deliveries queued' }).waitFor();
      await waitFor(() => rx.requests.length === sent + 3, BROWSER_WAIT_MS, 'the replayed deliveries at the receiver');
      assert.deepEqual(c.errors, []);
    } finally {
      await c.close();
    }
  });

  test('Inbound lists accepted, duplicate and rejected arrivals with the reason, shows a payload and replays it', async (t) => {
    const url = `${h.url}/v1/webhooks/shop`;
    const signed = hmacRequest({ type: 'order.created', order: 'W-7' }, SOURCE_SECRET, { 'x-event-id': 'evt-w7' });
    assert.equal((await send(url, signed)).status, 200);
    assert.equal((await send(url, signed)).json.duplicate, true);
    const forged = hmacRequest({ type: 'order.created', order: 'X' }, 'not-the-secret', { 'x-event-id': 'evt-x' });
    assert.equal((await send(url, forged)).status, 401);

    const c = await open(t, `${h.url}/console#inbound`);
    if (!c) return;
    const { page } = c;
    try {
      await page.locator('#sources tr[data-source="shop"]').waitFor();
      await waitFor(async () => (await page.locator('#received tr.receipt').count()) === 3, BROWSER_WAIT_MS, 'three arrivals');
      assert.deepEqual(await page.locator('#received tr.receipt').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-status'))), ['rejected', 'duplicate', 'accepted']);

      await page.locator('#received tr.receipt[data-status="rejected"]').click();
      assert.match(await page.locator('#receipt-detail').innerText(), /SIGNATURE_INVALID/);

      await page.locator('#received tr.receipt[data-status="accepted"]').click();
      const payload = JSON.parse(await page.locator('#receipt-detail pre.json').first().innerText()) as Record<string, unknown>;
      assert.deepEqual(payload, { type: 'order.created', order: 'W-7' });
      await page.click('#replay-receipt');
      await page.locator('#notice', { hasText: 'published again' }).waitFor();
      await page.locator('#received tr.receipt[data-status="replayed"]').waitFor();
      const history = (await (await fetch(`${h.url}/v1/events?channel=shop`)).json()) as { events: any[] };
      const orders = history.events.map((e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data).order);
      assert.deepEqual(orders, ['W-7', 'W-7'], 'the original and its replay');
      assert.deepEqual(c.errors, []);
    } finally {
      await c.close();
    }
  });

  test('Channels lists subscribers with transport, identity, address and since, and disconnects one', async (t) => {
    const abort = new AbortController();
    const res = await fetch(`${h.url}/v1/stream?channel=rooms.lobby`, { signal: abort.signal });
    let ended = false;
    void (async () => {
      const reader = res.body!.getReader();
      try {
        while (!(await reader.read()).done);
      } catch {
        /* aborted */
      }
      ended = true;
    })();
    await publish('rooms.lobby', 'hello', { from: 'test' });

    const c = await open(t, `${h.url}/console#channels`);
    if (!c) return;
    const { page } = c;
    try {
      const row = page.locator('#channels tr[data-channel="rooms.lobby"]');
      await row.waitFor();
      assert.equal(await row.locator('.subscriber-count').innerText(), '1');
      await row.locator('a.channel').click();
      const sub = page.locator('#subscribers tr.subscriber');
      await sub.waitFor();
      const text = await sub.innerText();
      assert.match(text, /sse/);
      assert.match(text, /anonymous/);
      assert.match(text, /127\.0\.0\.1/);
      assert.match(await page.locator('#presence').innerText(), /not tracked/);
      await sub.locator('button.disconnect').click();
      await waitFor(() => ended, BROWSER_WAIT_MS, 'the stream to end');
      await page.locator('#subscribers tr.empty').waitFor();
      assert.deepEqual(c.errors, []);
    } finally {
      abort.abort();
      await c.close();
    }
  });

  test('Nodes shows this node ready, with its connections', async (t) => {
    const c = await open(t, `${h.url}/console#nodes`);
    if (!c) return;
    try {
      await c.page.locator('#nodes tr.node .badge', { hasText: 'ready' }).waitFor();
      assert.deepEqual(c.errors, []);
    } finally {
      await c.close();
    }
  });
});

describe('admin console on herald --workers 2', () => {
  let h: SpawnedHerald;
  // Each worker loads all of Herald, both at once, on a busy machine.
  before(async () => {
    h = await spawnHerald({}, { args: ['--workers', '2'], startTimeoutMs: 45_000 });
  });
  after(() => h.stop());

  test('Nodes lists both workers, the one serving the page marked, with the streams each holds', async (t) => {
    const streams = await Promise.all([1, 2, 3].map(async () => {
      const abort = new AbortController();
      // A connection of its own each (no keep-alive reuse), so the primary spreads them.
      const res = await fetch(`${h.url}/v1/stream?channel=orders`, { signal: abort.signal, headers: { connection: 'close' } });
      assert.equal(res.status, 200);
      // Read as a client reads it: a response whose body nobody reads may be collected, and
      // fetch then closes its stream (the node would rightly count one connection less).
      void res.body!.pipeTo(new WritableStream()).catch(() => undefined);
      return abort;
    }));
    t.after(() => streams.forEach((s) => s.abort()));
    const c = await open(t, `${h.url}/console#nodes`);
    if (!c) return;
    const { page } = c;
    try {
      // Other nodes appear as of their last heartbeat (every 5 s).
      await waitFor(
        async () => {
          const counts = (await page.locator('#nodes tr.node .connections').allInnerTexts()).map(Number);
          return counts.length === 2 && counts.reduce((a, b) => a + b, 0) === streams.length;
        },
        30_000,
        'two nodes holding the three streams',
      );
      assert.equal(await page.locator('#nodes tr.node.self').count(), 1);
      await page.locator('#nodes tr.node.self .badge', { hasText: 'ready' }).waitFor();
      await page.locator('#nodes tr.node:not(.self) .badge', { hasText: 'live' }).waitFor();
      assert.equal(await page.locator('#nodes tr.node .lag', { hasText: 'caught up' }).count(), 2);
      assert.deepEqual(c.errors, []);
    } finally {
      await c.close();
    }
  });
});

describe('admin console with credentials configured', () => {
  const ADMIN = 'console-browser-admin-key-01';
  const PUBLISHER = 'console-browser-publisher-01';
  let h: Awaited<ReturnType<typeof startInProcess>>;
  before(async () => {
    h = await startInProcess({
      auth: {
        apiKeys: [
          { key: ADMIN, name: 'ops', scopes: ['admin'] },
          { key: PUBLISHER, name: 'shop', scopes: ['publish:orders.>'] },
        ],
      },
    });
  });
  after(() => h.close());

  test('asks for an admin key, refuses one without the admin scope, keeps the key out of every URL', async (t) => {
    const c = await open(t, `${h.url}/console#live`);
    if (!c) return;
    const { page } = c;
    try {
      await page.locator('#gate').waitFor();
      assert.equal(await page.locator('#nav').isHidden(), true);

      await page.fill('#api-key', PUBLISHER);
      await page.click('#gate button[type=submit]');
      await page.locator('#gate-reason', { hasText: 'does not have the "admin" scope' }).waitFor();

      await page.fill('#api-key', ADMIN);
      await page.click('#gate button[type=submit]');
      await page.locator('#live-status.open').waitFor();
      assert.equal(await page.evaluate("sessionStorage.getItem('herald.console.apiKey')"), ADMIN);
      const id = (await postJson(`${h.url}/v1/publish`, { channel: 'orders.eu', type: 'order.created', data: { n: 1 } }, { authorization: `Bearer ${PUBLISHER}` })).json.id;
      await page.locator(`#live-events tr[data-id="${id}"]`).waitFor();

      for (const u of c.urls) assert.doesNotMatch(u, new RegExp(ADMIN), `the key in a URL: ${u}`);
      assert.deepEqual(c.errors, []);
    } finally {
      await c.close();
    }
  });
});
