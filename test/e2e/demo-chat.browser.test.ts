import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import { SharedChromium, watchedPage } from '../helpers/browser.js';
import { startInProcess } from '../helpers/herald.js';

// The chat demo in Debian's Chromium, in dev mode: two people in two browser contexts (two
// browsers, as far as the pages can tell) in one room, over WebSocket through the client SDK.

/** milliseconds: longest any browser-side wait may take on a busy 2-core machine. */
const BROWSER_WAIT_MS = 20_000;

let h: Awaited<ReturnType<typeof startInProcess>>;
const chromium = new SharedChromium();
before(async () => {
  // No leave delay, so a closed page leaves at once instead of after the reload grace.
  h = await startInProcess({ presence: { channels: ['chat.*'], leaveDelaySeconds: 0 } });
});
after(async () => {
  await chromium.close();
  await h.close();
});

async function openChat(t: TestContext, name: string) {
  const context = await chromium.context(t);
  if (!context) return undefined;
  const { page, errors } = await watchedPage(context, BROWSER_WAIT_MS);
  await page.goto(`${h.url}/demo/chat?room=lobby&name=${name}`);
  await page.locator('#live.on').waitFor();
  await page.locator(`#online li[data-name="${name}"]`).waitFor();
  return { page, errors, close: () => context.close() };
}

async function say(page: Page, text: string) {
  await page.fill('#text', text);
  await page.click('#send');
}

const messages = (page: Page) =>
  page.locator('#messages .msg').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-from')}: ${e.querySelector('.text')!.textContent}`));

test('two people see each other’s messages, presence and typing; history on join; typing is never logged', async (t) => {
  const alice = await openChat(t, 'alice');
  if (!alice) return;
  let bob: Awaited<ReturnType<typeof openChat>>;
  try {
    await say(alice.page, 'hello from alice, before bob came');
    await alice.page.locator('#messages .msg', { hasText: 'before bob came' }).waitFor();

    // Bob joins: the room's history comes first, and each of them sees the other online.
    bob = await openChat(t, 'bob');
    await bob!.page.locator('#messages .msg[data-from="alice"]', { hasText: 'before bob came' }).waitFor();
    await bob!.page.locator('#online li[data-name="alice"]').waitFor();
    await alice.page.locator('#online li[data-name="bob"]').waitFor();
    await alice.page.locator('#messages .system', { hasText: 'bob joined' }).waitFor();

    // Bob types: Alice is told, through an ephemeral event.
    await bob!.page.fill('#text', 'hi ali');
    await alice.page.locator('#typing', { hasText: 'bob is typing…' }).waitFor();

    await say(bob!.page, 'hi alice');
    await alice.page.locator('#messages .msg[data-from="bob"]', { hasText: 'hi alice' }).waitFor();
    await say(alice.page, 'hi bob');
    await bob!.page.locator('#messages .msg[data-from="alice"]', { hasText: 'hi bob' }).waitFor();
    // A message from Bob ends his typing indicator on Alice's page.
    assert.equal(await alice.page.locator('#typing').innerText(), '');

    const expected = ['alice: hello from alice, before bob came', 'bob: hi alice', 'alice: hi bob'];
    assert.deepEqual(await messages(alice.page), expected);
    assert.deepEqual(await messages(bob!.page), expected);

    // The log holds the three messages and not the typing indicator.
    const res = await fetch(`${h.url}/v1/events?channel=chat.lobby`);
    const { events } = (await res.json()) as { events: Array<{ type: string; data: { text?: string } }> };
    assert.deepEqual(events.map((e) => e.type), ['message', 'message', 'message']);
    assert.deepEqual(events.map((e) => e.data.text), ['hello from alice, before bob came', 'hi alice', 'hi bob']);

    // Bob closes his browser: Alice sees him leave.
    await bob!.close();
    bob = undefined;
    await alice.page.locator('#messages .system', { hasText: 'bob left' }).waitFor();
    await alice.page.locator('#online li[data-name="bob"]').waitFor({ state: 'detached' });
    assert.deepEqual(await alice.page.locator('#online li').evaluateAll((els) => els.map((e) => e.getAttribute('data-name'))), ['alice']);
    assert.deepEqual(alice.errors, []);
  } finally {
    await bob?.close();
    await alice.close();
  }
});

test('message text is shown as text, never as markup', async (t) => {
  const carol = await openChat(t, 'carol');
  if (!carol) return;
  try {
    const text = '<img src=x onerror="window.__pwned=1">boo';
    await say(carol.page, text);
    const msg = carol.page.locator('#messages .msg', { hasText: 'boo' }).last();
    await msg.waitFor();
    assert.equal(await msg.locator('.text').innerText(), text);
    assert.equal(await carol.page.locator('#messages img').count(), 0);
    assert.equal(await carol.page.evaluate('globalThis.__pwned'), undefined);
  } finally {
    await carol.close();
  }
});
