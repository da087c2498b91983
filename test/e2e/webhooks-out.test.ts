import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';
import { receiverPool } from '../helpers/webhook-receiver.js';

/** Outbound webhooks end to end: a Herald in this process, real HTTP receivers on 127.0.0.1. */

const fast = {
  allowPrivateTargets: true,
  retryScheduleSeconds: [0, 0.1, 0.1, 0.1],
  retryJitter: 0,
  sweepIntervalSeconds: 0.05,
};

async function herald(outbound: Record<string, unknown> = {}) {
  return startInProcess({ outbound: { ...fast, ...outbound } });
}

async function getJson(url: string, init?: RequestInit) {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as any) : undefined };
}

async function endpoint(base: string, body: Record<string, unknown>) {
  const r = await postJson(`${base}/v1/endpoints`, body);
  assert.equal(r.status, 201, r.text);
  return r.json as { id: string; secret: string };
}

const publish = (base: string, events: unknown) => postJson(`${base}/v1/publish`, events);

const receiver = receiverPool();

describe('outbound webhooks', () => {
  test('delivers every matching event, signed as the standardwebhooks library verifies', async (t) => {
    const h = await herald();
    t.after(() => h.close());
    const rx = await receiver();
    const ep = await endpoint(h.url, { url: rx.url, channels: ['orders.*'], types: ['created', 'paid'] });
    assert.match(ep.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    const pub = await publish(h.url, [
      { channel: 'orders.1', type: 'created', data: { total: 5 } },
      { channel: 'users.1', type: 'created', data: 'not for this endpoint' },
      { channel: 'orders.1', type: 'shipped', data: 'filtered by type' },
      { channel: 'orders.2', type: 'paid', data: 'line one\nline two' },
    ]);
    assert.equal(pub.status, 201);
    await waitFor(() => rx.requests.length >= 2, 5_000, 'two deliveries');
    const payloads = rx.verifyAll(ep.secret) as Record<string, unknown>[];
    assert.deepEqual(
      payloads.map((p) => [p.id, p.channel, p.type, p.data]),
      [
        [pub.json.ids[0], 'orders.1', 'created', { total: 5 }],
        [pub.json.ids[3], 'orders.2', 'paid', 'line one\nline two'],
      ],
    );
    assert.match(String(payloads[0]!.time), /^\d{4}-\d\d-\d\dT/);
    assert.equal(rx.requests[0]!.headers['content-type'], 'application/json');
    assert.notEqual(rx.requests[0]!.headers['webhook-id'], rx.requests[1]!.headers['webhook-id']);
    const list = await getJson(`${h.url}/v1/endpoints/${ep.id}/deliveries`);
    assert.equal(list.status, 200);
    await waitFor(async () => {
      const l = await getJson(`${h.url}/v1/endpoints/${ep.id}/deliveries?status=delivered`);
      return l.json.deliveries.length === 2;
    });
  });

  test('/metrics counts attempts by outcome, their duration and the delivery lag', async (t) => {
    const h = await herald({ retryScheduleSeconds: [0, 0.1] });
    t.after(() => h.close());
    const rx = await receiver();
    rx.handle((r) => (JSON.parse(r.body).data === 'fails' ? { status: 500 } : { status: 200 }));
    await endpoint(h.url, { url: rx.url, channels: ['m'] });
    await publish(h.url, [{ channel: 'm', data: 'ok 1' }, { channel: 'm', data: 'ok 2' }, { channel: 'm', data: 'fails' }]);
    const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    const text = (await waitFor(async () => {
      const m = await (await fetch(`${h.url}/metrics`)).text();
      return metric(m, 'herald_webhook_attempts_total\\{outcome="dead"\\}') === 1 ? m : undefined;
    }, 5_000, 'the failing delivery to be dead-lettered'))!;
    assert.equal(metric(text, 'herald_webhook_attempts_total\\{outcome="delivered"\\}'), 2);
    assert.equal(metric(text, 'herald_webhook_attempts_total\\{outcome="retry"\\}'), 1);
    assert.equal(metric(text, 'herald_webhook_attempt_duration_seconds_count'), 4);
    assert.equal(metric(text, 'herald_webhook_delivery_lag_seconds_count'), 2);
    assert.equal(metric(text, 'herald_webhook_requests_in_flight'), 0);
    assert.equal(metric(text, 'herald_webhook_deliveries_waiting'), 0);
  });

  test('retries a failing receiver with the same webhook-id until it succeeds, and logs every attempt', async (t) => {
    const h = await herald();
    t.after(() => h.close());
    const rx = await receiver();
    rx.handle((_r, i) => (i < 2 ? { status: 500, body: `failure ${i}` } : { status: 204 }));
    const ep = await endpoint(h.url, { url: rx.url, channels: ['jobs'] });
    await publish(h.url, { channel: 'jobs', data: { n: 1 } });
    await waitFor(() => rx.requests.length === 3, 5_000, 'three attempts');
    rx.verifyAll(ep.secret);
    const ids = new Set(rx.requests.map((r) => r.headers['webhook-id']));
    assert.equal(ids.size, 1, 'the same webhook-id on every attempt');
    const d = await waitFor(async () => {
      const l = await getJson(`${h.url}/v1/endpoints/${ep.id}/deliveries`);
      const first = l.json.deliveries[0];
      return first?.status === 'delivered' ? first : undefined;
    });
    assert.equal(d.webhookId, [...ids][0]);
    const one = await getJson(`${h.url}/v1/deliveries/${d.id}`);
    assert.deepEqual(one.json.attempts.map((a: any) => a.status), [500, 500, 204]);
    assert.equal(one.json.attempts[0].responseBody, 'failure 0');
    assert.deepEqual(one.json.payload.data, { n: 1 });
  });

  test('dead-letters after the last scheduled attempt; a manual retry sends it again', async (t) => {
    const h = await herald();
    t.after(() => h.close());
    const rx = await receiver();
    rx.handle(() => ({ status: 503 }));
    const ep = await endpoint(h.url, { url: rx.url, channels: ['jobs'] });
    await publish(h.url, { channel: 'jobs', data: 1 });
    const dead = await waitFor(async () => {
      const l = await getJson(`${h.url}/v1/endpoints/${ep.id}/deliveries?status=dead`);
      return l.json.deliveries[0];
    });
    assert.equal(dead.attemptCount, 4, 'one attempt per entry of the schedule');
    assert.equal(rx.requests.length, 4);
    rx.handle(() => ({ status: 200 }));
    const r = await postJson(`${h.url}/v1/deliveries/${dead.id}/retry`, '');
    assert.equal(r.status, 202);
    await waitFor(async () => (await getJson(`${h.url}/v1/deliveries/${dead.id}`)).json.status === 'delivered');
    assert.equal(new Set(rx.requests.map((x) => x.headers['webhook-id'])).size, 1);
  });
  test('a node with outbound.send off plans deliveries and sends none; a sending node of the same log delivers them', async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'herald-send-off-'));
    const quiet = await startInProcess({ outbound: { ...fast, send: false } }, { dataDir });
    const rx = await receiver();
    const ep = await endpoint(quiet.url, { url: rx.url, channels: ['orders'] });
    const pub = await publish(quiet.url, [{ channel: 'orders', data: 'one' }, { channel: 'orders', data: 'two' }]);
    assert.equal(pub.status, 201);
    const pending = async () =>
      (await getJson(`${quiet.url}/v1/endpoints/${ep.id}/deliveries?status=pending`)).json.deliveries as unknown[];
    await waitFor(async () => (await pending()).length === 2, 5_000, 'both deliveries planned');
    // A sending node sends a due delivery at once (the fast path) or on the next sweep (50 ms);
    // twenty sweeps later this one has still sent nothing.
    await new Promise((r) => setTimeout(r, 20 * fast.sweepIntervalSeconds * 1000));
    assert.equal(rx.requests.length, 0, 'nothing sent by a node with outbound.send off');
    assert.equal((await pending()).length, 2);
    await quiet.close();
    const sender = await startInProcess({ outbound: fast }, { dataDir });
    t.after(() => sender.close());
    await waitFor(() => rx.requests.length === 2, 10_000, 'both deliveries sent by the sending node');
    assert.deepEqual(
      (rx.verifyAll(ep.secret) as Record<string, unknown>[]).map((p) => p.data),
      ['one', 'two'],
    );
  });
});
