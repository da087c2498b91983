import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Stripe from 'stripe';
import { startInProcess } from '../helpers/herald.js';
import {
  PAYPAL_TEST_CERT,
  paypalRequest,
  send,
  slackRequest,
  standardRequest,
  stripeRequest,
  type SignedRequest,
} from '../helpers/webhook-signers.js';

/**
 * A signed timestamp bounds how long a captured request can be replayed. One set far in the
 * future (a sender's clock, or a signature made ahead of time and leaked) would stay valid until
 * then, so the tolerance applies both ways, for every provider that signs a timestamp.
 */
const STRIPE_SECRET = 'whsec_future_test';
const STANDARD_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SLACK_SECRET = 'slack-future-secret';
const PAYPAL_WEBHOOK_ID = 'WH-FUTURE-TEST';
const TOLERANCE_S = 300;

let h: Awaited<ReturnType<typeof startInProcess>>;
before(async () => {
  h = await startInProcess({
    sources: {
      stripe: { provider: 'stripe', secret: STRIPE_SECRET, channel: 'stripe', toleranceSeconds: TOLERANCE_S },
      standard: { provider: 'standard', secret: STANDARD_SECRET, channel: 'standard', toleranceSeconds: TOLERANCE_S },
      slack: { provider: 'slack', secret: SLACK_SECRET, channel: 'slack', toleranceSeconds: TOLERANCE_S },
      paypal: { provider: 'paypal', secret: PAYPAL_WEBHOOK_ID, channel: 'paypal', certificateFile: PAYPAL_TEST_CERT, toleranceSeconds: TOLERANCE_S },
    },
  });
});
after(() => h.close());

const hook = (name: string) => `${h.url}/v1/webhooks/${name}`;
/** An hour ahead: far past the tolerance, whatever the machine's load does to the clock. */
const ahead = () => new Date(Date.now() + 3_600_000);

const cases: { source: string; sign: (id: string, at: Date) => SignedRequest }[] = [
  { source: 'stripe', sign: (id, at) => stripeRequest({ id, object: 'event', type: 'charge.refunded' }, STRIPE_SECRET, Math.floor(at.getTime() / 1000)) },
  { source: 'standard', sign: (id, at) => standardRequest({ type: 'invoice.paid' }, STANDARD_SECRET, id, at) },
  { source: 'slack', sign: (id, at) => slackRequest(JSON.stringify({ type: 'event_callback', event_id: id, event: { type: 'message' } }), SLACK_SECRET, Math.floor(at.getTime() / 1000)) },
  { source: 'paypal', sign: (id, at) => paypalRequest({ id, event_type: 'PAYMENT.CAPTURE.COMPLETED' }, PAYPAL_WEBHOOK_ID, `tx-${id}`, at) },
];

for (const c of cases) {
  test(`${c.source}: a timestamp an hour in the future is refused 401 TIMESTAMP_OUT_OF_TOLERANCE`, async () => {
    const res = await send(hook(c.source), c.sign(`${c.source}-future`, ahead()));
    assert.equal(res.status, 401, JSON.stringify(res.json));
    assert.equal(res.json.error.code, 'TIMESTAMP_OUT_OF_TOLERANCE');
    const now = await send(hook(c.source), c.sign(`${c.source}-now`, new Date()));
    assert.equal(now.status, 200, 'the same request signed now is accepted');
  });
}

test('stripe: a header with two t= values is refused (the check must see the signed one)', async () => {
  const body = JSON.stringify({ id: 'evt_two_t', object: 'event', type: 'charge.refunded' });
  const later = Math.floor(ahead().getTime() / 1000);
  const signed = Stripe.webhooks.generateTestHeaderString({ payload: body, secret: STRIPE_SECRET, timestamp: later });
  const now = Math.floor(Date.now() / 1000);
  const res = await send(hook('stripe'), {
    body,
    headers: { 'content-type': 'application/json', 'stripe-signature': `t=${now},${signed}` },
  });
  assert.equal(res.status, 400);
  assert.equal(res.json.error.code, 'SIGNATURE_MISSING');
});
