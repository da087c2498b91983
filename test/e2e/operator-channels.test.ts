import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openWsWith } from '../helpers/auth-clients.js';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';

// The operator APIs the admin console stands on: channels with their subscribers and rates,
// disconnecting one connection, the list of inbound sources, and the bulk retry of an
// endpoint's dead deliveries. All are admin only.

const ADMIN = 'console-test-admin-key-0001';
const READER = 'console-test-reader-key-0001';
const admin = { authorization: `Bearer ${ADMIN}` };
const reader = { authorization: `Bearer ${READER}` };

let h: Awaited<ReturnType<typeof startInProcess>>;
let rx: Receiver;
before(async () => {
  rx = await startReceiver();
  h = await startInProcess({
    auth: {
      apiKeys: [
        { key: ADMIN, name: 'ops', scopes: ['admin'] },
        { key: READER, name: 'dashboard', scopes: ['subscribe:orders.>', 'publish:orders.>'] },
      ],
    },
    sources: { shop: { provider: 'hmac', secret: 'console-test-hmac-secret', channel: 'shop.{type}' } },
    outbound: { allowPrivateTargets: true, retryScheduleSeconds: [0], retryJitter: 0, sweepIntervalSeconds: 0.05 },
  });
});
after(async () => {
  await h.close();
  await rx.close();
});

async function get(path: string, headers: Record<string, string> = admin) {
  const res = await fetch(`${h.url}${path}`, { headers });
  return { status: res.status, json: (await res.json()) as any };
}

/** An SSE stream read with fetch (the way the SDK reads one), with the bytes it got so far. */
async function stream(channel: string, headers: Record<string, string>) {
  const abort = new AbortController();
  const res = await fetch(`${h.url}/v1/stream?channel=${encodeURIComponent(channel)}`, { headers, signal: abort.signal });
  assert.equal(res.status, 200);
  const state = { text: '', ended: false };
  void (async () => {
    const reader = res.body!.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        state.text += Buffer.from(value).toString();
      }
    } catch {
      /* aborted */
    }
    state.ended = true;
  })();
  return { state, close: () => abort.abort() };
}

describe('operator channel APIs', () => {
  test('lists channels with subscriber counts and event rates, and a channel’s subscribers with who, how and since when', async () => {
    const sse = await stream('orders.eu', reader);
    const ws = await openWsWith(`${h.url.replace('http', 'ws')}/v1/ws`, admin);
    try {
      assert.equal((await ws.request({ op: 'subscribe', channel: 'orders.>' })).op, 'ack');
      for (let i = 0; i < 3; i++) assert.equal((await postJson(`${h.url}/v1/publish`, { channel: 'orders.eu', data: { i } }, reader)).status, 201);

      const list = (await waitFor(async () => {
        const r = await get('/v1/channels');
        const row = r.json.channels.find((c: any) => c.channel === 'orders.eu');
        return row?.events === 3 ? r : undefined;
      }, 5_000, 'three events counted on orders.eu'))!;
      assert.equal(list.status, 200);
      const eu = list.json.channels.find((c: any) => c.channel === 'orders.eu');
      assert.equal(eu.subscribers, 2, 'the SSE stream on the name and the socket on orders.>');
      assert.equal(eu.pattern, false);
      assert.ok(eu.eventsPerSecond > 0);
      assert.ok(Date.parse(eu.lastEventAt) > 0);
      const wildcard = list.json.channels.find((c: any) => c.channel === 'orders.>');
      assert.deepEqual([wildcard.pattern, wildcard.subscribers], [true, 1]);
      assert.equal(list.json.connections, 2);

      const subs = await get('/v1/channels/orders.eu/subscribers');
      assert.equal(subs.status, 200);
      const byTransport = Object.fromEntries(subs.json.subscribers.map((s: any) => [s.transport, s]));
      assert.equal(byTransport.sse.identity, 'key:dashboard');
      assert.equal(byTransport.ws.identity, 'key:ops');
      assert.deepEqual(byTransport.ws.patterns, ['orders.>']);
      for (const s of subs.json.subscribers) {
        assert.equal(s.address, '127.0.0.1');
        assert.match(s.id, /^conn_[0-9a-f]{16}$/);
        assert.ok(Date.now() - Date.parse(s.connectedAt) < 60_000);
      }
      // A pattern lists the connections subscribed to exactly it.
      const pattern = await get(`/v1/channels/${encodeURIComponent('orders.>')}/subscribers`);
      assert.deepEqual(pattern.json.subscribers.map((s: any) => s.transport), ['ws']);
    } finally {
      sse.close();
      ws.close();
    }
  });

  test('disconnects one connection and leaves the others; an unknown id is CONNECTION_NOT_FOUND', async () => {
    const a = await stream('orders.us', reader);
    const b = await stream('orders.us', reader);
    try {
      const subs = await waitFor(async () => {
        const r = await get('/v1/channels/orders.us/subscribers');
        return r.json.subscribers.length === 2 ? r.json.subscribers : undefined;
      }, 5_000, 'two subscribers');
      const del = await fetch(`${h.url}/v1/connections/${subs[0].id}`, { method: 'DELETE', headers: admin });
      assert.equal(del.status, 204);
      await waitFor(() => a.state.ended || b.state.ended, 5_000, 'one stream to end');
      const left = await get('/v1/channels/orders.us/subscribers');
      assert.deepEqual(left.json.subscribers.map((s: any) => s.id), [subs[1].id]);
      assert.equal(a.state.ended && b.state.ended, false, 'the other stream stays open');

      const again = await fetch(`${h.url}/v1/connections/${subs[0].id}`, { method: 'DELETE', headers: admin });
      assert.equal(again.status, 404);
      assert.equal(((await again.json()) as any).error.code, 'CONNECTION_NOT_FOUND');
    } finally {
      a.close();
      b.close();
    }
  });

  test('refuses bad channel names with CHANNEL_INVALID and bad limits with LIMIT_INVALID', async () => {
    for (const bad of ['orders..eu', 'a.>.b', 'with space']) {
      const r = await get(`/v1/channels/${encodeURIComponent(bad)}/subscribers`);
      assert.equal(r.status, 400, bad);
      assert.equal(r.json.error.code, 'CHANNEL_INVALID', bad);
    }
    for (const bad of ['0', '-1', 'x', '501']) {
      const r = await get(`/v1/channels?limit=${bad}`);
      assert.equal(r.status, 400, bad);
      assert.equal(r.json.error.code, 'LIMIT_INVALID', bad);
    }
  });

  test('are admin only: no key is 401, a key without the admin scope is 403', async () => {
    const routes: [string, string][] = [
      ['GET', '/v1/channels'],
      ['GET', '/v1/channels/orders.eu/subscribers'],
      ['DELETE', '/v1/connections/conn_0000000000000000'],
      ['GET', '/v1/webhooks'],
      ['POST', '/v1/endpoints/ep_unknown/retry-dead'],
    ];
    for (const [method, path] of routes) {
      const none = await fetch(`${h.url}${path}`, { method });
      assert.equal(none.status, 401, `${method} ${path} without a key`);
      const weak = await fetch(`${h.url}${path}`, { method, headers: reader });
      assert.equal(weak.status, 403, `${method} ${path} with a subscribe/publish key`);
      assert.equal(((await weak.json()) as any).error.code, 'FORBIDDEN');
    }
  });
});

