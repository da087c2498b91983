import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startInProcess } from '../helpers/herald.js';
import {
  githubRequest,
  hmacRequest,
  PAYPAL_TEST_CERT,
  paypalRequest,
  send,
  shopifyRequest,
  slackRequest,
  standardRequest,
  stripeRequest,
  type SignedRequest,
} from '../helpers/webhook-signers.js';

const STRIPE_SECRET = 'whsec_test_4eC39HqLyjWDarjtT1zdp7dc';
const STRIPE_OLD_SECRET = 'whsec_test_old_rotated_out_soon';
const STANDARD_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const GITHUB_SECRET = "It's a Secret to Everybody";
const SHOPIFY_SECRET = 'shpss_test_client_secret';
const SLACK_SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const PAYPAL_WEBHOOK_ID = 'WH-TEST-1AB23456CD789012E';
const HMAC_SECRET = 'generic-shared-secret';
const SECRETS = [STRIPE_SECRET, STRIPE_OLD_SECRET, STANDARD_SECRET, GITHUB_SECRET, SHOPIFY_SECRET, SLACK_SECRET, PAYPAL_WEBHOOK_ID, HMAC_SECRET];

const sources = {
  stripe: { provider: 'stripe', secrets: [STRIPE_SECRET, STRIPE_OLD_SECRET], channel: 'stripe.{type}' },
  standard: { provider: 'standard', secret: STANDARD_SECRET, channel: 'standard' },
  github: { provider: 'github', secret: GITHUB_SECRET, channel: 'github.{type}', unsignedTypeInChannel: true },
  shopify: { provider: 'shopify', secret: SHOPIFY_SECRET, channel: 'shopify.{type}', unsignedTypeInChannel: true },
  slack: { provider: 'slack', secret: SLACK_SECRET, channel: 'slack' },
  paypal: { provider: 'paypal', secret: PAYPAL_WEBHOOK_ID, channel: 'paypal', certificateFile: PAYPAL_TEST_CERT },
  generic: { provider: 'hmac', secret: HMAC_SECRET, channel: 'generic', idHeader: 'x-event-id' },
  open: { provider: 'none', channel: 'open' },
  erp: { provider: 'hmac', secret: HMAC_SECRET, channel: 'erp.{type}', header: 'X-ERP-Signature', encoding: 'base64', prefix: 'sha256=', typeHeader: 'x-erp-event', unsignedTypeInChannel: true },
};

let h: Awaited<ReturnType<typeof startInProcess>>;
before(async () => {
  h = await startInProcess({ sources });
});
after(() => h.close());

const url = (name: string) => `${h.url}/v1/webhooks/${name}`;

async function events(channel: string): Promise<any[]> {
  const res = await fetch(`${h.url}/v1/events?channel=${encodeURIComponent(channel)}`);
  return ((await res.json()) as { events: any[] }).events;
}

const now = () => new Date();
const stripeEvent = (id: string, type = 'payment_intent.succeeded') => ({
  id,
  object: 'event',
  type,
  data: { object: { id: 'pi_1', amount: 4200, currency: 'usd' } },
});

/** Every provider, with a request it signs correctly and the event it should become. */
const cases: { source: string; sign: (id: string, at?: Date) => SignedRequest; channel: string; type: string; timestamped: boolean }[] = [
  { source: 'stripe', sign: (id, at = now()) => stripeRequest(stripeEvent(id), STRIPE_SECRET, Math.floor(at.getTime() / 1000)), channel: 'stripe.payment_intent.succeeded', type: 'payment_intent.succeeded', timestamped: true },
  { source: 'standard', sign: (id, at = now()) => standardRequest({ type: 'invoice.paid', timestamp: at.toISOString(), data: { n: 1 } }, STANDARD_SECRET, id, at), channel: 'standard', type: 'invoice.paid', timestamped: true },
  { source: 'github', sign: (id) => githubRequest({ zen: 'Keep it logically awesome.', hook_id: 1 }, GITHUB_SECRET, 'ping', id), channel: 'github.ping', type: 'ping', timestamped: false },
  { source: 'shopify', sign: (id) => shopifyRequest({ id: 820982911946154500, total_price: '42.00' }, SHOPIFY_SECRET, 'orders/create', id), channel: 'shopify.orders.create', type: 'orders/create', timestamped: false },
  { source: 'slack', sign: (id, at = now()) => slackRequest(JSON.stringify({ type: 'event_callback', event_id: id, event: { type: 'app_mention', text: 'hi' } }), SLACK_SECRET, Math.floor(at.getTime() / 1000)), channel: 'slack', type: 'app_mention', timestamped: true },
  { source: 'paypal', sign: (id, at = now()) => paypalRequest({ id, event_type: 'PAYMENT.CAPTURE.COMPLETED', resource: { amount: { value: '42.00' } } }, PAYPAL_WEBHOOK_ID, `tx-${id}`, at), channel: 'paypal', type: 'PAYMENT.CAPTURE.COMPLETED', timestamped: true },
  { source: 'generic', sign: (id) => hmacRequest({ type: 'thing.happened', n: 1 }, HMAC_SECRET, { 'x-event-id': id }), channel: 'generic', type: 'thing.happened', timestamped: false },
];

