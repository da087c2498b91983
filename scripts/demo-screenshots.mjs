#!/usr/bin/env node
// Screenshots of the demos for the README, from a real run: Herald started as a user starts it
// (the built CLI, dev mode, the README's demo config), Debian's Chromium driving the pages the way
// a person would (a test order, two people chatting, a like and a mention), then one PNG per demo
// in docs/images/. Needs `npm run build` first and /usr/bin/chromium; everything stays on loopback.
//
//   node scripts/demo-screenshots.mjs
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'docs', 'images');
const { spawnHerald } = await import(join(ROOT, 'dist/test/helpers/herald.js'));
const { launchChromium } = await import(join(ROOT, 'dist/test/helpers/browser.js'));

/** The README's demo config (section "Demos"). */
const CONFIG = {
  presence: { channels: ['chat.*'] },
  sources: { stripe: { provider: 'stripe', secret: 'whsec_demo_secret', channel: 'stripe.{type}' } },
};
const VIEWPORT = { width: 1280, height: 760 };
/** milliseconds: longest one step may take on a busy machine. */
const STEP_MS = 20_000;

mkdirSync(OUT, { recursive: true });
const herald = await spawnHerald(CONFIG);
const browser = await launchChromium();
try {
  const open = async (path) => {
    const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    await page.goto(`${herald.url}${path}`);
    await page.locator('#live.on').waitFor();
    return page;
  };

  // Orders: two paid orders, a failed payment, one refund.
  const orders = await open('/demo/orders');
  for (const button of ['#send-test', '#send-test', '#send-failed']) {
    const before = await orders.locator('#orders tr').count();
    await orders.click(button);
    await orders.waitForFunction((n) => document.querySelectorAll('#orders tr').length > n, before);
  }
  await orders.locator('#orders button', { hasText: 'Refund' }).first().click();
  await orders.locator('#orders .badge.refunded').waitFor();
  await orders.screenshot({ path: join(OUT, 'demo-orders.png') });

  // Chat: Ann and Bo in the lobby, Bo typing an answer.
  const ann = await open('/demo/chat?name=ann');
  await ann.fill('#text', 'Morning! Is the release still on for today?');
  await ann.click('#send');
  const bo = await open('/demo/chat?name=bo');
  await bo.locator('#messages .msg').waitFor();
  await ann.locator('#online li[data-name="bo"]').waitFor();
  await bo.fill('#text', 'Yes, at 3pm. The changelog is ready.');
  await bo.click('#send');
  await ann.locator('#messages .msg[data-from="bo"]').waitFor();
  await bo.fill('#text', 'I will post the notes');
  await ann.locator('#typing', { hasText: 'bo is typing' }).waitFor();
  await ann.screenshot({ path: join(OUT, 'demo-chat.png') });

  // Notifications: Bo likes, comments on and mentions Ann's post; Ann's feed and badge.
  const annFeed = await open('/demo/notifications?user=ann');
  const boPanel = await open('/demo/notifications?user=bo');
  await boPanel.fill('#to', 'ann');
  for (const [button, text] of [['#like', ''], ['#send-comment', 'Great write-up, thanks!'], ['#mention', '@ann can you review this one?']]) {
    if (text) await boPanel.fill('#comment', text);
    await boPanel.click(button);
    await boPanel.locator('#sent', { hasText: 'Sent a' }).waitFor();
    await boPanel.evaluate(() => (document.getElementById('sent').textContent = ''));
  }
  await annFeed.locator('#badge', { hasText: '3' }).waitFor();
  await annFeed.screenshot({ path: join(OUT, 'demo-notifications.png') });
  console.log(`screenshots in ${OUT}: demo-orders.png, demo-chat.png, demo-notifications.png`);
} finally {
  await browser.close();
  await herald.stop();
}
