import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { EventInput } from '../../src/core/event.js';
import type { EventStore } from '../../src/core/event-store.js';
import type { ReceiptInput } from '../../src/core/inbound-receipt.js';
import { MemoryEventStore } from '../../src/stores/memory-event-store.js';
import { RedisEventStore } from '../../src/stores/redis-event-store.js';
import { SqliteEventStore } from '../../src/stores/sqlite-event-store.js';
import { PostgresEventStore } from '../../src/stores/postgres-event-store.js';
import { postgresForSuite, premigratedSchemas, suiteDatabase } from '../helpers/postgres.js';
import { redisForSuite, suiteClients } from '../helpers/redis.js';

/**
 * The inbound-receipt part of the EventStore specification (src/core/event-store.ts), run
 * against every store. `now` is injected so retention is tested without waiting.
 */
interface Factory {
  name: string;
  durable: boolean;
  open(clock: { now: number }, file?: string): EventStore;
}

const factories: Factory[] = [
  { name: 'memory', durable: false, open: (c) => new MemoryEventStore({ now: () => c.now }) },
  {
    name: 'sqlite',
    durable: true,
    open: (c, file) =>
      new SqliteEventStore({ file: file ?? join(mkdtempSync(join(tmpdir(), 'herald-rc-')), 'log.db'), now: () => c.now }),
  },
];

// Redis: a `file` names one log; the same name opens the same prefix again (with a new client).
const redisUrl = await redisForSuite('EventStore inbound receipts (redis)');
if (redisUrl) {
  const redis = suiteClients(redisUrl);
  after(() => redis.close());
  const prefixes = new Map<string, string>();
  factories.push({
    name: 'redis',
    durable: true,
    open(c, file) {
      let prefix = file === undefined ? undefined : prefixes.get(file);
      if (prefix === undefined) {
        prefix = redis.prefix();
        if (file !== undefined) prefixes.set(file, prefix);
      }
      return new RedisEventStore({ redis: redis.client(), prefix, now: () => c.now });
    },
  });
}

// Postgres: each log a schema of its own in one database; the same `file` opens the same schema
// again (with a new pool).
const pgUrl = await postgresForSuite('EventStore inbound receipts (postgres)');
if (pgUrl) {
  const db = await suiteDatabase(pgUrl);
  after(() => db.drop());
  const schemas = await premigratedSchemas(db, 20);
  const pool = db.pool();
  const byFile = new Map<string, string>();
  factories.push({
    name: 'postgres',
    durable: true,
    open(c, file) {
      let schema = file === undefined ? undefined : byFile.get(file);
      if (schema === undefined) {
        schema = schemas.next();
        if (file !== undefined) byFile.set(file, schema);
      }
      return new PostgresEventStore({ pool: file === undefined ? pool : db.pool(), schema, now: () => c.now });
    },
  });
}

const DAY = 86_400_000;

function receipt(over: Partial<ReceiptInput> = {}): ReceiptInput {
  return {
    source: 'stripe',
    status: 'accepted',
    receivedAt: 1_000,
    keepUntil: 1_000 + 3 * DAY,
    providerId: 'evt_1',
    type: 'payment_intent.succeeded',
    headers: { 'stripe-signature': 't=1,v1=ab' },
    body: Buffer.from('{"id":"evt_1"}'),
    ...over,
  };
}

function webhookInput(id: string, over: Partial<ReceiptInput> = {}): EventInput {
  return {
    channel: 'orders',
    type: 'payment_intent.succeeded',
    data: `{"id":"${id}"}`,
    idempotencyKey: `webhook:stripe:${id}`,
    idempotencyTtlMs: 3 * DAY,
    receipt: receipt({ providerId: id, body: Buffer.from(`{"id":"${id}"}`), ...over }),
  };
}

