import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { openEventSource } from '../helpers/clients.js';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';

describe('SSE: /v1/stream with the eventsource package', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  const publish = (body: unknown) => postJson(`${h.url}/v1/publish`, body);

  before(async () => {
    h = await startInProcess({ store: { type: 'sqlite' }, sse: { retryMs: 200 } });
  });
  after(() => h.close());

  test('sends id, event type and data; a string arrives as its text, a value as its JSON text', async () => {
    const es = openEventSource(`${h.url}/v1/stream?channel=shop.orders`, ['message', 'order.paid']);
    await waitFor(() => es.opens > 0);
    const a = await publish({ channel: 'shop.orders', type: 'order.paid', data: { orderId: 42, total: '19.90' } });
    const b = await publish({ channel: 'shop.orders', data: 'plain text' });
    assert.equal(a.status, 201);
    await es.until(2);
    assert.deepEqual(es.messages, [
      { type: 'order.paid', data: '{"orderId":42,"total":"19.90"}', lastEventId: a.json.id },
      { type: 'message', data: 'plain text', lastEventId: b.json.id },
    ]);
    es.close();
  });

  test('?format=json sends each event whole (channel, type, data, time) as data; a string stays a string', async () => {
    const es = openEventSource(`${h.url}/v1/stream?channel=fmt.*&format=json`, ['message', 'order.paid']);
    await waitFor(() => es.opens > 0);
    const a = await publish({ channel: 'fmt.eu', type: 'order.paid', data: { orderId: 7 } });
    const b = await publish({ channel: 'fmt.us', data: 'line one\nline two' });
    await es.until(2);
    assert.equal(es.messages[0]!.type, 'order.paid');
    assert.equal(es.messages[0]!.lastEventId, a.json.id);
    const first = JSON.parse(es.messages[0]!.data);
    assert.deepEqual({ ...first, time: undefined }, { id: a.json.id, channel: 'fmt.eu', type: 'order.paid', data: { orderId: 7 }, time: undefined });
    assert.ok(!Number.isNaN(Date.parse(first.time)));
    const second = JSON.parse(es.messages[1]!.data);
    assert.equal(second.channel, 'fmt.us');
    assert.equal(second.data, 'line one\nline two');
    assert.equal(second.id, b.json.id);
    es.close();
    const bad = await fetch(`${h.url}/v1/stream?channel=fmt.eu&format=xml`);
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'BAD_REQUEST');
  });

  test('multi-line text is split into data lines and comes back exactly', async () => {
    const es = openEventSource(`${h.url}/v1/stream?channel=lines`);
    await waitFor(() => es.opens > 0);
    const text = 'first line\nsecond line\n\n  indented fourth\ndata: not a field';
    await publish({ channel: 'lines', data: text });
    await es.until(1);
    assert.equal(es.messages[0]!.data, text);
    es.close();
  });

  test('answers with the SSE headers, a retry hint and no proxy buffering', async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${h.url}/v1/stream?channel=hdr`, { signal: ctrl.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    assert.equal(res.headers.get('x-accel-buffering'), 'no');
    assert.match(res.headers.get('cache-control')!, /no-cache/);
    const reader = res.body!.getReader();
    const { value } = await reader.read();
    assert.match(Buffer.from(value!).toString(), /^retry: 200\n/);
    ctrl.abort();
  });

  test('resumes across two channels after a forced disconnect: no gap, no duplicate', async (t) => {
    const streamSockets: Socket[] = [];
    h.herald.app.server.on('request', (req: IncomingMessage) => {
      if (req.url?.startsWith('/v1/stream')) streamSockets.push(req.socket);
    });
    const es = openEventSource(`${h.url}/v1/stream?channel=room.a&channel=feed.*`);
    t.after(() => es.close());
    await waitFor(() => es.opens > 0);
    const ids: string[] = [];
    const send = async (channel: string, n: number) => {
      for (let i = 0; i < n; i++) ids.push((await publish({ channel, data: `${channel} ${i}` })).json.id);
    };
    await send('room.a', 3);
    await send('feed.x', 3);
    await es.until(6);
    // Cut every connection from the server side; the client reconnects after `retry` with
    // Last-Event-ID. Events published meanwhile, on both channels, must all arrive once.
    for (const socket of streamSockets) socket.destroy();
    await send('feed.y', 4);
    await send('room.a', 4);
    await waitFor(() => es.opens >= 2, 5_000, 'the reconnect');
    await send('room.a', 2);
    await send('feed.z', 2);
    await es.until(ids.length);
    await new Promise((r) => setTimeout(r, 100)); // would expose a late duplicate
    assert.deepEqual(es.messages.map((m) => m.lastEventId), ids);
    es.close();
  });

  test('starts from ?lastEventId on first connect, and the Last-Event-ID header wins over it', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await publish({ channel: 'resume.q', data: i })).json.id);
    const fromQuery = openEventSource(`${h.url}/v1/stream?channel=resume.q&lastEventId=${ids[1]}`);
    await fromQuery.until(3);
    assert.deepEqual(fromQuery.messages.map((m) => m.data), ['2', '3', '4']);
    fromQuery.close();
    const headerWins = openEventSource(`${h.url}/v1/stream?channel=resume.q&lastEventId=${ids[0]}`, ['message'], {
      'last-event-id': ids[3]!,
    });
    await headerWins.until(1);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(headerWins.messages.map((m) => m.data), ['4']);
    headerWins.close();
  });

  test('a position the log no longer holds gets an explicit reset event, then live events', async () => {
    const first = (await publish({ channel: 'pruned', data: 'old' })).json.id;
    for (let i = 0; i < 3; i++) await publish({ channel: 'pruned', data: i });
    await h.herald.backend.log.prune({ maxAgeMs: 0, maxEvents: 1, idempotencyTtlMs: 86_400_000 }, Date.now());
    const es = openEventSource(`${h.url}/v1/stream?channel=pruned&lastEventId=${first}`, ['message', 'herald.reset']);
    await es.until(1);
    const reset = es.messages[0]!;
    assert.equal(reset.type, 'herald.reset');
    assert.equal(JSON.parse(reset.data).reason, 'position_pruned');
    const live = await publish({ channel: 'pruned', data: 'after reset' });
    await es.until(2);
    assert.deepEqual(es.messages[1], { type: 'message', data: 'after reset', lastEventId: live.json.id });
    es.close();
  });

  test('rejects invalid channels and positions with a clear code', async () => {
    for (const q of ['', 'channel=a..b', 'channel=bad%20name', 'channel=a.>.b', 'channel=a&lastEventId=xyz']) {
      const res = await fetch(`${h.url}/v1/stream?${q}`);
      assert.equal(res.status, 400, q);
      const body = (await res.json()) as { error: { code: string } };
      assert.match(body.error.code, /CHANNEL_INVALID|POSITION_INVALID/, q);
    }
  });
});
