import { isEpoch } from '../../src/core/position.js';
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClosedError } from '../../src/core/errors.js';
import type { DeliveryStore, EndpointRecord, NewDelivery } from '../../src/core/delivery-store.js';
import { migrateSqlite } from '../../src/stores/sqlite-migrations.js';

export interface DeliveryStoreFactory {
  create(): Promise<DeliveryStore> | DeliveryStore;
  /** For durable stores: the same store opened again, to check persistence. */
  reopen?(): Promise<DeliveryStore> | DeliveryStore;
  /** For shared stores: a second handle on the same data (another connection or process). */
  second?(): Promise<DeliveryStore> | DeliveryStore;
}

const LEASE = 60_000;

/** A SQLite connection of its own on `file`, set up (and migrated) as the event store sets up its own. */
export function connect(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  migrateSqlite(db);
  return db;
}

export function endpointRecord(id: string, extra: Partial<EndpointRecord> = {}): EndpointRecord {
  return {
    id,
    url: 'https://example.com/hook',
    channels: ['a'],
    types: null,
    description: '',
    headers: {},
    ordering: 'parallel',
    maxConcurrency: null,
    secret: 'whsec_c2VjcmV0',
    previousSecret: null,
    previousSecretExpiresAt: null,
    enabled: true,
    disabledReason: null,
    fromSeq: 0,
    failingSince: null,
    createdAt: 1,
    updatedAt: 1,
    ...extra,
  };
}

const row = (endpointId: string, seq: number, nextAt = 0, status: 'pending' | 'held' = 'pending'): NewDelivery => ({
  endpointId,
  eventSeq: seq,
  msgId: `msg_${seq}`,
  body: `{"n":${seq}}`,
  status,
  nextAt,
  createdAt: 0,
});

const attempt = (id: number, status: number | null) => ({
  deliveryId: id,
  at: 1_000,
  durationMs: 5,
  status,
  responseBody: 'ok',
  error: status === null ? 'ECONNREFUSED' : null,
});

