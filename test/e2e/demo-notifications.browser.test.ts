import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { SharedChromium, watchedPage } from '../helpers/browser.js';
import { cutProxy } from '../helpers/cut-proxy.js';
import { postJson, startInProcess } from '../helpers/herald.js';

// The notification feed demo in Debian's Chromium, in dev mode: each user's private channel over
// SSE with a dev token, through a TCP proxy that can drop the connection for real. Every
// notification must be shown exactly once, with the unread badge right, across a reload (with
// notifications published while the page is away) and across a dropped connection.

/** milliseconds: longest any browser-side wait may take on a busy 2-core machine. */
const BROWSER_WAIT_MS = 20_000;

let h: Awaited<ReturnType<typeof startInProcess>>;
let proxy: Awaited<ReturnType<typeof cutProxy>>;
const chromium = new SharedChromium();
before(async () => {
  h = await startInProcess({});
  proxy = await cutProxy(h.url);
});
after(async () => {
  await chromium.close();
  await proxy.close();
  await h.close();
});

async function newContext(t: TestContext): Promise<BrowserContext | undefined> {
  return chromium.context(t);
}

/** Opens the feed of `user` through the proxy, in `context`; resolves once it is live. */
async function openFeed(context: BrowserContext, user: string) {
  const { page, errors } = await watchedPage(context, BROWSER_WAIT_MS);
  await page.goto(`${proxy.url}/demo/notifications?user=${user}`);
  await page.locator('#live.on').waitFor();
  return { page, errors };
}

/** A comment to `user` straight to Herald (as an app's backend would), numbered `n`. */
const notify = (user: string, n: number) =>
  postJson(`${h.url}/v1/publish`, { channel: `user.${user}.notifications`, type: 'comment', data: { from: 'backend', text: `note ${n}`, n } }).then(
    (r) => assert.equal(r.status, 201),
  );

/** The feed's notifications, oldest first: their ids and the `n` of those that have one. */
async function feed(page: Page) {
  const rows = await page.locator('#feed li').evaluateAll((els) => els.map((e) => ({ id: e.getAttribute('data-id')!, n: e.getAttribute('data-n')! })));
  rows.reverse();
  return { ids: rows.map((r) => r.id), ns: rows.map((r) => r.n).filter((n) => n !== '').map(Number) };
}

const badge = (page: Page) => page.locator('#badge').evaluate((e) => (e.hasAttribute('hidden') ? '' : e.textContent));

test('every notification is shown once across a reload, with notifications sent while the page was away', async (t) => {
  const context = await newContext(t);
  if (!context) return;
  try {
    const dana = await openFeed(context, 'dana');

    // From another tab: Erin likes and comments on Dana's post with the sender panel.
    const erin = await openFeed(context, 'erin');
    await erin.page.fill('#to', 'dana');
    await erin.page.click('#like');
    await erin.page.locator('#sent', { hasText: 'Sent a like to dana' }).waitFor();
    await erin.page.fill('#comment', 'nice one @dana');
    await erin.page.click('#mention');
    await erin.page.locator('#sent', { hasText: 'Sent a mention to dana' }).waitFor();
    await dana.page.locator('#feed li.like', { hasText: 'erin liked your post' }).waitFor();
    await dana.page.locator('#feed li.mention', { hasText: 'nice one @dana' }).waitFor();

    for (let n = 1; n <= 3; n++) await notify('dana', n);
    await dana.page.locator('#feed li[data-n="3"]').waitFor();
    assert.equal(await badge(dana.page), '5');

    // Reload while three more are published: the page resumes after the last one it kept.
    const during = (async () => {
      for (let n = 4; n <= 6; n++) await notify('dana', n);
    })();
    await dana.page.reload();
    await during;
    await dana.page.locator('#live.on').waitFor();
    for (let n = 7; n <= 8; n++) await notify('dana', n);
    await dana.page.locator('#feed li[data-n="8"]').waitFor();

    const { ids, ns } = await feed(dana.page);
    assert.deepEqual(ns, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(ids.length, 10);
    assert.equal(new Set(ids).size, 10, 'no notification twice');
    assert.equal(await badge(dana.page), '10');
    assert.equal(await dana.page.locator('#feed li.unread').count(), 10);

    // Read state survives a reload too; a new notification is the only unread one.
    await dana.page.click('#read-all');
    assert.equal(await badge(dana.page), '');
    await dana.page.reload();
    await dana.page.locator('#live.on').waitFor();
    await notify('dana', 9);
    await dana.page.locator('#feed li[data-n="9"]').waitFor();
    assert.equal(await badge(dana.page), '1');
    assert.equal((await feed(dana.page)).ids.length, 11);
    assert.deepEqual([...dana.errors, ...erin.errors], []);
  } finally {
    await context.close();
  }
});

test('every notification is shown once across a dropped connection', async (t) => {
  const context = await newContext(t);
  if (!context) return;
  try {
    const fay = await openFeed(context, 'fay');
    for (let n = 1; n <= 2; n++) await notify('fay', n);
    await fay.page.locator('#feed li[data-n="2"]').waitFor();

    // The network drops (not the server): three are published while the page cannot connect.
    proxy.refuse = true;
    proxy.cut();
    await fay.page.locator('#live:not(.on)').waitFor();
    for (let n = 3; n <= 5; n++) await notify('fay', n);
    proxy.refuse = false;

    await fay.page.locator('#feed li[data-n="5"]').waitFor();
    await fay.page.locator('#live.on').waitFor();
    await notify('fay', 6);
    await fay.page.locator('#feed li[data-n="6"]').waitFor();
    const { ids, ns } = await feed(fay.page);
    assert.deepEqual(ns, [1, 2, 3, 4, 5, 6]);
    assert.equal(new Set(ids).size, 6);
    assert.equal(await badge(fay.page), '6');
    assert.deepEqual(fay.errors, []);
  } finally {
    proxy.refuse = false;
    await context.close();
  }
});