describe('inbound webhooks: each provider', () => {
  for (const c of cases) {
    test(`${c.source}: a correctly signed request is stored, answered 200 and published to ${c.channel}`, async () => {
      const req = c.sign(`${c.source}-ok-1`);
      const res = await send(url(c.source), req);
      assert.equal(res.status, 200, JSON.stringify(res.json));
      assert.equal(res.json.duplicate, false);
      const [event] = (await events(c.channel)).filter((e) => e.id === res.json.id);
      assert.ok(event, 'the event is in the log');
      assert.equal(event.type, c.type);
      assert.deepEqual(event.data, JSON.parse(req.body), 'data is the provider payload');
    });

    test(`${c.source}: a tampered body is rejected 401 SIGNATURE_INVALID and not published`, async () => {
      const req = c.sign(`${c.source}-tampered`);
      const before = (await events(c.channel)).length;
      const res = await send(url(c.source), { ...req, body: req.body.replace(/\}$/, ',"extra":1}') });
      assert.equal(res.status, 401);
      assert.equal(res.json.error.code, 'SIGNATURE_INVALID');
      assert.equal((await events(c.channel)).length, before);
    });

    test(`${c.source}: missing signature headers are rejected 400 SIGNATURE_MISSING`, async () => {
      const res = await send(url(c.source), { body: c.sign(`${c.source}-nohdr`).body, headers: { 'content-type': 'application/json' } });
      assert.equal(res.status, 400);
      assert.equal(res.json.error.code, 'SIGNATURE_MISSING');
    });

    test(`${c.source}: a wrong content type is rejected 415`, async () => {
      const req = c.sign(`${c.source}-ctype`);
      const res = await send(url(c.source), { ...req, headers: { ...req.headers, 'content-type': 'text/plain' } });
      assert.equal(res.status, 415);
      assert.equal(res.json.error.code, 'UNSUPPORTED_MEDIA_TYPE');
    });

    if (c.timestamped) {
      test(`${c.source}: a signature older than the tolerance (a replay) is rejected 401`, async () => {
        const res = await send(url(c.source), c.sign(`${c.source}-old`, new Date(Date.now() - 600_000)));
        assert.equal(res.status, 401);
        assert.equal(res.json.error.code, 'TIMESTAMP_OUT_OF_TOLERANCE');
      });
    }
  }

  test('stripe: a secret that is not configured is rejected 401', async () => {
    const res = await send(url('stripe'), stripeRequest(stripeEvent('evt_wrong'), 'whsec_someone_else'));
    assert.equal(res.status, 401);
    assert.equal(res.json.error.code, 'SIGNATURE_INVALID');
  });

  test('stripe: both secrets of a rotation are accepted', async () => {
    for (const [i, secret] of [STRIPE_SECRET, STRIPE_OLD_SECRET].entries()) {
      const res = await send(url('stripe'), stripeRequest(stripeEvent(`evt_rot_${i}`), secret));
      assert.equal(res.status, 200, `secret ${i}`);
    }
  });

  test('stripe: a header with several v1 signatures is accepted when one matches', async () => {
    const req = stripeRequest(stripeEvent('evt_multi'), STRIPE_SECRET);
    const sig = req.headers['stripe-signature']!.replace(',v1=', `,v1=${'0'.repeat(64)},v1=`);
    const res = await send(url('stripe'), { ...req, headers: { ...req.headers, 'stripe-signature': sig } });
    assert.equal(res.status, 200);
  });

  test('standard: wrong secret, and several signatures in one header', async () => {
    const other = 'whsec_' + Buffer.from('another key entirely').toString('base64');
    const bad = await send(url('standard'), standardRequest({ type: 'x' }, other, 'msg_wrong'));
    assert.equal(bad.status, 401);
    const good = standardRequest({ type: 'x' }, STANDARD_SECRET, 'msg_multi');
    const wrong = standardRequest({ type: 'x' }, other, 'msg_multi').headers['webhook-signature'];
    const both = `${wrong} ${good.headers['webhook-signature']}`;
    const res = await send(url('standard'), { ...good, headers: { ...good.headers, 'webhook-signature': both } });
    assert.equal(res.status, 200);
  });

  test('slack: the url_verification handshake is answered with its challenge and not published', async () => {
    const before = (await events('slack')).length;
    const res = await send(url('slack'), slackRequest(JSON.stringify({ type: 'url_verification', challenge: 'c-123', token: 't' }), SLACK_SECRET));
    assert.equal(res.status, 200);
    assert.equal(res.json.challenge, 'c-123');
    assert.equal((await events('slack')).length, before);
  });

  test('paypal: a certificate URL off paypal.com is refused even when pinned is absent', async () => {
    const h2 = await startInProcess({ sources: { pp: { provider: 'paypal', secret: PAYPAL_WEBHOOK_ID, channel: 'pp' } } });
    try {
      const req = paypalRequest({ id: 'WH-1', event_type: 'X' }, PAYPAL_WEBHOOK_ID, 'tx-1');
      for (const certUrl of ['https://evil.example/cert.pem', 'http://api.paypal.com/cert', 'https://paypal.com.evil.example/c']) {
        const res = await send(`${h2.url}/v1/webhooks/pp`, { ...req, headers: { ...req.headers, 'paypal-cert-url': certUrl } });
        assert.equal(res.status, 401, certUrl);
        assert.equal(res.json.error.code, 'SIGNATURE_INVALID');
      }
    } finally {
      await h2.close();
    }
  });

  test('a correctly signed body that is not JSON is rejected 400 JSON_INVALID', async () => {
    const res = await send(url('stripe'), stripeRequest('not json at all', STRIPE_SECRET));
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, 'JSON_INVALID');
  });

  test('hmac: header, base64 encoding, prefix and type header are configurable', async () => {
    const body = JSON.stringify({ invoice: 7 });
    const digest = createHmac('sha256', HMAC_SECRET).update(body).digest('base64');
    const headers = { 'content-type': 'application/json', 'x-erp-event': 'invoice.paid' };
    const ok = await send(url('erp'), { body, headers: { ...headers, 'x-erp-signature': `sha256=${digest}` } });
    assert.equal(ok.status, 200);
    assert.equal((await events('erp.invoice.paid')).find((e) => e.id === ok.json.id)?.type, 'invoice.paid');
    const noPrefix = await send(url('erp'), { body, headers: { ...headers, 'x-erp-signature': digest } });
    assert.equal(noPrefix.json.error.code, 'SIGNATURE_MISSING');
  });

  test('a source with provider none accepts unsigned JSON', async () => {
    const res = await send(url('open'), { body: '{"type":"ping"}', headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 200);
  });

  test('an unknown source answers 404 SOURCE_UNKNOWN, whatever the body size', async () => {
    const res = await send(url('nope'), { body: 'x'.repeat(2_000_000), headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 404);
    assert.equal(res.json.error.code, 'SOURCE_UNKNOWN');
  });

  test('no secret appears in any answer or in the inbound log', async () => {
    let seen = '';
    for (const name of Object.keys(sources)) {
      const res = await fetch(`${url(name)}/received?limit=500`);
      seen += await res.text();
    }
    seen += await (await fetch(`${h.url}/metrics`)).text();
    for (const s of SECRETS) assert.ok(!seen.includes(s), 'a secret leaked');
  });
});
