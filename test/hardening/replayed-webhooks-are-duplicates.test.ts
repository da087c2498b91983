import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sign as githubSign } from '@octokit/webhooks-methods';
import { buildConfig, ConfigError } from '../../src/config/load.js';
import { startInProcess } from '../helpers/herald.js';
import { hmacRequest, send, shopifyRequest, slackRequest, type SignedRequest } from '../helpers/webhook-signers.js';

/**
 * GitHub, Shopify and generic HMAC sign only the body: the delivery id and the event type travel
 * in unsigned headers. A signed body captured once (a log, a proxy, a leaked request) and sent
 * again with a new id and another type must be answered as the duplicate it is, never published
 * as a new event on a channel of the sender's choosing.
 */
const GITHUB_SECRET = 'gh-replay-secret';
const SHOPIFY_SECRET = 'shpss_replay_secret';
const HMAC_SECRET = 'hmac-replay-secret';
const SLACK_SECRET = 'slack-replay-secret';

let h: Awaited<ReturnType<typeof startInProcess>>;
before(async () => {
  h = await startInProcess({
    sources: {
      github: { provider: 'github', secret: GITHUB_SECRET, channel: 'github.{type}', unsignedTypeInChannel: true },
      shop: { provider: 'shopify', secret: SHOPIFY_SECRET, channel: 'shop.{type}', unsignedTypeInChannel: true },
      erp: { provider: 'hmac', secret: HMAC_SECRET, channel: 'erp', idHeader: 'x-erp-delivery', typeHeader: 'x-erp-event' },
      slack: { provider: 'slack', secret: SLACK_SECRET, channel: 'slack' },
    },
  });
});
after(() => h.close());

const hook = (name: string) => `${h.url}/v1/webhooks/${name}`;

async function events(pattern: string): Promise<{ id: string; channel: string; type: string }[]> {
  const res = await fetch(`${h.url}/v1/events?channel=${encodeURIComponent(pattern)}`);
  return ((await res.json()) as { events: { id: string; channel: string; type: string }[] }).events;
}

/** GitHub's request, signed by GitHub's own library (@octokit/webhooks-methods). */
async function githubRequest(body: string, event: string, delivery: string): Promise<SignedRequest> {
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'x-github-event': event,
      'x-github-delivery': delivery,
      'x-hub-signature-256': await githubSign(GITHUB_SECRET, body),
    },
  };
}

describe('a re-sent signed body is a duplicate, whatever its unsigned headers say', () => {
  test('github: the same body with a new delivery id and another event type', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main', after: 'c0ffee', repository: { full_name: 'acme/shop' } });
    const first = await send(hook('github'), await githubRequest(body, 'push', 'delivery-1'));
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.equal(first.json.duplicate, false);
    const replay = await send(hook('github'), await githubRequest(body, 'deployment', 'delivery-forged'));
    assert.equal(replay.status, 200, 'answered like a provider retry');
    assert.equal(replay.json.duplicate, true);
    assert.equal(replay.json.id, first.json.id, 'it names the first event');
    assert.deepEqual((await events('github.>')).map((e) => [e.channel, e.type]), [['github.push', 'push']]);
    const received = (await (await fetch(`${hook('github')}/received?status=duplicate`)).json()) as { received: { providerEventId: string }[] };
    assert.equal(received.received[0]!.providerEventId, 'delivery-forged', 'the replay is in the inbound log');
  });

  test('shopify: the same body with a new event id and another topic', async () => {
    const order = { id: 450789469, total_price: '199.00' };
    const first = await send(hook('shop'), shopifyRequest(order, SHOPIFY_SECRET, 'orders/create', 'evt-1'));
    assert.equal(first.json.duplicate, false);
    const replay = await send(hook('shop'), shopifyRequest(order, SHOPIFY_SECRET, 'refunds/create', 'evt-forged'));
    assert.equal(replay.status, 200);
    assert.equal(replay.json.duplicate, true);
    assert.equal(replay.json.id, first.json.id);
    assert.deepEqual((await events('shop.>')).map((e) => e.channel), ['shop.orders.create']);
  });

  test('generic hmac: the same body with a new id header and another type header', async () => {
    const payload = { invoice: 'inv-7', amount: 42 };
    const first = await send(hook('erp'), hmacRequest(payload, HMAC_SECRET, { 'x-erp-delivery': 'd-1', 'x-erp-event': 'invoice.paid' }));
    assert.equal(first.json.duplicate, false);
    const replay = await send(hook('erp'), hmacRequest(payload, HMAC_SECRET, { 'x-erp-delivery': 'd-2', 'x-erp-event': 'invoice.voided' }));
    assert.equal(replay.json.duplicate, true);
    assert.deepEqual((await events('erp')).map((e) => e.type), ['invoice.paid']);
  });

  test('slack: a slash command (no event id) replayed inside the tolerance', async () => {
    const signed = slackRequest('command=%2Frefund&text=order-42&trigger_id=t-1', SLACK_SECRET, undefined, 'application/x-www-form-urlencoded');
    const first = await send(hook('slack'), signed);
    assert.equal(first.json.duplicate, false);
    const replay = await send(hook('slack'), signed);
    assert.equal(replay.json.duplicate, true);
    assert.equal((await events('slack')).length, 1);
  });

  test('a different body is a new event, as before', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/dev', after: 'beef' });
    const res = await send(hook('github'), await githubRequest(body, 'push', 'delivery-2'));
    assert.equal(res.json.duplicate, false);
  });
});

describe('a channel template takes {type} from an unsigned header only when the source opts in', () => {
  const build = (source: Record<string, unknown>) => () => buildConfig({ sources: { s: source } }, {});
  for (const source of [
    { provider: 'github', secret: 'x', channel: 'gh.{type}' },
    { provider: 'shopify', secret: 'x', channel: 'shop.{type}' },
    { provider: 'hmac', secret: 'x', channel: 'erp.{type}', typeHeader: 'x-erp-event' },
  ]) {
    test(`${source.provider}: refused at start, naming the key and the header`, () => {
      assert.throws(build(source), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /sources\.s\.channel/);
        assert.match(err.message, /unsignedTypeInChannel/);
        return true;
      });
      assert.doesNotThrow(build({ ...source, unsignedTypeInChannel: true }));
    });
  }

  test('providers that sign their type, and hmac reading it from the payload, need no opt-in', () => {
    assert.doesNotThrow(build({ provider: 'stripe', secret: 'whsec_x', channel: 'stripe.{type}' }));
    assert.doesNotThrow(build({ provider: 'hmac', secret: 'x', channel: 'erp.{type}' }));
    assert.throws(build({ provider: 'stripe', secret: 'whsec_x', channel: 's', unsignedTypeInChannel: true }), ConfigError);
  });

  test('the github signature is over the body alone (why the type header cannot be trusted)', async () => {
    const body = '{"zen":"Design for failure."}';
    const a = await githubRequest(body, 'push', 'x');
    const b = await githubRequest(body, 'issues', 'y');
    assert.equal(a.headers['x-hub-signature-256'], b.headers['x-hub-signature-256']);
    assert.equal(a.headers['x-hub-signature-256'], 'sha256=' + createHmac('sha256', GITHUB_SECRET).update(body).digest('hex'));
  });
});
