import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';
import { receiverPool, type Receiver } from '../helpers/webhook-receiver.js';

/** Ordered endpoints, replay from a position, and secret rotation. */

const fast = {
  allowPrivateTargets: true,
  retryScheduleSeconds: [0, 0.1, 0.1, 0.1, 0.1],
  retryJitter: 0,
  sweepIntervalSeconds: 0.05,
};

const herald = (outbound: Record<string, unknown> = {}) => startInProcess({ outbound: { ...fast, ...outbound } });

async function endpoint(base: string, body: Record<string, unknown>) {
  const r = await postJson(`${base}/v1/endpoints`, body);
  assert.equal(r.status, 201, r.text);
  return r.json as { id: string; secret: string };
}

const receiver = receiverPool();

const dataOf = (rx: Receiver) => rx.requests.map((r) => JSON.parse(r.body).data as unknown);

describe('outbound webhooks: order, replay, rotation', () => {
  test('an ordered endpoint gets events one at a time in log order; a failing head blocks the rest', async (t) => {
    const h = await herald();
    t.after(() => h.close());
    const rx = await receiver();
    // The head fails three times; every later event must wait for it.
    rx.handle((r) => (JSON.parse(r.body).data === 0 && rx.requests.filter((x) => JSON.parse(x.body).data === 0).length <= 3 ? { status: 500 } : { status: 200 }));
    await endpoint(h.url, { url: rx.url, channels: ['chat.>'], ordering: 'ordered' });
    const events = Array.from({ length: 20 }, (_, i) => ({ channel: i % 2 ? 'chat.a' : 'chat.b', data: i }));
    await postJson(`${h.url}/v1/publish`, events);
    await waitFor(() => rx.requests.length === 23, 10_000, '3 failures and 20 deliveries');
    assert.deepEqual(dataOf(rx), [0, 0, 0, ...Array.from({ length: 20 }, (_, i) => i)]);
    assert.equal(rx.maxInFlight, 1, 'one request at a time');
  });

  test('a parallel endpoint keeps to its maxConcurrency', async (t) => {
    const h = await herald();
    t.after(() => h.close());
    const rx = await receiver();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    rx.handle(async () => {
      await gate;
      return { status: 200 };
    });
    await endpoint(h.url, { url: rx.url, channels: ['a'], maxConcurrency: 3 });
    await postJson(`${h.url}/v1/publish`, Array.from({ length: 10 }, (_, i) => ({ channel: 'a', data: i })));
    await waitFor(() => rx.requests.length === 3);
    release();
    await waitFor(() => rx.requests.length === 10);
    assert.equal(rx.maxInFlight, 3);
  });

  test('replay re-sends from a position with the same webhook-id per event', async (t) => {
    const h = await herald();
    t.after(() => h.close());
    const rx = await receiver();
    const ep = await endpoint(h.url, { url: rx.url, channels: ['a'] });
    const pub = await postJson(`${h.url}/v1/publish`, [1, 2, 3, 4].map((data) => ({ channel: 'a', data })));
    await waitFor(() => rx.requests.length === 4);
    const firstIds = rx.requests.map((r) => r.headers['webhook-id']);
    const r = await postJson(`${h.url}/v1/endpoints/${ep.id}/replay`, { after: pub.json.ids[1] });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.json.queued, 2);
    await waitFor(() => rx.requests.length === 6);
    assert.deepEqual(dataOf(rx).slice(4).sort(), [3, 4]);
    assert.deepEqual(rx.requests.slice(4).map((x) => x.headers['webhook-id']).sort(), firstIds.slice(2).sort());
    rx.verifyAll(ep.secret);
  });

  test('after a secret rotation both secrets sign, each verifiable on its own', async (t) => {
    const h = await herald();
    t.after(() => h.close());
    const rx = await receiver();
    const ep = await endpoint(h.url, { url: rx.url, channels: ['a'] });
    const rot = await postJson(`${h.url}/v1/endpoints/${ep.id}/rotate-secret`, '');
    assert.equal(rot.status, 200);
    assert.notEqual(rot.json.secret, ep.secret);
    assert.ok(Date.parse(rot.json.previousSecretExpiresAt) > Date.now());
    await postJson(`${h.url}/v1/publish`, { channel: 'a', data: 'rotated' });
    await waitFor(() => rx.requests.length === 1);
    const sig = String(rx.requests[0]!.headers['webhook-signature']);
    assert.equal(sig.split(' ').length, 2, 'two v1 signatures during the overlap');
    rx.verifyAll([rot.json.secret, ep.secret]);
    assert.throws(() => {
      const r = rx.requests[0]!;
      new Webhook('whsec_' + Buffer.alloc(32, 7).toString('base64')).verify(r.body, r.headers as Record<string, string>);
    });
  });
});
