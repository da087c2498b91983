import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openEventSource } from '../helpers/clients.js';
import { startInProcess, waitFor } from '../helpers/herald.js';

/** The routes of the example server Herald grew from, word for word. */
describe('seed routes', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  before(async () => {
    h = await startInProcess();
  });
  after(() => h.close());

  test('GET /sse/send publishes "New Order received at <RFC3339>" to /sse and answers Message broadcasted', async (t) => {
    const es = openEventSource(`${h.url}/sse`);
    t.after(() => es.close());
    await waitFor(() => es.opens > 0);
    const res = await fetch(`${h.url}/sse/send`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'Message broadcasted');
    await es.until(1);
    assert.match(es.messages[0]!.data, /^New Order received at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);
    const stamp = es.messages[0]!.data.slice('New Order received at '.length);
    assert.ok(Math.abs(Date.parse(stamp) - Date.now()) < 60_000);
  });

  test('POST /webhook publishes the accepted JSON to the default feed', async (t) => {
    const es = openEventSource(`${h.url}/sse`);
    t.after(() => es.close());
    await waitFor(() => es.opens > 0);
    const body = { event: 'order.created', data: { id: 7, total: 12.5 } };
    // the seed accepted JSON whatever the content type said
    const res = await fetch(`${h.url}/webhook`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'text/plain' } });
    assert.equal(res.status, 200);
    await es.until(1);
    assert.deepEqual(JSON.parse(es.messages[0]!.data), body);
    const history = (await fetch(`${h.url}/v1/events?channel=feed&limit=1000`).then((r) => r.json())) as any;
    const stored = history.events.find((e: any) => e.id === es.messages[0]!.lastEventId);
    assert.equal(stored.type, 'order.created');
    assert.deepEqual(stored.data, body);
  });

  test('/webhook answers 405 to other methods and 400 to invalid JSON', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      const res = await fetch(`${h.url}/webhook`, { method });
      assert.equal(res.status, 405, method);
      assert.equal(((await res.json()) as any).error.code, 'METHOD_NOT_ALLOWED');
      assert.equal(res.headers.get('allow'), 'POST');
    }
    for (const body of ['{not json', '']) {
      const res = await fetch(`${h.url}/webhook`, { method: 'POST', body });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as any).error.code, 'JSON_INVALID');
    }
  });

  test('the client pages are served, and streams answer other origins (CORS)', async () => {
    for (const page of ['/client/sse.html', '/client/websocket.html']) {
      const res = await fetch(h.url + page);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /text\/html/);
      assert.match(await res.text(), /appendChild/);
    }
    const ctrl = new AbortController();
    const res = await fetch(`${h.url}/sse`, { headers: { origin: 'http://elsewhere.example' }, signal: ctrl.signal });
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    ctrl.abort();
  });
});

describe('publish API', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  const post = (body: unknown) =>
    fetch(`${h.url}/v1/publish`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  before(async () => {
    h = await startInProcess();
  });
  after(() => h.close());

  test('a batch is stored atomically and answers 201 with ids in order', async () => {
    const res = await post([{ channel: 'b', data: 1 }, { channel: 'b', data: 'two', type: 't' }, { channel: 'c', data: null }]);
    assert.equal(res.status, 201);
    const { ids } = (await res.json()) as { ids: string[] };
    assert.equal(ids.length, 3);
    assert.deepEqual(ids.map(Number), [...ids.map(Number)].sort((a, b) => a - b));
    const events = ((await fetch(`${h.url}/v1/events?channel=b&channel=c`).then((r) => r.json())) as any).events;
    assert.deepEqual(events.map((e: any) => [e.id, e.channel, e.type, e.data]), [
      [ids[0], 'b', 'message', 1],
      [ids[1], 'b', 't', 'two'],
      [ids[2], 'c', 'message', null],
    ]);
  });

  test('a repeated idempotency key returns the first id and stores nothing new', async () => {
    const a = await post({ channel: 'idem', data: 'first', idempotencyKey: 'order-42-paid' });
    const b = await post({ channel: 'idem', data: 'second', idempotencyKey: 'order-42-paid' });
    assert.equal(a.status, 201);
    assert.equal(b.status, 201);
    const first = (await a.json()) as { id: string };
    assert.deepEqual(await b.json(), first);
    assert.equal(b.headers.get('idempotent-replayed'), 'true');
    const events = ((await fetch(`${h.url}/v1/events?channel=idem`).then((r) => r.json())) as any).events;
    assert.deepEqual(events.map((e: any) => e.data), ['first']);
  });

  test('history pages by position and limit', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(((await (await post({ channel: 'page', data: i })).json()) as any).id);
    const page = ((await fetch(`${h.url}/v1/events?channel=page&after=${ids[1]}&limit=2`).then((r) => r.json())) as any).events;
    assert.deepEqual(page.map((e: any) => e.id), [ids[2], ids[3]]);
  });

  test('health, readiness and Prometheus metrics', async () => {
    assert.deepEqual(await fetch(`${h.url}/healthz`).then((r) => r.json()), { status: 'ok' });
    assert.deepEqual(await fetch(`${h.url}/readyz`).then((r) => r.json()), { status: 'ready', checks: { broker: 'up' } });
    const es = openEventSource(`${h.url}/v1/stream?channel=m`);
    await waitFor(() => es.opens > 0);
    await post({ channel: 'm', data: 1 });
    await es.until(1);
    const text = await fetch(`${h.url}/metrics`).then((r) => r.text());
    es.close();
    assert.match(text, /herald_connections\{transport="sse"\} 1/);
    assert.match(text, /herald_events_published_total \d+/);
    assert.match(text, /herald_events_delivered_total [1-9]\d*/);
    assert.match(text, /herald_publish_duration_seconds_bucket/);
  });
});

test('retention prunes old events in the background', async (t) => {
  const h = await startInProcess({ retention: { maxEvents: 3, pruneIntervalSeconds: 0.05 } });
  t.after(() => h.close());
  for (let i = 0; i < 10; i++) {
    await fetch(`${h.url}/v1/publish`, { method: 'POST', body: JSON.stringify({ channel: 'r', data: i }) });
  }
  await waitFor(async () => {
    const events = ((await fetch(`${h.url}/v1/events?channel=r`).then((r) => r.json())) as any).events;
    return events.length === 3 && events[0].data === 7;
  }, 5_000, 'the pruner to keep only the newest 3 events');
});
