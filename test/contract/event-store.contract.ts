import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClosedError } from '../../src/core/errors.js';
import type { EventInput } from '../../src/core/event.js';
import type { EventStore } from '../../src/core/event-store.js';

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
      assert.deepEqual(await s.head(), { lastSeq: seqs[2], prunedThrough: 0 });
      for (const r of [...a, ...b]) assert.equal(r.event.id, String(r.event.seq));
      await s.close();
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

    if (factory.reopen) {
      const reopen = factory.reopen;
      test('keeps events, positions, keys and the watermark across a reopen', async () => {
        const s = await factory.create(now);
        const rs = await s.append(Array.from({ length: 5 }, (_, i) => input('d', i, { idempotencyKey: `d${i}` })));
        await s.prune({ ...policy, maxEvents: 3 }, clock);
        await s.close();
        const t = await reopen(now);
        assert.deepEqual((await t.read(['d'], 0, 10)).map((e) => JSON.parse(e.data)), [2, 3, 4]);
        assert.deepEqual(await t.head(), { lastSeq: rs[4]!.event.seq, prunedThrough: rs[1]!.event.seq });
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
