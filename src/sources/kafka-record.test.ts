import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildConfig } from '../config/load.js';
import { mapRecord, rejectionInput, type KafkaRecord, type TopicMapping } from './kafka-record.js';
import { RecordTemplate } from '../config/kafka-template.js';

const mapping = (channel: string, type?: string): TopicMapping => ({
  topic: 'orders',
  channel: new RecordTemplate(channel),
  type: type === undefined ? undefined : new RecordTemplate(type),
});

const record = (over: Partial<KafkaRecord> = {}): KafkaRecord => ({
  topic: 'orders',
  partition: 2,
  offset: 41,
  timestamp: 1_700_000_000_000,
  key: Buffer.from('eu'),
  value: Buffer.from('{"id":7,"user":{"id":"u-1"},"items":[{"sku":"A-1"}],"paid":true}'),
  headers: new Map([[Buffer.from('event-type'), Buffer.from('order.paid')]]),
  ...over,
});

describe('Kafka records become events', () => {
  test('fills {topic}, {key}, {header.NAME} and {value.path} and keeps the stream position', () => {
    const m = mapRecord(mapping('{topic}.{key}.{value.user.id}.{value.items.0.sku}', '{header.event-type}'), record());
    assert.ok(m.ok);
    assert.equal(m.input.channel, 'orders.eu.u-1.A-1');
    assert.equal(m.input.type, 'order.paid');
    assert.deepEqual(m.input.origin, { stream: 'kafka/orders/2', offset: 41 });
    assert.equal(m.input.data, '{"id":7,"user":{"id":"u-1"},"items":[{"sku":"A-1"}],"paid":true}');
  });

  test('numbers and booleans fill a template; the last of repeated headers wins', () => {
    const headers = new Map([
      [Buffer.from('v'), Buffer.from('one')],
      [Buffer.from('v'), Buffer.from('two')],
    ]);
    const m = mapRecord(mapping('o.{value.id}.{value.paid}', 'type-{header.v}'), record({ headers }));
    assert.ok(m.ok);
    assert.equal(m.input.channel, 'o.7.true');
    assert.equal(m.input.type, 'type-two');
  });

  test('a value that is not valid UTF-8 is rejected with RECORD_NOT_UTF8', () => {
    const m = mapRecord(mapping('orders'), record({ value: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) }));
    assert.deepEqual(m, { ok: false, code: 'RECORD_NOT_UTF8', reason: 'the record value is not valid UTF-8' });
  });

  test('templates a record cannot fill are rejected with RECORD_UNMAPPABLE and a reason', () => {
    const cases: [TopicMapping, Partial<KafkaRecord>, RegExp][] = [
      [mapping('o.{key}'), { key: undefined }, /no key/],
      [mapping('o.{header.tenant}'), {}, /no header "tenant"/],
      [mapping('o.{value.user}'), {}, /no string, number or boolean at \{value\.user\}/],
      [mapping('o.{value.id}'), { value: Buffer.from('plain text') }, /not JSON/],
      [mapping('o.{key}'), { key: Buffer.from('a b') }, /tokens may only hold/],
      [mapping('o.{key}'), { key: Buffer.from('') }, /empty token/],
      [mapping('orders', '{header.event-type}'), { headers: new Map([[Buffer.from('event-type'), Buffer.from('a\nb')]]) }, /control characters/],
    ];
    for (const [m, over, reason] of cases) {
      const r = mapRecord(m, record(over));
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.equal(r.code, 'RECORD_UNMAPPABLE');
        assert.match(r.reason, reason);
      }
    }
  });

  test('a key holding a wildcard never turns a record into a publish to a pattern', () => {
    for (const key of ['>', '*', 'a.>']) {
      const r = mapRecord(mapping('orders.{key}'), record({ key: Buffer.from(key) }));
      assert.equal(r.ok, false, key);
      if (!r.ok) assert.match(r.reason, /is a pattern/);
    }
  });

  test('text that is not JSON becomes a JSON string; a tombstone becomes null', () => {
    const text = mapRecord(mapping('orders'), record({ value: Buffer.from('hello\nworld') }));
    assert.ok(text.ok);
    assert.equal(text.input.data, '"hello\\nworld"');
    const tomb = mapRecord(mapping('orders'), record({ value: undefined }));
    assert.ok(tomb.ok);
    assert.equal(tomb.input.data, 'null');
  });

  test('a rejection is an event at the record position, naming it without its bytes', () => {
    const r = record({ value: Buffer.from([0xff]) });
    const input = rejectionInput('kafka.rejected', r, { code: 'RECORD_NOT_UTF8', reason: 'bad' });
    assert.equal(input.type, 'kafka.rejected');
    assert.deepEqual(input.origin, { stream: 'kafka/orders/2', offset: 41 });
    assert.deepEqual(JSON.parse(input.data), {
      topic: 'orders',
      partition: 2,
      offset: 41,
      timestamp: '2023-11-14T22:13:20.000Z',
      code: 'RECORD_NOT_UTF8',
      reason: 'bad',
      keyBytes: 2,
      valueBytes: 1,
    });
  });
});

describe('kafka config', () => {
  const base = { brokers: ['127.0.0.1:9092'], groupId: 'herald' };

  test('is validated once, with an error naming the bad key', () => {
    const bad: [unknown, RegExp][] = [
      [{ ...base, topics: [{ topic: 'orders', channel: 'orders.{nope}' }] }, /kafka\.topics\.0\.channel.*unknown placeholder \{nope\}/],
      [{ ...base, topics: [{ topic: 'orders', channel: 'orders.>' }] }, /kafka\.topics\.0\.channel.*channel name or a template/],
      [{ ...base, topics: [{ topic: 'bad topic', channel: 'x' }] }, /kafka\.topics\.0\.topic/],
      [{ ...base, topics: [{ topic: 'a', channel: 'a' }, { topic: 'a', channel: 'b' }] }, /kafka\.topics.*twice/],
      [{ ...base, topics: [{ topic: 'a', channel: 'a', from: 1 }] }, /kafka\.topics\.0\.from.*unknown key/],
      [{ ...base, brokers: ['localhost'], topics: [{ topic: 'a', channel: 'a' }] }, /kafka\.brokers\.0.*host:port/],
      [{ ...base, deadLetterTopic: 'a', topics: [{ topic: 'a', channel: 'a' }] }, /kafka\.deadLetterTopic/],
      [{ ...base, heartbeatIntervalMs: 20_000, topics: [{ topic: 'a', channel: 'a' }] }, /kafka\.heartbeatIntervalMs/],
    ];
    for (const [kafka, message] of bad) assert.throws(() => buildConfig({ kafka }), message);
  });

  test('fills defaults', () => {
    const c = buildConfig({ kafka: { ...base, topics: [{ topic: 'orders', channel: '{topic}.{key}' }] } });
    assert.equal(c.kafka?.clientId, 'herald');
    assert.equal(c.kafka?.topics[0]?.fromBeginning, false);
    assert.equal(c.kafka?.rejectedChannel, 'kafka.rejected');
  });
});