for (const f of factories) {
  describe(`EventStore inbound receipts (${f.name})`, () => {
    test('records an accepted receipt with its raw body and seq in the append', async () => {
      const store = f.open({ now: 1_000 });
      const [r] = await store.append([webhookInput('evt_1')]);
      assert.equal(r!.duplicate, false);
      assert.ok(r!.receiptId! > 0);
      const got = await store.getReceipt('stripe', r!.receiptId!);
      assert.equal(got?.status, 'accepted');
      assert.equal(got?.seq, r!.event.seq);
      assert.equal(got?.body?.toString(), '{"id":"evt_1"}');
      assert.deepEqual(got?.headers, { 'stripe-signature': 't=1,v1=ab' });
      await store.close();
    });

    test('a repeated provider id appends nothing and records a duplicate receipt without body', async () => {
      const store = f.open({ now: 1_000 });
      const [first] = await store.append([webhookInput('evt_1')]);
      const [again, sameBatch] = await store.append([webhookInput('evt_1'), webhookInput('evt_1')]);
      for (const r of [again!, sameBatch!]) {
        assert.equal(r.duplicate, true);
        assert.equal(r.event.seq, first!.event.seq);
        const got = await store.getReceipt('stripe', r.receiptId!);
        assert.equal(got?.status, 'duplicate');
        assert.equal(got?.seq, first!.event.seq);
        assert.equal(got?.body, undefined);
      }
      assert.equal((await store.head()).lastSeq, first!.event.seq);
      await store.close();
    });

    test('keeps a key for its own longer TTL past the store-wide TTL, then forgets it', async () => {
      const clock = { now: 1_000 };
      const store = f.open(clock);
      await store.append([webhookInput('evt_1')]);
      const policy = { maxAgeMs: 0, maxEvents: 0, idempotencyTtlMs: DAY };
      clock.now += 2 * DAY;
      await store.prune(policy, clock.now);
      assert.equal((await store.append([webhookInput('evt_1')]))[0]!.duplicate, true, 'kept within 3 days');
      clock.now += 2 * DAY;
      await store.prune(policy, clock.now);
      assert.equal((await store.append([webhookInput('evt_1')]))[0]!.duplicate, false, 'forgotten after 3 days');
      await store.close();
    });

    test('records rejected receipts, lists newest first, filters by status and pages with before', async () => {
      const store = f.open({ now: 1_000 });
      await store.append([webhookInput('evt_1')]);
      const rejected = await store.recordReceipts([
        receipt({ status: 'rejected', providerId: undefined, body: Buffer.from('x'), error: { code: 'SIGNATURE_INVALID', message: 'no' } }),
        receipt({ status: 'rejected', source: 'github', error: { code: 'SIGNATURE_MISSING', message: 'no' } }),
      ]);
      assert.equal(rejected[0]!.body, undefined, 'a rejected receipt never keeps the payload');
      const all = await store.listReceipts('stripe', { before: 0, limit: 10 });
      assert.deepEqual(all.map((r) => r.status), ['rejected', 'accepted']);
      assert.equal(all[0]!.error?.code, 'SIGNATURE_INVALID');
      assert.equal((await store.getReceipt('stripe', all[0]!.id))?.body, undefined);
      const older = await store.listReceipts('stripe', { before: all[0]!.id, limit: 10 });
      assert.deepEqual(older.map((r) => r.id), [all[1]!.id]);
      const onlyRejected = await store.listReceipts('stripe', { before: 0, limit: 10, status: 'rejected' });
      assert.equal(onlyRejected.length, 1);
      assert.equal(await store.getReceipt('github', all[0]!.id), undefined, 'receipts are per source');
      await store.close();
    });

    test('prunes receipts past keepUntil and beyond the per-source cap, but not their keys', async () => {
      const store = f.open({ now: 1_000 });
      for (let i = 0; i < 5; i++) await store.append([webhookInput(`evt_${i}`, { keepUntil: 1_000 + DAY })]);
      await store.recordReceipts([receipt({ status: 'rejected', keepUntil: 2_000 })]);
      await store.prune({ maxAgeMs: 0, maxEvents: 0, idempotencyTtlMs: DAY, maxReceiptsPerSource: 3 }, 3_000);
      const left = await store.listReceipts('stripe', { before: 0, limit: 10 });
      assert.deepEqual(left.map((r) => r.providerId), ['evt_4', 'evt_3', 'evt_2']);
      assert.equal((await store.append([webhookInput('evt_0', { keepUntil: 1_000 + DAY })]))[0]!.duplicate, true);
      await store.prune({ maxAgeMs: 0, maxEvents: 0, idempotencyTtlMs: DAY }, 1_000 + 2 * DAY);
      assert.equal((await store.listReceipts('stripe', { before: 0, limit: 10 })).length, 0);
      await store.close();
    });

    if (f.durable) {
      test('event, key and receipt survive reopening the store', async () => {
        const file = join(mkdtempSync(join(tmpdir(), 'herald-rc-')), 'log.db');
        const first = f.open({ now: 1_000 }, file);
        const [r] = await first.append([webhookInput('evt_9')]);
        await first.close();
        const again = f.open({ now: 2_000 }, file);
        assert.equal((await again.getReceipt('stripe', r!.receiptId!))?.body?.toString(), '{"id":"evt_9"}');
        const [dup] = await again.append([webhookInput('evt_9')]);
        assert.equal(dup!.duplicate, true);
        assert.ok(dup!.receiptId! > r!.receiptId!, 'receipt ids are never reused');
        await again.close();
      });
    }

    test('receipt calls after close reject', async () => {
      const store = f.open({ now: 1_000 });
      await store.close();
      await assert.rejects(store.listReceipts('stripe', { before: 0, limit: 1 }));
      await assert.rejects(store.recordReceipts([receipt({ status: 'rejected' })]));
    });
  });
}

