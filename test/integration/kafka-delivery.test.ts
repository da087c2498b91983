import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openEventSource, openWs } from '../helpers/clients.js';
import { seqOfId, startInProcess, waitFor } from '../helpers/herald.js';
import { committedOffsets, createTopics, groupMembers, needKafka, testProducer, unique, type TestRecord } from '../helpers/kafka.js';
import { FAST_GROUP } from './kafka-helpers.js';


async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

describe('Kafka in: records become channel events', () => {
  test('two topics with keys and headers reach SSE and WebSocket subscribers on their mapped channels, in partition order', async (t) => {
    const brokers = await needKafka(t);
    if (!brokers) return;
    const orders = unique('orders');
    const users = unique('users');
    await createTopics(brokers, [orders, users], 3);
    const groupId = unique('herald-delivery');
    const h = await startInProcess({
      kafka: {
        brokers,
        groupId,
        ...FAST_GROUP,
        topics: [
          { topic: orders, channel: 'orders.{key}', type: '{header.event-type}', fromBeginning: true },
          { topic: users, channel: 'users.{value.region}', type: 'user.{header.action}', fromBeginning: true },
        ],
      },
    });
    t.after(() => h.close());
    await waitFor(async () => (await fetch(`${h.url}/readyz`)).status === 200, 30_000, 'the consumer to join its group');
    const ready = (await (await fetch(`${h.url}/readyz`)).json()) as { checks: { kafka: string } };
    assert.equal(ready.checks.kafka, 'consuming');

    // SSE for two of the order keys (an SSE frame carries no channel: what arrives proves the
    // mapping), WebSocket for every region.
    const sse = openEventSource(`${h.url}/v1/stream?channel=orders.k0&channel=orders.k1`, ['order.created', 'order.paid']);
    t.after(() => sse.close());
    await waitFor(() => sse.opens > 0, 5_000, 'the SSE stream to open');
    const ws = await openWs(h.url.replace('http', 'ws') + '/v1/ws');
    t.after(() => ws.close());
    ws.send({ op: 'subscribe', channel: 'users.*', ref: 'u' });
    await ws.next((f) => f.op === 'ack' && f.ref === 'u');

    const producer = testProducer(brokers);
    t.after(() => producer.close());
    const records: TestRecord[] = [];
    for (let seq = 0; seq < 40; seq++) {
      const key = `k${seq % 4}`;
      records.push({
        topic: orders,
        key,
        value: JSON.stringify({ key, seq, total: '19.90' }),
        headers: { 'event-type': seq % 2 === 0 ? 'order.created' : 'order.paid' },
      });
      const region = seq % 3 === 0 ? 'eu' : 'us';
      records.push({
        topic: users,
        key: `user-${seq % 5}`,
        value: JSON.stringify({ region, seq, user: `user-${seq % 5}` }),
        headers: { action: seq % 2 === 0 ? 'created' : 'updated' },
      });
    }
    // Produced in several sends, so the records spread over many fetches and batches.
    for (let i = 0; i < records.length; i += 16) await producer.send(records.slice(i, i + 16));

    // SSE: exactly the k0 and k1 orders, each key's records in produce order, typed by header.
    await sse.until(20, 20_000);
    const got = sse.messages.map((m) => ({ type: m.type, ...(JSON.parse(m.data) as { key: string; seq: number }) }));
    assert.deepEqual(new Set(got.map((g) => g.key)), new Set(['k0', 'k1']));
    for (const key of ['k0', 'k1']) {
      const seqs = got.filter((g) => g.key === key).map((g) => g.seq);
      assert.deepEqual(seqs, Array.from({ length: 10 }, (_, i) => i * 4 + Number(key[1])), `order of ${key}`);
    }
    for (const g of got) assert.equal(g.type, g.seq % 2 === 0 ? 'order.created' : 'order.paid');
    const ids = sse.messages.map((m) => seqOfId(m.lastEventId));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'SSE ids follow the log');

    // WebSocket: every user record on users.<region>, each user's records in produce order
    // (one key, one partition), JSON kept as JSON.
    await waitFor(() => ws.events().length >= 40, 20_000, '40 WebSocket events');
    const evs = ws.events();
    assert.equal(evs.length, 40);
    for (const e of evs) {
      assert.equal(e.channel, `users.${e.data.region}`);
      assert.equal(e.type, e.data.seq % 2 === 0 ? 'user.created' : 'user.updated');
    }
    for (let u = 0; u < 5; u++) {
      const seqs = evs.filter((e) => e.data.user === `user-${u}`).map((e) => e.data.seq as number);
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), `order of user-${u}`);
      assert.equal(seqs.length, 8);
    }

    // Lag per partition reaches 0 once everything is in the log.
    await waitFor(
      async () => {
        const text = await metricsText(h.url);
        const lines = text.split('\n').filter((l) => l.startsWith('herald_kafka_consumer_lag{'));
        return lines.length === 6 && lines.every((l) => l.endsWith(' 0'));
      },
      15_000,
      'lag 0 on all six partitions',
    );
    const text = await metricsText(h.url);
    assert.match(text, new RegExp(`herald_kafka_records_total\\{topic="${orders}",outcome="stored"\\} 40`));
    assert.match(text, /herald_kafka_consumer_state\{state="consuming"\} 1/);

    // Graceful shutdown: what is stored is committed, and the member leaves the group at once.
    await h.close();
    const committed = await committedOffsets(brokers, groupId, orders);
    const total = [...committed.values()].reduce((a, b) => a + b, 0n);
    assert.equal(total, 40n, 'committed offsets cover every stored order record');
    assert.equal(await groupMembers(brokers, groupId), 0, 'the group is empty after close');
  });

  test('plain text, tombstones and JSON text are delivered as the value was written', async (t) => {
    const brokers = await needKafka(t);
    if (!brokers) return;
    const topic = unique('values');
    await createTopics(brokers, [topic], 1);
    const h = await startInProcess({
      kafka: { brokers, groupId: unique('herald-values'), ...FAST_GROUP, topics: [{ topic, channel: 'values', fromBeginning: true }] },
    });
    t.after(() => h.close());
    const producer = testProducer(brokers);
    t.after(() => producer.close());
    await producer.send([
      { topic, value: '  {"n": 12345678901234567890, "s": "é"}\n' },
      { topic, value: 'line one\nline two' },
      { topic, value: null },
      { topic, value: '"a JSON string"' },
    ]);
    const page = await waitFor(
      async () => {
        const r = (await (await fetch(`${h.url}/v1/events?channel=values&after=0`)).json()) as { events: { data: unknown }[] };
        return r.events.length === 4 ? r.events : undefined;
      },
      20_000,
      'four events',
    );
    assert.deepEqual(
      page!.map((e) => e.data),
      [{ n: 12345678901234567890, s: 'é' }, 'line one\nline two', null, 'a JSON string'],
    );
    // The JSON text is kept as written (no float rounding on the way out).
    const ws = await openWs(h.url.replace('http', 'ws') + '/v1/ws');
    t.after(() => ws.close());
    ws.send({ op: 'subscribe', channel: 'values', since: '0', ref: 1 });
    await waitFor(() => ws.events().length === 4, 5_000, 'four replayed events');
    assert.match(ws.texts.find((x) => x.includes('"n"'))!, /"data":\{"n": 12345678901234567890, "s": "é"\}/);
  });
});
