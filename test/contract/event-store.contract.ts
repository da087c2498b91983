import { isEpoch } from '../../src/core/position.js';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClosedError } from '../../src/core/errors.js';
import type { EventInput } from '../../src/core/event.js';
import type { EventStore } from '../../src/core/event-store.js';
import type { StoredEvent } from '../../src/core/event.js';
import { READ_SCAN_MAX_ROWS } from '../../src/core/limits.js';
import { matches } from '../../src/core/channel.js';

export interface StoreFactory {
  /** A new, empty store whose clock reads `now()`. */
  create(now: () => number): Promise<EventStore> | EventStore;
  /** For durable stores: the same store opened again (after close), to check persistence. */
  reopen?(now: () => number): Promise<EventStore> | EventStore;
}

const input = (channel: string, data: unknown, extra: Partial<EventInput> = {}): EventInput => ({
  channel,
  type: 'message',
  data: JSON.stringify(data),
  ...extra,
});

const policy = { maxAgeMs: 0, maxEvents: 0, idempotencyTtlMs: 60_000 };

/** The EventStore specification (src/core/event-store.ts), run against every implementation. */
export function eventStoreContract(name: string, factory: StoreFactory): void {
  describe(`EventStore contract: ${name}`, () => {
    let clock = 1_000_000;
    const now = () => clock;

    test('assigns strictly increasing positions across appends', async () => {
      const s = await factory.create(now);
      const a = await s.append([input('a', 1), input('b', 2)]);
      const b = await s.append([input('a', 3)]);
      const seqs = [...a, ...b].map((r) => r.event.seq);
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y));
      assert.equal(new Set(seqs).size, 3);
      assert.ok(seqs[0]! > 0);
      const head = await s.head();
      assert.deepEqual(head, { lastSeq: seqs[2], prunedThrough: 0, epoch: head.epoch });
      for (const r of [...a, ...b]) assert.equal(r.event.id, `${head.epoch}-${r.event.seq}`);
      await s.close();
    });

    test('names the log with an epoch: in every id, and another for every new log', async () => {
      const s = await factory.create(now);
      const t = await factory.create(now);
      const { epoch } = await s.head();
      assert.match(epoch, /^[0-9a-z]{6}$/);
      assert.notEqual((await t.head()).epoch, epoch);
      await s.append([input('e', 1)]);
      const [e] = await s.read(['e'], 0, 1);
      assert.equal(e!.id, `${epoch}-${e!.seq}`);
      await s.close();
      await t.close();
    });

    test('keeps data as JSON text exactly as appended, with channel, type and time', async () => {
      const s = await factory.create(now);
      const [r] = await s.append([{ channel: 'orders', type: 'order.paid', data: '{"total":"19.90","n":[1,2]}' }]);
      const [e] = await s.read(['orders'], 0, 10);
      assert.equal(e!.data, '{"total":"19.90","n":[1,2]}');
      assert.equal(e!.type, 'order.paid');
      assert.equal(e!.time, clock);
      assert.equal(e!.seq, r!.event.seq);
      await s.close();
    });

    test('reads only events after the position, in order, up to the limit', async () => {
      const s = await factory.create(now);
      const rs = await s.append(Array.from({ length: 10 }, (_, i) => input('c', i)));
      const after = rs[3]!.event.seq;
      const page = await s.read(['c'], after, 4);
      assert.deepEqual(page.map((e) => JSON.parse(e.data)), [4, 5, 6, 7]);
      assert.deepEqual(await s.read(['c'], rs[9]!.event.seq, 10), []);
      await s.close();
    });

    test('reads by exact names and wildcard patterns, and never returns other channels', async () => {
      const s = await factory.create(now);
      await s.append([
        input('orders', 0),
        input('orders.eu', 1),
        input('orders.eu.paid', 2),
        input('ordersx', 3),
        input('chat.room-1', 4),
        input('chat.room-1.typing', 5),
        input('user.42.notifications', 6),
      ]);
      const data = async (p: string[]) => (await s.read(p, 0, 100)).map((e) => JSON.parse(e.data));
      assert.deepEqual(await data(['orders']), [0]);
      assert.deepEqual(await data(['orders.*']), [1]);
      assert.deepEqual(await data(['orders.>']), [1, 2]);
      assert.deepEqual(await data(['chat.>', 'orders']), [0, 4, 5]);
      assert.deepEqual(await data(['*.42.*']), [6]);
      assert.deepEqual(await data(['>']), [0, 1, 2, 3, 4, 5, 6]);
      await s.close();
    });

    test('fills a page of a sparse pattern even when most rows in between do not match', async () => {
      const s = await factory.create(now);
      const inputs: EventInput[] = [];
      for (let i = 0; i < 5_000; i++) inputs.push(input(i % 1000 === 0 ? 'rare.x' : 'noise.x', i));
      await s.append(inputs);
      const page = await s.read(['rare.*'], 0, 5);
      assert.deepEqual(page.map((e) => JSON.parse(e.data)), [0, 1000, 2000, 3000, 4000]);
      await s.close();
    });

    test('readPage examines at most READ_SCAN_MAX_ROWS rows, and its pages add up to read', async () => {
      const s = await factory.create(now);
      const total = READ_SCAN_MAX_ROWS * 3;
      const inputs: EventInput[] = [];
      for (let i = 0; i < total; i++) inputs.push(input(i === total - 1 ? 'zz.7x' : `noise.${i % 7}`, i));
      await s.append(inputs);
      // A leading wildcard that matches only the last row: no page may scan the whole log.
      let after = 0;
      let pages = 0;
      const found: unknown[] = [];
      for (;;) {
        const page = await s.readPage(['*.7x'], after, 100);
        pages++;
        assert.ok(page.through - after <= READ_SCAN_MAX_ROWS, `page examined ${page.through - after} rows`);
        found.push(...page.events.map((e) => JSON.parse(e.data)));
        if (page.end) break;
        assert.ok(page.through > after, 'a page that is not the end moves forward');
        after = page.through;
      }
      assert.deepEqual(found, [total - 1]);
      assert.ok(pages >= 3, `${pages} pages`);
      assert.deepEqual((await s.read(['*.7x'], 0, 100)).map((e) => JSON.parse(e.data)), [total - 1]);
      await s.close();
    });

    test('paging by `through` returns every match once, in order, for names, prefixes and wildcards', async () => {
      const s = await factory.create(now);
      const names = ['orders', 'orders.eu', 'orders.eu.paid', 'ordersx', 'chat.a', 'user.42.n'];
      // More distinct names under one prefix than an index lookup by name would take.
      for (let i = 0; i < 100; i++) names.push(`orders.n${i}`);
      const inputs: EventInput[] = [];
      for (let i = 0; i < 3_000; i++) inputs.push(input(names[(i * 7) % names.length]!, i));
      await s.append(inputs);
      const all = await s.read(['>'], 0, 5_000);
      assert.equal(all.length, 3_000);
      const sets = [['orders.>'], ['orders.*'], ['orders', 'chat.a'], ['*.42.*'], ['orders.eu.>', 'user.>'], ['orders.n3', 'orders.n4', 'ordersx']];
      for (const patterns of sets) {
        const expected = all.filter((e) => patterns.some((p) => matches(p, e.channel))).map((e) => e.seq);
        for (const limit of [1, 7, 500]) {
          const got: StoredEvent[] = [];
          let after = 0;
          for (;;) {
            const page = await s.readPage(patterns, after, limit);
            assert.ok(page.events.length <= limit);
            for (const e of page.events) assert.ok(e.seq > after && e.seq <= page.through);
            got.push(...page.events);
            if (page.end) break;
            after = page.through;
          }
          assert.deepEqual(got.map((e) => e.seq), expected, `${patterns.join(',')} limit ${limit}`);
        }
      }
      await s.close();
    });

    test('prunes the idempotency keys of pruned events; a key with its own TTL outlives its event', async () => {
      const s = await factory.create(now);
      await s.append(Array.from({ length: 20 }, (_, i) => input('k', i, { idempotencyKey: `key-${i}` })));
      const [long] = await s.append([input('k', 'kept', { idempotencyKey: 'provider-id', idempotencyTtlMs: 3_600_000 })]);
      await s.append(Array.from({ length: 5 }, (_, i) => input('k', 100 + i)));
      clock += 1;
      // Well within the keys' TTL (60 s): only the events' retention forgets them.
      await s.prune({ ...policy, maxEvents: 10 }, clock);
      const [pruned] = await s.append([input('k', 'again', { idempotencyKey: 'key-0' })]);
      assert.equal(pruned!.duplicate, false, 'the key of a pruned event is forgotten with it');
      const [kept] = await s.append([input('k', 'again', { idempotencyKey: 'key-19' })]);
      assert.equal(kept!.duplicate, true, 'the key of a retained event still dedupes');
      const [provider] = await s.append([input('k', 'retry', { idempotencyKey: 'provider-id' })]);
      assert.equal(provider!.duplicate, true, 'an input TTL outlives the event');
      assert.equal(provider!.event.seq, long!.event.seq);
      await s.close();
    });

    test('returns the first event for a repeated idempotency key and stores nothing new', async () => {
      const s = await factory.create(now);
      const [first] = await s.append([input('o', 'a', { idempotencyKey: 'k1' })]);
      const [again] = await s.append([input('o', 'b', { idempotencyKey: 'k1' })]);
      assert.equal(first!.duplicate, false);
      assert.equal(again!.duplicate, true);
      assert.equal(again!.event.id, first!.event.id);
      assert.equal(again!.event.data, JSON.stringify('a'));
      assert.equal((await s.read(['o'], 0, 10)).length, 1);
      await s.close();
    });

    test('dedupes a key repeated inside one batch', async () => {
      const s = await factory.create(now);
      const rs = await s.append([input('o', 1, { idempotencyKey: 'k' }), input('o', 2, { idempotencyKey: 'k' }), input('o', 3)]);
      assert.deepEqual(rs.map((r) => r.duplicate), [false, true, false]);
      assert.equal(rs[1]!.event.id, rs[0]!.event.id);
      assert.equal((await s.read(['o'], 0, 10)).length, 2);
      await s.close();
    });

    test('prunes by count and raises the watermark; positions are never reused', async () => {
      const s = await factory.create(now);
      const rs = await s.append(Array.from({ length: 10 }, (_, i) => input('p', i)));
      const deleted = await s.prune({ ...policy, maxEvents: 4 }, clock);
      assert.equal(deleted, 6);
      const left = await s.read(['p'], 0, 100);
      assert.deepEqual(left.map((e) => JSON.parse(e.data)), [6, 7, 8, 9]);
      assert.equal((await s.head()).prunedThrough, rs[5]!.event.seq);
      const [next] = await s.append([input('p', 10)]);
      assert.ok(next!.event.seq > rs[9]!.event.seq);
      await s.close();
    });

    test('prunes by age', async () => {
      const s = await factory.create(now);
      await s.append([input('p', 'old')]);
      clock += 10_000;
      await s.append([input('p', 'new')]);
      await s.prune({ ...policy, maxAgeMs: 5_000 }, clock);
      assert.deepEqual((await s.read(['p'], 0, 10)).map((e) => JSON.parse(e.data)), ['new']);
      await s.close();
    });

    test('forgets idempotency keys after their time to live', async () => {
      const s = await factory.create(now);
      await s.append([input('o', 1, { idempotencyKey: 'ttl' })]);
      clock += 120_000;
      await s.prune(policy, clock);
      const [r] = await s.append([input('o', 2, { idempotencyKey: 'ttl' })]);
      assert.equal(r!.duplicate, false);
      await s.close();
    });

    test('rejects every call after close, and close is idempotent', async () => {
      const s = await factory.create(now);
      await s.close();
      await s.close();
      await assert.rejects(s.append([input('a', 1)]), ClosedError);
      await assert.rejects(s.read(['a'], 0, 1), ClosedError);
      await assert.rejects(s.head(), ClosedError);
    });

    test('has an epoch: short, fixed for the life of the log, new for every new log', async () => {
      const s = await factory.create(now);
      const { epoch } = await s.head();
      assert.ok(isEpoch(epoch), `short and safe inside an event id: ${epoch}`);
      await s.append([input('a', 1)]);
      await s.prune({ ...policy, maxEvents: 1 }, clock);
      assert.equal((await s.head()).epoch, epoch, 'appends and pruning keep it');
      await s.close();
      const other = await factory.create(now);
      assert.notEqual((await other.head()).epoch, epoch, 'another log, another epoch');
      await other.close();
    });

    if (factory.reopen) {
      const reopen = factory.reopen;
      test('keeps events, positions, keys and the watermark across a reopen', async () => {
        const s = await factory.create(now);
        const rs = await s.append(Array.from({ length: 5 }, (_, i) => input('d', i, { idempotencyKey: `d${i}` })));
        await s.prune({ ...policy, maxEvents: 3 }, clock);
        const before = await s.head();
        await s.close();
        const t = await reopen(now);
        assert.deepEqual((await t.read(['d'], 0, 10)).map((e) => JSON.parse(e.data)), [2, 3, 4]);
        // The same log: the same epoch, so ids issued before the restart still resume here.
        const epoch = rs[4]!.event.id.split('-')[0];
        assert.deepEqual(await t.head(), { lastSeq: rs[4]!.event.seq, prunedThrough: rs[1]!.event.seq, epoch });
        const [dup] = await t.append([input('d', 'x', { idempotencyKey: 'd4' })]);
        assert.equal(dup!.duplicate, true);
        assert.equal(dup!.event.id, rs[4]!.event.id);
        const [fresh] = await t.append([input('d', 5)]);
        assert.ok(fresh!.event.seq > rs[4]!.event.seq);
        await t.close();
      });
    }
  });
}
