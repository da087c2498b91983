import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { openWs, type Frame } from '../helpers/clients.js';
import { postJson, startInProcess, waitFor } from '../helpers/herald.js';

describe('WebSocket: /v1/ws JSON protocol with the ws package', () => {
  let h: Awaited<ReturnType<typeof startInProcess>>;
  let wsUrl: string;
  const publish = (body: unknown) => postJson(`${h.url}/v1/publish`, body);

  before(async () => {
    h = await startInProcess({ websocket: { clientPublish: ['chat.>'] }, limits: { subscriptionsPerConnection: 3 } });
    wsUrl = h.url.replace('http', 'ws') + '/v1/ws';
  });
  after(() => h.close());

  test('subscribe is acked with the ref, then events arrive with id, channel, type, data, time', async (t) => {
    const c = await openWs(wsUrl);
    t.after(() => c.close());
    c.send({ op: 'subscribe', channel: 'orders.*', ref: 'r1' });
    assert.deepEqual(await c.next((f) => f.op === 'ack'), { op: 'ack', channel: 'orders.*', ref: 'r1' });
    const obj = await publish({ channel: 'orders.eu', type: 'order.paid', data: { total: '19.90' } });
    const str = await publish({ channel: 'orders.us', data: 'a string stays a string' });
    await waitFor(() => c.events().length === 2);
    const [e1, e2] = c.events() as [Frame, Frame];
    assert.equal(e1!.id, obj.json.id);
    assert.equal(e1!.channel, 'orders.eu');
    assert.equal(e1!.type, 'order.paid');
    assert.deepEqual(e1!.data, { total: '19.90' });
    assert.ok(!Number.isNaN(Date.parse(e1!.time)));
    assert.equal(e2!.id, str.json.id);
    assert.equal(e2!.data, 'a string stays a string');
    assert.equal(e2!.type, 'message');
  });

  test('since resumes after a position; unsubscribe stops delivery and is acked', async (t) => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await publish({ channel: 'resume.ws', data: i })).json.id);
    const c = await openWs(wsUrl);
    t.after(() => c.close());
    c.send({ op: 'subscribe', channel: 'resume.ws', since: ids[1], ref: 1 });
    await waitFor(() => c.events().length === 2);
    assert.deepEqual(c.events().map((e) => e.data), [2, 3]);
    // the ack came before the replayed events
    assert.equal(c.frames[0]?.op, 'ack');
    c.send({ op: 'unsubscribe', channel: 'resume.ws', ref: 2 });
    await c.next((f) => f.op === 'ack' && f.ref === 2);
    await publish({ channel: 'resume.ws', data: 'after unsubscribe' });
    c.send({ op: 'subscribe', channel: 'marker', ref: 3 });
    await c.next((f) => f.ref === 3);
    await publish({ channel: 'marker', data: 'm' });
    await waitFor(() => c.events().some((e) => e.channel === 'marker'));
    assert.deepEqual(c.events().map((e) => e.data), [2, 3, 'm']);
  });

  test('clients publish only where websocket.clientPublish allows, and get the stored id', async (t) => {
    const c = await openWs(wsUrl);
    t.after(() => c.close());
    c.send({ op: 'subscribe', channel: 'chat.room-1', ref: 's' });
    await c.next((f) => f.ref === 's');
    c.send({ op: 'publish', channel: 'chat.room-1', data: { text: 'hi' }, ref: 'p1' });
    const ack = await c.next((f) => f.ref === 'p1');
    assert.equal(ack.op, 'ack');
    assert.match(ack.id, /^[0-9a-z]+-\d+$/);
    const ev = await c.next((f) => f.op === 'event');
    assert.equal(ev.id, ack.id);
    c.send({ op: 'publish', channel: 'orders', data: 1, ref: 'p2' });
    const err = await c.next((f) => f.ref === 'p2');
    assert.equal(err.op, 'error');
    assert.equal(err.code, 'PUBLISH_FORBIDDEN');
    const history = await fetch(`${h.url}/v1/events?channel=orders&limit=1000`).then((r) => r.json() as any);
    assert.ok(!history.events.some((e: any) => e.data === 1 && e.channel === 'orders'));
  });

  test('limits subscriptions per connection and refuses a duplicate subscription', async (t) => {
    const c = await openWs(wsUrl);
    t.after(() => c.close());
    for (const [i, ch] of ['a1', 'a2', 'a3'].entries()) c.send({ op: 'subscribe', channel: ch, ref: i });
    await waitFor(() => c.frames.length === 3);
    c.send({ op: 'subscribe', channel: 'a4', ref: 'x' });
    assert.equal((await c.next((f) => f.ref === 'x')).code, 'TOO_MANY_SUBSCRIPTIONS');
    c.send({ op: 'subscribe', channel: 'a1', ref: 'y' });
    assert.equal((await c.next((f) => f.ref === 'y')).code, 'ALREADY_SUBSCRIBED');
    c.send({ op: 'unsubscribe', channel: 'nope', ref: 'z' });
    assert.equal((await c.next((f) => f.ref === 'z')).code, 'NOT_SUBSCRIBED');
  });

  test('a position the log no longer holds gets a reset frame', async (t) => {
    const c = await openWs(wsUrl);
    t.after(() => c.close());
    c.send({ op: 'subscribe', channel: 'gone', since: '999999', ref: 'g' });
    const reset = await c.next((f) => f.op === 'reset');
    assert.equal(reset.channel, 'gone');
    assert.equal(reset.reason, 'position_unknown');
  });

  test('seed /ws receives broadcasts as plain text; /ws/send answers Message broadcasted', async (t) => {
    const c = await openWs(h.url.replace('http', 'ws') + '/ws');
    t.after(() => c.close());
    await waitFor(() => h.herald.metrics.connectionCount('ws_compat') > 0);
    await new Promise((r) => setTimeout(r, 20));
    const res = await fetch(`${h.url}/ws/send`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'Message broadcasted');
    await waitFor(() => c.texts.length === 1);
    assert.deepEqual(c.texts, ['🔔 New message at server!']);
  });
});