/** The DeliveryStore specification (src/core/delivery-store.ts), for every implementation. */
export function deliveryStoreContract(name: string, factory: DeliveryStoreFactory): void {
  describe(`DeliveryStore contract: ${name}`, () => {
    test('stores, lists and deletes endpoints', async () => {
      const s = await factory.create();
      await s.putEndpoint(endpointRecord('ep_b'));
      await s.putEndpoint(endpointRecord('ep_a', { url: 'https://a.example/' }));
      await s.putEndpoint(endpointRecord('ep_a', { url: 'https://a2.example/' }));
      assert.deepEqual((await s.listEndpoints()).map((e) => [e.id, e.url]), [
        ['ep_a', 'https://a2.example/'],
        ['ep_b', 'https://example.com/hook'],
      ]);
      await s.enqueue([row('ep_a', 1)]);
      assert.equal(await s.deleteEndpoint('ep_a'), true);
      assert.equal(await s.deleteEndpoint('ep_a'), false);
      assert.deepEqual(await s.listDeliveries('ep_a', { limit: 10 }), []);
      await s.close();
    });

    test('the endpoints version moves with every change to endpoints, and only then', async () => {
      const s = await factory.create();
      const seen = [await s.endpointsVersion()];
      const moved = async (what: string) => {
        const v = await s.endpointsVersion();
        assert.ok(!seen.includes(v), `${what} changes the version (${v} after ${seen.join(', ')})`);
        seen.push(v);
      };
      await s.putEndpoint(endpointRecord('ep_v'));
      await moved('a new endpoint');
      await s.putEndpoint(endpointRecord('ep_v', { url: 'https://changed.example/' }));
      await moved('a changed endpoint');
      await s.enqueue([row('ep_v', 1)], 1);
      const [d] = (await s.claim([{ endpointId: 'ep_v', limit: 1, ordered: false }], 0, LEASE, 'w')).claimed;
      await s.finish([{ id: d!.id, claim: d!.claims, attempt: attempt(d!.id, 500), outcome: { status: 'pending', nextAt: 0 } }]);
      assert.equal(await s.endpointsVersion(), seen.at(-1), 'deliveries leave it alone: pollers reload only for endpoints');
      await s.hold('ep_v', 1);
      await moved('hold');
      await s.unhold('ep_v', 2);
      await moved('unhold');
      await s.deleteEndpoint('ep_v');
      await moved('a deleted endpoint');
      if (factory.second) {
        const b = await factory.second();
        assert.equal(await b.endpointsVersion(), seen.at(-1), 'another handle reads the same version');
        await b.putEndpoint(endpointRecord('ep_w'));
        await moved('a change through another handle');
        await b.close();
      }
      await s.close();
    });

    test('enqueue raises the planning cursor with its rows, atomically', async () => {
      const s = await factory.create();
      assert.equal(await s.plannedThrough(), undefined);
      await s.enqueue([row('e', 1), row('e', 2)], 2);
      await s.enqueue([], 5);
      assert.equal(await s.plannedThrough(), 5);
      await s.enqueue([row('e', 3)]);
      assert.equal(await s.plannedThrough(), 5, 'enqueue without a cursor leaves it alone');
      assert.equal((await s.listDeliveries('e', { limit: 10 })).length, 3);
      assert.ok(isEpoch(await s.logId()));
      await s.close();
    });

    test('a row enqueued with a lease is stored claimed: returned with token 1, hidden until the lease ends', async () => {
      const s = await factory.create();
      const lease = { owner: 'w1', until: 1_000 + LEASE };
      const leased = await s.enqueue([row('e', 1), { ...row('e', 2), lease }, { ...row('e', 3, 0, 'held'), lease }], 3);
      assert.deepEqual(
        leased.map((d) => [d.eventSeq, d.status, d.claims, d.leaseOwner, d.nextAt, d.body]),
        [[2, 'pending', 1, 'w1', 1_000 + LEASE, '{"n":2}']],
        'only the pending row with a lease comes back, already claimed',
      );
      assert.equal(await s.plannedThrough(), 3);
      const { claimed } = await s.claim([{ endpointId: 'e', limit: 10, ordered: false }], 1_000, LEASE, 'w2');
      assert.deepEqual(claimed.map((d) => d.eventSeq), [1], 'a claim never takes the leased row');
      const d = leased[0]!;
      await s.finish([{ id: d.id, claim: 1, attempt: attempt(d.id, 200), outcome: { status: 'delivered' } }]);
      assert.equal((await s.getDelivery(d.id))!.delivery.status, 'delivered', 'token 1 is the current claim');
      // A leased row the worker never sent (it died) is due once the lease runs out.
      const [orphan] = await s.enqueue([{ ...row('e', 4), lease }]);
      const later = await s.claim([{ endpointId: 'e', limit: 10, ordered: false }], 1_000 + LEASE, LEASE, 'w2');
      assert.deepEqual(later.claimed.filter((x) => x.eventSeq === 4).map((x) => [x.id, x.claims]), [[orphan!.id, 2]]);
      await s.close();
    });

    test('a named lease has one holder: renewed by it, refused to others, taken over once expired', async () => {
      const s = await factory.create();
      const ttl = 15_000;
      assert.equal(await s.leaseHolder('planner', 1_000), undefined, 'free at first');
      assert.equal(await s.acquireLease('planner', 'a', 1_000, ttl), true, 'a free lease is taken');
      assert.deepEqual(await s.leaseHolder('planner', 1_000), { owner: 'a', until: 1_000 + ttl });
      assert.equal(await s.acquireLease('planner', 'b', 1_000 + ttl - 1, ttl), false, 'held until it expires');
      assert.equal(await s.acquireLease('planner', 'a', 10_000, ttl), true, 'the holder renews');
      assert.equal(await s.acquireLease('planner', 'b', 1_000 + ttl, ttl), false, 'a renewal moved the expiry');
      assert.equal(await s.acquireLease('other', 'b', 10_000, ttl), true, 'each name is a lease of its own');
      // The holder stops renewing (it died): at its expiry the lease is free, and b takes it over.
      assert.equal(await s.leaseHolder('planner', 10_000 + ttl), undefined, 'an expired lease has no holder');
      assert.equal(await s.acquireLease('planner', 'b', 10_000 + ttl, ttl), true, 'taken over at expiry');
      assert.equal(await s.acquireLease('planner', 'a', 10_000 + ttl + 1, ttl), false, 'the old holder has lost it');
      await s.releaseLease('planner', 'a');
      assert.equal((await s.leaseHolder('planner', 10_000 + ttl))?.owner, 'b', 'only the holder can give it back');
      await s.releaseLease('planner', 'b');
      assert.equal(await s.leaseHolder('planner', 10_000 + ttl), undefined, 'given back');
      assert.equal(await s.acquireLease('planner', 'a', 10_000 + ttl + 1, ttl), true, 'and free again at once');
      await s.close();
    });

    test('a claim stops at max deliveries or max body bytes, says it was cut, and always takes one', async () => {
      const s = await factory.create();
      await s.enqueue([1, 2, 3, 4, 5].map((n) => row('a', n)).concat([row('b', 6)]));
      const both = [
        { endpointId: 'a', limit: 10, ordered: false },
        { endpointId: 'b', limit: 10, ordered: false },
      ];
      const byCount = await s.claim(both, 0, LEASE, 'w', 2);
      assert.deepEqual([byCount.claimed.map((d) => d.eventSeq), byCount.cut], [[1, 2], true]);
      // Bodies are `{"n":N}`, 7 bytes each: 15 bytes hold two of them.
      const byBytes = await s.claim(both, 0, LEASE, 'w', Infinity, 15);
      assert.deepEqual([byBytes.claimed.map((d) => d.eventSeq), byBytes.cut], [[3, 4], true]);
      const tiny = await s.claim(both, 0, LEASE, 'w', Infinity, 1);
      assert.deepEqual([tiny.claimed.map((d) => d.eventSeq), tiny.cut], [[5], true], 'one delivery even when it alone is over the bound');
      const rest = await s.claim(both, 0, LEASE, 'w');
      assert.deepEqual([rest.claimed.map((d) => d.eventSeq), rest.cut], [[6], false]);
      await s.close();
    });

    test('the leases of a dead worker can be given back at once, and only those', async () => {
      const s = await factory.create();
      await s.enqueue([row('e', 1), row('e', 2), row('e', 3)]);
      const req = [{ endpointId: 'e', limit: 1, ordered: false }];
      const [a] = (await s.claim(req, 0, LEASE, 'dead')).claimed;
      const [b] = (await s.claim(req, 0, LEASE, 'alive')).claimed;
      assert.deepEqual((await s.leaseOwners()).sort(), ['alive', 'dead']);
      assert.equal(await s.releaseOwners(['dead'], 10), 1);
      assert.deepEqual(await s.leaseOwners(), ['alive']);
      // Due at once (long before the lease would end), the fencing counter unchanged.
      const again = (await s.claim([{ endpointId: 'e', limit: 10, ordered: false }], 10, LEASE, 'next')).claimed;
      assert.deepEqual(again.map((d) => [d.id, d.claims]).sort(), [[a!.id, 2], [b!.id + 1, 1]].sort());
      await s.close();
    });

    test('claims only due deliveries, oldest first, and hides them for the lease', async () => {
      const s = await factory.create();
      await s.enqueue([row('e', 1, 100), row('e', 2, 50), row('e', 3, 5_000)]);
      const first = await s.claim([{ endpointId: 'e', limit: 10, ordered: false }], 1_000, LEASE, 'w1');
      assert.deepEqual(first.claimed.map((d) => d.eventSeq), [2, 1]);
      assert.equal(first.nextDueAt, 5_000);
      assert.deepEqual(first.claimed.map((d) => d.leaseOwner), ['w1', 'w1']);
      const again = await s.claim([{ endpointId: 'e', limit: 10, ordered: false }], 2_000, LEASE, 'w2');
      assert.deepEqual(again.claimed, [], 'leased deliveries are invisible to others');
      const expired = await s.claim([{ endpointId: 'e', limit: 10, ordered: false }], 1_000 + LEASE, LEASE, 'w2');
      assert.deepEqual(expired.claimed.map((d) => d.eventSeq).sort(), [1, 2, 3], 'an expired lease is due again');
      await s.close();
    });

    test('respects the limit per endpoint and keeps endpoints apart', async () => {
      const s = await factory.create();
      await s.enqueue([row('a', 1), row('a', 2), row('a', 3), row('b', 4)]);
      const r = await s.claim(
        [
          { endpointId: 'a', limit: 2, ordered: false },
          { endpointId: 'b', limit: 5, ordered: false },
        ],
        10,
        LEASE,
        'w',
      );
      assert.deepEqual(r.claimed.map((d) => [d.endpointId, d.eventSeq]), [['a', 1], ['a', 2], ['b', 4]]);
      await s.close();
    });

    test('an ordered claim takes only the head, and only when it is due', async () => {
      const s = await factory.create();
      await s.enqueue([row('o', 1, 500), row('o', 2, 0), row('o', 3, 0)]);
      const ordered = [{ endpointId: 'o', limit: 10, ordered: true }];
      assert.deepEqual((await s.claim(ordered, 100, LEASE, 'w')).claimed, [], 'a head not yet due blocks the rest');
      const head = (await s.claim(ordered, 600, LEASE, 'w')).claimed;
      assert.deepEqual(head.map((d) => d.eventSeq), [1]);
      assert.deepEqual((await s.claim(ordered, 700, LEASE, 'w')).claimed, [], 'nothing while the head is leased');
      await s.finish([{ id: head[0]!.id, claim: head[0]!.claims, attempt: attempt(head[0]!.id, 200), outcome: { status: 'delivered' } }]);
      assert.deepEqual((await s.claim(ordered, 800, LEASE, 'w')).claimed.map((d) => d.eventSeq), [2]);
      await s.close();
    });

    test('finish records every attempt but applies only the current claim (fencing)', async () => {
      const s = await factory.create();
      await s.enqueue([row('e', 1)]);
      const [stale] = (await s.claim([{ endpointId: 'e', limit: 1, ordered: false }], 0, 10, 'slow')).claimed;
      const [fresh] = (await s.claim([{ endpointId: 'e', limit: 1, ordered: false }], 20, LEASE, 'fast')).claimed;
      assert.equal(fresh!.claims, stale!.claims + 1);
      await s.finish([{ id: fresh!.id, claim: fresh!.claims, attempt: attempt(fresh!.id, 200), outcome: { status: 'delivered' } }]);
      await s.finish([
        { id: stale!.id, claim: stale!.claims, attempt: attempt(stale!.id, 500), outcome: { status: 'pending', nextAt: 99 } },
      ]);
      const got = await s.getDelivery(fresh!.id);
      assert.equal(got!.delivery.status, 'delivered', 'a stale worker cannot overwrite the outcome');
      assert.equal(got!.delivery.attempts, 1);
      assert.deepEqual(got!.attempts.map((a) => a.status), [200, 500]);
      await s.close();
    });

    test('failures reschedule; dead and delivered are final until a manual retry', async () => {
      const s = await factory.create();
      await s.enqueue([row('e', 1)]);
      const claim = async (now: number) => (await s.claim([{ endpointId: 'e', limit: 1, ordered: false }], now, LEASE, 'w')).claimed;
      const [d] = await claim(0);
      await s.finish([{ id: d!.id, claim: d!.claims, attempt: attempt(d!.id, null), outcome: { status: 'pending', nextAt: 500 } }]);
      assert.deepEqual(await claim(499), []);
      const [d2] = await claim(500);
      assert.equal(d2!.attempts, 1);
      await s.finish([{ id: d2!.id, claim: d2!.claims, attempt: attempt(d2!.id, 500), outcome: { status: 'dead' } }]);
      assert.deepEqual(await claim(10_000), []);
      const retried = await s.retry(d!.id, 20_000);
      assert.equal(retried!.status, 'pending');
      assert.equal(retried!.scheduleStart, 2, 'a manual retry restarts the schedule');
      assert.equal((await claim(20_000)).length, 1);
      assert.equal(await s.retry(9_999, 0), undefined);
      await s.close();
    });

    test('release gives a claim back without counting an attempt', async () => {
      const s = await factory.create();
      await s.enqueue([row('e', 1)]);
      const [d] = (await s.claim([{ endpointId: 'e', limit: 1, ordered: false }], 0, LEASE, 'w')).claimed;
      await s.release([{ id: d!.id, claim: d!.claims }], 5);
      const [again] = (await s.claim([{ endpointId: 'e', limit: 1, ordered: false }], 5, LEASE, 'w')).claimed;
      assert.equal(again!.attempts, 0);
      await s.close();
    });

    test('hold keeps deliveries out of claims; unhold makes them due', async () => {
      const s = await factory.create();
      await s.enqueue([row('e', 1), row('e', 2, 0, 'held')]);
      assert.equal(await s.hold('e', 1), 1);
      assert.deepEqual((await s.claim([{ endpointId: 'e', limit: 9, ordered: false }], 10, LEASE, 'w')).claimed, []);
      assert.equal((await s.listDeliveries('e', { status: 'held', limit: 9 })).length, 2);
      assert.equal(await s.unhold('e', 20), 2);
      assert.equal((await s.claim([{ endpointId: 'e', limit: 9, ordered: false }], 20, LEASE, 'w')).claimed.length, 2);
      await s.close();
    });

    test('lists newest first, by status, with paging', async () => {
      const s = await factory.create();
      await s.enqueue([1, 2, 3, 4, 5].map((n) => row('e', n)));
      const page = await s.listDeliveries('e', { limit: 2 });
      assert.deepEqual(page.map((d) => d.eventSeq), [5, 4]);
      const next = await s.listDeliveries('e', { limit: 2, before: page[1]!.id });
      assert.deepEqual(next.map((d) => d.eventSeq), [3, 2]);
      assert.deepEqual(await s.listDeliveries('e', { limit: 2, status: 'dead' }), []);
      await s.close();
    });

    test('prune deletes finished deliveries older than the cutoff, never pending ones', async () => {
      const s = await factory.create();
      await s.enqueue([row('e', 1), row('e', 2)]);
      const [d] = (await s.claim([{ endpointId: 'e', limit: 1, ordered: false }], 0, LEASE, 'w')).claimed;
      await s.finish([{ id: d!.id, claim: d!.claims, attempt: attempt(d!.id, 200), outcome: { status: 'delivered' } }]);
      assert.equal(await s.prune(2_000), 1);
      assert.deepEqual((await s.listDeliveries('e', { limit: 9 })).map((x) => x.status), ['pending']);
      assert.equal(await s.getDelivery(d!.id), undefined);
      await s.close();
    });

    test('calls after close reject with ClosedError', async () => {
      const s = await factory.create();
      await s.close();
      await s.close();
      await assert.rejects(s.listEndpoints(), ClosedError);
      await assert.rejects(s.claim([], 0, LEASE, 'w'), ClosedError);
    });

    if (factory.reopen) {
      test('pending deliveries, the cursor and endpoints survive a reopen', async () => {
        const s = await factory.create();
        await s.putEndpoint(endpointRecord('ep_x'));
        await s.enqueue([row('ep_x', 7)], 7);
        const id = await s.logId();
        await s.close();
        const r = await factory.reopen!();
        assert.equal(await r.plannedThrough(), 7);
        assert.equal(await r.logId(), id);
        assert.deepEqual((await r.listEndpoints()).map((e) => e.id), ['ep_x']);
        assert.equal((await r.claim([{ endpointId: 'ep_x', limit: 5, ordered: false }], 0, LEASE, 'w')).claimed.length, 1);
        await r.close();
      });
    }

    if (factory.second) {
      test('two handles claiming at once never hold the same delivery', async () => {
        const a = await factory.create();
        const b = await factory.second!();
        await a.enqueue(Array.from({ length: 300 }, (_, i) => row('e', i + 1)));
        const owners = new Map<number, string>();
        const req = [{ endpointId: 'e', limit: 7, ordered: false }];
        for (let round = 0; round < 60; round++) {
          const [x, y] = await Promise.all([a.claim(req, 0, LEASE, 'a'), b.claim(req, 0, LEASE, 'b')]);
          for (const [who, r] of [['a', x], ['b', y]] as const) {
            for (const d of r.claimed) {
              assert.equal(owners.get(d.id), undefined, `delivery ${d.id} claimed by ${owners.get(d.id)} and ${who}`);
              owners.set(d.id, who);
            }
          }
        }
        assert.equal(owners.size, 300);
        await a.close();
        await b.close();
      });

      test('two handles taking one lease at once: exactly one holds it', async () => {
        const a = await factory.create();
        const b = await factory.second!();
        for (let round = 0; round < 20; round++) {
          const now = round * 100_000; // every round starts with the previous lease expired
          const [x, y] = await Promise.all([a.acquireLease('planner', 'a', now, 1_000), b.acquireLease('planner', 'b', now, 1_000)]);
          assert.equal(Number(x) + Number(y), 1, `round ${round}: a ${x}, b ${y}`);
          assert.equal((await b.leaseHolder('planner', now))?.owner, x ? 'a' : 'b');
        }
        await a.close();
        await b.close();
      });
    }
  });
}
