import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HeraldError } from '../../src/core/errors.js';
import { githubVerifier } from '../../src/transports/webhook-in/github-verifier.js';
import { crc32 } from '../../src/transports/webhook-in/paypal-verifier.js';
import { slackVerifier } from '../../src/transports/webhook-in/slack-verifier.js';
import { channelFor } from '../../src/transports/webhook-in/channel-template.js';

/** The example of GitHub's "Validating webhook deliveries" page, byte for byte. */
const GITHUB_DOC = {
  secret: "It's a Secret to Everybody",
  body: 'Hello, World!',
  signature: 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
};

/** The example of Slack's "Verifying requests from Slack" page, byte for byte. */
const SLACK_DOC = {
  secret: '8f742231b10e8888abcd99yyyzzz85a5',
  timestamp: '1531420618',
  body:
    'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar' +
    '&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com' +
    '%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
  signature: 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
};

async function code(p: unknown): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    assert.ok(err instanceof HeraldError, String(err));
    return err.code;
  }
}

test("github: the documentation's example signature verifies (then fails only as not-JSON)", async () => {
  const req = {
    body: Buffer.from(GITHUB_DOC.body),
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': GITHUB_DOC.signature, 'x-github-event': 'ping' },
    receivedAt: Date.now(),
  };
  assert.equal(await code(githubVerifier({ secrets: [GITHUB_DOC.secret] }).verify(req)), 'JSON_INVALID');
  assert.equal(await code(githubVerifier({ secrets: ['another secret'] }).verify(req)), 'SIGNATURE_INVALID');
});

test("slack: the documentation's example slash command verifies at its own timestamp", async () => {
  const req = {
    body: Buffer.from(SLACK_DOC.body),
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': SLACK_DOC.timestamp,
      'x-slack-signature': SLACK_DOC.signature,
    },
    receivedAt: Number(SLACK_DOC.timestamp) * 1000 + 2_000,
  };
  const v = await slackVerifier({ secrets: [SLACK_DOC.secret], toleranceSeconds: 300 }).verify(req);
  assert.equal(v.type, 'slash_command');
  assert.equal((v.payload as Record<string, string>).command, '/webhook-collect');
  const later = { ...req, receivedAt: req.receivedAt + 600_000 };
  assert.equal(await code(Promise.resolve().then(() => slackVerifier({ secrets: [SLACK_DOC.secret], toleranceSeconds: 300 }).verify(later))), 'TIMESTAMP_OUT_OF_TOLERANCE');
});

test('paypal: CRC32 is the zlib CRC-32 of the raw body, unsigned decimal', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926); // the CRC-32 check value
  assert.equal(crc32(Buffer.from('')), 0);
});

test('a provider type can never make Herald publish to a pattern or an invalid channel', () => {
  assert.equal(channelFor('stripe.{type}', { type: 'payment_intent.succeeded', source: 's' }), 'stripe.payment_intent.succeeded');
  assert.equal(channelFor('shopify.{type}', { type: 'orders/create', source: 's' }), 'shopify.orders.create');
  assert.equal(channelFor('x.{type}', { type: 'a.>.*', source: 's' }), 'x.a._._');
  assert.equal(channelFor('x.{type}', { type: '..', source: 's' }), 'x._');
  assert.equal(channelFor('{source}.in', { type: 't', source: 'gh' }), 'gh.in');
});