describe('operator inbound and outbound additions', () => {
  test('GET /v1/webhooks lists the configured sources without their secrets', async () => {
    const r = await get('/v1/webhooks');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { sources: [{ name: 'shop', provider: 'hmac', channel: 'shop.{type}', path: '/v1/webhooks/shop' }] });
    assert.doesNotMatch(JSON.stringify(r.json), /console-test-hmac-secret/);
  });

  test('retry-dead sends every dead delivery of an endpoint again, and they reach the receiver', async () => {
    let failing = true;
    rx.handle(() => (failing ? { status: 500, body: 'down for maintenance' } : { status: 200, body: 'ok' }));
    const ep = await postJson(`${h.url}/v1/endpoints`, { url: rx.url, channels: ['orders.dead'] }, admin);
    assert.equal(ep.status, 201, ep.text);
    for (let i = 0; i < 3; i++) await postJson(`${h.url}/v1/publish`, { channel: 'orders.dead', data: { i } }, admin);
    await waitFor(async () => (await get(`/v1/endpoints/${ep.json.id}/deliveries?status=dead`)).json.deliveries.length === 3, 10_000, 'three dead deliveries');
    const dead = await get(`/v1/endpoints/${ep.json.id}/deliveries?status=dead`);
    assert.equal(dead.json.deliveries[0].attempts[0].responseBody, 'down for maintenance');

    failing = false;
    const before = rx.requests.length;
    const r = await postJson(`${h.url}/v1/endpoints/${ep.json.id}/retry-dead`, '', admin);
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(r.json, { retried: 3, more: false });
    await waitFor(async () => (await get(`/v1/endpoints/${ep.json.id}/deliveries?status=delivered`)).json.deliveries.length === 3, 10_000, 'three delivered');
    const bodies = rx.requests.slice(before).map((q) => JSON.parse(q.body).data.i).sort();
    assert.deepEqual(bodies, [0, 1, 2]);

    const none = await postJson(`${h.url}/v1/endpoints/${ep.json.id}/retry-dead`, '', admin);
    assert.deepEqual(none.json, { retried: 0, more: false });
    const unknown = await postJson(`${h.url}/v1/endpoints/ep_nope/retry-dead`, '', admin);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.code, 'ENDPOINT_NOT_FOUND');
  });

  test('/console is served with a policy that runs only its own script', async () => {
    const res = await fetch(`${h.url}/console`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /text\/html/);
    assert.match(res.headers.get('content-security-policy')!, /script-src 'self'/);
    assert.match(await res.text(), /<script type="module" src="\/console\/console.js">/);
    const js = await fetch(`${h.url}/console/console.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type')!, /javascript/);
  });
});