/** A GitHub-like arrival: its id and type are unsigned headers, only the body's digest is signed. */
function bodySignedInput(deliveryId: string, digest: string, type: string, over: Partial<ReceiptInput> = {}): EventInput {
  return {
    channel: `gh.${type}`,
    type,
    data: '{"zen":"same signed body"}',
    idempotencyKey: `webhook:gh:${deliveryId}`,
    idempotencyTtlMs: 3 * DAY,
    receipt: receipt({ source: 'gh', providerId: deliveryId, type, digest, body: Buffer.from('{"zen":"same signed body"}'), ...over }),
  };
}

const DIGEST_A = 'a'.repeat(64);
const DIGEST_B = 'b'.repeat(64);

for (const f of factories) {
  describe(`EventStore inbound receipts: signed-bytes digests (${f.name})`, () => {
    test('a known digest under a new provider id and type is a duplicate of the first event', async () => {
      const store = f.open({ now: 1_000 });
      const [first] = await store.append([bodySignedInput('d-1', DIGEST_A, 'push')]);
      const [again, sameBatch, other] = await store.append([
        bodySignedInput('d-2', DIGEST_A, 'issues'),
        bodySignedInput('d-3', DIGEST_A, 'release'),
        bodySignedInput('d-4', DIGEST_B, 'push'),
      ]);
      for (const r of [again!, sameBatch!]) {
        assert.equal(r.duplicate, true);
        assert.equal(r.event.seq, first!.event.seq);
        assert.equal(r.event.channel, 'gh.push', 'the first arrival decided the channel');
        const got = await store.getReceipt('gh', r.receiptId!);
        assert.equal(got?.status, 'duplicate');
        assert.equal(got?.seq, first!.event.seq);
      }
      assert.equal(other!.duplicate, false, 'another digest is another message');
      assert.equal((await store.head()).lastSeq, other!.event.seq);
      const [elsewhere] = await store.append([bodySignedInput('d-1', DIGEST_A, 'push', { source: 'gh2' })]);
      assert.equal(elsewhere!.duplicate, true, 'the idempotency key still matches');
      const [otherSource] = await store.append([{ ...bodySignedInput('d-9', DIGEST_A, 'push', { source: 'gh2' }), idempotencyKey: 'webhook:gh2:d-9' }]);
      assert.equal(otherSource!.duplicate, false, 'digests are per source');
      await store.close();
    });

    test('the same signed bytes in one batch append one event', async () => {
      const store = f.open({ now: 1_000 });
      const results = await store.append([bodySignedInput('d-1', DIGEST_A, 'push'), bodySignedInput('d-2', DIGEST_A, 'issues')]);
      assert.deepEqual(results.map((r) => r.duplicate), [false, true]);
      assert.equal(results[1]!.event.seq, results[0]!.event.seq);
      await store.close();
    });

    test('a digest counts until its receipt keepUntil, then the same bytes are new', async () => {
      const clock = { now: 1_000 };
      const store = f.open(clock);
      await store.append([bodySignedInput('d-1', DIGEST_A, 'push', { keepUntil: 1_000 + DAY })]);
      clock.now = 1_000 + DAY;
      assert.equal((await store.append([bodySignedInput('d-2', DIGEST_A, 'push')]))[0]!.duplicate, true, 'kept through keepUntil');
      clock.now = 2_000 + DAY;
      await store.prune({ maxAgeMs: 0, maxEvents: 0, idempotencyTtlMs: 0 }, clock.now);
      const [later] = await store.append([bodySignedInput('d-3', DIGEST_A, 'push', { keepUntil: clock.now + DAY })]);
      assert.equal(later!.duplicate, false, 'forgotten after keepUntil');
      clock.now += 1;
      assert.equal((await store.append([bodySignedInput('d-4', DIGEST_A, 'push')]))[0]!.event.seq, later!.event.seq);
      await store.close();
    });

    test('a flood of rejected receipts past the per-source cap does not push a digest out', async () => {
      const store = f.open({ now: 1_000 });
      const [first] = await store.append([bodySignedInput('d-1', DIGEST_A, 'push')]);
      const forged = Array.from({ length: 5 }, () => receipt({ source: 'gh', status: 'rejected', error: { code: 'SIGNATURE_INVALID', message: 'no' } }));
      await store.recordReceipts(forged);
      await store.prune({ maxAgeMs: 0, maxEvents: 0, idempotencyTtlMs: 0, maxReceiptsPerSource: 3 }, 1_000);
      const left = await store.listReceipts('gh', { before: 0, limit: 10 });
      assert.ok(!left.some((r) => r.status === 'accepted'), 'the accepted receipt was capped away');
      const [replay] = await store.append([bodySignedInput('d-2', DIGEST_A, 'issues')]);
      assert.equal(replay!.duplicate, true);
      assert.equal(replay!.event.seq, first!.event.seq);
      await store.close();
    });

    test('a duplicate of an event that left the log still appends nothing', async () => {
      const store = f.open({ now: 1_000 });
      const [first] = await store.append([bodySignedInput('d-1', DIGEST_A, 'push')]);
      await store.append([{ channel: 'other', type: 'x', data: '1' }]);
      await store.prune({ maxAgeMs: 0, maxEvents: 1, idempotencyTtlMs: 0 }, 1_000);
      const [replay] = await store.append([bodySignedInput('d-2', DIGEST_A, 'issues')]);
      assert.equal(replay!.duplicate, true);
      assert.equal(replay!.event.seq, first!.event.seq);
      await store.close();
    });

    if (f.durable) {
      test('a digest survives reopening the store', async () => {
        const file = join(mkdtempSync(join(tmpdir(), 'herald-rc-')), 'log.db');
        const first = f.open({ now: 1_000 }, file);
        const [r] = await first.append([bodySignedInput('d-1', DIGEST_A, 'push')]);
        await first.close();
        const again = f.open({ now: 2_000 }, file);
        const [dup] = await again.append([bodySignedInput('d-2', DIGEST_A, 'issues')]);
        assert.equal(dup!.duplicate, true);
        assert.equal(dup!.event.seq, r!.event.seq);
        await again.close();
      });
    }
  });
}
