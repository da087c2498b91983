import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';

import { SharedChromium, watchedPage } from '../helpers/browser.js';
import { startInProcess } from '../helpers/herald.js';
import { send, stripeRequest } from '../helpers/webhook-signers.js';

// The order dashboard demo in Debian's Chromium: the page's button makes the server sign a
// Stripe-style webhook and send it through the real endpoint; the order must appear over SSE.

/** milliseconds: longest any browser-side wait may take on a busy 2-core machine. */
const BROWSER_WAIT_MS = 20_000;
const SECRET = 'whsec_demo_browser_test';

let h: Awaited<ReturnType<typeof startInProcess>>;
const chromium = new SharedChromium();
before(async () => {
  h = await startInProcess({ sources: { stripe: { provider: 'stripe', secret: SECRET, channel: 'stripe.{type}' } } });
});
after(async () => {
  await chromium.close();
  await h.close();
});

async function openDashboard(t: TestContext) {
  const context = await chromium.context(t);
  if (!context) return undefined;
  const { page, errors } = await watchedPage(context, BROWSER_WAIT_MS);
  await page.goto(`${h.url}/demo/orders`);
  await page.locator('#live.on').waitFor();
  return { page, errors, close: () => context.close() };
}

test('the dashboard shows a test order sent through the signed endpoint, then its refund', async (t) => {
  const d = await openDashboard(t);
  if (!d) return;
  try {
    await d.page.click('#send-test');
    const row = d.page.locator('#orders tr', { has: d.page.locator('.badge.paid') }).first();
    await row.waitFor();
    const orderId = (await row.getAttribute('data-order'))!;
    assert.match(orderId, /^\d{4}$/);
    assert.match(await d.page.locator('#kpi-paid').innerText(), /^1$/);

    // It went through the real endpoint: verified, logged as accepted, appended to the log.
    const log = (await (await fetch(`${h.url}/v1/webhooks/stripe/received?status=accepted`)).json()) as { received: any[] };
    assert.equal(log.received[0].type, 'payment_intent.succeeded');
    assert.equal(log.received[0].payload.data.object.metadata.order_id, orderId);
    assert.ok(log.received[0].headers['stripe-signature'].includes('v1='));

    await row.locator('button', { hasText: 'Refund' }).click();
    await d.page.locator(`#orders tr[data-order="${orderId}"] .badge.refunded`).waitFor();
    assert.equal(await d.page.locator('#kpi-refunds').innerText(), '1');

    await d.page.click('#send-failed');
    await d.page.locator('#orders .badge.failed').waitFor();
    assert.equal(await d.page.locator('#kpi-failed').innerText(), '1');
    assert.deepEqual(d.errors, []);
  } finally {
    await d.close();
  }
});

test('payload text is shown as text, never as markup (stored XSS through a webhook)', async (t) => {
  const d = await openDashboard(t);
  if (!d) return;
  try {
    const name = '<img src=x onerror="window.__pwned=1">Mallory';
    const res = await send(
      `${h.url}/v1/webhooks/stripe`,
      stripeRequest(
        {
          id: 'evt_xss_1',
          object: 'event',
          type: 'payment_intent.succeeded',
          created: Math.floor(Date.now() / 1000),
          data: { object: { id: 'pi_xss_1', amount: 100, currency: 'eur', created: Math.floor(Date.now() / 1000), metadata: { order_id: '6666', customer_name: name } } },
        },
        SECRET,
      ),
    );
    assert.equal(res.status, 200);
    const row = d.page.locator('#orders tr[data-order="6666"]');
    await row.waitFor();
    assert.ok((await row.innerText()).includes(name));
    assert.equal(await row.locator('img').count(), 0);
    assert.equal(await d.page.evaluate("globalThis.__pwned"), undefined);
  } finally {
    await d.close();
  }
});
